//! This backend's copy of the active legal holds.
//!
//! Read as the `warden_guard` role (so an application role needs no access to the holds, and a
//! revoked grant makes the lookup fail, which the guards turn into a refusal), and kept until
//! PostgreSQL invalidates the relcache entry of `warden.holds` or `warden.hold_releases`
//! (`catalog`'s watch): `place_hold` and `release_hold` send that invalidation, which every
//! backend processes before its next statement takes a lock, and the writing transaction sees at
//! once (its own invalidations apply at the next command). A GRANT or REVOKE on those tables
//! invalidates it too. So a guard with no hold in sight costs one thread-local read. Subject holds
//! find their rows through the personal-data registry (`subjects`), loaded with the holds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::catalog;
use crate::catalog::subjects;
use crate::types::ident::Ident;

/// One active hold.
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: String,
    pub case_ref: String,
    pub tenant: Ident,
    pub tbl: Option<pg_sys::Oid>,
    pub subject: Option<Ident>,
}

/// The active holds and the personal-data registry they were read with, as one immutable
/// snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// False when this database has no warden holds table (not installed, or older SQL).
    pub installed: bool,
    /// Whether Citus replicates the holds to every node (`warden.citus_setup()`): only then may a
    /// guard on a shard decide, since only then does it see the coordinator's holds.
    pub replicated: bool,
    pub holds: Vec<Hold>,
    by_tenant: HashMap<Ident, Vec<usize>>,
    pub registry: Rc<subjects::Registry>,
}

impl Snapshot {
    pub fn tenant_holds(&self, tenant: &Ident) -> impl Iterator<Item = &Hold> {
        self.by_tenant
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|&i| &self.holds[i])
    }

    /// The subject column of a relation, looked up along its lineage (a partition inherits its
    /// root's registration).
    pub fn subject_column(&self, lineage: &[pg_sys::Oid]) -> Option<&str> {
        self.registry.subject_column(lineage)
    }

    /// Whether `h` can cover rows of a relation with this lineage (itself first, then its
    /// ancestors): its table is in the lineage (or it has none), and a subject hold needs the
    /// table to have registered personal data.
    pub fn may_cover(&self, h: &Hold, lineage: &[pg_sys::Oid]) -> bool {
        h.tbl.is_none_or(|t| lineage.contains(&t))
            && (h.subject.is_none() || self.subject_column(lineage).is_some())
    }

    /// The first active hold that may cover rows of the relation, any tenant.
    pub fn first_covering(&self, lineage: &[pg_sys::Oid]) -> Option<&Hold> {
        self.holds.iter().find(|h| self.may_cover(h, lineage))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<(u64, Rc<Snapshot>)>> = const { RefCell::new(None) };
}

/// Watches the holds' tables and has `warden.citus_setup()` replicate them (from `_PG_init`).
pub fn init() {
    catalog::watch_tables(&[c"holds", c"hold_releases"]);
    catalog::citus::replicate(&[c"holds", c"hold_releases"]);
}

/// The current snapshot, loaded when the holds changed since the last one.
pub fn snapshot() -> Result<Rc<Snapshot>, String> {
    let generation = catalog::generation();
    if let Some(s) = CURRENT.with_borrow(|c| {
        c.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, s)| s.clone())
    }) {
        return Ok(s);
    }
    let s = Rc::new(load()?);
    // an invalidation during the load leaves the copy unusable for the next caller; and a
    // database without the tables is asked again each time (cheap: two catalog cache lookups),
    // since no invalidation would say when `CREATE`/`ALTER EXTENSION` in another session adds them
    if s.installed && catalog::generation() == generation {
        CURRENT.set(Some((generation, s.clone())));
    }
    Ok(s)
}

/// The oid of `warden.holds`, or InvalidOid when this database has none.
pub fn holds_relid() -> pg_sys::Oid {
    catalog::warden_oid(c"holds")
}

