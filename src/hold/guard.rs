//! The guards: what refuses destruction of held data, and records every attempt.
//!
//! On each protected table (installed by `warden.protect_table`, enabled ALWAYS, so replica mode
//! does not silence them):
//! - `warden_hold_row`, BEFORE DELETE OR UPDATE FOR EACH ROW on each leaf table: a row whose tenant
//!   (and, for a subject hold, whose registered subject column) a hold covers may not be deleted
//!   (also through ON DELETE CASCADE, a view, a writable CTE, MERGE), and an UPDATE may not change
//!   its tenant column, its subject column or a registered personal-data column (erasure).
//! - `warden_hold_statement`, BEFORE DELETE OR TRUNCATE FOR EACH STATEMENT on every table of the
//!   tree: TRUNCATE (with or without CASCADE, of the table or of a parent) of a table a hold may
//!   cover is refused, and so is a DELETE on it without a verified context (fail closed).
//!
//! In the utility hook ([`before_utility`], [`after_utility`]): DROP (TABLE, SCHEMA ... CASCADE,
//! OWNED, TRIGGER, TYPE/DOMAIN/FUNCTION ... CASCADE) and ALTER TABLE (DISABLE/ENABLE TRIGGER, DETACH
//! PARTITION, DROP COLUMN, ALTER COLUMN TYPE, SET UNLOGGED, NO INHERIT) are checked against the held
//! tables: after the statement every held table must still exist with both guards enabled ALWAYS
//! and all its columns, and the holds tables with their immutability
//! trigger, or the statement fails and is rolled back. DROP EXTENSION warden and DROP SCHEMA
//! warden are refused while any hold is active.
//!
//! No hold anywhere: each guard reads one thread-local snapshot and returns.

use std::ffi::CStr;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{pg_sys, PgLogLevel};

use super::cache::{self, Hold, Snapshot};
use super::HoldError;
use crate::audit::trigger::{cstr, qualified_name, same_datum, trigger_data};
use crate::audit::{record_autonomous, NewEvent, Status};
use crate::types::ident::Ident;

pub const ROW_TRIGGER: &str = "warden_hold_row";
pub const STATEMENT_TRIGGER: &str = "warden_hold_statement";

/// Before `unprotect_table` removes warden's policies from one table (`registry::before_unprotect`):
/// a held table keeps its guards and its protection until the hold is released; any other loses
/// its guard triggers with the policies.
pub fn before_unprotect(relid: pg_sys::Oid, qualified: &str) -> Result<(), ErrorReport> {
    let snap = cache::snapshot().map_err(HoldError::Unreadable)?;
    if !snap.holds.is_empty() {
        let lineage = crate::catalog::lineage(relid).map_err(HoldError::Unreadable)?;
        if let Some(h) = snap.first_covering(&lineage) {
            refuse_held(
                "warden.unprotect_table()",
                qualified,
                h,
                "data in the table",
            );
        }
    }
    for trigger in [ROW_TRIGGER, STATEMENT_TRIGGER] {
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND tgname = $2)",
            &[relid.into(), trigger.into()],
        )
        .map_err(HoldError::from)?
            == Some(true);
        if exists {
            Spi::run(&format!("DROP TRIGGER {trigger} ON {qualified}")).map_err(HoldError::from)?;
        }
    }
    Ok(())
}

finfo_v1!(pg_finfo_warden_hold_guard_row);
finfo_v1!(pg_finfo_warden_hold_guard_statement);
finfo_v1!(pg_finfo_warden_hold_immutable);

