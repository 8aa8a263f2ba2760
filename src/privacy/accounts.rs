//! Deleted accounts: the set every authentication path checks, so that a token issued before
//! `warden.delete_account` ran no longer authenticates.
//!
//! Kept in this backend as a hash map (actor → deletion time), read as `warden_guard` and dropped
//! when `warden.deleted_accounts` changes (relcache invalidation sent by `delete_account`). A token
//! check costs a generation compare and, when any account was ever deleted, one hash lookup.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Deleted actors and their deletion time (Unix seconds, rounded up).
type Deleted = Rc<HashMap<[u8; 16], i64>>;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static WATCHED: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::InvalidOid) };
    static CURRENT: RefCell<Option<(u64, Deleted)>> = const { RefCell::new(None) };
}

static mut REGISTERED: bool = false;

pub fn init() {
    // SAFETY: _PG_init runs once per process, single-threaded.
    unsafe {
        if !REGISTERED {
            pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0usize));
            REGISTERED = true;
        }
    }
}

unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    if relid == pg_sys::InvalidOid || relid == WATCHED.get() {
        GENERATION.set(GENERATION.get().wrapping_add(1));
    }
}

fn relid() -> pg_sys::Oid {
    // SAFETY: catalog lookups with missing_ok.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"warden".as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::get_relname_relid(c"deleted_accounts".as_ptr(), nsp)
    }
}

/// Makes every backend read the deleted accounts again (from `delete_account`).
pub fn invalidate() {
    let r = relid();
    if r != pg_sys::InvalidOid {
        // SAFETY: queues a relcache invalidation, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(r) };
    }
}

fn in_transaction() -> bool {
    // SAFETY: reads backend state.
    unsafe { pg_sys::IsTransactionState() }
}

/// The deleted accounts, actor → deletion time in Unix seconds.
fn deleted() -> Result<Deleted, String> {
    let generation = GENERATION.get();
    if let Some(m) = CURRENT.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, m)| m.clone())
    }) {
        return Ok(m);
    }
    if !in_transaction() {
        return Err("not in a transaction".into());
    }
    let table = relid();
    WATCHED.set(table);
    let map = if table == pg_sys::InvalidOid {
        HashMap::new()
    } else {
        // SAFETY: catalog lookup with missing_ok.
        let role = unsafe { pg_sys::get_role_oid(c"warden_guard".as_ptr(), true) };
        if role == pg_sys::InvalidOid {
            return Err("role warden_guard does not exist".into());
        }
        crate::hold::cache::as_role(role, || {
            Spi::connect(|c| {
                let mut m = HashMap::new();
                for row in c.select(
                    "SELECT actor, ceil(extract(epoch FROM deleted_at))::int8 FROM warden.deleted_accounts",
                    None,
                    &[],
                )? {
                    if let (Some(a), Some(t)) = (row.get::<pgrx::Uuid>(1)?, row.get::<i64>(2)?) {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(a.as_bytes());
                        m.insert(b, t);
                    }
                }
                Ok::<_, pgrx::spi::Error>(m)
            })
            .map_err(|e| e.to_string())
        })?
    };
    let map = Rc::new(map);
    if GENERATION.get() == generation {
        CURRENT.set(Some((generation, map.clone())));
    }
    Ok(map)
}

/// Whether a token of `actor` issued at `iat` (Unix seconds; None: unknown) belongs to a
/// deleted account: Ok(Some(deletion time)) when it does, so it must be refused. A token issued
/// after the deletion (a new account with the same id) is not. Err when it cannot be determined.
pub fn deleted_before(actor: &[u8; 16], iat: Option<i64>) -> Result<Option<i64>, String> {
    let m = deleted()?;
    Ok(m.get(actor)
        .copied()
        .filter(|&at| iat.is_none_or(|i| i <= at)))
}
