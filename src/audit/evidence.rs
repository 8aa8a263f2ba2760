//! No DDL quietly destroys warden's evidence: its own tables (the extension's tables in schema `warden`: the
//! audit trail, holds and releases, consents, deleted accounts, the keyring, API keys,
//! revocations...) are refused, for everyone, superusers included, every statement that could
//! empty them, rewrite them without their data, detach their storage, change their columns,
//! constraints, triggers, rules or policies, rename or move them, or drop them; and `DROP
//! EXTENSION warden` / `DROP SCHEMA warden` (or `DROP OWNED BY` the extension's owner) is refused
//! while the trail holds events younger than `warden.audit_retention`, unless the server's
//! configuration turns on `warden.allow_evidence_drop` (never `SET`), which is then said in the
//! server log. Each refusal is an event that survives the rollback.
//!
//! What stays allowed on warden's tables: storage parameters, statistics targets, storage and
//! compression, tablespace, CLUSTER ON, replica identity, SET LOGGED, enabling or forcing row level
//! security, and anything warden's own extension scripts do (`CREATE`/`ALTER EXTENSION`).
//!
//! Floor 3, the event path: it guards the store it writes.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgLogLevel;

use super::{record_autonomous, AuditError, NewEvent, Status};
use crate::catalog;

/// Why a statement is refused: (operation, object, what it would do).
type Refusal = (String, String, String);

fn cstr(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string from a parse tree.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn warden_namespace() -> pg_sys::Oid {
    // SAFETY: catalog lookup with missing_ok.
    unsafe { pg_sys::get_namespace_oid(c"warden".as_ptr(), true) }
}

/// The relation a RangeVar names, when it is one of warden's tables: its qualified name.
unsafe fn warden_table(rv: *mut pg_sys::RangeVar) -> Option<String> {
    if rv.is_null() {
        return None;
    }
    // SAFETY: a RangeVar from a parse tree; missing_ok, no lock; catalog lookups.
    unsafe {
        let oid = pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as i32,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        warden_relation(oid)
    }
}

fn warden_relation(oid: pg_sys::Oid) -> Option<String> {
    if oid == pg_sys::InvalidOid {
        return None;
    }
    let nsp = warden_namespace();
    // SAFETY: catalog lookups of an existing relation.
    unsafe {
        if nsp == pg_sys::InvalidOid || pg_sys::get_rel_namespace(oid) != nsp {
            return None;
        }
        let kind = pg_sys::get_rel_relkind(oid) as u8;
        if kind != pg_sys::RELKIND_RELATION && kind != pg_sys::RELKIND_PARTITIONED_TABLE {
            return None;
        }
        // warden's own: a member of the extension (not, say, a shard Citus creates for one of
        // them on a worker, named like it)
        let ext = pg_sys::get_extension_oid(c"warden".as_ptr(), true);
        if ext == pg_sys::InvalidOid
            || pg_sys::getExtensionOfObject(pg_sys::RelationRelationId, oid) != ext
        {
            return None;
        }
        let name = pg_sys::get_rel_name(oid);
        Some(format!("warden.{}", cstr(name)))
    }
}

unsafe fn list_nodes(list: *mut pg_sys::List) -> Vec<*mut pg_sys::Node> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a List of pointers.
    unsafe {
        (0..(*list).length as usize)
            .map(|i| (*(*list).elements.add(i)).ptr_value.cast::<pg_sys::Node>())
            .collect()
    }
}

unsafe fn string_list(list: *mut pg_sys::List) -> Vec<String> {
    // SAFETY: a List of String nodes.
    unsafe {
        list_nodes(list)
            .into_iter()
            .filter(|n| !n.is_null() && (**n).type_ == pg_sys::NodeTag::T_String)
            .map(|n| cstr((*n.cast::<pg_sys::String>()).sval))
            .collect()
    }
}

/// The warden table a qualified name list (`schema.table`, or `table` on the search path) names.
unsafe fn warden_table_of_names(names: *mut pg_sys::List) -> Option<String> {
    if names.is_null() || unsafe { (*names).length } == 0 {
        return None;
    }
    // SAFETY: a List of String nodes, as DROP's objects and triggers' relation names are.
    unsafe { warden_table(pg_sys::makeRangeVarFromNameList(names)) }
}

