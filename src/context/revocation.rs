//! The deleted accounts and the revoked tokens, the sets every authentication path checks, so
//! that a token issued before `warden.delete_account` ran, or before the moment given to
//! `warden.revoke_tokens` (sign-out everywhere), no longer authenticates. The tables,
//! `warden.deleted_accounts` and `warden.token_revocations`, are read here and written by
//! `privacy`'s `delete_account` and `providers`' `revoke_tokens`.
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

/// Revocations by actor: the tenant they apply to (None: every tenant) and the moment before
/// which tokens are refused (Unix seconds, rounded up).
type Revoked = Rc<HashMap<String, Vec<(Option<String>, i64)>>>;

thread_local! {
    static CURRENT: RefCell<Option<(u64, Deleted)>> = const { RefCell::new(None) };
    static REVOKED: RefCell<Option<(u64, Revoked)>> = const { RefCell::new(None) };
}

/// Watches the tables (from `_PG_init`).
pub fn init() {
    cache::watch_tables(&[c"deleted_accounts", c"token_revocations"]);
}

/// The revocations, read once per generation of the watched tables.
fn revoked() -> Result<Revoked, String> {
    let generation = cache::generation();
    if let Some(m) = REVOKED.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, m)| m.clone())
    }) {
        return Ok(m);
    }
    if !in_transaction() {
        return Err("not in a transaction".into());
    }
    if cache::warden_oid(c"token_revocations") == pg_sys::InvalidOid {
        return Ok(Rc::new(HashMap::new()));
    }
    cache::watch();
    let map = cache::as_guard(|| {
        Spi::connect(|c| {
            let mut m: HashMap<String, Vec<(Option<String>, i64)>> = HashMap::new();
            for row in c.select(
                "SELECT actor, tenant, max(ceil(extract(epoch FROM issued_before)))::int8
                   FROM warden.token_revocations GROUP BY actor, tenant",
                None,
                &[],
            )? {
                if let (Some(a), t, Some(before)) = (
                    row.get::<String>(1)?,
                    row.get::<String>(2)?,
                    row.get::<i64>(3)?,
                ) {
                    m.entry(a).or_default().push((t, before));
                }
            }
            Ok::<_, pgrx::spi::Error>(m)
        })
        .map_err(|e| e.to_string())
    })?;
    let map = Rc::new(map);
    if cache::generation() == generation {
        REVOKED.set(Some((generation, map.clone())));
    }
    Ok(map)
}

/// Whether a token of `actor` in `tenant` issued at `iat` was revoked by `warden.revoke_tokens`:
/// Ok(Some(moment)) when it must be refused (issued before the moment, or without `iat`). Err
/// when it cannot be determined.
pub fn revoked_before(
    actor: &crate::types::ident::Ident,
    tenant: &crate::types::ident::Ident,
    iat: Option<i64>,
) -> Result<Option<i64>, String> {
    let m = revoked()?;
    Ok(m.get(actor.as_str()).and_then(|list| {
        list.iter()
            .filter(|(t, _)| t.as_deref().is_none_or(|t| t == tenant.as_str()))
            .map(|(_, before)| *before)
            .filter(|&before| iat.is_none_or(|i| i < before))
            .max()
    }))
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
