//! Citus: warden's own tables replicated to every node, and the shards of users' tables.
//!
//! The guards and functions on a worker need what the coordinator knows (the legal holds, their
//! releases, the personal-data registry, the keyring, secrets, classification rules).
//! `warden.citus_setup()` makes the tables that the capabilities
//! register here ([`replicate`], from `_PG_init`) Citus reference tables: every write on the
//! coordinator reaches every node in the same (two-phase) transaction, and each node keeps a full
//! copy, its *placement*. warden reads the placement directly ([`source`]): Citus refuses
//! distributed queries from inside a shard's query, and a placement is an ordinary table on its
//! node. Each replicated table has a trigger (`warden_changed`) that Citus copies to every
//! placement, so a write arriving from the coordinator invalidates the node's cached copies as a
//! local write does.
//!
//! A shard (`docs_102008` on a worker) is an ordinary table to PostgreSQL: [`shard_of`] names the
//! Citus table it belongs to, which [`super::lineage`] appends, so a hold or a registration of
//! `docs` covers its shards on every node.
//!
//! Floor 1, ground.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    /// The tables the capabilities registered for replication (`warden.<name>`).
    static REPLICATED: RefCell<Vec<&'static CStr>> = const { RefCell::new(Vec::new()) };
    /// relid -> the Citus table it is a shard of (None: not a shard); cleared with the lineage.
    static SHARDS: RefCell<HashMap<pg_sys::Oid, Option<pg_sys::Oid>>> = RefCell::new(HashMap::new());
    static SETUP: Cell<bool> = const { Cell::new(false) };
    /// The local transaction id of the transaction `warden.citus_setup()` converted tables in.
    static SETUP_LXID: Cell<u32> = const { Cell::new(0) };
    /// Whether this node is a Citus worker, once asked.
    static WORKER: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Registers `warden.<table>` as one of the tables `warden.citus_setup()` replicates to every
/// node (from the owners' `init`, at `_PG_init`).
pub fn replicate(tables: &[&'static CStr]) {
    REPLICATED.with_borrow_mut(|r| {
        for t in tables {
            if !r.contains(t) {
                r.push(t);
            }
        }
    });
}

/// The tables registered with [`replicate`].
pub fn replicated() -> Vec<&'static CStr> {
    REPLICATED.with_borrow(|r| r.clone())
}

/// Whether `warden.citus_setup()` is converting warden's tables (the evidence and hold guards let
/// Citus's own DDL on them through while it runs, and only then).
pub fn in_setup() -> bool {
    SETUP.get()
}

/// Whether this node is a Citus worker (Citus loaded, its extension here, and
/// `citus_is_coordinator()` false); asked once per backend. An unanswerable question is no.
pub fn on_worker() -> bool {
    if !crate::gucs::citus_loaded() {
        return false;
    }
    if let Some(w) = WORKER.get() {
        return w;
    }
    let w = Spi::get_one::<bool>(
        "SELECT CASE WHEN pg_catalog.to_regproc('pg_catalog.citus_is_coordinator') IS NULL THEN false
                     ELSE NOT pg_catalog.citus_is_coordinator() END",
    );
    match w {
        Ok(Some(v)) => {
            WORKER.set(Some(v));
            v
        }
        _ => false,
    }
}

/// Whether this transaction is `warden.citus_setup()`'s (a statement of its own, in which only the
/// conversion runs): the replicated tables are not read in it ([`source`] says so), and the checks
/// that would need them leave Citus's own statements alone.
pub fn replicating() -> bool {
    in_setup() || SETUP_LXID.get() == super::local_xid()
}

/// Runs `f` as `warden.citus_setup()`'s conversion ([`in_setup`]); restored on error too.
pub fn with_setup<R>(f: impl FnOnce() -> R) -> R {
    crate::errors::with_flag(&SETUP, f)
}

/// Whether this database has Citus's metadata (the extension, not only the library).
fn metadata_present(c: &pgrx::spi::SpiClient<'_>) -> Result<bool, pgrx::spi::Error> {
    Ok(c.select(
        "SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
            AND pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NOT NULL",
        Some(1),
        &[],
    )?
    .first()
    .get_one::<bool>()?
        == Some(true))
}