/// ALTER TABLE subcommands that leave a table's data, columns, constraints, triggers and rules as
/// they are.
fn harmless(t: pg_sys::AlterTableType::Type) -> bool {
    use pg_sys::AlterTableType as T;
    matches!(
        t,
        T::AT_SetRelOptions
            | T::AT_ResetRelOptions
            | T::AT_ReplaceRelOptions
            | T::AT_SetStatistics
            | T::AT_SetStorage
            | T::AT_SetCompression
            | T::AT_SetTableSpace
            | T::AT_ClusterOn
            | T::AT_DropCluster
            | T::AT_ReplicaIdentity
            | T::AT_SetLogged
            | T::AT_EnableRowSecurity
            | T::AT_ForceRowSecurity
    )
}

fn subcommand_name(t: pg_sys::AlterTableType::Type) -> &'static str {
    use pg_sys::AlterTableType as T;
    match t {
        T::AT_SetUnLogged => "SET UNLOGGED",
        T::AT_AddColumn => "ADD COLUMN",
        T::AT_DropColumn => "DROP COLUMN",
        T::AT_AlterColumnType => "ALTER COLUMN TYPE",
        T::AT_AddConstraint => "ADD CONSTRAINT",
        T::AT_DropConstraint => "DROP CONSTRAINT",
        T::AT_DropNotNull => "DROP NOT NULL",
        T::AT_ColumnDefault => "ALTER COLUMN DEFAULT",
        T::AT_DisableTrig | T::AT_DisableTrigAll | T::AT_DisableTrigUser => "DISABLE TRIGGER",
        T::AT_EnableTrig
        | T::AT_EnableTrigAll
        | T::AT_EnableTrigUser
        | T::AT_EnableAlwaysTrig
        | T::AT_EnableReplicaTrig => "ENABLE TRIGGER",
        T::AT_DisableRule | T::AT_EnableRule | T::AT_EnableAlwaysRule | T::AT_EnableReplicaRule => {
            "ENABLE/DISABLE RULE"
        }
        T::AT_DisableRowSecurity | T::AT_NoForceRowSecurity => {
            "DISABLE/NO FORCE ROW LEVEL SECURITY"
        }
        T::AT_ChangeOwner => "OWNER TO",
        T::AT_DetachPartition | T::AT_DetachPartitionFinalize => "DETACH PARTITION",
        T::AT_AttachPartition => "ATTACH PARTITION",
        T::AT_AddInherit | T::AT_DropInherit => "INHERIT/NO INHERIT",
        T::AT_SetAccessMethod => "SET ACCESS METHOD",
        _ => "a change of its definition",
    }
}

