//! This backend's copy of the active legal holds and of the personal-data registry.
//!
//! Read as the `warden_guard` role (so an application role needs no access to the holds, and a
//! revoked grant makes the lookup fail, which the guards turn into a refusal), and kept until
//! PostgreSQL invalidates the relcache entry of `warden.holds`, `warden.hold_releases` or
//! `warden.personal_data`: `place_hold`, `release_hold` and `register_personal_data` send that
//! invalidation, which every backend processes before its next statement takes a lock, and the
//! writing transaction sees at once (its own invalidations apply at the next command). A GRANT or
//! REVOKE on those tables invalidates it too. So a guard with no hold in sight costs one
//! thread-local read.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgTryBuilder};

/// One active hold.
#[derive(Debug, Clone)]
pub struct Hold {
    pub id: String,
    pub case_ref: String,
    pub tenant: [u8; 16],
    pub tbl: Option<pg_sys::Oid>,
    pub subject: Option<[u8; 16]>,
}

/// The active holds and the registry, as one immutable snapshot.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// False when this database has no warden holds table (not installed, or older SQL).
    pub installed: bool,
    pub holds: Vec<Hold>,
    by_tenant: HashMap<[u8; 16], Vec<usize>>,
    /// Registered table → the column naming the data subject.
    pub subject_columns: HashMap<pg_sys::Oid, String>,
    /// Registered table → its personal-data columns.
    pub personal_columns: HashMap<pg_sys::Oid, Vec<String>>,
}

impl Snapshot {
    pub fn tenant_holds(&self, tenant: &[u8; 16]) -> impl Iterator<Item = &Hold> {
        self.by_tenant
            .get(tenant)
            .into_iter()
            .flatten()
            .map(|&i| &self.holds[i])
    }

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
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static CURRENT: RefCell<Option<(u64, Rc<Snapshot>)>> = const { RefCell::new(None) };
    static WATCHED: Cell<[pg_sys::Oid; 6]> = const { Cell::new([pg_sys::InvalidOid; 6]) };
    static LINEAGE: RefCell<HashMap<pg_sys::Oid, Rc<Vec<pg_sys::Oid>>>> = RefCell::new(HashMap::new());
    static LINEAGE_RESET: Cell<bool> = const { Cell::new(false) };
}

static mut REGISTERED: bool = false;

