//! The personal-data registry, which columns of which tables are personal data and
//! which column names the data subject (`warden.personal_data`, written by `privacy`'s
//! `register_personal_data`, read here for every floor: the audit trail records those columns only
//! as keyed hashes, legal holds on a subject find its rows by the subject column); the keyed hash
//! itself and its key; and the flag under which an erasure runs.
//!
//! The registry is read as `warden_guard` and cached per backend until the table changes
//! (`catalog`'s relcache watch). The hash and the key derivation are pure: `cargo test --features
//! pg15 --lib subjects`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use hmac::{Hmac, Mac};
use pgrx::pg_sys;
use pgrx::prelude::*;
use sha2::Sha256;

use crate::catalog;

type HmacSha256 = Hmac<Sha256>;

/// Length of a pseudonym: 64 lowercase hex digits (HMAC-SHA256).
pub const PSEUDONYM_LEN: usize = 64;

/// The registered personal data, as one immutable snapshot.
#[derive(Debug, Default)]
pub struct Registry {
    /// Registered table → the column naming the data subject.
    pub subject_columns: HashMap<pg_sys::Oid, String>,
    /// Registered table → its personal-data columns.
    pub personal_columns: HashMap<pg_sys::Oid, Vec<String>>,
    /// (schema, table) of every registered table and of each of its partitions: what the server
    /// log's redaction matches messages against (it may not read the catalogs).
    pub names: Vec<(String, String)>,
}

impl Registry {
    /// The subject column of a relation, looked up along its lineage (a partition inherits its
    /// root's registration).
    pub fn subject_column(&self, lineage: &[pg_sys::Oid]) -> Option<&str> {
        lineage
            .iter()
            .find_map(|r| self.subject_columns.get(r).map(String::as_str))
    }

    pub fn personal_columns(&self, lineage: &[pg_sys::Oid]) -> Option<&[String]> {
        lineage
            .iter()
            .find_map(|r| self.personal_columns.get(r).map(Vec::as_slice))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<(u64, Rc<Registry>)>> = const { RefCell::new(None) };
    /// Set while `erase_subject` or `delete_account` anonymizes: the audit row trigger then
    /// records registered columns' old values as erased, not even as keyed hashes.
    static ERASING: Cell<bool> = const { Cell::new(false) };
    /// The generation at which warden's tables were last found missing.
    static NOT_INSTALLED_AT: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Watches the registry's table (from `_PG_init`).
pub fn init() {
    catalog::watch_tables(&[c"personal_data"]);
    catalog::citus::replicate(&[c"personal_data"]);
}

/// The current registry, read again when `warden.personal_data` changed. Empty in a database
/// without it.
pub fn registry() -> Result<Rc<Registry>, String> {
    let generation = catalog::generation();
    if let Some(r) = CURRENT.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, r)| r.clone())
    }) {
        return Ok(r);
    }
    if catalog::warden_oid(c"personal_data") == pg_sys::InvalidOid {
        // not installed (yet): asked again next time, as no invalidation would announce it
        NOT_INSTALLED_AT.set(Some(generation));
        return Ok(Rc::new(Registry::default()));
    }
    catalog::watch();
    // with Citus, each node reads its own placement (`warden.citus_setup()`)
    let from = catalog::citus::read_from(c"personal_data")?;
    let registered = format!(
        "SELECT tbl::oid, subject_column::text, column_name::text FROM {from} d
          ORDER BY tbl, column_name"
    );
    let names = format!(
        "SELECT DISTINCT n.nspname::text, k.relname::text
           FROM (SELECT d.tbl::oid AS relid FROM {from} d
                 UNION SELECT t.relid::oid FROM {from} p,
                       LATERAL pg_catalog.pg_partition_tree(p.tbl) t) r
           JOIN pg_catalog.pg_class k ON k.oid OPERATOR(pg_catalog.=) r.relid
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) k.relnamespace"
    );
    let r = Rc::new(catalog::as_guard(|| {
        Spi::connect(|c| {
            let mut r = Registry::default();
            for row in c.select(&registered, None, &[])? {
                let Some(tbl) = row.get::<pg_sys::Oid>(1)? else {
                    continue;
                };
                r.subject_columns
                    .insert(tbl, row.get::<String>(2)?.unwrap_or_default());
                r.personal_columns
                    .entry(tbl)
                    .or_default()
                    .push(row.get::<String>(3)?.unwrap_or_default());
            }
            for row in c.select(&names, None, &[])? {
                r.names.push((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                ));
            }
            Ok::<_, pgrx::spi::Error>(r)
        })
        .map_err(|e| e.to_string())
    })?);
    // an invalidation during the load leaves the copy unusable for the next caller
    if catalog::generation() == generation {
        CURRENT.set(Some((generation, r.clone())));
    }
    Ok(r)
}