/// The refusal a statement on warden's tables earns, if any.
unsafe fn refusal(stmt: *mut pg_sys::Node) -> Option<Refusal> {
    use pg_sys::NodeTag as N;
    let r = |op: &str, obj: String, what: &str| Some((op.to_string(), obj, what.to_string()));
    // SAFETY: parse nodes of the statement PostgreSQL is about to run.
    unsafe {
        match (*stmt).type_ {
            N::T_AlterTableStmt => {
                let a = stmt.cast::<pg_sys::AlterTableStmt>();
                let table = warden_table((*a).relation)?;
                for n in list_nodes((*a).cmds) {
                    let cmd = n.cast::<pg_sys::AlterTableCmd>();
                    if !cmd.is_null() && !harmless((*cmd).subtype) {
                        return r(
                            &format!("ALTER TABLE ... {}", subcommand_name((*cmd).subtype)),
                            table,
                            "would change how the evidence is kept",
                        );
                    }
                }
                None
            }
            N::T_TruncateStmt => {
                let t = stmt.cast::<pg_sys::TruncateStmt>();
                for n in list_nodes((*t).relations) {
                    if let Some(table) = warden_table(n.cast()) {
                        return r("TRUNCATE", table, "would empty the evidence");
                    }
                }
                None
            }
            N::T_CreateTrigStmt => {
                let t = stmt.cast::<pg_sys::CreateTrigStmt>();
                warden_table((*t).relation).and_then(|table| {
                    r(
                        "CREATE TRIGGER",
                        table,
                        "could discard or change what is written",
                    )
                })
            }
            N::T_RuleStmt => {
                let t = stmt.cast::<pg_sys::RuleStmt>();
                warden_table((*t).relation).and_then(|table| {
                    r(
                        "CREATE RULE",
                        table,
                        "could discard or change what is written",
                    )
                })
            }
            N::T_CreatePolicyStmt => {
                let t = stmt.cast::<pg_sys::CreatePolicyStmt>();
                warden_table((*t).table)
                    .and_then(|table| r("CREATE POLICY", table, "could widen who reads it"))
            }
            N::T_AlterPolicyStmt => {
                let t = stmt.cast::<pg_sys::AlterPolicyStmt>();
                warden_table((*t).table)
                    .and_then(|table| r("ALTER POLICY", table, "could widen who reads it"))
            }
            N::T_RenameStmt => {
                let t = stmt.cast::<pg_sys::RenameStmt>();
                if (*t).renameType == pg_sys::ObjectType::OBJECT_SCHEMA
                    && cstr((*t).subname) == "warden"
                {
                    return r(
                        "ALTER SCHEMA ... RENAME",
                        "schema warden".into(),
                        "would hide it",
                    );
                }
                warden_table((*t).relation).and_then(|table| r("RENAME", table, "would hide it"))
            }
            N::T_AlterObjectSchemaStmt => {
                let t = stmt.cast::<pg_sys::AlterObjectSchemaStmt>();
                warden_table((*t).relation)
                    .and_then(|table| r("SET SCHEMA", table, "would move it out of warden"))
            }
            N::T_AlterExtensionContentsStmt => {
                let t = stmt.cast::<pg_sys::AlterExtensionContentsStmt>();
                (cstr((*t).extname) == "warden" && (*t).action < 0).then(|| {
                    (
                        "ALTER EXTENSION warden DROP".to_string(),
                        "extension warden".to_string(),
                        "would leave its objects unprotected and out of its dumps".to_string(),
                    )
                })
            }
            N::T_DropStmt => {
                let d = stmt.cast::<pg_sys::DropStmt>();
                use pg_sys::ObjectType as O;
                let kind = (*d).removeType;
                for n in list_nodes((*d).objects) {
                    if n.is_null() {
                        continue;
                    }
                    match kind {
                        O::OBJECT_TABLE | O::OBJECT_FOREIGN_TABLE if (*n).type_ == N::T_List => {
                            if let Some(table) = warden_table_of_names(n.cast()) {
                                return r("DROP TABLE", table, "would destroy the evidence");
                            }
                        }
                        O::OBJECT_TRIGGER | O::OBJECT_RULE | O::OBJECT_POLICY
                            if (*n).type_ == N::T_List =>
                        {
                            // the relation's name, then the object's
                            let names = string_list(n.cast());
                            if names.len() >= 2 {
                                let rel = pg_sys::list_copy_head(n.cast(), names.len() as i32 - 1);
                                if let Some(table) = warden_table_of_names(rel) {
                                    let op = match kind {
                                        O::OBJECT_TRIGGER => "DROP TRIGGER",
                                        O::OBJECT_RULE => "DROP RULE",
                                        _ => "DROP POLICY",
                                    };
                                    return r(op, table, "would unguard the evidence");
                                }
                            }
                        }
                        _ => {}
                    }
                }
                None
            }
            _ => None,
        }
    }
}

