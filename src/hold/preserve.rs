//! Preserved versions: a hold keeps rows *and their content*. While any active hold covers a row,
//! an UPDATE of it (any column, by anyone, on every path the row guard covers: directly, through a
//! view, a CTE, MERGE, a trigger, replica mode) keeps the row's prior version in
//! `warden.preserved_versions`: its tenant, table, identity (primary key, or ctid), the whole prior
//! row as jsonb (registered personal data included: Art. 17(3)(e)), the holds and case_refs that
//! covered it, when and by whom. Rows no hold covers are not copied; with no hold anywhere the
//! guard returns before any of this.
//!
//! The table is append-only for everyone (a statement trigger enabled ALWAYS refuses UPDATE,
//! DELETE and TRUNCATE), except for warden itself, flagged in the backend's memory: after the last
//! hold covering a version is released, `warden.discard_preserved(hold)` removes them (admin level
//! in the hold's tenant or `warden_admin`; an audit event), and `erase_subject` replaces the
//! subject's registered personal data in them with NULL (the `subject_erased` slot).

use std::cell::{Cell, RefCell};

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{pg_sys, PgOid};
use serde_json::json;

use super::cache::{self, Hold};
use super::HoldError;
use crate::audit::trigger::{cstr, qualified_name, trigger_data};
use crate::audit::{record, NewEvent, Status};
use crate::types::ident::Ident;

finfo_v1!(pg_finfo_warden_preserved_immutable);

thread_local! {
    /// Set while warden itself writes `warden.preserved_versions`.
    static WRITING: Cell<bool> = const { Cell::new(false) };
    static INSERT: RefCell<Option<OwnedPreparedStatement>> = const { RefCell::new(None) };
}

fn while_writing<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            WRITING.set(self.0);
        }
    }
    let _reset = Reset(WRITING.replace(true));
    f()
}

const INSERT_SQL: &str = "INSERT INTO warden.preserved_versions
        (tenant, table_name, row_identity, old_row, subject, personal_columns, case_refs, holds, actor)
    SELECT $1, $2,
           CASE WHEN pg_catalog.cardinality($3::text[]) OPERATOR(pg_catalog.>) 0
                THEN (SELECT pg_catalog.jsonb_object_agg(k, r.j OPERATOR(pg_catalog.->) k) FROM pg_catalog.unnest($3::text[]) k)
                ELSE pg_catalog.jsonb_build_object('ctid', $4::text) END,
           r.j, $5, $6::text[], $7::text[], $8::uuid[], $9
      FROM (SELECT pg_catalog.to_jsonb($10::record) AS j) r";

/// The primary key's column names of `rel` (empty without one).
unsafe fn primary_key(rel: pg_sys::Relation) -> Vec<String> {
    let mut out = Vec::new();
    // SAFETY: relcache lookups on an open relation; attribute names of its descriptor.
    unsafe {
        let pk = pg_sys::RelationGetIndexAttrBitmap(
            rel,
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
        );
        let desc = (*rel).rd_att;
        let mut x = -1;
        loop {
            x = pg_sys::bms_next_member(pk, x);
            if x < 0 {
                break;
            }
            let attno = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
            if attno > 0 {
                let att = (*desc).attrs.as_ptr().add(attno as usize - 1);
                out.push(cstr((*att).attname.data.as_ptr()).into_owned());
            }
        }
    }
    out
}

/// Keeps the prior version `old` of a row of `rel` that `holds` cover, as the row guard's UPDATE
/// lets it through. Refuses the UPDATE when the version cannot be kept.
///
/// # Safety
/// `rel` is the trigger's open relation and `old` its old tuple.
pub unsafe fn keep(
    rel: pg_sys::Relation,
    old: pg_sys::HeapTuple,
    tenant: &Ident,
    subject: Option<&Ident>,
    personal: &[String],
    holds: &[&Hold],
) {
    // SAFETY: the trigger's relation and tuple.
    let (table, key, ctid, row) = unsafe {
        let desc = (*rel).rd_att;
        let tid = (*old).t_self;
        let block = (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo);
        (
            // a shard's versions name its Citus table (kept on the shard's node)
            qualified_name(rel),
            primary_key(rel),
            format!("({block},{})", tid.ip_posid),
            pg_sys::heap_copy_tuple_as_datum(old, desc),
        )
    };
    let case_refs: Vec<String> = holds.iter().map(|h| h.case_ref.clone()).collect();
    let ids: Vec<pgrx::Uuid> = holds
        .iter()
        .filter_map(|h| uuid::Uuid::parse_str(&h.id).ok())
        .map(|u| pgrx::Uuid::from_bytes(*u.as_bytes()))
        .collect();
    let actor = crate::context::current().map(|c| c.actor.to_string());
    let r = cache::as_holds_owner(|| {
        Spi::connect_mut(|c| {
            let stmt = INSERT.with_borrow_mut(|slot| -> pgrx::spi::SpiResult<()> {
                if slot.is_none() {
                    let oids = [
                        PgOid::from(pg_sys::TEXTOID),
                        PgOid::from(pg_sys::TEXTOID),
                        PgOid::from(pg_sys::TEXTARRAYOID),
                        PgOid::from(pg_sys::TEXTOID),
                        PgOid::from(pg_sys::TEXTOID),
                        PgOid::from(pg_sys::TEXTARRAYOID),
                        PgOid::from(pg_sys::TEXTARRAYOID),
                        PgOid::from(pg_sys::UUIDARRAYOID),
                        PgOid::from(pg_sys::TEXTOID),
                        PgOid::from(pg_sys::RECORDOID),
                    ];
                    *slot = Some(c.prepare_mut(INSERT_SQL, &oids)?.keep());
                }
                Ok(())
            });
            stmt?;
            // SAFETY: a composite datum of the relation's row type (self-describing), passed
            // as a record for the duration of this call.
            let row = unsafe { DatumWithOid::new(row, pg_sys::RECORDOID) };
            let args = [
                tenant.as_str().into(),
                table.as_str().into(),
                key.clone().into(),
                ctid.as_str().into(),
                subject.map(Ident::as_str).into(),
                personal.to_vec().into(),
                case_refs.clone().into(),
                ids.clone().into(),
                actor.clone().into(),
                row,
            ];
            INSERT.with_borrow(|slot| -> pgrx::spi::SpiResult<()> {
                if let Some(p) = slot.as_ref() {
                    while_writing(|| c.update(p, None, &args))?;
                }
                Ok(())
            })
        })
        .map_err(|e| e.to_string())
    });
    if let Err(e) = r {
        // a statement prepared in an earlier transaction may name a table that was since
        // recreated: the next call prepares it again
        INSERT.set(None);
        let e = HoldError::Undetermined {
            operation: "UPDATE".into(),
            table,
            reason: format!(
                "a legal hold covers the row and its prior version could not be kept ({e})"
            ),
        };
        crate::errors::report(&e).report(PgLogLevel::ERROR);
    }
}

