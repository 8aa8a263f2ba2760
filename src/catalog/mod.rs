//! warden's own catalog machinery, which every floor above uses.
//!
//! - lookups of warden's relations by name ([`warden_oid`]) and a relation's lineage (itself and
//!   its partition ancestors, cached until its relcache entry is invalidated);
//! - the relcache watch: each owner of a table whose contents it caches registers the table
//!   ([`watch_tables`], from `_PG_init`); an invalidation of any of them bumps [`generation`], and
//!   every copy read from them is read again. Writers call [`invalidate`], which every backend
//!   processes before its next statement takes a lock (the writing transaction at its next
//!   command);
//! - running a lookup as another role ([`as_role`], [`as_guard`], [`as_owner_of`]): how warden
//!   reads and writes the tables closed to every other role;
//! - flags for warden's own DDL ([`with_own_ddl`], [`without_weakening_check`]), which the floors
//!   above consult, and whether warden was preloaded;
//! - `registry`: what the capabilities provide each other and the floors below (registered at
//!   `_PG_init`), so that no floor names a capability;
//! - `subjects`: the personal-data registry, its keyed hash and key, the erasure flag.
//!
//! Floor 1, ground: uses only `errors` and `gucs`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgTryBuilder};

pub mod citus;
pub mod registry;
pub mod subjects;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static WATCHED: RefCell<Vec<pg_sys::Oid>> = const { RefCell::new(Vec::new()) };
    /// The tables owners registered with [`watch_tables`].
    static NAMES: RefCell<Vec<&'static CStr>> = const { RefCell::new(Vec::new()) };
    static OWN_DDL: Cell<bool> = const { Cell::new(false) };
    static UNCHECKED: Cell<bool> = const { Cell::new(false) };
    static LINEAGE: RefCell<HashMap<pg_sys::Oid, Rc<Vec<pg_sys::Oid>>>> = RefCell::new(HashMap::new());
    static LINEAGE_RESET: Cell<bool> = const { Cell::new(false) };
}

static mut REGISTERED: bool = false;

static PRELOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the relcache callback and notes whether warden is preloaded (once per process; from
/// `_PG_init`).
pub fn init() {
    // SAFETY: reads a flag PostgreSQL sets while it loads shared_preload_libraries.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        PRELOADED.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // SAFETY: _PG_init runs once per process, single-threaded.
    unsafe {
        if !REGISTERED {
            pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize));
            REGISTERED = true;
        }
    }
}

