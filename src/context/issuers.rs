//! The identity providers whose tokens warden verifies with their own keys: the registry
//! `warden.register_issuer` writes (`warden.issuer_records`), read here as `warden_guard` and
//! cached per backend until it changes (`catalog`'s relcache watch: a new JWKS is seen by every
//! session at its next transaction).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::catalog;
use crate::jwt::jwks;

/// One registered issuer: its keys and options.
#[derive(Debug)]
pub struct Issuer {
    pub keys: Vec<jwks::Key>,
    pub options: jwks::Options,
}

type Registry = Rc<HashMap<String, Rc<Issuer>>>;

thread_local! {
    static CURRENT: RefCell<Option<(u64, Registry)>> = const { RefCell::new(None) };
}

/// Watches the registry's table (from `_PG_init`).
pub fn init() {
    catalog::watch_tables(&[c"issuer_records"]);
}

/// The registered issuers, read again after a change. Empty where the table does not exist.
pub fn registry() -> Result<Registry, String> {
    let generation = catalog::generation();
    if let Some(r) = CURRENT.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, r)| r.clone())
    }) {
        return Ok(r);
    }
    // SAFETY: reads backend state.
    if !unsafe { pg_sys::IsTransactionState() } {
        return Err("not in a transaction".into());
    }
    if catalog::warden_oid(c"issuer_records") == pg_sys::InvalidOid {
        return Ok(Rc::new(HashMap::new()));
    }
    catalog::watch();
    let rows = catalog::as_guard(|| {
        Spi::connect(|c| {
            let mut out = Vec::new();
            for row in c.select(
                "SELECT issuer, jwks::text, options::text FROM warden.issuer_records",
                None,
                &[],
            )? {
                out.push((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<String>(3)?.unwrap_or_default(),
                ));
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
        .map_err(|e| e.to_string())
    })?;
    let mut m = HashMap::new();
    for (iss, keys, options) in rows {
        // a row that no longer parses gives its issuer no keys: its tokens are refused
        let keys = serde_json::from_str(&keys)
            .ok()
            .and_then(|v| jwks::parse(&v).ok())
            .map(|j| j.keys)
            .unwrap_or_default();
        let options = serde_json::from_str(&options)
            .ok()
            .and_then(|v| jwks::parse_options(&v).ok())
            .unwrap_or_default();
        m.insert(iss, Rc::new(Issuer { keys, options }));
    }
    let r = Rc::new(m);
    if catalog::generation() == generation {
        CURRENT.set(Some((generation, r.clone())));
    }
    Ok(r)
}