/// BEFORE UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT on warden.preserved_versions: refused
/// for everyone but warden itself.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_preserved_immutable(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._preserved_immutable()");
        if WRITING.get() {
            return pg_sys::Datum::from(0usize);
        }
        let verb = match (*td).tg_event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
            pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
            pg_sys::TRIGGER_EVENT_TRUNCATE => "TRUNCATE",
            _ => "INSERT",
        };
        let e = HoldError::Immutable {
            verb,
            table: "warden.preserved_versions".into(),
        };
        crate::errors::report(&e).report(PgLogLevel::ERROR);
        unreachable!()
    }
}

/// Removes the preserved versions that `hold` kept, once no active hold covers them any more.
/// Admin level in the hold's tenant, or `warden_admin`. Returns how many were removed.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn discard_preserved(hold: Option<pgrx::Uuid>) -> Result<i64, ErrorReport> {
    let hold = hold.ok_or(HoldError::Null("hold"))?;
    let (tenant, case_ref, released) = super::api::hold_row(hold)?;
    super::api::authorize("discarding preserved versions", &tenant)?;
    if !released {
        return Err(HoldError::StillHeld {
            hold: hold.to_string(),
            case_ref,
        }
        .into());
    }
    crate::errors::ensure_writable(c"warden.discard_preserved()");
    // this node's copy of the releases (with Citus a reference table, which a query of a local
    // table must not name: Citus would plan it as a distributed one)
    let releases =
        crate::catalog::citus::read_from(c"hold_releases").map_err(HoldError::Unreadable)?;
    // only versions none of whose holds is still active
    let n = cache::as_holds_owner(|| {
        while_writing(|| {
            Spi::connect_mut(|c| {
                Ok::<_, pgrx::spi::Error>(
                    c.update(
                        &format!("DELETE FROM warden.preserved_versions v
                          WHERE $1 = ANY (v.holds)
                            AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(v.holds) k
                                             WHERE NOT EXISTS (SELECT 1 FROM {releases} r WHERE r.hold = k))"),
                        None,
                        &[hold.into()],
                    )?
                    .len() as i64,
                )
            })
            .map_err(|e| e.to_string())
        })
    })
    .map_err(HoldError::Internal)?;
    let mut ev = NewEvent::in_context("discard_preserved", Status::Success)
        .resource("legal_hold", Some(&hold.to_string()));
    ev.tenant = Some(tenant);
    ev.changes = Some(json!({"case_ref": case_ref, "versions": n}).to_string());
    record(&ev).map_err(HoldError::from)?;
    Ok(n)
}

/// After `erase_subject` anonymized a subject's rows (the `subject_erased` slot): their registered
/// personal data in the versions no active hold covers is replaced by NULL.
pub fn subject_erased(
    tenant: &Ident,
    subject: &Ident,
    _by: &Ident,
) -> Result<Option<(&'static str, serde_json::Value)>, String> {
    if crate::catalog::warden_oid(c"preserved_versions") == pg_sys::InvalidOid {
        return Ok(None);
    }
    let releases = crate::catalog::citus::read_from(c"hold_releases")?;
    let n = cache::as_holds_owner(|| {
        while_writing(|| {
            Spi::connect_mut(|c| {
                Ok::<_, pgrx::spi::Error>(
                    c.update(
                        &format!("UPDATE warden.preserved_versions v
                            SET old_row = v.old_row OPERATOR(pg_catalog.||)
                                          (SELECT coalesce(pg_catalog.jsonb_object_agg(k, NULL::text), '{{}}')
                                             FROM pg_catalog.unnest(v.personal_columns) k),
                                erased_at = pg_catalog.now()
                          WHERE v.tenant = $1 AND v.subject = $2
                            AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(v.holds) k
                                             WHERE NOT EXISTS (SELECT 1 FROM {releases} r WHERE r.hold = k))"),
                        None,
                        &[tenant.as_str().into(), subject.as_str().into()],
                    )?
                    .len() as i64,
                )
            })
            .map_err(|e| e.to_string())
        })
    })?;
    Ok(Some(("preserved_versions", json!(n))))
}
