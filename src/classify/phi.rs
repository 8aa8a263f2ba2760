//! The PHI read log: every statement that reads a table classified PHI is an audit event (actor,
//! tenant, table, rows returned, statement id), one per statement and table, never per row.
//!
//! `ExecutorStart` finds the PHI tables among the statement's relations (read with SELECT
//! privilege: queries, and UPDATE/DELETE that read rows); `ExecutorEnd` queues the event with the
//! number of rows the statement returned. A statement that fails after it started is recorded at
//! the end of its transaction with status `error` and the rows unknown. The events go to the
//! sealing worker's queue without a wait (a wait per statement would cost more than the read).
//!
//! Fail closed: a PHI read that cannot be recorded (no shared memory, the queue full) is refused
//! before it produces a row when that is known at the start; when the queue fills during the
//! statement, the statement fails at its end.
//!
//! The classification rules are cached per backend and reloaded when `warden.classify` changes
//! them (a relcache invalidation of `warden.classification_rules`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::Classification;
use crate::audit::{NewEvent, Status};

/// The PHI rules: tables and schemas classified PHI (other levels log nothing).
#[derive(Default)]
struct Rules {
    tables: HashMap<pg_sys::Oid, Classification>,
    schemas: HashMap<pg_sys::Oid, Classification>,
}

impl Rules {
    fn any_phi(&self) -> bool {
        self.tables
            .values()
            .chain(self.schemas.values())
            .any(|c| c.logs_reads())
    }
}

/// A PHI read in progress.
struct Pending {
    query: *mut pg_sys::QueryDesc,
    tenant: Option<crate::types::ident::Ident>,
    actor: Option<crate::types::ident::Ident>,
    lxid: pg_sys::LocalTransactionId,
    statement: u64,
    tables: Vec<String>,
    /// Rows returned so far (a cursor's statement runs once per FETCH).
    rows: u64,
}

thread_local! {
    static RULES: RefCell<Option<(u64, Rc<Rules>)>> = const { RefCell::new(None) };
    static LOADING: Cell<bool> = const { Cell::new(false) };
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
    static STATEMENTS: Cell<(pg_sys::LocalTransactionId, u64)> = const { Cell::new((0, 0)) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn load() -> Result<Rules, String> {
    let mut r = Rules::default();
    // with Citus, each node reads its own copy (`warden.citus_setup()`)
    let from = crate::catalog::citus::read_from(c"classification_rules")?;
    let query = format!(
        "SELECT coalesce(tbl::oid, 0::oid), coalesce(schema_name::oid, 0::oid), level FROM {from} r"
    );
    Spi::connect(|c| {
        for row in c.select(&query, None, &[])? {
            let t = row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid);
            let s = row.get::<pg_sys::Oid>(2)?.unwrap_or(pg_sys::InvalidOid);
            let Some(level) = row.get::<String>(3)?.and_then(|l| l.parse().ok()) else {
                continue;
            };
            if t != pg_sys::InvalidOid {
                r.tables.insert(t, level);
            } else if s != pg_sys::InvalidOid {
                r.schemas.insert(s, level);
            }
        }
        Ok::<_, pgrx::spi::Error>(())
    })
    .map_err(|e| e.to_string())?;
    Ok(r)
}

/// The rules, reloaded after a change; None in a database without warden's classifications.
fn rules() -> Result<Option<Rc<Rules>>, String> {
    if crate::catalog::warden_oid(c"classification_rules") == pg_sys::InvalidOid {
        return Ok(None);
    }
    crate::catalog::watch_once(c"classification_rules");
    let generation = crate::catalog::generation();
    if let Some(r) = RULES.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, r)| r.clone())
    }) {
        return Ok(Some(r));
    }
    LOADING.set(true);
    let loaded = PgTryBuilder::new(load)
        .catch_others(|e| Err(crate::errors::caught_message(e)))
        .finally(|| LOADING.set(false))
        .execute();
    let r = Rc::new(loaded?);
    if crate::catalog::generation() == generation {
        RULES.set(Some((generation, r.clone())));
    }
    Ok(Some(r))
}