/// Records a `hold_violation` event through the autonomous path (it survives the rollback of the
/// refused statement). The event's tenant is the hold's (whose evidence it is); the acting
/// context's tenant, if any, is in `changes`.
pub fn record_violation(operation: &str, table: &str, hold: Option<&Hold>, reason: Option<&str>) {
    let mut ev =
        NewEvent::in_context("hold_violation", Status::Denied).resource("table", Some(table));
    let context_tenant = ev.tenant.clone();
    if let Some(h) = hold {
        ev.tenant = Some(h.tenant.clone());
    }
    let json = crate::audit::record::json_str;
    let opt = |v: Option<String>| v.map_or_else(|| "null".to_owned(), |s| json(&s));
    ev.changes = Some(format!(
        "{{\"operation\":{},\"table\":{},\"hold\":{},\"case_ref\":{},\"context_tenant\":{},\"reason\":{}}}",
        json(operation),
        json(table),
        opt(hold.map(|h| h.id.clone())),
        opt(hold.map(|h| h.case_ref.clone())),
        opt(context_tenant.as_ref().map(Ident::to_string)),
        opt(reason.map(str::to_owned)),
    ));
    record_autonomous(&ev);
}

fn raise(e: HoldError) -> ! {
    crate::errors::report(&e).report(PgLogLevel::ERROR);
    unreachable!()
}

/// Refuses `operation` on `table` because `hold` covers it; recorded first.
pub fn refuse_held(operation: &str, table: &str, hold: &Hold, what: &'static str) -> ! {
    record_violation(operation, table, Some(hold), None);
    raise(HoldError::Held {
        operation: operation.to_owned(),
        table: table.to_owned(),
        case_ref: hold.case_ref.clone(),
        hold: hold.id.clone(),
        what,
    })
}

/// Refuses `operation` on `table` because whether a hold covers it cannot be determined.
pub fn refuse_undetermined(operation: &str, table: &str, hold: Option<&Hold>, reason: &str) -> ! {
    record_violation(operation, table, hold, Some(reason));
    raise(HoldError::Undetermined {
        operation: operation.to_owned(),
        table: table.to_owned(),
        reason: reason.to_owned(),
    })
}

/// The snapshot, or a refusal of `operation` on `table` when it cannot be read.
fn snapshot_or_refuse(operation: &str, table: impl FnOnce() -> String) -> std::rc::Rc<Snapshot> {
    match cache::snapshot() {
        Ok(s) => s,
        Err(e) => refuse_undetermined(
            operation,
            &table(),
            None,
            &format!("the legal holds could not be read: {e}"),
        ),
    }
}

/// The relation's lineage; `table` names it, computed only for a refusal (a guard that lets the
/// statement through looks up no name).
fn lineage_or_refuse(
    relid: pg_sys::Oid,
    operation: &str,
    table: impl FnOnce() -> String,
) -> std::rc::Rc<Vec<pg_sys::Oid>> {
    match crate::catalog::lineage(relid) {
        Ok(l) => l,
        Err(e) => refuse_undetermined(
            operation,
            &table(),
            None,
            &format!("the table's partition ancestors could not be read: {e}"),
        ),
    }
}

/// The first trigger argument: the tenant column.
unsafe fn tenant_column<'a>(td: *mut pg_sys::TriggerData) -> Option<&'a CStr> {
    // SAFETY: tgargs holds tgnargs C strings.
    unsafe {
        let t = (*td).tg_trigger;
        if (*t).tgnargs < 1 {
            return None;
        }
        Some(CStr::from_ptr(*(*t).tgargs))
    }
}

/// A tenant or subject column's value in `tuple` as an identifier (its text form: a uuid in
/// lower case, a number in decimal, text as it is), or None when NULL, absent or no identifier.
unsafe fn ident_at(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc, fnum: i32) -> Option<Ident> {
    if fnum <= 0 {
        return None;
    }
    // SAFETY: fnum is a valid attribute number of desc; SPI_getvalue returns a palloc'd C string
    // from the type's output function, or NULL for a NULL value.
    unsafe {
        let p = pg_sys::SPI_getvalue(tuple, desc, fnum);
        if p.is_null() {
            return None;
        }
        let id = CStr::from_ptr(p)
            .to_str()
            .ok()
            .and_then(|s| Ident::parse(s).ok());
        pg_sys::pfree(p.cast());
        id
    }
}