/// The registered tables' names when this backend's copy of the registry is current, without
/// reading anything (for the server log's redaction, which runs while an error is reported);
/// `None` when it is not loaded or out of date. Never panics.
pub fn snapshot_names() -> Option<Vec<(String, String)>> {
    let generation = catalog::generation();
    if NOT_INSTALLED_AT.try_with(Cell::get).ok().flatten() == Some(generation) {
        return Some(Vec::new());
    }
    CURRENT
        .try_with(|c| {
            c.try_borrow().ok().and_then(|c| {
                c.as_ref()
                    .filter(|(g, _)| *g == generation)
                    .map(|(_, r)| r.names.clone())
            })
        })
        .ok()
        .flatten()
}

/// Loads the registry when this backend's copy is out of date and the server log may need it
/// (`warden.log_redaction` on): called at the start of each statement's execution, where reading
/// is safe; an error is ignored (the redaction then errs on the side of removing). Not reentrant:
/// the load's own statements skip it.
pub fn refresh_for_log() {
    thread_local! {
        static LOADING: Cell<bool> = const { Cell::new(false) };
    }
    if LOADING.get() {
        return;
    }
    let generation = catalog::generation();
    let current = NOT_INSTALLED_AT.get() == Some(generation)
        || CURRENT.with_borrow(|c| c.as_ref().is_some_and(|(g, _)| *g == generation));
    if current {
        return;
    }
    LOADING.set(true);
    let _ = registry();
    LOADING.set(false);
}

/// Whether an erasure is anonymizing registered columns right now.
pub fn erasing() -> bool {
    ERASING.get()
}

/// Runs `f` with [`erasing`] set; restored on error too.
pub fn while_erasing<R>(f: impl FnOnce() -> R) -> R {
    crate::errors::with_flag(&ERASING, f)
}

/// The current pseudonym key (see [`derive_key`]); None when neither setting is set.
pub fn key() -> Option<Vec<u8>> {
    let explicit = crate::gucs::with_bytes(&crate::gucs::PSEUDONYM_KEY, |k| k.to_vec());
    crate::gucs::with_bytes(&crate::gucs::JWT_SECRET, |s| derive_key(&explicit, s))
}

/// The pseudonym key: `warden.pseudonym_key` when set, otherwise derived from the JWT secret
/// (HMAC-SHA256 of a fixed label under it), so that it is never the secret itself. None when
/// neither is set.
pub fn derive_key(pseudonym_key: &[u8], jwt_secret: &[u8]) -> Option<Vec<u8>> {
    if !pseudonym_key.is_empty() {
        return Some(pseudonym_key.to_vec());
    }
    if jwt_secret.is_empty() {
        return None;
    }
    let mut m = HmacSha256::new_from_slice(jwt_secret).expect("HMAC accepts any key length");
    m.update(b"warden pseudonym key v1");
    Some(m.finalize().into_bytes().to_vec())
}

/// The keyed hash of `value`: HMAC-SHA256 under `key`, as 64 lowercase hex digits.
pub fn pseudonym(key: &[u8], value: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(value);
    let mut out = String::with_capacity(PSEUDONYM_LEN);
    for b in m.finalize().into_bytes() {
        out.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(b & 15), 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_stable_and_hex() {
        let k = derive_key(b"", b"a-jwt-secret-of-at-least-32-bytes!!").unwrap();
        let a = pseudonym(&k, b"ada@example.com");
        assert_eq!(a.len(), PSEUDONYM_LEN);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(
            a,
            pseudonym(&k, b"ada@example.com"),
            "stable: joins keep working"
        );
        assert_ne!(a, pseudonym(&k, b"ada@example.org"));
        let other = derive_key(b"another key", b"a-jwt-secret-of-at-least-32-bytes!!").unwrap();
        assert_ne!(a, pseudonym(&other, b"ada@example.com"), "keyed");
        // RFC 4231 test case 2
        assert_eq!(
            pseudonym(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_derived_key_is_not_the_secret_and_needs_one() {
        let secret = b"a-jwt-secret-of-at-least-32-bytes!!";
        let k = derive_key(b"", secret).unwrap();
        assert_ne!(k.as_slice(), secret.as_slice());
        assert_eq!(
            derive_key(b"explicit", secret).unwrap(),
            b"explicit".to_vec()
        );
        assert_eq!(derive_key(b"", b""), None);
    }
}