/// Must not raise: it runs while PostgreSQL processes invalidation messages.
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let watched = WATCHED
        .try_with(|w| w.try_borrow().map(|w| w.contains(&relid)).unwrap_or(true))
        .unwrap_or(true);
    if relid == pg_sys::InvalidOid || watched {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
    let cleared = LINEAGE
        .try_with(|l| match l.try_borrow_mut() {
            Ok(mut l) => {
                if relid == pg_sys::InvalidOid {
                    l.clear();
                } else {
                    l.remove(&relid);
                }
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false);
    if !cleared || !citus::forget(relid) {
        let _ = LINEAGE_RESET.try_with(|r| r.set(true));
    }
}

/// This backend's local transaction id (0 very early in startup): the key of per-transaction
/// caches and flags.
pub fn local_xid() -> pg_sys::LocalTransactionId {
    // SAFETY: MyProc is this backend's PGPROC, or null very early in startup.
    unsafe {
        let proc_ = pg_sys::MyProc;
        if proc_.is_null() {
            0
        } else {
            (*proc_).lxid
        }
    }
}

/// The generation of the watched tables ([`watch_tables`]):
/// bumped whenever PostgreSQL invalidates the relcache entry of one of them, which is when a copy
/// read from them must be read again.
pub fn generation() -> u64 {
    GENERATION.get()
}

/// The relation itself, then its ancestors (partitioned tables), nearest first; for a Citus
/// shard, then the Citus tables they are shards of, in the same order.
pub fn lineage(relid: pg_sys::Oid) -> Result<Rc<Vec<pg_sys::Oid>>, String> {
    if LINEAGE_RESET.replace(false) {
        LINEAGE.with_borrow_mut(|l| l.clear());
        citus::forget_all();
    }
    if let Some(l) = LINEAGE.with_borrow(|l| l.get(&relid).cloned()) {
        return Ok(l);
    }
    // SAFETY: a catalog flag lookup.
    let is_partition = unsafe { pg_sys::get_rel_relispartition(relid) };
    let l = if is_partition {
        Spi::connect(|c| {
            let mut out = Vec::new();
            for row in c.select(
                "SELECT relid FROM pg_catalog.pg_partition_ancestors($1)",
                None,
                &[relid.into()],
            )? {
                if let Some(o) = row.get::<pg_sys::Oid>(1)? {
                    out.push(o);
                }
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
        .map_err(|e| e.to_string())?
    } else {
        vec![relid]
    };
    let mut l = l;
    let mut shells = Vec::new();
    for &o in &l {
        if let Some(s) = citus::shard_of(o)? {
            shells.push(s);
        }
    }
    l.extend(shells);
    let l = Rc::new(l);
    LINEAGE.with_borrow_mut(|m| m.insert(relid, l.clone()));
    Ok(l)
}

/// Registers `warden.<table>` for each name: an invalidation of one bumps [`generation`] (from the
/// owners' `init`, at `_PG_init`).
pub fn watch_tables(tables: &[&'static CStr]) {
    NAMES.with_borrow_mut(|n| {
        for t in tables {
            if !n.contains(t) {
                n.push(t);
            }
        }
    });
}

/// Notes the oids of the registered tables (from every loader: they change when the extension is
/// reinstalled).
pub fn watch() {
    let oids: Vec<pg_sys::Oid> = NAMES.with_borrow(|n| n.iter().map(|t| warden_oid(t)).collect());
    WATCHED.set(oids);
}

/// [`watch`], unless `warden.<table>` is already watched (cheap enough for every statement).
pub fn watch_once(table: &CStr) {
    let oid = warden_oid(table);
    if oid != pg_sys::InvalidOid && !WATCHED.with_borrow(|w| w.contains(&oid)) {
        watch();
    }
}

/// The oid of `warden.<name>`, or InvalidOid.
pub fn warden_oid(name: &CStr) -> pg_sys::Oid {
    // SAFETY: catalog lookups with missing_ok.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"warden".as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::get_relname_relid(name.as_ptr(), nsp)
    }
}

/// Makes every backend (this one at its next command) read the watched tables again: called by
/// whatever writes one (`table` is the one it wrote; any watched table would do).
pub fn invalidate(table: &CStr) {
    let relid = warden_oid(table);
    if relid != pg_sys::InvalidOid {
        // SAFETY: queues a relcache invalidation, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    }
}

/// The cast an identifier parameter (text) needs to be compared with or stored in column `column`
/// of `warden.<table>`: none since 0.6.0 (text columns), `::uuid` in a database whose warden SQL is
/// older (uuid columns), until `ALTER EXTENSION warden UPDATE` converts them. A syscache lookup.
pub fn id_cast(table: &CStr, column: &CStr) -> &'static str {
    let relid = warden_oid(table);
    if relid == pg_sys::InvalidOid {
        return "";
    }
    // SAFETY: syscache lookups by name and number.
    let typ = unsafe { pg_sys::get_atttype(relid, pg_sys::get_attnum(relid, column.as_ptr())) };
    if typ == pg_sys::UUIDOID {
        "::uuid"
    } else {
        ""
    }
}

/// Whether warden was loaded through shared_preload_libraries (so its hooks are in every backend
/// from the start).
pub fn preloaded() -> bool {
    PRELOADED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether warden's own DDL is running (protect_table, unprotect_table, guard_schema...): the
/// utility hook records no event for it, the DDL event trigger and the classification check leave
/// it alone.
pub fn in_own_ddl() -> bool {
    OWN_DDL.get()
}

/// Runs `f` as warden's own DDL ([`in_own_ddl`]); restored on error too.
pub fn with_own_ddl<R>(f: impl FnOnce() -> R) -> R {
    crate::errors::with_flag(&OWN_DDL, f)
}

/// Whether the check that DDL does not weaken a classified table waits for the end of warden's
/// own function (enable_audit replacing a trigger passes through a weaker state on its way).
pub fn weakening_unchecked() -> bool {
    UNCHECKED.get()
}

/// Runs `f` with [`weakening_unchecked`]; restored on error too.
pub fn without_weakening_check<R>(f: impl FnOnce() -> R) -> R {
    crate::errors::with_flag(&UNCHECKED, f)
}

/// Runs `f` as `warden_guard`, the role warden's own lookups read the closed tables as.
pub fn as_guard<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    // SAFETY: catalog lookup with missing_ok.
    let role = unsafe { pg_sys::get_role_oid(c"warden_guard".as_ptr(), true) };
    if role == pg_sys::InvalidOid {
        return Err("role warden_guard does not exist".into());
    }
    as_role(role, f)
}

/// Runs `f` as `role` (a local user id change, restricted: no temp objects, no session state),
/// and as the caller again afterwards, also when `f` fails; a failure comes back as its message.
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: saving and switching the current user id, as SECURITY DEFINER functions do; the
    // `finally` below restores it on every path, and a transaction abort restores it too.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let f = std::panic::AssertUnwindSafe(std::cell::Cell::new(Some(f)));
    PgTryBuilder::new(|| (f.take().expect("called once"))())
        .catch_others(|e| Err(crate::errors::caught_message(e)))
        .finally(|| {
            // SAFETY: restores what was saved above.
            unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) }
        })
        .execute()
}

/// Runs `f` as the owner of `warden.<table>` (the extension's owner): how warden's functions read
/// and write the tables closed to every other role. `missing` is the error when the table does not
/// exist (a database whose warden SQL predates it).
pub fn as_owner_of<R>(
    table: &std::ffi::CStr,
    missing: &str,
    f: impl FnOnce() -> Result<R, String>,
) -> Result<R, String> {
    let relid = warden_oid(table);
    if relid == pg_sys::InvalidOid {
        return Err(missing.into());
    }
    // SAFETY: a syscache lookup of an existing relation.
    let owner = unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as i32,
            pg_sys::Datum::from(relid),
        );
        if tuple.is_null() {
            return Err(format!("warden.{} disappeared", table.to_string_lossy()));
        }
        let form = pg_sys::GETSTRUCT(tuple).cast::<pg_sys::FormData_pg_class>();
        let owner = (*form).relowner;
        pg_sys::ReleaseSysCache(tuple);
        owner
    };
    as_role(owner, f)
}