/// Whether relation `oid` is PHI: its own rule, its partition root's, or its schema's.
fn is_phi(rules: &Rules, oid: pg_sys::Oid) -> Result<bool, String> {
    let lineage = crate::catalog::lineage(oid)?;
    let own = lineage.iter().find_map(|r| rules.tables.get(r).copied());
    let schema = if own.is_none() && !rules.schemas.is_empty() {
        // SAFETY: a catalog lookup.
        let nsp = unsafe { pg_sys::get_rel_namespace(oid) };
        rules.schemas.get(&nsp).copied()
    } else {
        None
    };
    Ok(super::effective(own, schema).is_some_and(|l| l.logs_reads()))
}

/// The PHI tables a statement reads.
unsafe fn phi_tables(
    qd: *mut pg_sys::QueryDesc,
    rules: &Rules,
) -> Result<Vec<(pg_sys::Oid, String)>, String> {
    let mut out = Vec::new();
    // SAFETY: a QueryDesc PostgreSQL passed, with its planned statement's range table.
    unsafe {
        let stmt = (*qd).plannedstmt;
        if stmt.is_null() || (*stmt).rtable.is_null() {
            return Ok(out);
        }
        let rtable = (*stmt).rtable;
        for i in 0..usize::try_from((*rtable).length).unwrap_or(0) {
            let rte = (*(*rtable).elements.add(i))
                .ptr_value
                .cast::<pg_sys::RangeTblEntry>();
            if rte.is_null()
                || (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION
                || ((*rte).requiredPerms & pg_sys::ACL_SELECT) == 0
                || !matches!((*rte).relkind as u8, b'r' | b'p')
                || out.iter().any(|(o, _)| *o == (*rte).relid)
            {
                continue;
            }
            if is_phi(rules, (*rte).relid)? {
                out.push(((*rte).relid, qualified((*rte).relid)));
            }
        }
    }
    Ok(out)
}

fn qualified(oid: pg_sys::Oid) -> String {
    // a Citus shard's reads are reads of its Citus table
    if let Ok(Some(parent)) = crate::catalog::citus::shard_of(oid) {
        return qualified(parent);
    }
    // SAFETY: catalog lookups; null when the relation is gone.
    unsafe {
        let rel = pg_sys::get_rel_name(oid);
        let nsp = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(oid));
        if rel.is_null() || nsp.is_null() {
            return oid.to_u32().to_string();
        }
        format!(
            "{}.{}",
            std::ffi::CStr::from_ptr(nsp).to_string_lossy(),
            std::ffi::CStr::from_ptr(rel).to_string_lossy()
        )
    }
}