unsafe fn fnumber(desc: pg_sys::TupleDesc, name: &str) -> i32 {
    let c = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: a valid descriptor and C string.
    unsafe { pg_sys::SPI_fnumber(desc, c.as_ptr()) }
}

/// Whether an UPDATE changes one of `columns` (by name) between `old` and `new`.
unsafe fn changes_any(
    old: pg_sys::HeapTuple,
    new: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    columns: &[&str],
) -> bool {
    // SAFETY: attribute numbers from SPI_fnumber on this descriptor.
    unsafe {
        columns.iter().any(|c| {
            let f = fnumber(desc, c);
            if f <= 0 {
                return false;
            }
            let att = (*desc).attrs.as_ptr().add((f - 1) as usize);
            let (mut on, mut nn) = (false, false);
            let a = pg_sys::SPI_getbinval(old, desc, f, &mut on);
            let b = pg_sys::SPI_getbinval(new, desc, f, &mut nn);
            match (on, nn) {
                (true, true) => false,
                (false, false) => !same_datum(a, b, (*att).attbyval, (*att).attlen),
                _ => true,
            }
        })
    }
}

thread_local! {
    /// The local transaction id of the transaction that placed a hold on a Citus coordinator.
    static PLACED_IN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// `place_hold` on a Citus node: notes the transaction (see [`executor_start`]).
pub fn placed_with_citus() {
    PLACED_IN.set(crate::context::local_xid());
}

/// ExecutorStart on a Citus coordinator: a hold placed in this transaction reaches the other
/// connections Citus opens to the workers only when it commits (a worker reads its own copy of
/// the holds, in its own transaction), so a statement later in the same transaction that changes
/// or deletes rows of a distributed table is refused (0A000, recorded) rather than run on a
/// connection that cannot see the hold.
///
/// # Safety
/// `qd` is the QueryDesc the executor is starting.
pub unsafe fn executor_start(qd: *mut pg_sys::QueryDesc) {
    if PLACED_IN.get() != crate::context::local_xid() || qd.is_null() {
        return;
    }
    // SAFETY: the QueryDesc and its plan.
    let (operation, relids) = unsafe {
        let op = (*qd).operation;
        let stmt = (*qd).plannedstmt;
        let writes = matches!(
            op,
            pg_sys::CmdType::CMD_DELETE | pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_MERGE
        ) || (!stmt.is_null() && (*stmt).hasModifyingCTE);
        if !writes || stmt.is_null() {
            return;
        }
        let mut relids = Vec::new();
        let rt = (*stmt).rtable;
        if !rt.is_null() {
            for i in 0..(*rt).length as usize {
                let rte = (*(*rt).elements.add(i))
                    .ptr_value
                    .cast::<pg_sys::RangeTblEntry>();
                if !rte.is_null() && (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION {
                    relids.push((*rte).relid);
                }
            }
        }
        let name = match op {
            pg_sys::CmdType::CMD_DELETE => "DELETE",
            pg_sys::CmdType::CMD_UPDATE => "UPDATE",
            pg_sys::CmdType::CMD_MERGE => "MERGE",
            _ => "a writable CTE",
        };
        (name, relids)
    };
    match crate::catalog::citus_distributed(Some(&relids)) {
        Ok(d) if d.is_empty() => {}
        Ok(d) => {
            let table = d.join(", ");
            let reason =
                "a legal hold was placed in this transaction: the workers see it once it commits";
            record_violation(operation, &table, None, Some(reason));
            raise(HoldError::Unsupported(format!(
                "{operation} on {table} is refused: {reason}"
            )));
        }
        Err(e) => refuse_undetermined(
            operation,
            "(distributed tables)",
            None,
            &format!(
                "whether the statement changes a Citus distributed table could not be read: {e}"
            ),
        ),
    }
}

/// On a Citus shard (a distributed table's rows on a worker, or on the coordinator when it holds
/// shards), the row guard decides only when the holds are replicated to this node
/// (`warden.citus_setup()`): otherwise it cannot see the coordinator's holds and refuses (fail
/// closed). Citus puts no statement trigger on shards, so the row guard also applies the
/// statement guard's rule there: no DELETE without a verified context of a table a hold may cover.
/// Returns whether `rel` is a shard.
unsafe fn check_shard(operation: &str, rel: pg_sys::Relation, snap: &Snapshot) -> bool {
    if !crate::gucs::citus_loaded() {
        return false;
    }
    // SAFETY: the trigger's open relation.
    let relid = unsafe { (*rel).rd_id };
    let shard = match crate::catalog::citus::shard_of(relid) {
        Ok(s) => s.is_some(),
        Err(e) => refuse_undetermined(
            operation,
            // SAFETY: as above.
            &unsafe { qualified_name(rel) },
            None,
            &format!("whether the table is a Citus shard could not be read: {e}"),
        ),
    };
    if !shard {
        return false;
    }
    if !snap.replicated {
        // SAFETY: as above.
        let table = unsafe { qualified_name(rel) };
        raise(HoldError::Unsupported(format!(
            "{operation} on {table} is refused: a legal-hold guard fired on a Citus shard, and the holds are not replicated to this node (warden.citus_setup() was not run)"
        )));
    }
    if operation == "DELETE" && !snap.holds.is_empty() && crate::context::current().is_none() {
        // SAFETY: as above.
        let lineage = lineage_or_refuse(relid, operation, || unsafe { qualified_name(rel) });
        if let Some(h) = snap.first_covering(&lineage) {
            refuse_undetermined(
                operation,
                // SAFETY: as above.
                &unsafe { qualified_name(rel) },
                Some(h),
                "a legal hold is active on the table and the statement has no verified warden context",
            );
        }
    }
    true
}

/// BEFORE DELETE OR UPDATE FOR EACH ROW on each leaf table of a protected tree.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_hold_guard_row(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._hold_guard_row()");
        let op = (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        let update = op == pg_sys::TRIGGER_EVENT_UPDATE;
        let old = (*td).tg_trigtuple;
        let keep = pg_sys::Datum::from(if update { (*td).tg_newtuple } else { old });
        let operation = if update { "UPDATE" } else { "DELETE" };
        let rel = (*td).tg_relation;
        let snap = snapshot_or_refuse(operation, || qualified_name(rel));
        check_shard(operation, rel, &snap);
        if snap.holds.is_empty() {
            return keep;
        }
        let desc = (*rel).rd_att;
        let Some(tcol) = tenant_column(td) else {
            refuse_undetermined(
                operation,
                &qualified_name(rel),
                None,
                "the guard has no tenant column argument",
            )
        };
        let tfn = pg_sys::SPI_fnumber(desc, tcol.as_ptr());
        if tfn <= 0 {
            refuse_undetermined(
                operation,
                &qualified_name(rel),
                None,
                &format!(
                    "the tenant column \"{}\" does not exist",
                    tcol.to_string_lossy()
                ),
            );
        }
        let Some(tenant) = ident_at(old, desc, tfn) else {
            return keep;
        };
        if snap.tenant_holds(&tenant).next().is_none() {
            return keep;
        }
        let lineage = lineage_or_refuse((*rel).rd_id, operation, || qualified_name(rel));
        let subject_col = snap.subject_column(&lineage);
        let subject = subject_col.and_then(|c| ident_at(old, desc, fnumber(desc, c)));
        let mut erases: Option<bool> = None;
        let mut covering: Vec<&Hold> = Vec::new();
        for h in snap.tenant_holds(&tenant) {
            if !snap.may_cover(h, &lineage)
                || h.subject
                    .as_ref()
                    .is_some_and(|s| Some(s) != subject.as_ref())
            {
                continue;
            }
            if update {
                let e = *erases.get_or_insert_with(|| {
                    let tname = tcol.to_string_lossy();
                    let mut cols: Vec<&str> = vec![&tname];
                    if let Some(s) = subject_col {
                        cols.push(s);
                    }
                    if let Some(p) = snap.registry.personal_columns(&lineage) {
                        cols.extend(p.iter().map(String::as_str));
                    }
                    changes_any(old, (*td).tg_newtuple, desc, &cols)
                });
                if !e {
                    // other columns may change: the prior version is kept (below)
                    covering.push(h);
                    continue;
                }
                refuse_held(
                    operation,
                    &qualified_name(rel),
                    h,
                    "the row's tenant, subject or personal data",
                );
            }
            refuse_held(operation, &qualified_name(rel), h, "the row");
        }
        if !covering.is_empty() {
            let personal = snap
                .registry
                .personal_columns(&lineage)
                .map(<[String]>::to_vec)
                .unwrap_or_default();
            super::preserve::keep(rel, old, &tenant, subject.as_ref(), &personal, &covering);
        }
        keep
    }
}

/// BEFORE DELETE OR TRUNCATE FOR EACH STATEMENT on every table of a protected tree.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_hold_guard_statement(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._hold_guard_statement()");
        let op = (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK;
        let truncate = op == pg_sys::TRIGGER_EVENT_TRUNCATE;
        let operation = if truncate { "TRUNCATE" } else { "DELETE" };
        let rel = (*td).tg_relation;
        let none = pg_sys::Datum::from(0usize);
        let snap = snapshot_or_refuse(operation, || qualified_name(rel));
        if snap.holds.is_empty() {
            return none;
        }
        let lineage = lineage_or_refuse((*rel).rd_id, operation, || qualified_name(rel));
        let Some(h) = snap.first_covering(&lineage) else {
            return none;
        };
        if truncate {
            refuse_held(operation, &qualified_name(rel), h, "data in the table");
        }
        if crate::context::current().is_none() {
            refuse_undetermined(
                operation,
                &qualified_name(rel),
                Some(h),
                "a legal hold is active on the table and the statement has no verified warden context",
            );
        }
        none
    }
}