/// Where `warden.<table>` is read on this node: `Ok(None)` when it is an ordinary table (no Citus,
/// or not replicated), `Ok(Some(name))` with its placement on this node when Citus replicates it
/// (or an empty relation while Citus is creating this node's copy, or on a worker that holds no
/// placement at all, hence no data), and an error when it is replicated but this node, holding
/// data, has no copy: the guards then refuse rather than read nothing. An error too in
/// `warden.citus_setup()`'s own transaction ([`replicating`]).
pub fn source(table: &CStr) -> Result<Option<String>, String> {
    if !crate::gucs::citus_loaded() {
        return Ok(None);
    }
    // in the transaction warden.citus_setup() converts them in (one statement of its own), Citus
    // already routes reads to placements that are not readable yet: nothing is read (the caller
    // refuses what it would have needed them for; nothing but the conversion runs there)
    if replicating() {
        return Err(format!(
            "warden.{} is being replicated by warden.citus_setup() in this transaction",
            table.to_string_lossy()
        ));
    }
    let relid = super::warden_oid(table);
    if relid == pg_sys::InvalidOid {
        return Ok(None);
    }
    Spi::connect(|c| {
        if !metadata_present(c)? {
            return Ok(Ok(None));
        }
        let row = c.select(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                             WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::regclass),
                    (SELECT pg_catalog.format('warden.%I', n.parts[pg_catalog.array_upper(n.parts, 1)])
                       FROM pg_catalog.pg_dist_shard s
                       JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid
                      CROSS JOIN LATERAL (SELECT pg_catalog.parse_ident(pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS parts) n
                      WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::regclass
                        AND pl.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
                        AND pg_catalog.to_regclass(pg_catalog.format('warden.%I', n.parts[pg_catalog.array_upper(n.parts, 1)])) IS NOT NULL
                      LIMIT 1),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                             WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::regclass
                               AND p.xmin OPERATOR(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id_if_assigned()))
                    OR EXISTS (SELECT 1 FROM pg_catalog.pg_dist_shard s
                              JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid
                             WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::regclass
                               AND pl.groupid OPERATOR(pg_catalog.=) (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
                               AND pl.xmin OPERATOR(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id_if_assigned())),
                    (SELECT g.groupid OPERATOR(pg_catalog.<>) 0
                            AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_placement pl
                                             WHERE pl.groupid OPERATOR(pg_catalog.=) g.groupid)
                       FROM pg_catalog.pg_dist_local_group g)",
            Some(1),
            &[relid.into()],
        )?;
        let row = row.first();
        let citus_table = row.get::<bool>(1)? == Some(true);
        let placement = row.get::<String>(2)?;
        let creating = row.get::<bool>(3)? == Some(true);
        // a worker that holds no placement at all (added with citus_add_node(), before
        // replicate_reference_tables() or a rebalance copies anything to it) holds no data to guard
        let empty_worker = row.get::<bool>(4)? == Some(true);
        Ok(match (citus_table, placement) {
            (false, _) => Ok(None),
            (true, Some(p)) => Ok(Some(p)),
            // this transaction is Citus creating this node's copy (warden.citus_setup() on the
            // coordinator, or replicate_reference_tables() to this node): only Citus's own
            // statements run in it, and there is nothing to read yet
            // (no relation named: Citus would plan a read of its table as a distributed query)
            (true, None) if creating || empty_worker => Ok(Some(format!(
                "(SELECT (NULL::warden.{}).* WHERE false)",
                table.to_string_lossy()
            ))),
            (true, None) => Err(format!(
                "warden.{} is replicated by Citus but this node has no copy of it (on the coordinator: SELECT replicate_reference_tables();)",
                table.to_string_lossy()
            )),
        })
    })
    .map_err(|e: pgrx::spi::Error| e.to_string())?
}

/// The relation to name in a query reading `warden.<table>` on this node ([`source`]).
pub fn read_from(table: &CStr) -> Result<String, String> {
    Ok(source(table)?.unwrap_or_else(|| format!("warden.{}", table.to_string_lossy())))
}

/// Whether Citus replicates `warden.<table>` to every node (a reference table here).
pub fn is_replicated(table: &CStr) -> Result<bool, String> {
    Ok(source(table)?.is_some())
}