/// Registers the relcache callback (once per process; from `_PG_init`).
pub fn init() {
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
    let watched = WATCHED.get();
    if relid == pg_sys::InvalidOid || watched.contains(&relid) {
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
    if !cleared {
        let _ = LINEAGE_RESET.try_with(|r| r.set(true));
    }
}

/// The current snapshot, loaded when the holds changed since the last one.
pub fn snapshot() -> Result<Rc<Snapshot>, String> {
    let generation = GENERATION.get();
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
    if s.installed && GENERATION.get() == generation {
        CURRENT.set(Some((generation, s.clone())));
    }
    Ok(s)
}

/// The relation itself, then its ancestors (partitioned tables), nearest first.
pub fn lineage(relid: pg_sys::Oid) -> Result<Rc<Vec<pg_sys::Oid>>, String> {
    if LINEAGE_RESET.replace(false) {
        LINEAGE.with_borrow_mut(|l| l.clear());
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
    let l = Rc::new(l);
    LINEAGE.with_borrow_mut(|m| m.insert(relid, l.clone()));
    Ok(l)
}

/// The generation of warden's guarded tables (holds, releases, personal data, deleted accounts):
/// bumped whenever PostgreSQL invalidates the relcache entry of one of them, which is when a copy
/// read from them must be read again.
pub fn generation() -> u64 {
    GENERATION.get()
}

/// Notes the oids of the tables whose invalidation bumps [`generation`] (from every loader: they
/// change when the extension is reinstalled).
pub fn watch() {
    WATCHED.set([
        holds_relid(),
        warden_oid(c"hold_releases"),
        warden_oid(c"personal_data"),
        warden_oid(c"deleted_accounts"),
        warden_oid(c"classification_rules"),
        warden_oid(c"api_key_records"),
    ]);
}

/// [`watch`], unless `warden.<table>` is already watched (cheap enough for every statement).
pub fn watch_once(table: &std::ffi::CStr) {
    let oid = warden_oid(table);
    if oid != pg_sys::InvalidOid && !WATCHED.get().contains(&oid) {
        watch();
    }
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

/// The oid of `warden.<name>`, or InvalidOid.
pub fn warden_oid(name: &std::ffi::CStr) -> pg_sys::Oid {
    // SAFETY: catalog lookups with missing_ok.
    unsafe {
        let nsp = pg_sys::get_namespace_oid(c"warden".as_ptr(), true);
        if nsp == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::get_relname_relid(name.as_ptr(), nsp)
    }
}

/// The oid of `warden.holds`, or InvalidOid when this database has none.
pub fn holds_relid() -> pg_sys::Oid {
    warden_oid(c"holds")
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

fn uuid_bytes(u: &pgrx::Uuid) -> [u8; 16] {
    let mut b = [0u8; 16];
    b.copy_from_slice(u.as_bytes());
    b
}

fn load() -> Result<Snapshot, String> {
    let holds = holds_relid();
    if holds == pg_sys::InvalidOid {
        return Ok(Snapshot::default());
    }
    watch();
    as_guard(|| {
        Spi::connect(|c| {
            let mut s = Snapshot {
                installed: true,
                ..Snapshot::default()
            };
            for row in c.select(
                "SELECT h.id::text, h.case_ref, h.tenant, h.tbl::oid, h.subject
                   FROM warden.holds h
                  WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold OPERATOR(pg_catalog.=) h.id)
                  ORDER BY h.placed_at, h.id",
                None,
                &[],
            )? {
                let tenant = row.get::<pgrx::Uuid>(3)?;
                let Some(tenant) = tenant else { continue };
                s.holds.push(Hold {
                    id: row.get::<String>(1)?.unwrap_or_default(),
                    case_ref: row.get::<String>(2)?.unwrap_or_default(),
                    tenant: uuid_bytes(&tenant),
                    tbl: row.get::<pg_sys::Oid>(4)?,
                    subject: row.get::<pgrx::Uuid>(5)?.map(|u| uuid_bytes(&u)),
                });
            }
            for row in c.select(
                "SELECT tbl::oid, subject_column::text, column_name::text FROM warden.personal_data
                  ORDER BY tbl, column_name",
                None,
                &[],
            )? {
                let Some(tbl) = row.get::<pg_sys::Oid>(1)? else { continue };
                s.subject_columns
                    .insert(tbl, row.get::<String>(2)?.unwrap_or_default());
                s.personal_columns
                    .entry(tbl)
                    .or_default()
                    .push(row.get::<String>(3)?.unwrap_or_default());
            }
            for (i, h) in s.holds.iter().enumerate() {
                s.by_tenant.entry(h.tenant).or_default().push(i);
            }
            Ok::<_, pgrx::spi::Error>(s)
        })
        .map_err(|e| e.to_string())
    })
}

/// Makes every backend (this one at its next command) read the holds and the deleted accounts
/// again: called by whatever writes `warden.holds`, `hold_releases`, `personal_data` or
/// `deleted_accounts`.
pub fn invalidate() {
    let holds = holds_relid();
    if holds != pg_sys::InvalidOid {
        // SAFETY: queues a relcache invalidation, sent at commit.
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(holds) };
    }
}

/// Runs `f` as the owner of `warden.holds` (the extension's owner): how warden writes the tables
/// no other role may, after it has authorized the caller itself.
pub fn as_holds_owner<R>(f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    as_owner_of(c"holds", "warden's legal-hold tables are not installed in this database (ALTER EXTENSION warden UPDATE)", f)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u32) -> pg_sys::Oid {
        pg_sys::Oid::from(n)
    }

    fn hold(tenant: u8, tbl: Option<u32>, subject: Option<u8>) -> Hold {
        Hold {
            id: format!("h{tenant}"),
            case_ref: "C".into(),
            tenant: [tenant; 16],
            tbl: tbl.map(oid),
            subject: subject.map(|s| [s; 16]),
        }
    }

    fn snapshot(holds: Vec<Hold>, registered: &[(u32, &str)]) -> Snapshot {
        let mut s = Snapshot {
            installed: true,
            holds,
            ..Snapshot::default()
        };
        for (i, h) in s.holds.iter().enumerate() {
            s.by_tenant.entry(h.tenant).or_default().push(i);
        }
        for (t, c) in registered {
            s.subject_columns.insert(oid(*t), (*c).into());
        }
        s
    }

    #[test]
    fn a_tenant_hold_covers_every_table_and_only_its_tenant() {
        let s = snapshot(vec![hold(1, None, None)], &[]);
        assert!(s.may_cover(&s.holds[0], &[oid(10)]));
        assert_eq!(s.tenant_holds(&[1; 16]).count(), 1);
        assert_eq!(
            s.tenant_holds(&[2; 16]).count(),
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