/// BEFORE UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT on warden.holds and
/// warden.hold_releases: refused for everyone.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_hold_immutable(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._hold_immutable()");
        let rel = (*td).tg_relation;
        let verb = match (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
            pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
            pg_sys::TRIGGER_EVENT_TRUNCATE => "TRUNCATE",
            _ => "INSERT",
        };
        let table = format!("warden.{}", cstr((*(*rel).rd_rel).relname.data.as_ptr()));
        raise(HoldError::Immutable { verb, table })
    }
}

/// A table a hold may cover, as the utility hook saw it before a statement.
struct HeldTable {
    relid: pg_sys::Oid,
    name: String,
    /// Its guard triggers enabled ALWAYS before the statement: a statement may not lower it (a
    /// restore, which creates a trigger and enables it ALWAYS in two statements, never does).
    guards: i64,
    /// Its columns before the statement: none may go (DROP COLUMN, or a DROP TYPE, DOMAIN or
    /// FUNCTION ... CASCADE that takes a column with it).
    columns: i64,
    hold: Hold,
}

/// What [`after_utility`] checks once the statement has run.
pub struct PostCheck {
    operation: String,
    held: Vec<HeldTable>,
    /// warden.holds and warden.hold_releases.
    holds_tables: Vec<pg_sys::Oid>,
    any_hold: Hold,
}

