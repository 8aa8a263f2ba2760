//! warden's ProcessUtility hook (warden is preloaded, so it sees every utility statement).
//!
//! While a legal hold is active it checks DROP and ALTER TABLE around the statement (see
//! `hold::guard::before_utility` and `after_utility`): no held table may disappear or lose a guard.
//!
//! It records authorization changes and administrative actions as audit events, without any call
//! from the application (see [`audited`]), once the statement has succeeded and in its transaction.
//!
//! And `SET warden.context_token = ...` without `LOCAL` is refused. A forged or
//! invalid token fails with 28000, exactly as with `SET LOCAL` or `authenticate`; a valid one with
//! 22023, because a session-level value would outlive the transaction. The read path ignores such a
//! value anyway (see `context`); refusing the statement tells the application so instead of leaving
//! it with no rows and no explanation. `RESET` and `SET ... TO DEFAULT` stay allowed: they clear it.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::context::ContextError;
use crate::gucs::CONTEXT_TOKEN_NAME;

/// When `stmt` is a session-level `SET warden.context_token = <value>`: `Some(Some(value))`, or
/// `Some(None)` when the value is not a single string constant.
unsafe fn session_level_carrier_set(stmt: *mut pg_sys::Node) -> Option<Option<Vec<u8>>> {
    unsafe {
        if stmt.is_null() || (*stmt).type_ != pg_sys::NodeTag::T_VariableSetStmt {
            return None;
        }
        let set = stmt.cast::<pg_sys::VariableSetStmt>();
        let ours = !(*set).is_local
            && (*set).kind == pg_sys::VariableSetKind::VAR_SET_VALUE
            && !(*set).name.is_null()
            && CStr::from_ptr((*set).name)
                .to_bytes()
                .eq_ignore_ascii_case(CONTEXT_TOKEN_NAME.to_bytes());
        if !ours {
            return None;
        }
        let args = (*set).args;
        let mut value = None;
        if !args.is_null() && (*args).length == 1 {
            let arg = (*(*args).elements).ptr_value.cast::<pg_sys::Node>();
            if !arg.is_null() && (*arg).type_ == pg_sys::NodeTag::T_A_Const {
                let c = arg.cast::<pg_sys::A_Const>();
                if !(*c).isnull && (*c).val.sval.type_ == pg_sys::NodeTag::T_String {
                    let p = (*c).val.sval.sval;
                    if !p.is_null() {
                        value = Some(CStr::from_ptr(p).to_bytes().to_vec());
                    }
                }
            }
        }
        Some(value)
    }
}

/// What warden noted before a utility statement ran, for [`after`].
pub struct Before {
    event: Option<UtilityEvent>,
    hold_check: Option<crate::hold::guard::PostCheck>,
    classification_check: Option<String>,
    /// A `COPY <PHI table> TO` that bypasses the executor: its statement number.
    phi_copy: Option<u64>,
}

/// Before the statement: refuses a session-level SET of the carrier, and notes the audit event,
/// hold check and classification check to make after it. Raises warden's own errors only.
///
/// # Safety
/// `pstmt` and `query_string` are what PostgreSQL passed to its ProcessUtility hook.
pub unsafe fn before(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
) -> Before {
    // SAFETY: PostgreSQL passes a valid PlannedStmt (or null).
    unsafe {
        if let Some(value) = (!pstmt.is_null())
            .then(|| session_level_carrier_set((*pstmt).utilityStmt))
            .flatten()
            .filter(|v| v.as_ref().is_none_or(|v| !v.is_empty()))
        {
            // '' only clears and is let through; anything else is refused
            let refused =
                ContextError::NotTransactional("set for the whole session: SET needs LOCAL");
            let e = match value {
                Some(v) => match crate::context::verify_carrier_value(&v) {
                    Err(e) => {
                        // a forged token is a failed authentication, whatever else is wrong
                        crate::context::audit_failure(
                            std::str::from_utf8(&v).ok(),
                            &e,
                            Some("SET warden.context_token"),
                        );
                        e
                    }
                    Ok(()) => refused,
                },
                None => refused,
            };
            crate::errors::report(&e).report(PgLogLevel::ERROR);
        }
        // Citus: a context set inside a released savepoint reaches the workers too
        crate::context::repropagate();
        if crate::catalog::citus::in_setup() {
            // warden.citus_setup(): Citus's own DDL converting warden's tables, which are
            // mid-conversion (renamed, shells) while it runs; warden.citus_setup() is the event
            return Before {
                event: None,
                hold_check: None,
                classification_check: None,
                phi_copy: None,
            };
        }
        let event = audited(pstmt, query_string);
        let hold_check = if pstmt.is_null() {
            None
        } else {
            crate::hold::guard::before_utility((*pstmt).utilityStmt)
        };
        if !pstmt.is_null() {
            // after the hold guard, whose refusal names the hold
            crate::audit::evidence::before_utility((*pstmt).utilityStmt);
            crate::hold::marker::before_utility((*pstmt).utilityStmt);
        }
        let classification_check = if pstmt.is_null() {
            None
        } else {
            may_weaken((*pstmt).utilityStmt)
        };
        let phi_copy = if pstmt.is_null() {
            None
        } else {
            crate::classify::phi::copy_before((*pstmt).utilityStmt)
        };
        Before {
            event,
            hold_check,
            classification_check,
            phi_copy,
        }
    }
}