fn refuse(msg: String) -> ! {
    let e = super::api::ClassifyError::WouldBreak {
        what: "reading PHI".into(),
        gap: msg,
    };
    crate::errors::report(&e).report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Before ExecutorStart: notes a PHI read, or refuses it when it could not be recorded.
///
/// # Safety
/// `qd` and `eflags` are what PostgreSQL passed to its ExecutorStart hook.
pub unsafe fn executor_start(qd: *mut pg_sys::QueryDesc, eflags: i32) {
    // SAFETY: reads flags and backend state.
    unsafe {
        let explain_only = eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0;
        // a parallel worker runs part of a plan its leader has already recorded
        let parallel_worker = pg_sys::ParallelWorkerNumber >= 0;
        if !explain_only
            && !parallel_worker
            && !LOADING.get()
            && !crate::catalog::citus::replicating()
            && pg_sys::IsTransactionState()
            && !qd.is_null()
        {
            track(qd);
        }
    }
}

/// Whether the statement reads a table outside PostgreSQL's (and Citus's) catalog schema: one that
/// could be classified. A statement on catalogs only needs no rules (Citus writes its metadata on a
/// node before that node has its copy of the rules).
unsafe fn reads_user_tables(qd: *mut pg_sys::QueryDesc) -> bool {
    // SAFETY: a QueryDesc PostgreSQL passed, with its planned statement's range table.
    unsafe {
        let stmt = (*qd).plannedstmt;
        if stmt.is_null() || (*stmt).rtable.is_null() {
            return false;
        }
        let rtable = (*stmt).rtable;
        (0..usize::try_from((*rtable).length).unwrap_or(0)).any(|i| {
            let rte = (*(*rtable).elements.add(i))
                .ptr_value
                .cast::<pg_sys::RangeTblEntry>();
            !rte.is_null()
                && (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION
                && pg_sys::get_rel_namespace((*rte).relid)
                    != pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE)
        })
    }
}

/// Notes a PHI read of `qd`, or refuses it when it could not be recorded.
unsafe fn track(qd: *mut pg_sys::QueryDesc) {
    // SAFETY: the QueryDesc PostgreSQL passed.
    if !unsafe { reads_user_tables(qd) } {
        return;
    }
    let rules = match rules() {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => refuse(format!("the classifications could not be read ({e})")),
    };
    if !rules.any_phi() {
        return;
    }
    // SAFETY: the QueryDesc PostgreSQL passed.
    let tables = match unsafe { phi_tables(qd, &rules) } {
        Ok(t) => t,
        Err(e) => refuse(format!(
            "whether the statement reads PHI could not be determined ({e})"
        )),
    };
    if tables.is_empty() {
        return;
    }
    begin_read(qd, tables.into_iter().map(|(_, n)| n).collect());
}

/// Notes a PHI read of `tables` by the statement `qd` (null for a COPY, which has none), or
/// refuses it when it could not be recorded; its statement number.
fn begin_read(qd: *mut pg_sys::QueryDesc, tables: Vec<String>) -> u64 {
    if !crate::catalog::preloaded() {
        refuse(format!(
            "{} is classified PHI and its reads cannot be recorded: warden is not in shared_preload_libraries",
            tables[0]
        ));
    }
    // SAFETY: reads whether this server is a standby.
    if unsafe { pg_sys::RecoveryInProgress() } {
        refuse(format!(
            "{} is classified PHI and its reads cannot be recorded on a hot standby: read it on the primary",
            tables[0]
        ));
    }
    ensure_callback();
    let claims = crate::context::current();
    let lxid = crate::context::local_xid();
    let (l, n) = STATEMENTS.get();
    let statement = if l == lxid { n + 1 } else { 1 };
    STATEMENTS.set((lxid, statement));
    PENDING.with_borrow_mut(|p| {
        p.retain(|x| x.lxid == lxid);
        // an entry of this address is a statement that failed before its end (its QueryDesc is
        // gone): it stays, detached, and is recorded as failed at the end of the transaction (a
        // COPY's entry has no QueryDesc from the start)
        if !qd.is_null() {
            for x in p.iter_mut().filter(|x| x.query == qd) {
                x.query = std::ptr::null_mut();
            }
        }
        p.push(Pending {
            query: qd,
            tenant: claims.as_ref().map(|c| c.tenant.clone()),
            actor: claims.as_ref().map(|c| c.actor.clone()),
            lxid,
            statement,
            tables,
            rows: 0,
        })
    });
    statement
}

/// Before a utility statement: `COPY <table> TO` (a file, a program or STDOUT) of a PHI table that
/// PostgreSQL runs without the executor, because the role bypasses row level security (a
/// superuser, `pg_dump`), is tracked like a query: the statement number, for [`copy_after`]. With
/// row level security in force COPY runs a query through the executor, which records it, and so
/// does `COPY (SELECT ...) TO`. Refused when it could not be recorded, as a query is.
///
/// # Safety
/// `stmt` is the utility statement's parse tree.
pub unsafe fn copy_before(stmt: *mut pg_sys::Node) -> Option<u64> {
    // SAFETY: parse nodes and backend state; catalog lookups with missing_ok.
    unsafe {
        if stmt.is_null()
            || (*stmt).type_ != pg_sys::NodeTag::T_CopyStmt
            || !pg_sys::IsTransactionState()
            || pg_sys::ParallelWorkerNumber >= 0
            || LOADING.get()
        {
            return None;
        }
        let c = stmt.cast::<pg_sys::CopyStmt>();
        if (*c).is_from || (*c).relation.is_null() || !(*c).query.is_null() {
            return None;
        }
        let relid = pg_sys::RangeVarGetRelidExtended(
            (*c).relation,
            pg_sys::NoLock as i32,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        if relid == pg_sys::InvalidOid
            || pg_sys::check_enable_rls(relid, pg_sys::InvalidOid, true)
                == pg_sys::CheckEnableRlsResult::RLS_ENABLED as i32
        {
            return None;
        }
        let rules = match rules() {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => refuse(format!("the classifications could not be read ({e})")),
        };
        if !rules.any_phi() {
            return None;
        }
        match is_phi(&rules, relid) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => refuse(format!(
                "whether COPY reads PHI could not be determined ({e})"
            )),
        }
        Some(begin_read(std::ptr::null_mut(), vec![qualified(relid)]))
    }
}

/// After a tracked COPY succeeded: its event with the rows copied, or a refusal when it cannot be
/// queued.
pub fn copy_after(statement: u64, rows: u64) {
    let lxid = crate::context::local_xid();
    let pending = PENDING.with_borrow_mut(|p| {
        p.iter()
            .position(|x| x.query.is_null() && x.lxid == lxid && x.statement == statement)
            .map(|i| p.remove(i))
    });
    if let Some(p) = pending {
        if !record(&p, Some(rows), 0, Status::Success) {
            refuse(format!(
                "the COPY of {} could not be recorded: the audit queue is full (see warden.audit_queue_status())",
                p.tables.join(", ")
            ));
        }
    }
}

/// After ExecutorRun: the rows this run returned, for a tracked statement.
///
/// # Safety
/// `qd` is the QueryDesc PostgreSQL has just run.
pub unsafe fn executor_run(qd: *mut pg_sys::QueryDesc) {
    if PENDING.with_borrow(|p| p.is_empty()) {
        return;
    }
    // SAFETY: the counter of the statement that has just run.
    unsafe {
        if !qd.is_null() && !(*qd).estate.is_null() {
            let n = (*(*qd).estate).es_processed;
            PENDING.with_borrow_mut(|p| {
                if let Some(x) = p.iter_mut().find(|x| x.query == qd) {
                    x.rows += n;
                }
            });
        }
    }
}

/// After ExecutorEnd: the tracked statement's event, or a refusal when it cannot be queued.
pub fn executor_end(qd: *mut pg_sys::QueryDesc, query_id: u64) {
    if PENDING.with_borrow(|p| p.is_empty()) {
        return;
    }
    let pending =
        PENDING.with_borrow_mut(|p| p.iter().position(|x| x.query == qd).map(|i| p.remove(i)));
    if let Some(p) = pending {
        if !record(&p, Some(p.rows), query_id, Status::Success) {
            refuse(format!(
                "the read of {} could not be recorded: the audit queue is full (see warden.audit_queue_status())",
                p.tables.join(", ")
            ));
        }
    }
}

fn event(p: &Pending, table: &str, rows: Option<u64>, query_id: u64, status: Status) -> NewEvent {
    // SAFETY: reads this backend's pid.
    let pid = unsafe { pg_sys::MyProcPid };
    let mut changes = serde_json::json!({
        "rows": rows,
        "statement_id": format!("{pid}/{}/{}", p.lxid, p.statement),
    });
    if query_id != 0 {
        changes["query_id"] = (query_id as i64).into();
    }
    if status != Status::Success {
        changes["failed"] = "the statement or its transaction failed after the read started".into();
    }
    NewEvent {
        tenant: p.tenant.clone(),
        actor: p.actor.clone(),
        action: "phi_read".into(),
        resource_type: Some("table".into()),
        resource_id: Some(table.to_owned()),
        changes: Some(changes.to_string()),
        status,
        context_extra: None,
    }
}

fn record(p: &Pending, rows: Option<u64>, query_id: u64, status: Status) -> bool {
    let mut ok = true;
    for t in &p.tables {
        ok &= crate::audit::record_queued(&event(p, t, rows, query_id, status));
    }
    ok
}

fn ensure_callback() {
    if !CALLBACK.replace(true) {
        // SAFETY: registers a callback for the rest of this backend's life.
        unsafe { pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut()) };
    }
}

/// At the end of a transaction, the PHI reads whose statements failed after they started are
/// recorded with status error (their rows may have reached the client).
#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    if !matches!(
        event,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PRE_COMMIT
    ) {
        return;
    }
    let left: Vec<Pending> = PENDING.with_borrow_mut(std::mem::take);
    if event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT {
        // no catalog or relation access in an aborted transaction: the queue only
        for p in &left {
            record_aborted(p);
        }
    } else {
        for p in &left {
            record(p, None, 0, Status::Error);
        }
    }
}

/// [`record`] for an aborted transaction, which may not read catalogs: the event goes to the
/// queue with an empty context document.
fn record_aborted(p: &Pending) {
    for t in &p.tables {
        let ev = event(p, t, None, 0, Status::Error);
        let rec = crate::audit::worker::encode(&ev, crate::audit::record::now(), "{}");
        crate::audit::worker::push(&rec);
    }
}