unsafe fn list_strings(list: *mut pg_sys::List) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: a List of String nodes (or of Lists of them, for qualified names).
    unsafe {
        if list.is_null() {
            return out;
        }
        for i in 0..(*list).length as usize {
            let n = (*(*list).elements.add(i)).ptr_value.cast::<pg_sys::Node>();
            if n.is_null() {
                continue;
            }
            if (*n).type_ == pg_sys::NodeTag::T_String {
                out.push(cstr((*n.cast::<pg_sys::String>()).sval).into_owned());
            }
        }
    }
    out
}

unsafe fn rangevar_oid(rv: *mut pg_sys::RangeVar) -> pg_sys::Oid {
    if rv.is_null() {
        return pg_sys::InvalidOid;
    }
    // SAFETY: a RangeVar from a parse tree; missing_ok, no lock.
    unsafe {
        pg_sys::RangeVarGetRelidExtended(
            rv,
            pg_sys::NoLock as i32,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        )
    }
}

/// The tables (with the guard) that an active hold may cover.
fn held_tables(snap: &Snapshot, operation: &str) -> Vec<HeldTable> {
    let rows = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(
            "SELECT t.tgrelid, pg_catalog.format('%I.%I', n.nspname, k.relname),
                    (SELECT count(*) FROM pg_catalog.pg_trigger g
                      WHERE g.tgrelid = t.tgrelid AND g.tgenabled = 'A'
                        AND g.tgname IN ('warden_hold_row', 'warden_hold_statement')),
                    (SELECT count(*) FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = t.tgrelid AND a.attnum > 0 AND NOT a.attisdropped)
               FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class k ON k.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace
              WHERE t.tgname = 'warden_hold_statement' ORDER BY 2",
            None,
            &[],
        )? {
            out.push((
                row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<i64>(3)?.unwrap_or(0),
                row.get::<i64>(4)?.unwrap_or(0),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    });
    let rows = match rows {
        Ok(r) => r,
        Err(e) => refuse_undetermined(operation, "(catalog)", None, &e.to_string()),
    };
    let mut out = Vec::new();
    for (relid, name, guards, columns) in rows {
        let lineage = lineage_or_refuse(relid, operation, || name.clone());
        if let Some(h) = snap.first_covering(&lineage) {
            out.push(HeldTable {
                relid,
                name,
                guards,
                columns,
                hold: h.clone(),
            });
        }
    }
    out
}

/// Before a utility statement that can destroy or unguard held data: refuses what it can see
/// directly (DROP EXTENSION/SCHEMA warden, DETACH PARTITION, DROP COLUMN, ALTER COLUMN TYPE of a
/// held table) and returns what to check afterwards. None when there is nothing to check.
///
/// # Safety
/// `stmt` is the utility statement's parse tree.
pub unsafe fn before_utility(stmt: *mut pg_sys::Node) -> Option<PostCheck> {
    // SAFETY: reads parse nodes and backend globals.
    unsafe {
        if stmt.is_null()
            || pg_sys::IsBinaryUpgrade
            || pg_sys::creating_extension
            || !pg_sys::IsTransactionState()
        {
            return None;
        }
        let tag = (*stmt).type_;
        if !matches!(
            tag,
            pg_sys::NodeTag::T_DropStmt
                | pg_sys::NodeTag::T_DropOwnedStmt
                | pg_sys::NodeTag::T_AlterTableStmt
        ) {
            return None;
        }
        let operation = cstr(pg_sys::CreateCommandName(stmt)).into_owned();
        let snap = snapshot_or_refuse(&operation, || "(any)".into());
        let first = snap.holds.first()?.clone();
        if tag == pg_sys::NodeTag::T_DropStmt {
            let d = stmt.cast::<pg_sys::DropStmt>();
            let kind = (*d).removeType;
            if (kind == pg_sys::ObjectType::OBJECT_EXTENSION
                || kind == pg_sys::ObjectType::OBJECT_SCHEMA)
                && list_strings((*d).objects).iter().any(|n| n == "warden")
            {
                let what = if kind == pg_sys::ObjectType::OBJECT_EXTENSION {
                    "extension warden"
                } else {
                    "schema warden"
                };
                refuse_held(
                    &operation,
                    what,
                    &first,
                    "data of a tenant, and the hold itself",
                );
            }
        }
        let held = held_tables(&snap, &operation);
        if tag == pg_sys::NodeTag::T_AlterTableStmt {
            let a = stmt.cast::<pg_sys::AlterTableStmt>();
            let target = rangevar_oid((*a).relation);
            let cmds = (*a).cmds;
            let n = if cmds.is_null() {
                0
            } else {
                (*cmds).length as usize
            };
            for i in 0..n {
                let cmd = (*(*cmds).elements.add(i))
                    .ptr_value
                    .cast::<pg_sys::AlterTableCmd>();
                if cmd.is_null() {
                    continue;
                }
                use pg_sys::AlterTableType as T;
                let (relid, what) = match (*cmd).subtype {
                    T::AT_DetachPartition | T::AT_DetachPartitionFinalize => {
                        let pc = (*cmd).def.cast::<pg_sys::PartitionCmd>();
                        let part = if pc.is_null() {
                            pg_sys::InvalidOid
                        } else {
                            rangevar_oid((*pc).name)
                        };
                        (part, "DETACH PARTITION")
                    }
                    T::AT_DropColumn => (target, "DROP COLUMN"),
                    T::AT_AlterColumnType => (target, "ALTER COLUMN TYPE"),
                    // an unlogged table is emptied by the next crash and is absent from standbys
                    // and WAL-based backups
                    T::AT_SetUnLogged => (target, "SET UNLOGGED"),
                    // a child leaves its held parent: its rows would no longer be the parent's
                    T::AT_DropInherit => (target, "NO INHERIT"),
                    _ => continue,
                };
                if let Some(h) = held.iter().find(|h| h.relid == relid) {
                    refuse_held(
                        &format!("ALTER TABLE ... {what}"),
                        &h.name,
                        &h.hold,
                        "data in the table",
                    );
                }
            }
        }
        let holds_tables = [cache::holds_relid(), {
            let nsp = pg_sys::get_namespace_oid(c"warden".as_ptr(), true);
            pg_sys::get_relname_relid(c"hold_releases".as_ptr(), nsp)
        }]
        .into_iter()
        .filter(|o| *o != pg_sys::InvalidOid)
        .collect();
        Some(PostCheck {
            operation,
            held,
            holds_tables,
            any_hold: first,
        })
    }
}

/// After the statement: every held table still exists with no fewer guards enabled ALWAYS than
/// before, and the holds tables with their immutability trigger. Otherwise the statement is refused (and rolled
/// back with the transaction).
pub fn after_utility(pc: PostCheck) {
    // SAFETY: makes the statement's own catalog changes visible to the check below.
    unsafe { pg_sys::CommandCounterIncrement() };
    let mut rels: Vec<pg_sys::Oid> = pc.held.iter().map(|h| h.relid).collect();
    rels.extend(pc.holds_tables.iter().copied());
    let state = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(
            "SELECT r.relid,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_class k WHERE k.oid = r.relid),
                    (SELECT count(*) FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid = r.relid AND t.tgenabled = 'A'
                        AND t.tgname IN ('warden_hold_row', 'warden_hold_statement', 'warden_immutable')),
                    (SELECT count(*) FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = r.relid AND a.attnum > 0 AND NOT a.attisdropped)
               FROM pg_catalog.unnest($1::oid[]) r(relid)",
            None,
            &[rels.clone().into()],
        )? {
            out.push((
                row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                row.get::<bool>(2)? == Some(true),
                row.get::<i64>(3)?.unwrap_or(0),
                row.get::<i64>(4)?.unwrap_or(0),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    });
    let state = match state {
        Ok(s) => s,
        Err(e) => refuse_undetermined(&pc.operation, "(catalog)", None, &e.to_string()),
    };
    for (relid, exists, guards, columns) in state {
        if let Some(h) = pc.held.iter().find(|h| h.relid == relid) {
            if !exists {
                refuse_held(&pc.operation, &h.name, &h.hold, "data in the table");
            }
            if columns < h.columns {
                refuse_held(
                    &pc.operation,
                    &h.name,
                    &h.hold,
                    "data in the table (a column would go with this statement)",
                );
            }
            if guards < h.guards {
                refuse_held(
                    &pc.operation,
                    &h.name,
                    &h.hold,
                    "the table, whose guard triggers must stay enabled ALWAYS",
                );
            }
        } else if !exists || guards < 1 {
            refuse_held(
                &pc.operation,
                "warden.holds",
                &pc.any_hold,
                "the holds themselves",
            );
        }
    }
}