/// After the statement succeeded: the hold and classification checks, then its audit event.
///
/// # Safety
/// `pstmt` is the statement [`before`] saw, which has just run.
pub unsafe fn after(b: Before, pstmt: *mut pg_sys::PlannedStmt, rows: u64) {
    // SAFETY: the statement PostgreSQL ran.
    if unsafe { commits_prepared(pstmt) } {
        // its events are visible now, in blocks only the prepared transaction's backend knew
        crate::audit::worker::request_full_scan();
    }
    if let Some(statement) = b.phi_copy {
        crate::classify::phi::copy_after(statement, rows);
    }
    if let Some(pc) = b.hold_check {
        crate::hold::guard::after_utility(pc);
    }
    if let Some(operation) = b.classification_check {
        crate::classify::api::after_utility(&operation);
    }
    if let Some(ev) = b.event {
        // SAFETY: the statement PostgreSQL ran.
        unsafe { record_utility(ev, pstmt) };
    }
}

/// Whether `pstmt` is `COMMIT PREPARED` (Citus's workers commit every distributed write so).
unsafe fn commits_prepared(pstmt: *mut pg_sys::PlannedStmt) -> bool {
    // SAFETY: a PlannedStmt from PostgreSQL, its utility statement checked by tag before the cast.
    unsafe {
        if pstmt.is_null() || (*pstmt).utilityStmt.is_null() {
            return false;
        }
        let stmt = (*pstmt).utilityStmt;
        (*stmt).type_ == pg_sys::NodeTag::T_TransactionStmt
            && (*stmt.cast::<pg_sys::TransactionStmt>()).kind
                == pg_sys::TransactionStmtKind::TRANS_STMT_COMMIT_PREPARED
    }
}

/// When `stmt` can leave a table without its protection or its audit trigger (ALTER TABLE, a
/// policy or trigger dropped, changed or renamed): its command name, for the classification check
/// after it ran.
unsafe fn may_weaken(stmt: *mut pg_sys::Node) -> Option<String> {
    // SAFETY: reads a parse node.
    unsafe {
        if stmt.is_null() || !pg_sys::IsTransactionState() {
            return None;
        }
        let relevant = match (*stmt).type_ {
            pg_sys::NodeTag::T_AlterTableStmt
            | pg_sys::NodeTag::T_CreatePolicyStmt
            | pg_sys::NodeTag::T_AlterPolicyStmt
            | pg_sys::NodeTag::T_RenameStmt => true,
            pg_sys::NodeTag::T_DropStmt => matches!(
                (*stmt.cast::<pg_sys::DropStmt>()).removeType,
                pg_sys::ObjectType::OBJECT_POLICY | pg_sys::ObjectType::OBJECT_TRIGGER
            ),
            _ => false,
        };
        relevant.then(|| {
            let name = pg_sys::CreateCommandName(stmt);
            if name.is_null() {
                "the statement".into()
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            }
        })
    }
}