/// Whether `stmt` drops warden as a whole (DROP EXTENSION warden, DROP SCHEMA warden, DROP OWNED
/// BY the extension's owner): its command, for the check of the trail's age.
unsafe fn drops_warden(stmt: *mut pg_sys::Node) -> Option<String> {
    // SAFETY: parse nodes of the statement PostgreSQL is about to run; catalog lookups.
    unsafe {
        match (*stmt).type_ {
            pg_sys::NodeTag::T_DropStmt => {
                let d = stmt.cast::<pg_sys::DropStmt>();
                let kind = (*d).removeType;
                let what = match kind {
                    pg_sys::ObjectType::OBJECT_EXTENSION => "DROP EXTENSION",
                    pg_sys::ObjectType::OBJECT_SCHEMA => "DROP SCHEMA",
                    _ => return None,
                };
                let names: Vec<String> = list_nodes((*d).objects)
                    .into_iter()
                    .filter(|n| !n.is_null() && (**n).type_ == pg_sys::NodeTag::T_String)
                    .map(|n| cstr((*n.cast::<pg_sys::String>()).sval))
                    .collect();
                names
                    .iter()
                    .any(|n| n == "warden")
                    .then(|| what.to_string())
            }
            pg_sys::NodeTag::T_DropOwnedStmt => {
                let d = stmt.cast::<pg_sys::DropOwnedStmt>();
                let ext = pg_sys::get_extension_oid(c"warden".as_ptr(), true);
                if ext == pg_sys::InvalidOid {
                    return None;
                }
                let owner = extension_owner(ext)?;
                for n in list_nodes((*d).roles) {
                    let spec = n.cast::<pg_sys::RoleSpec>();
                    if !spec.is_null() && pg_sys::get_rolespec_oid(spec, true) == owner {
                        return Some("DROP OWNED".into());
                    }
                }
                None
            }
            _ => None,
        }
    }
}

/// The owner of the extension `ext`.
fn extension_owner(ext: pg_sys::Oid) -> Option<pg_sys::Oid> {
    Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE oid = $1",
        &[ext.into()],
    )
    .ok()
    .flatten()
}

/// Whether the trail holds events younger than `warden.audit_retention` (or events not sealed
/// yet); an error reading it counts as yes.
fn young_events() -> Result<bool, String> {
    let retention = i64::from(crate::gucs::AUDIT_RETENTION.get());
    catalog::as_role(pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID), || {
        Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM warden.audit_pending)
                 OR EXISTS (SELECT 1 FROM warden.audit_events
                             WHERE occurred_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8))",
            &[retention.into()],
        )
        .map(|v| v.unwrap_or(true))
        .map_err(|e| e.to_string())
    })
}

fn refuse(op: String, object: String, why: String) -> ! {
    let mut ev = NewEvent::in_context("evidence_protected", Status::Denied);
    ev.resource_type = Some("warden".into());
    ev.resource_id = Some(object.clone());
    ev.changes = Some(format!(
        "{{\"operation\":{},\"reason\":{}}}",
        serde_json::Value::from(op.as_str()),
        serde_json::Value::from(why.as_str())
    ));
    record_autonomous(&ev);
    let e = AuditError::Evidence {
        operation: op,
        object,
        why,
    };
    crate::errors::report(&e).report(PgLogLevel::ERROR);
    unreachable!()
}

/// Before a utility statement: refuses what would destroy or unguard warden's evidence.
///
/// # Safety
/// `stmt` is the utility statement's parse tree.
pub unsafe fn before_utility(stmt: *mut pg_sys::Node) {
    // SAFETY: reads parse nodes and backend globals.
    unsafe {
        if stmt.is_null()
            || pg_sys::IsBinaryUpgrade
            || pg_sys::creating_extension
            || !pg_sys::IsTransactionState()
            || crate::catalog::citus::in_setup()
            || warden_namespace() == pg_sys::InvalidOid
        {
            return;
        }
        if let Some((op, object, why)) = refusal(stmt) {
            refuse(op, object, why);
        }
        if let Some(op) = drops_warden(stmt) {
            let object = if op.starts_with("DROP SCHEMA") {
                "schema warden".to_string()
            } else {
                "extension warden".to_string()
            };
            let young = young_events();
            if crate::gucs::ALLOW_EVIDENCE_DROP.get() {
                // on record in the server log (and said to the client)
                pgrx::warning!(
                    "warden: {op} on {object} by role \"{}\" allowed by warden.allow_evidence_drop (the trail {})",
                    crate::context::current_role_name(),
                    match &young {
                        Ok(true) => "holds events younger than warden.audit_retention",
                        Ok(false) => "holds no event younger than warden.audit_retention",
                        Err(_) => "could not be read",
                    }
                );
                return;
            }
            match young {
                Ok(false) => {}
                Ok(true) => refuse(
                    op,
                    object,
                    "would destroy the audit trail, which holds events younger than warden.audit_retention".into(),
                ),
                Err(e) => refuse(
                    op,
                    object,
                    format!("would destroy the audit trail, whose age could not be read ({e})"),
                ),
            }
        }
    }
}
