//! `warden.place_hold` and `warden.release_hold` (`warden.verify_holds` and the `legal_holds` view
//! are SQL, in sql/hold.sql).
//!
//! The caller is authorized here (admin level in the hold's tenant, or membership in
//! `warden_admin`); the rows are then written as the holds' owner, the only role that may, so
//! that no SQL an application role can run reaches the tables.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgRelation;

use super::cache;
use super::HoldError;
use crate::audit::record::json_str;
use crate::audit::{record, NewEvent, Status};
use crate::types::ident::Ident;
use crate::types::level::Level;

/// Whether the current role has the privileges of `warden_admin` (superusers do).
pub fn is_warden_admin() -> bool {
    // SAFETY: catalog lookups with missing_ok.
    unsafe {
        let r = pg_sys::get_role_oid(c"warden_admin".as_ptr(), true);
        (r != pg_sys::InvalidOid && pg_sys::has_privs_of_role(pg_sys::GetUserId(), r))
            || pg_sys::superuser()
    }
}

/// Admin level in `tenant`'s context, or warden_admin. Returns the acting actor, if any.
pub(super) fn authorize(what: &'static str, tenant: &Ident) -> Result<Option<String>, HoldError> {
    let claims = crate::context::current();
    let actor = claims.as_ref().map(|c| c.actor.to_string());
    let admin_here = claims
        .as_ref()
        .is_some_and(|c| c.level == Level::Admin && &c.tenant == tenant);
    if admin_here || is_warden_admin() {
        return Ok(actor);
    }
    Err(HoldError::NotAllowed {
        what,
        tenant: tenant.to_string(),
        role: crate::context::current_role_name(),
        level: claims.map_or_else(|| "no context".into(), |c| c.level.as_str().into()),
    })
}

pub(super) fn privileged<R>(
    f: impl FnOnce() -> Result<R, pgrx::spi::Error>,
) -> Result<R, HoldError> {
    cache::as_holds_owner(|| f().map_err(|e| e.to_string())).map_err(HoldError::Internal)
}

/// Places a legal hold over a tenant, one table of a tenant, or one data subject's rows (in
/// every table with registered personal data, or in `tbl`). Admin level in that tenant, or
/// warden_admin. Returns the hold's id.
#[pg_extern(volatile, parallel_unsafe, name = "place_hold")]
#[search_path(pg_catalog, pg_temp)]
fn place_hold_ids(
    case_ref: Option<&str>,
    reason: Option<&str>,
    tenant: Option<&str>,
    tbl: default!(Option<PgRelation>, "NULL"),
    subject: default!(Option<&str>, "NULL"),
) -> Result<pgrx::Uuid, ErrorReport> {
    let tenant = ident(tenant, "tenant")?.ok_or(HoldError::Null("tenant"))?;
    let subject = ident(subject, "subject")?;
    place(case_ref, reason, tenant, tbl, subject)
}

/// `place_hold` with uuids, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn place_hold(
    case_ref: Option<&str>,
    reason: Option<&str>,
    tenant: Option<pgrx::Uuid>,
    tbl: default!(Option<PgRelation>, "NULL"),
    subject: default!(Option<pgrx::Uuid>, "NULL"),
) -> Result<pgrx::Uuid, ErrorReport> {
    let id = |u: pgrx::Uuid| Ident::from_uuid(&uuid::Uuid::from_bytes(*u.as_bytes()));
    let tenant = tenant.map(id).ok_or(HoldError::Null("tenant"))?;
    place(case_ref, reason, tenant, tbl, subject.map(id))
}

/// An identifier argument: NULL stays None; empty, too long or with control characters is 22023.
fn ident(v: Option<&str>, what: &'static str) -> Result<Option<Ident>, HoldError> {
    v.map(|v| Ident::parse(v).map_err(|e| HoldError::Invalid(format!("{what} {e}"))))
        .transpose()
}