/// What an audited utility statement is: action, resource type and id, and (for ALTER TABLE) the
/// table to look at after it ran.
struct UtilityEvent {
    action: &'static str,
    resource_type: &'static str,
    resource_id: Option<String>,
    statement: String,
    /// DISABLE TRIGGER: recorded only when the table is audited.
    only_if_audited: Option<*mut pg_sys::RangeVar>,
}

unsafe fn rangevar_name(rv: *mut pg_sys::RangeVar) -> Option<String> {
    // SAFETY: a RangeVar from the parse tree.
    unsafe {
        if rv.is_null() || (*rv).relname.is_null() {
            return None;
        }
        let rel = CStr::from_ptr((*rv).relname).to_string_lossy();
        Some(if (*rv).schemaname.is_null() {
            rel.into_owned()
        } else {
            format!(
                "{}.{rel}",
                CStr::from_ptr((*rv).schemaname).to_string_lossy()
            )
        })
    }
}

unsafe fn cstr_opt(p: *const std::ffi::c_char) -> Option<String> {
    // SAFETY: a NUL-terminated string from the parse tree, or null.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// The statement's own text (one statement of a multi-statement string), secrets removed.
unsafe fn statement_text(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
) -> String {
    // SAFETY: stmt_location/stmt_len index into the query string PostgreSQL passed.
    unsafe {
        if query.is_null() {
            return String::new();
        }
        let all = CStr::from_ptr(query).to_bytes();
        let start = ((*pstmt).stmt_location.max(0) as usize).min(all.len());
        let end = match (*pstmt).stmt_len {
            n if n > 0 => (start + n as usize).min(all.len()),
            _ => all.len(),
        };
        let text = String::from_utf8_lossy(&all[start..end]);
        crate::audit::redact::for_audit(text.trim())
    }
}

/// The audit event a utility statement makes, if any: GRANT/REVOKE (of privileges and of roles),
/// CREATE/ALTER/DROP ROLE, CREATE/ALTER/DROP POLICY, ALTER TABLE ... ENABLE/DISABLE/FORCE/NO FORCE
/// ROW LEVEL SECURITY, and DISABLE TRIGGER on an audited table.
///
/// Not recorded: statements of an extension script (CREATE EXTENSION, ALTER EXTENSION UPDATE),
/// which are the extension's own; warden's own DDL (its function is the event); pg_upgrade; and
/// statements a superuser runs with `row_security = off`, as pg_dump and pg_restore do: a restore
/// replays the dumped state, whose events are in the dump itself (and recording them before the
/// events' data is restored would number them ahead of it).
unsafe fn audited(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const std::ffi::c_char,
) -> Option<UtilityEvent> {
    // SAFETY: reads the parse tree PostgreSQL passed.
    unsafe {
        if pstmt.is_null()
            || pg_sys::creating_extension
            || pg_sys::IsBinaryUpgrade
            || crate::catalog::in_own_ddl()
            || (!pg_sys::row_security && pg_sys::superuser())
        {
            return None;
        }
        let stmt = (*pstmt).utilityStmt;
        if stmt.is_null() {
            return None;
        }
        use pg_sys::NodeTag::*;
        let (action, resource_type, resource_id, only_if_audited) = match (*stmt).type_ {
            T_GrantStmt => {
                let g = stmt.cast::<pg_sys::GrantStmt>();
                let action = if (*g).is_grant { "grant" } else { "revoke" };
                (action, "privileges", None, None)
            }
            T_GrantRoleStmt => {
                let g = stmt.cast::<pg_sys::GrantRoleStmt>();
                let action = if (*g).is_grant {
                    "grant_role"
                } else {
                    "revoke_role"
                };
                (action, "role", None, None)
            }
            T_CreateRoleStmt => {
                let r = stmt.cast::<pg_sys::CreateRoleStmt>();
                ("create_role", "role", cstr_opt((*r).role), None)
            }
            T_AlterRoleStmt => {
                let r = stmt.cast::<pg_sys::AlterRoleStmt>();
                let name = if (*r).role.is_null() {
                    None
                } else {
                    cstr_opt((*(*r).role).rolename)
                };
                ("alter_role", "role", name, None)
            }
            T_AlterRoleSetStmt => {
                let r = stmt.cast::<pg_sys::AlterRoleSetStmt>();
                let name = if (*r).role.is_null() {
                    None
                } else {
                    cstr_opt((*(*r).role).rolename)
                };
                ("alter_role", "role", name, None)
            }
            T_DropRoleStmt => ("drop_role", "role", None, None),
            T_RenameStmt
                if (*stmt.cast::<pg_sys::RenameStmt>()).renameType
                    == pg_sys::ObjectType::OBJECT_ROLE =>
            {
                let r = stmt.cast::<pg_sys::RenameStmt>();
                ("alter_role", "role", cstr_opt((*r).subname), None)
            }
            T_CreatePolicyStmt => {
                let p = stmt.cast::<pg_sys::CreatePolicyStmt>();
                (
                    "create_policy",
                    "policy",
                    policy_id((*p).policy_name, (*p).table),
                    None,
                )
            }
            T_AlterPolicyStmt => {
                let p = stmt.cast::<pg_sys::AlterPolicyStmt>();
                (
                    "alter_policy",
                    "policy",
                    policy_id((*p).policy_name, (*p).table),
                    None,
                )
            }
            T_DropStmt
                if (*stmt.cast::<pg_sys::DropStmt>()).removeType
                    == pg_sys::ObjectType::OBJECT_POLICY =>
            {
                ("drop_policy", "policy", None, None)
            }
            T_AlterTableStmt => {
                let a = stmt.cast::<pg_sys::AlterTableStmt>();
                let cmds = pgrx::PgList::<pg_sys::AlterTableCmd>::from_pg((*a).cmds);
                let mut rls = false;
                let mut disable_trigger = false;
                for cmd in cmds.iter_ptr() {
                    match (*cmd).subtype {
                        pg_sys::AlterTableType::AT_EnableRowSecurity
                        | pg_sys::AlterTableType::AT_DisableRowSecurity
                        | pg_sys::AlterTableType::AT_ForceRowSecurity
                        | pg_sys::AlterTableType::AT_NoForceRowSecurity => rls = true,
                        pg_sys::AlterTableType::AT_DisableTrig
                        | pg_sys::AlterTableType::AT_DisableTrigAll
                        | pg_sys::AlterTableType::AT_DisableTrigUser => disable_trigger = true,
                        _ => {}
                    }
                }
                let name = rangevar_name((*a).relation);
                if rls {
                    ("alter_row_security", "table", name, None)
                } else if disable_trigger {
                    ("disable_trigger", "table", name, Some((*a).relation))
                } else {
                    return None;
                }
            }
            _ => return None,
        };
        Some(UtilityEvent {
            action,
            resource_type,
            resource_id,
            statement: statement_text(pstmt, query),
            only_if_audited,
        })
    }
}

unsafe fn policy_id(
    policy: *const std::ffi::c_char,
    table: *mut pg_sys::RangeVar,
) -> Option<String> {
    // SAFETY: parse-tree strings.
    unsafe {
        let p = cstr_opt(policy)?;
        Some(match rangevar_name(table) {
            Some(t) => format!("{p} on {t}"),
            None => p,
        })
    }
}

/// Records `ev` after its statement succeeded, in the statement's transaction. Skipped where
/// warden is not installed.
unsafe fn record_utility(ev: UtilityEvent, _pstmt: *mut pg_sys::PlannedStmt) {
    if crate::audit::record::pending_relid() == pg_sys::InvalidOid {
        return;
    }
    if let Some(rv) = ev.only_if_audited {
        // SAFETY: resolves the statement's table (it exists: the statement succeeded).
        let relid = unsafe {
            pg_sys::RangeVarGetRelidExtended(rv, pg_sys::NoLock as _, 1, None, std::ptr::null_mut())
        };
        if relid == pg_sys::InvalidOid || !crate::audit::api::is_audited(relid) {
            return;
        }
    }
    let changes = format!(
        "{{\"statement\":{}}}",
        crate::audit::record::json_str(&ev.statement)
    );
    let mut e = crate::audit::NewEvent::in_context(ev.action, crate::audit::Status::Success)
        .changes(changes);
    e.resource_type = Some(ev.resource_type.to_owned());
    e.resource_id = ev.resource_id;
    if let Err(err) = crate::audit::record(&e) {
        let err = crate::audit::AuditError::from(err);
        crate::errors::report(&err).report(PgLogLevel::ERROR);
    }
}