/// The Citus table that `relid` is a shard of (`docs_102008` -> `docs`), or None.
pub fn shard_of(relid: pg_sys::Oid) -> Result<Option<pg_sys::Oid>, String> {
    if !crate::gucs::citus_loaded() {
        return Ok(None);
    }
    if let Some(s) = SHARDS.with_borrow(|m| m.get(&relid).copied()) {
        return Ok(s);
    }
    // SAFETY: syscache lookups; NULL for a missing relation. (Not through pg_class in SQL: Citus
    // hides shards from queries on pg_class.)
    let (name, namespace) = unsafe {
        let p = pg_sys::get_rel_name(relid);
        if p.is_null() {
            return Ok(None);
        }
        (
            CStr::from_ptr(p).to_string_lossy().into_owned(),
            pg_sys::get_rel_namespace(relid),
        )
    };
    // a shard's name ends in _<shard id> (Citus shortens long names but keeps the suffix)
    let shardid = name
        .rsplit_once('_')
        .and_then(|(_, n)| (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n))
        .and_then(|n| n.parse::<i64>().ok());
    let parent = match shardid {
        None => None,
        Some(id) => {
            // the shard's Citus table and whether it is this relation (same schema, and the name
            // Citus gives the shard), compared by name: no search_path in the way
            let found = Spi::connect(|c| {
                if !metadata_present(c)? {
                    return Ok(None);
                }
                let rows = c.select(
                    "SELECT s.logicalrelid::oid,
                            t.relnamespace OPERATOR(pg_catalog.=) $3
                            AND $2 OPERATOR(pg_catalog.=) n.parts[pg_catalog.array_upper(n.parts, 1)]
                       FROM pg_catalog.pg_dist_shard s
                       JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) s.logicalrelid
                      CROSS JOIN LATERAL (SELECT pg_catalog.parse_ident(pg_catalog.shard_name(s.logicalrelid, s.shardid)) AS parts) n
                      WHERE s.shardid OPERATOR(pg_catalog.=) $1",
                    Some(1),
                    &[id.into(), name.as_str().into(), namespace.into()],
                )?;
                match rows.into_iter().next() {
                    None => Ok(None),
                    Some(r) => Ok(Some((r.get::<pg_sys::Oid>(1)?, r.get::<bool>(2)?))),
                }
            })
            .map_err(|e: pgrx::spi::Error| e.to_string())?;
            match found {
                // no shard of that number: an ordinary table whose name ends in digits
                None => None,
                Some((Some(parent), Some(true))) => Some(parent),
                Some((_, Some(false))) => None,
                // a shard of that number exists, but this relation could not be compared with it
                Some(_) => {
                    return Err(format!(
                        "relation {relid:?} ({name}) may be Citus shard {id}, and its Citus table could not be read"
                    ))
                }
            }
        }
    };
    SHARDS.with_borrow_mut(|m| m.insert(relid, parent));
    Ok(parent)
}