fn load() -> Result<Snapshot, String> {
    let holds = holds_relid();
    if holds == pg_sys::InvalidOid {
        return Ok(Snapshot::default());
    }
    catalog::watch();
    let registry = subjects::registry()?;
    // with Citus, each node reads its own placement of the replicated tables
    let holds_source = catalog::citus::source(c"holds")?;
    let replicated = holds_source.is_some();
    let holds_from = holds_source.unwrap_or_else(|| "warden.holds".into());
    let releases_from = catalog::citus::read_from(c"hold_releases")?;
    let query = format!(
        "SELECT h.id::text, h.case_ref, h.tenant::text, h.tbl::oid, h.subject::text
           FROM {holds_from} h
          WHERE NOT EXISTS (SELECT 1 FROM {releases_from} r WHERE r.hold OPERATOR(pg_catalog.=) h.id)
          ORDER BY h.placed_at, h.id"
    );
    catalog::as_guard(|| {
        Spi::connect(|c| {
            let mut s = Snapshot {
                installed: true,
                replicated,
                registry,
                ..Snapshot::default()
            };
            for row in c.select(&query, None, &[])? {
                let Some(tenant) = row.get::<String>(3)?.and_then(|t| Ident::parse(&t).ok()) else {
                    continue;
                };
                s.holds.push(Hold {
                    id: row.get::<String>(1)?.unwrap_or_default(),
                    case_ref: row.get::<String>(2)?.unwrap_or_default(),
                    tenant,
                    tbl: row.get::<pg_sys::Oid>(4)?,
                    subject: row.get::<String>(5)?.and_then(|t| Ident::parse(&t).ok()),
                });
            }
            for (i, h) in s.holds.iter().enumerate() {
                s.by_tenant.entry(h.tenant.clone()).or_default().push(i);
            }
            Ok::<_, pgrx::spi::Error>(s)
        })
        .map_err(|e| e.to_string())
    })
    .inspect(|s| {
        // DROP DATABASE from another database reads the holds from the marker file
        let refs: Vec<String> = s.holds.iter().map(|h| h.case_ref.clone()).collect();
        super::marker::resync(&refs);
    })
}

/// Makes every backend (this one at its next command) read the holds again.
pub fn invalidate() {
    catalog::invalidate(c"holds");
}

/// Runs `f` as the owner of `warden.holds` (the extension's owner): how warden writes the tables
/// no other role may, after it has authorized the caller itself.
pub fn as_holds_owner<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    catalog::as_owner_of(c"holds", "warden's legal-hold tables are not installed in this database (ALTER EXTENSION warden UPDATE)", f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u32) -> pg_sys::Oid {
        pg_sys::Oid::from(n)
    }

    fn id(n: u8) -> Ident {
        Ident::parse(&n.to_string()).unwrap()
    }

    fn hold(tenant: u8, tbl: Option<u32>, subject: Option<u8>) -> Hold {
        Hold {
            id: format!("h{tenant}"),
            case_ref: "C".into(),
            tenant: id(tenant),
            tbl: tbl.map(oid),
            subject: subject.map(id),
        }
    }

    fn snapshot(holds: Vec<Hold>, registered: &[(u32, &str)]) -> Snapshot {
        let mut s = Snapshot {
            installed: true,
            holds,
            ..Snapshot::default()
        };
        for (i, h) in s.holds.iter().enumerate() {
            s.by_tenant.entry(h.tenant.clone()).or_default().push(i);
        }
        let mut r = subjects::Registry::default();
        for (t, c) in registered {
            r.subject_columns.insert(oid(*t), (*c).into());
        }
        s.registry = Rc::new(r);
        s
    }

    #[test]
    fn a_tenant_hold_covers_every_table_and_only_its_tenant() {
        let s = snapshot(vec![hold(1, None, None)], &[]);
        assert!(s.may_cover(&s.holds[0], &[oid(10)]));
        assert_eq!(s.tenant_holds(&id(1)).count(), 1);
        assert_eq!(
            s.tenant_holds(&id(2)).count(),
            0,
            "another tenant's rows are not held"
        );
        assert!(
            s.first_covering(&[oid(99)]).is_some(),
            "TRUNCATE of any protected table is refused"
        );
    }

    #[test]
    fn a_table_hold_covers_the_table_and_its_partitions_only() {
        let s = snapshot(vec![hold(1, Some(10), None)], &[]);
        let h = &s.holds[0];
        assert!(s.may_cover(h, &[oid(10)]));
        assert!(
            s.may_cover(h, &[oid(11), oid(10)]),
            "a partition: its lineage names the held parent"
        );
        assert!(!s.may_cover(h, &[oid(12)]));
        assert!(!s.may_cover(h, &[oid(100)]));
        assert!(s.first_covering(&[oid(20)]).is_none());
    }

    #[test]
    fn a_subject_hold_needs_registered_personal_data() {
        let s = snapshot(vec![hold(1, None, Some(7))], &[(10, "person_id")]);
        let h = &s.holds[0];
        assert!(s.may_cover(h, &[oid(10)]));
        assert!(
            s.may_cover(h, &[oid(11), oid(10)]),
            "a partition inherits its root's registration"
        );
        assert_eq!(s.subject_column(&[oid(11), oid(10)]), Some("person_id"));
        assert!(
            !s.may_cover(h, &[oid(20)]),
            "a table without a subject column holds no subject's rows"
        );
    }
}
