//! The deleted accounts, the set every authentication path checks, so that
//! a token issued before `warden.delete_account` ran no longer authenticates. The table,
//! `warden.deleted_accounts`, is read here and written by `privacy`'s `delete_account`.
//!
//! Kept in this backend as a hash map (actor → deletion time), read as `warden_guard` and dropped
//! when `warden.deleted_accounts` changes (`catalog`'s relcache watch; `delete_account` sends the
//! invalidation). A token
//! check costs a generation compare and, when any account was ever deleted, one hash lookup.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::catalog as cache;

/// Deleted actors and their deletion time (Unix seconds, rounded up).
type Deleted = Rc<HashMap<String, i64>>;

thread_local! {
    static CURRENT: RefCell<Option<(u64, Deleted)>> = const { RefCell::new(None) };
}

/// Watches the table (from `_PG_init`).
pub fn init() {
    cache::watch_tables(&[c"deleted_accounts"]);
}

fn in_transaction() -> bool {
    // SAFETY: reads backend state.
    unsafe { pg_sys::IsTransactionState() }
}

/// The deleted accounts, actor → deletion time in Unix seconds.
fn deleted() -> Result<Deleted, String> {
    let generation = cache::generation();
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
    if cache::warden_oid(c"deleted_accounts") == pg_sys::InvalidOid {
        // not installed (yet): asked again next time, as no invalidation would announce it
        return Ok(Rc::new(HashMap::new()));
    }
    cache::watch();
    let map = {
        cache::as_guard(|| {
            Spi::connect(|c| {
                let mut m = HashMap::new();
                for row in c.select(
                    "SELECT actor::text, ceil(extract(epoch FROM deleted_at))::int8 FROM warden.deleted_accounts",
                    None,
                    &[],
                )? {
                    if let (Some(a), Some(t)) = (row.get::<String>(1)?, row.get::<i64>(2)?) {
                        m.insert(a, t);
                    }
                }
                Ok::<_, pgrx::spi::Error>(m)
            })
            .map_err(|e| e.to_string())
        })?
    };
    let map = Rc::new(map);
    if cache::generation() == generation {
        CURRENT.set(Some((generation, map.clone())));
    }
    Ok(map)
}

/// Whether a token of `actor` issued at `iat` (Unix seconds; None: unknown) belongs to a
/// deleted account: Ok(Some(deletion time)) when it does, so it must be refused. A token issued
/// after the deletion (a new account with the same id) is not. Err when it cannot be determined.
pub fn deleted_before(
    actor: &crate::types::ident::Ident,
    iat: Option<i64>,
) -> Result<Option<i64>, String> {
    let m = deleted()?;
    Ok(m.get(actor.as_str())
        .copied()
        .filter(|&at| iat.is_none_or(|i| i <= at)))
}