/// The tables among `relids` (or, with `None`, among every table) that Citus distributes (rows in
/// `pg_dist_partition`; none without Citus), as qualified names. For the capabilities that do not
/// work on distributed tables yet and refuse them (0A000) rather than fail or half work.
pub fn citus_distributed(relids: Option<&[pg_sys::Oid]>) -> Result<Vec<String>, String> {
    if !crate::gucs::citus_loaded() {
        return Ok(Vec::new());
    }
    Spi::connect(|c| {
        let present = c
            .select(
                "SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL",
                Some(1),
                &[],
            )?
            .first()
            .get_one::<bool>()?
            == Some(true);
        let mut out = Vec::new();
        if !present {
            return Ok(out);
        }
        let rows = match relids {
            Some(r) => c.select(
                "SELECT logicalrelid::regclass::text FROM pg_catalog.pg_dist_partition
                  WHERE logicalrelid::oid OPERATOR(pg_catalog.=) ANY ($1::oid[]) ORDER BY 1",
                None,
                &[r.to_vec().into()],
            )?,
            None => c.select(
                "SELECT logicalrelid::regclass::text FROM pg_catalog.pg_dist_partition ORDER BY 1",
                None,
                &[],
            )?,
        };
        for row in rows {
            out.push(row.get::<String>(1)?.unwrap_or_default());
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(|e| e.to_string())
}