fn place(
    case_ref: Option<&str>,
    reason: Option<&str>,
    tenant: Ident,
    tbl: Option<PgRelation>,
    subject: Option<Ident>,
) -> Result<pgrx::Uuid, ErrorReport> {
    let case_ref = case_ref
        .filter(|s| !s.trim().is_empty())
        .ok_or(HoldError::Null("case_ref"))?;
    let reason = reason
        .filter(|s| !s.trim().is_empty())
        .ok_or(HoldError::Null("reason"))?;
    let actor = authorize("placing a legal hold", &tenant)?;
    if !crate::catalog::preloaded() {
        return Err(HoldError::NotPreloaded.into());
    }
    crate::errors::ensure_writable(c"warden.place_hold()");
    // Citus: a hold covering distributed tables needs the holds on every node (the guards on the
    // shards read them there): refused until warden.citus_setup() replicated them, never placed
    // half-working, whatever citus.enable_unsafe_triggers says
    if crate::gucs::citus_loaded() {
        let protected: Vec<pg_sys::Oid> = Spi::connect(|c| {
            let mut out = Vec::new();
            for row in c.select("SELECT relid::oid FROM warden.protected_tables", None, &[])? {
                if let Some(o) = row.get::<pg_sys::Oid>(1)? {
                    out.push(o);
                }
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
        .map_err(HoldError::from)?;
        let distributed =
            crate::catalog::citus_distributed(Some(&protected)).map_err(HoldError::Unreadable)?;
        if !distributed.is_empty() {
            let mut replicated = true;
            for t in crate::catalog::citus::replicated() {
                replicated &=
                    crate::catalog::citus::is_replicated(t).map_err(HoldError::Unreadable)?;
            }
            if !replicated {
                return Err(HoldError::Unsupported(format!(
                    "warden.place_hold() needs the holds replicated to every node where Citus distributes a protected table ({})",
                    distributed.join(", ")
                ))
                .into());
            }
        }
    }
    let tbl_oid = tbl.as_ref().map(|t| t.oid());
    drop(tbl);
    let table_name = match tbl_oid {
        None => None,
        Some(oid) => {
            let (name, protected) = Spi::connect(|c| {
                let row = c.select(
                    "SELECT $1::regclass::text, EXISTS (SELECT 1 FROM warden.protected_tables p WHERE p.relid = $1)",
                    Some(1),
                    &[oid.into()],
                )?;
                row.first().get_two::<String, bool>()
            })
            .map_err(HoldError::from)?;
            let name = name.unwrap_or_default();
            if protected != Some(true) {
                return Err(HoldError::NotProtected(name).into());
            }
            Some(name)
        }
    };
    let role = crate::context::current_role_name();
    let t = crate::catalog::id_cast(c"holds", c"tenant");
    let (id, baseline) = privileged(|| {
        Spi::connect_mut(|c| {
            let row = c.update(
                &format!(
                    "SELECT id, baseline::text FROM warden._place_hold($1, $2, $3{t}, $4, $5{t}, $6{t}, $7)"
                ),
                Some(1),
                &[
                    case_ref.into(),
                    reason.into(),
                    tenant.as_str().into(),
                    tbl_oid.into(),
                    subject.as_ref().map(Ident::as_str).into(),
                    actor.clone().into(),
                    role.as_str().into(),
                ],
            )?;
            row.first().get_two::<pgrx::Uuid, String>()
        })
    })?;
    let id = id.ok_or(HoldError::Internal("no hold id returned".into()))?;
    super::marker::holds_changed()?;
    cache::invalidate();
    if crate::gucs::citus_loaded() {
        super::guard::placed_with_citus();
    }
    let mut ev = NewEvent::in_context("place_hold", Status::Success)
        .resource("legal_hold", Some(&id.to_string()));
    ev.tenant = Some(tenant.clone());
    let opt = |v: Option<String>| v.map_or_else(|| "null".to_owned(), |s| json_str(&s));
    ev.changes = Some(format!(
        "{{\"case_ref\":{},\"reason\":{},\"tenant\":{},\"table\":{},\"subject\":{},\"baseline\":{}}}",
        json_str(case_ref),
        json_str(reason),
        json_str(&tenant.to_string()),
        opt(table_name),
        opt(subject.map(|s| s.to_string())),
        baseline.unwrap_or_else(|| "{}".into()),
    ));
    record(&ev).map_err(HoldError::from)?;
    Ok(id)
}

/// A hold's tenant, case_ref and whether it was released (42704 for an unknown hold).
pub(super) fn hold_row(hold: pgrx::Uuid) -> Result<(Ident, String, bool), HoldError> {
    let found = privileged(|| {
        Spi::connect(|c| {
            let row = c.select(
                "SELECT h.tenant::text, h.case_ref,
                        EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold = h.id)
                   FROM warden.holds h WHERE h.id = $1",
                Some(1),
                &[hold.into()],
            )?;
            if row.is_empty() {
                return Ok(None);
            }
            let row = row.first();
            Ok(Some((
                row.get::<String>(1)?,
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<bool>(3)? == Some(true),
            )))
        })
    })?;
    let Some((Some(tenant), case_ref, released)) = found else {
        return Err(HoldError::NoSuchHold(hold.to_string()));
    };
    let tenant = Ident::parse(&tenant)
        .map_err(|e| HoldError::Internal(format!("the hold names a tenant that {e}")))?;
    Ok((tenant, case_ref, released))
}

/// Releases a legal hold: the only way one ends. Admin level in its tenant, or warden_admin.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn release_hold(hold: Option<pgrx::Uuid>, reason: Option<&str>) -> Result<(), ErrorReport> {
    let hold = hold.ok_or(HoldError::Null("hold"))?;
    let reason = reason
        .filter(|s| !s.trim().is_empty())
        .ok_or(HoldError::Null("reason"))?;
    let (tenant, case_ref, released) = hold_row(hold)?;
    let actor = authorize("releasing a legal hold", &tenant)?;
    if released {
        return Err(HoldError::Released(hold.to_string()).into());
    }
    crate::errors::ensure_writable(c"warden.release_hold()");
    let role = crate::context::current_role_name();
    let t = crate::catalog::id_cast(c"holds", c"tenant");
    let inserted = privileged(|| {
        Spi::connect_mut(|c| {
            Ok(c.update(
                &format!("INSERT INTO warden.hold_releases (hold, reason, released_at, released_by, released_by_role)
                 VALUES ($1, $2, pg_catalog.now(), $3{t}, $4) ON CONFLICT (hold) DO NOTHING"),
                None,
                &[hold.into(), reason.into(), actor.into(), role.as_str().into()],
            )?
            .len())
        })
    })?;
    if inserted == 0 {
        return Err(HoldError::Released(hold.to_string()).into());
    }
    super::marker::holds_changed()?;
    cache::invalidate();
    let mut ev = NewEvent::in_context("release_hold", Status::Success)
        .resource("legal_hold", Some(&hold.to_string()));
    ev.tenant = Some(tenant);
    ev.changes = Some(format!(
        "{{\"case_ref\":{},\"reason\":{}}}",
        json_str(&case_ref),
        json_str(reason)
    ));
    record(&ev).map_err(HoldError::from)?;
    Ok(())
}

/// Replicates the warden tables the capabilities registered (the holds, their releases, the
/// personal-data registry, the keyring, secrets, classification rules) to every node of a Citus
/// cluster (`catalog::citus::setup`), so that the guards and functions on the shards see what the
/// coordinator wrote; recorded as an event. Superusers, on the coordinator, as a statement of its
/// own. The holds are the reason it exists, hence its place here.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn citus_setup() -> Result<
    TableIterator<
        'static,
        (
            name!(tbl, String),
            name!(placements, i64),
            name!(status, String),
        ),
    >,
    ErrorReport,
> {
    let rows = crate::catalog::citus::setup()?;
    let mut ev =
        NewEvent::in_context("citus_setup", Status::Success).resource("extension", Some("warden"));
    ev.changes = Some(
        serde_json::json!({
            "tables": rows
                .iter()
                .map(|(t, p, s)| serde_json::json!({"table": t, "placements": p, "status": s}))
                .collect::<Vec<_>>()
        })
        .to_string(),
    );
    record(&ev).map_err(HoldError::from)?;
    Ok(TableIterator::new(rows))
}