/// Forgets what [`shard_of`] learned about `relid` (all with InvalidOid); from the relcache
/// callback, so it must not raise.
pub(super) fn forget(relid: pg_sys::Oid) -> bool {
    SHARDS
        .try_with(|m| match m.try_borrow_mut() {
            Ok(mut m) => {
                if relid == pg_sys::InvalidOid {
                    m.clear();
                } else {
                    m.remove(&relid);
                }
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Clears everything [`shard_of`] learned (when an invalidation could not be applied at once).
pub(super) fn forget_all() {
    SHARDS.with_borrow_mut(|m| m.clear());
}

#[derive(Debug, thiserror::Error)]
pub enum CitusError {
    #[error("warden.citus_setup() is for superusers (current role: {0})")]
    NotSuperuser(String),
    #[error("warden.citus_setup() needs Citus: {0}")]
    NoCitus(&'static str),
    #[error("warden.citus_setup() runs on the coordinator, and this node is a worker")]
    NotCoordinator,
    #[error("warden.citus_setup() needs the coordinator in Citus's metadata: the replicated tables are read from each node's own placement, and the coordinator has none")]
    CoordinatorNotAdded,
    #[error("warden.citus_setup() cannot run inside a transaction block")]
    InTransaction,
    #[error("warden.citus_setup() could not replicate warden.{table}: {reason}")]
    Failed { table: String, reason: String },
}

impl crate::errors::SqlError for CitusError {
    fn sqlstate(&self) -> pgrx::PgSqlErrorCode {
        use pgrx::PgSqlErrorCode::*;
        match self {
            CitusError::NotSuperuser(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            CitusError::NoCitus(_) => ERRCODE_FEATURE_NOT_SUPPORTED,
            CitusError::NotCoordinator
            | CitusError::CoordinatorNotAdded
            | CitusError::Failed { .. } => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            CitusError::InTransaction => ERRCODE_ACTIVE_SQL_TRANSACTION,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            CitusError::NotSuperuser(_) => "Connect as a superuser to the coordinator: SELECT * FROM warden.citus_setup();".into(),
            CitusError::NoCitus(_) => "Without Citus there is nothing to replicate. With Citus: shared_preload_libraries = 'citus,warden' on every node, CREATE EXTENSION citus; CREATE EXTENSION warden; on every node, then on the coordinator SELECT * FROM warden.citus_setup(); (README, \"Running on Citus\").".into(),
            CitusError::NotCoordinator => "Connect to the coordinator (SELECT citus_is_coordinator(); says which node is).".into(),
            CitusError::InTransaction => "Run it as a statement of its own, outside BEGIN ... COMMIT: SELECT * FROM warden.citus_setup();".into(),
            CitusError::CoordinatorNotAdded => "On the coordinator: SELECT citus_set_coordinator_host('<its host>', <its port>); then SELECT * FROM warden.citus_setup();".into(),
            CitusError::Failed { .. } => "Check that every node has warden installed at the same version (SELECT * FROM run_command_on_workers('SELECT extversion FROM pg_extension WHERE extname = ''warden''');) and that all nodes are reachable (SELECT * FROM citus_check_cluster_node_health();).".into(),
        })
    }
}
crate::errors::sql_error!(CitusError);

fn setup_check(c: &pgrx::spi::SpiClient<'_>) -> Result<(), CitusError> {
    let one = |q: &str| -> Result<Option<bool>, CitusError> {
        c.select(q, Some(1), &[])
            .and_then(|r| r.first().get_one::<bool>())
            .map_err(|e| CitusError::Failed {
                table: "*".into(),
                reason: e.to_string(),
            })
    };
    if one("SELECT pg_catalog.to_regproc('pg_catalog.citus_is_coordinator') IS NOT NULL")?
        != Some(true)
    {
        return Err(CitusError::NoCitus(
            "CREATE EXTENSION citus was not run in this database",
        ));
    }
    if one("SELECT pg_catalog.citus_is_coordinator()")? != Some(true) {
        return Err(CitusError::NotCoordinator);
    }
    if one("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_node n WHERE n.groupid OPERATOR(pg_catalog.=) 0)")?
        != Some(true)
    {
        return Err(CitusError::CoordinatorNotAdded);
    }
    Ok(())
}

/// `warden.citus_setup()`'s work (the SQL function is the hold capability's, which records it):
/// makes the tables registered with [`replicate`] Citus reference tables, so that every node sees what the coordinator
/// writes, in the same transaction. Superusers, on the coordinator, as a statement of its own;
/// idempotent. One (table, placements, status) row per table.
pub fn setup() -> Result<Vec<(String, i64, String)>, pgrx::pg_sys::panic::ErrorReport> {
    // SAFETY: a plain privilege check.
    if !unsafe { pg_sys::superuser() } {
        // SAFETY: the current user's name, a syscache lookup.
        let role = unsafe {
            let p = pg_sys::GetUserNameFromId(pg_sys::GetUserId(), true);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        return Err(CitusError::NotSuperuser(role).into());
    }
    if !crate::gucs::citus_loaded() {
        return Err(CitusError::NoCitus(
            "the citus library is not loaded (shared_preload_libraries)",
        )
        .into());
    }
    crate::errors::ensure_writable(c"warden.citus_setup()");
    // SAFETY: a plain read of the transaction state.
    if unsafe { pg_sys::IsTransactionBlock() } {
        return Err(CitusError::InTransaction.into());
    }
    Spi::connect(setup_check)?;
    let mut out = Vec::new();
    for table in replicated() {
        let name = table.to_string_lossy().into_owned();
        let failed = |e: pgrx::spi::Error| CitusError::Failed {
            table: name.clone(),
            reason: e.to_string(),
        };
        let relid = super::warden_oid(table);
        if relid == pg_sys::InvalidOid {
            continue;
        }
        let already = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                             WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1::regclass)",
            &[relid.into()],
        )
        .map_err(failed)?
            == Some(true);
        if !already {
            // warden's own DDL too: the DDL event trigger leaves Citus's shards alone
            SETUP_LXID.set(super::local_xid());
            super::with_own_ddl(|| {
                with_setup(|| {
                    Spi::run_with_args(
                        "SELECT warden._citus_reference($1::regclass)",
                        &[relid.into()],
                    )
                })
            })
            .map_err(failed)?;
            super::invalidate(table);
        }
        let placements = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_dist_placement p ON p.shardid OPERATOR(pg_catalog.=) s.shardid
              WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1::regclass",
            &[relid.into()],
        )
        .map_err(failed)?
        .unwrap_or(0);
        out.push((
            format!("warden.{name}"),
            placements,
            if already {
                "already replicated"
            } else {
                "replicated"
            }
            .to_owned(),
        ));
    }
    Ok(out)
}

finfo_v1!(pg_finfo_warden_catalog_changed);

/// AFTER INSERT OR UPDATE OR DELETE FOR EACH STATEMENT on each replicated table, with the table's
/// name (`holds`) as argument: invalidates the node's cached copies of `warden.<name>`. Citus
/// copies it to every placement, so a write arriving from the coordinator on a worker's placement
/// invalidates the worker's copies (the coordinator's own functions also invalidate explicitly).
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_catalog_changed(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager: context is a TriggerData with tgnargs C strings.
    unsafe {
        let ctx = (*fcinfo).context;
        if ctx.is_null() || (*ctx).type_ != pg_sys::NodeTag::T_TriggerData {
            pgrx::ereport!(
                ERROR,
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "warden._catalog_changed() runs only as a trigger"
            );
        }
        let td = ctx.cast::<pg_sys::TriggerData>();
        let t = (*td).tg_trigger;
        if (*t).tgnargs >= 1 {
            let name = CStr::from_ptr(*(*t).tgargs);
            super::invalidate(name);
        }
        pg_sys::Datum::from(0usize)
    }
}
