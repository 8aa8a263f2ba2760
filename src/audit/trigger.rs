//! The triggers: `warden._audit_row()` and `warden._audit_truncate()` record data modifications of
//! audited tables; `warden._audit_immutable()` keeps the audit tables append-only.
//!
//! They are plain C-convention trigger functions (declared in sql/audit.sql), because they sit on
//! every audited write: no SPI, no PL/pgSQL, one pass over the row's attributes.

use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::canonical::{escape_into, format_timestamp};
use super::record::{record, NewEvent, Status, PG_EPOCH_OFFSET_US};

/// What replaces the value of a redacted column.
pub const REDACTED: &str = "<redacted>";

const OP_MASK: u32 = pg_sys::TRIGGER_EVENT_OPMASK;

finfo_v1!(pg_finfo_warden_audit_row);
finfo_v1!(pg_finfo_warden_audit_truncate);
finfo_v1!(pg_finfo_warden_audit_immutable);

pub(crate) unsafe fn trigger_data(
    fcinfo: pg_sys::FunctionCallInfo,
    what: &str,
) -> *mut pg_sys::TriggerData {
    // SAFETY: checks that the function was called as a trigger before using the context.
    unsafe {
        let ctx = (*fcinfo).context;
        if ctx.is_null() || (*ctx).type_ != pg_sys::NodeTag::T_TriggerData {
            pgrx::error!("{what} must be called as a trigger");
        }
        (*fcinfo).context.cast()
    }
}

pub(crate) unsafe fn cstr<'a>(p: *const std::ffi::c_char) -> std::borrow::Cow<'a, str> {
    if p.is_null() {
        "".into()
    } else {
        // SAFETY: a NUL-terminated string from PostgreSQL.
        unsafe { CStr::from_ptr(p) }.to_string_lossy()
    }
}

thread_local! {
    /// The last relation named, for (transaction, relation): a statement that changes many rows
    /// looks its table's name up once.
    static NAMED: std::cell::RefCell<(u32, pg_sys::Oid, String)> =
        const { std::cell::RefCell::new((0, pg_sys::InvalidOid, String::new())) };
}

/// `schema.table` of a relation, quoted where needed; for a Citus shard, of its Citus table (the
/// events and refusals of `docs_102008` on a worker are about `docs`, as on the coordinator).
pub(crate) unsafe fn qualified_name(rel: pg_sys::Relation) -> String {
    // SAFETY: a relation opened by the executor; MyProc is this backend's.
    unsafe {
        let lxid = if pg_sys::MyProc.is_null() {
            0
        } else {
            (*pg_sys::MyProc).lxid
        };
        let relid = (*rel).rd_id;
        if let Some(n) =
            NAMED.with_borrow(|c| (lxid != 0 && c.0 == lxid && c.1 == relid).then(|| c.2.clone()))
        {
            return n;
        }
        let shell = match crate::catalog::citus::shard_of(relid) {
            Ok(Some(parent)) => {
                let ns = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(parent));
                let name = pg_sys::get_rel_name(parent);
                (!ns.is_null() && !name.is_null())
                    .then(|| cstr(pg_sys::quote_qualified_identifier(ns, name)).into_owned())
            }
            _ => None,
        };
        let n = shell.unwrap_or_else(|| {
            let ns = pg_sys::get_namespace_name((*(*rel).rd_rel).relnamespace);
            let name = (*(*rel).rd_rel).relname.data.as_ptr();
            cstr(pg_sys::quote_qualified_identifier(ns, name)).into_owned()
        });
        NAMED.set((lxid, relid, n.clone()));
        n
    }
}

/// The trigger's arguments: the names of the redacted columns.
unsafe fn redacted_columns(td: *mut pg_sys::TriggerData) -> Vec<String> {
    // SAFETY: tgargs holds tgnargs C strings.
    unsafe {
        let t = (*td).tg_trigger;
        (0..(*t).tgnargs as usize)
            .map(|i| cstr(*(*t).tgargs.add(i)).into_owned())
            .collect()
    }
}

/// One attribute's value as JSON: numbers and booleans as themselves, json and jsonb embedded,
/// timestamptz in UTC (the same whatever the session's TimeZone), date and time types in ISO 8601
/// (whatever its DateStyle), everything else as the string its output function gives.
unsafe fn value_json(typid: pg_sys::Oid, value: pg_sys::Datum, out: &mut String) {
    // SAFETY: `value` is a non-null datum of type `typid`.
    unsafe {
        match typid {
            pg_sys::BOOLOID => out.push_str(if value.value() != 0 { "true" } else { "false" }),
            pg_sys::TIMESTAMPTZOID => {
                let ts = value.value() as i64;
                if ts == i64::MAX {
                    out.push_str("\"infinity\"");
                } else if ts == i64::MIN {
                    out.push_str("\"-infinity\"");
                } else {
                    out.push('"');
                    out.push_str(&format_timestamp(ts.saturating_add(PG_EPOCH_OFFSET_US)));
                    out.push('"');
                }
            }
            // ISO 8601 whatever the session's DateStyle (as to_jsonb writes them)
            pg_sys::DATEOID | pg_sys::TIMESTAMPOID | pg_sys::TIMEOID | pg_sys::TIMETZOID => {
                let p = pg_sys::JsonEncodeDateTime(
                    std::ptr::null_mut(),
                    value,
                    typid,
                    std::ptr::null(),
                );
                escape_into(&cstr(p), out);
            }
            _ => {
                let mut outfn = pg_sys::InvalidOid;
                let mut varlena = false;
                pg_sys::getTypeOutputInfo(typid, &mut outfn, &mut varlena);
                let text = cstr(pg_sys::OidOutputFunctionCall(outfn, value));
                let raw = match typid {
                    pg_sys::INT2OID
                    | pg_sys::INT4OID
                    | pg_sys::INT8OID
                    | pg_sys::OIDOID
                    | pg_sys::NUMERICOID
                    | pg_sys::FLOAT4OID
                    | pg_sys::FLOAT8OID => is_json_number(&text),
                    pg_sys::JSONOID | pg_sys::JSONBOID => true,
                    _ => false,
                };
                if raw {
                    out.push_str(&text);
                } else {
                    escape_into(&text, out);
                }
            }
        }
    }
}

/// Whether a number's text is a JSON number (not NaN or Infinity).
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = if b.first() == Some(&b'-') { &b[1..] } else { b };
    digits.first().is_some_and(u8::is_ascii_digit)
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Whether two datums of one attribute are the same bytes (PostgreSQL's datumIsEqual: no
/// detoasting, so an unchanged toasted value compares equal by its pointer).
pub(crate) unsafe fn same_datum(a: pg_sys::Datum, b: pg_sys::Datum, byval: bool, len: i16) -> bool {
    // SAFETY: both datums are of the attribute's type.
    unsafe {
        if byval {
            return a == b;
        }
        let (pa, pb) = (a.cast_mut_ptr::<u8>(), b.cast_mut_ptr::<u8>());
        let (la, lb) = match len {
            -1 => (
                pgrx::varlena::varsize_any(pa.cast()),
                pgrx::varlena::varsize_any(pb.cast()),
            ),
            -2 => (
                CStr::from_ptr(pa.cast()).to_bytes().len(),
                CStr::from_ptr(pb.cast()).to_bytes().len(),
            ),
            n => (n as usize, n as usize),
        };
        la == lb && std::slice::from_raw_parts(pa, la) == std::slice::from_raw_parts(pb, lb)
    }
}

struct Row {
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

unsafe fn deform(tuple: pg_sys::HeapTuple, desc: pg_sys::TupleDesc) -> Row {
    // SAFETY: a tuple of the relation's descriptor.
    unsafe {
        let n = (*desc).natts as usize;
        let mut row = Row {
            values: vec![pg_sys::Datum::from(0usize); n],
            nulls: vec![true; n],
        };
        pg_sys::heap_deform_tuple(tuple, desc, row.values.as_mut_ptr(), row.nulls.as_mut_ptr());
        row
    }
}

/// Columns registered as personal data: never recorded as values, but as a keyed hash
/// (`"hmac:<hex>"`), or as erased while `warden.erase_subject`/`delete_account` anonymizes them.
struct Personal<'a> {
    columns: &'a [String],
    key: &'a [u8],
    /// The old values are being erased: record them as erased, not even hashed.
    erased: bool,
}

/// What replaces an erased personal value in an audit event.
pub const ERASED: &str = "<erased>";

unsafe fn personal_json(typid: pg_sys::Oid, value: pg_sys::Datum, key: &[u8], out: &mut String) {
    // SAFETY: `value` is a non-null datum of type `typid`.
    unsafe {
        let mut outfn = pg_sys::InvalidOid;
        let mut varlena = false;
        pg_sys::getTypeOutputInfo(typid, &mut outfn, &mut varlena);
        let p = pg_sys::OidOutputFunctionCall(outfn, value);
        let text = if p.is_null() {
            &[][..]
        } else {
            CStr::from_ptr(p).to_bytes()
        };
        out.push_str("\"hmac:");
        out.push_str(&crate::catalog::subjects::pseudonym(key, text));
        out.push('"');
    }
}

/// A relation's registered personal-data columns and the key to hash them with.
type Registered = std::rc::Rc<(Vec<String>, Vec<u8>)>;
/// (transaction, relation, holds generation) and what was found for them.
type PersonalCache = Option<(u32, pg_sys::Oid, u64, Option<Registered>)>;

thread_local! {
    /// [`personal_columns`] for (transaction, relation, holds generation): a statement that writes
    /// many rows reads the registry and derives the key once.
    static PERSONAL: std::cell::RefCell<PersonalCache> =
        const { std::cell::RefCell::new(None) };
}

/// The registered personal-data columns of the relation, and the key to hash them with.
unsafe fn personal_columns(rel: pg_sys::Relation) -> Option<Registered> {
    // SAFETY: an open relation.
    let relid = unsafe { (*rel).rd_id };
    let lxid = crate::context::local_xid();
    let generation = crate::catalog::generation();
    if let Some(hit) = PERSONAL.with_borrow(|p| {
        p.as_ref()
            .filter(|(l, r, g, _)| lxid != 0 && *l == lxid && *r == relid && *g == generation)
            .map(|(_, _, _, v)| v.clone())
    }) {
        return hit;
    }
    let registry = match crate::catalog::subjects::registry() {
        Ok(r) => r,
        Err(e) => fail_personal(format!("the personal data registry could not be read: {e}")),
    };
    let found = if registry.personal_columns.is_empty() {
        None
    } else {
        let lineage = match crate::catalog::lineage(relid) {
            Ok(l) => l,
            Err(e) => fail_personal(e),
        };
        registry.personal_columns(&lineage).map(|cols| {
            let key = crate::catalog::subjects::key().unwrap_or_else(|| {
                fail_personal(
                    "no key for keyed hashes: neither warden.pseudonym_key nor warden.jwt_secret is set"
                        .into(),
                )
            });
            std::rc::Rc::new((cols.to_vec(), key))
        })
    };
    PERSONAL.set(Some((lxid, relid, generation, found.clone())));
    found
}

/// Registered values must never reach the trail: when warden cannot tell which they are, the
/// write fails (fail closed).
fn fail_personal(reason: String) -> ! {
    let e = super::AuditError::PersonalData(reason);
    crate::errors::report(&e).report(PgLogLevel::ERROR);
    unreachable!()
}

/// Appends `"column": value` members for the attributes `pick` selects.
unsafe fn members(
    desc: pg_sys::TupleDesc,
    row: &Row,
    redact: &[String],
    personal: Option<&Personal<'_>>,
    pick: impl Fn(usize) -> bool,
    out: &mut String,
) {
    // SAFETY: attributes of the tuple's own descriptor.
    unsafe {
        out.push('{');
        let mut first = true;
        for i in 0..(*desc).natts as usize {
            let att = (*desc).attrs.as_ptr().add(i);
            if (*att).attisdropped || !pick(i) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let name = cstr((*att).attname.data.as_ptr());
            escape_into(&name, out);
            out.push(':');
            let personal = personal.filter(|p| p.columns.iter().any(|c| *c == name));
            if redact.iter().any(|r| *r == name) {
                escape_into(REDACTED, out);
            } else if row.nulls[i] {
                out.push_str("null");
            } else if let Some(p) = personal {
                if p.erased {
                    escape_into(ERASED, out);
                } else {
                    personal_json((*att).atttypid, row.values[i], p.key, out);
                }
            } else {
                value_json((*att).atttypid, row.values[i], out);
            }
        }
        out.push('}');
    }
}

/// The resource id of a row: its primary key's value (a JSON array of the values for a key of
/// several columns), or `ctid:(block,offset)` for a table without a primary key.
unsafe fn resource_id(
    rel: pg_sys::Relation,
    desc: pg_sys::TupleDesc,
    row: &Row,
    tuple: pg_sys::HeapTuple,
) -> String {
    // SAFETY: relcache lookups on an open relation; attributes of its descriptor.
    unsafe {
        let pk = pg_sys::RelationGetIndexAttrBitmap(
            rel,
            pg_sys::IndexAttrBitmapKind::INDEX_ATTR_BITMAP_PRIMARY_KEY,
        );
        let mut cols = Vec::new();
        let mut x = -1;
        loop {
            x = pg_sys::bms_next_member(pk, x);
            if x < 0 {
                break;
            }
            let attno = x + pg_sys::FirstLowInvalidHeapAttributeNumber;
            if attno > 0 {
                cols.push(attno as usize - 1);
            }
        }
        if cols.is_empty() {
            let tid = (*tuple).t_self;
            let block = (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo);
            return format!("ctid:({block},{})", tid.ip_posid);
        }
        let text_of = |i: usize| -> Option<String> {
            if row.nulls[i] {
                return None;
            }
            let att = (*desc).attrs.as_ptr().add(i);
            let mut outfn = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo((*att).atttypid, &mut outfn, &mut varlena);
            Some(cstr(pg_sys::OidOutputFunctionCall(outfn, row.values[i])).into_owned())
        };
        if cols.len() == 1 {
            return text_of(cols[0]).unwrap_or_default();
        }
        let mut s = String::from("[");
        for (k, &i) in cols.iter().enumerate() {
            if k > 0 {
                s.push(',');
            }
            match text_of(i) {
                Some(t) => escape_into(&t, &mut s),
                None => s.push_str("null"),
            }
        }
        s.push(']');
        s
    }
}

fn fail(e: super::record::RecordError) -> ! {
    let e = super::AuditError::Record(e);
    crate::errors::report(&e).report(PgLogLevel::ERROR);
    unreachable!()
}

/// AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on an audited table.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_audit_row(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._audit_row()");
        let rel = (*td).tg_relation;
        let desc = (*rel).rd_att;
        let redact = redacted_columns(td);
        let registered = personal_columns(rel);
        let personal = registered.as_ref().map(|r| Personal {
            columns: &r.0,
            key: &r.1,
            erased: false,
        });
        let erasing = personal.as_ref().map(|p| Personal {
            erased: crate::catalog::subjects::erasing(),
            ..*p
        });
        let (p, old_p) = (personal.as_ref(), erasing.as_ref());
        let op = (*td).tg_event & OP_MASK;
        let mut changes = String::with_capacity(256);
        let (action, id) = match op {
            pg_sys::TRIGGER_EVENT_INSERT => {
                let new = deform((*td).tg_trigtuple, desc);
                changes.push_str("{\"new\":");
                members(desc, &new, &redact, p, |_| true, &mut changes);
                ("insert", resource_id(rel, desc, &new, (*td).tg_trigtuple))
            }
            pg_sys::TRIGGER_EVENT_DELETE => {
                let old = deform((*td).tg_trigtuple, desc);
                changes.push_str("{\"old\":");
                members(desc, &old, &redact, old_p, |_| true, &mut changes);
                ("delete", resource_id(rel, desc, &old, (*td).tg_trigtuple))
            }
            _ => {
                let old = deform((*td).tg_trigtuple, desc);
                let new = deform((*td).tg_newtuple, desc);
                let changed: Vec<bool> = (0..(*desc).natts as usize)
                    .map(|i| {
                        let att = (*desc).attrs.as_ptr().add(i);
                        match (old.nulls[i], new.nulls[i]) {
                            (true, true) => false,
                            (false, false) => !same_datum(
                                old.values[i],
                                new.values[i],
                                (*att).attbyval,
                                (*att).attlen,
                            ),
                            _ => true,
                        }
                    })
                    .collect();
                changes.push_str("{\"old\":");
                members(desc, &old, &redact, old_p, |i| changed[i], &mut changes);
                changes.push_str(",\"new\":");
                members(desc, &new, &redact, p, |i| changed[i], &mut changes);
                ("update", resource_id(rel, desc, &new, (*td).tg_newtuple))
            }
        };
        changes.push('}');
        let mut ev = NewEvent::in_context(action, Status::Success);
        ev.resource_type = Some(qualified_name(rel));
        ev.resource_id = Some(id);
        ev.changes = Some(changes);
        if let Err(e) = record(&ev) {
            fail(e);
        }
        pg_sys::Datum::from(0usize)
    }
}

/// AFTER TRUNCATE FOR EACH STATEMENT on an audited table (and on each of its partitions).
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_audit_truncate(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._audit_truncate()");
        let mut ev = NewEvent::in_context("truncate", Status::Success);
        ev.resource_type = Some(qualified_name((*td).tg_relation));
        if let Err(e) = record(&ev) {
            fail(e);
        }
        pg_sys::Datum::from(0usize)
    }
}

/// BEFORE UPDATE OR DELETE and BEFORE TRUNCATE, for each statement, on the audit tables: refused for
/// every role, superusers included. The only deletes let through are the sealer's (pending rows it
/// is sealing) and `warden.purge_audit()`'s (events past retention), flagged in this backend's
/// memory, which no SQL can set.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn warden_audit_immutable(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    // SAFETY: called by the trigger manager with valid TriggerData.
    unsafe {
        let td = trigger_data(fcinfo, "warden._audit_immutable()");
        let rel = (*td).tg_relation;
        let op = (*td).tg_event & OP_MASK;
        let name = cstr((*(*rel).rd_rel).relname.data.as_ptr()).into_owned();
        if op == pg_sys::TRIGGER_EVENT_DELETE {
            let allowed = match name.as_str() {
                "audit_pending" => super::seal::sealing(),
                "audit_events" => super::seal::purging(),
                _ => false,
            };
            if allowed {
                // a statement trigger's result is ignored
                return pg_sys::Datum::from(0usize);
            }
        }
        let verb = match op {
            pg_sys::TRIGGER_EVENT_DELETE => "DELETE",
            pg_sys::TRIGGER_EVENT_UPDATE => "UPDATE",
            pg_sys::TRIGGER_EVENT_TRUNCATE => "TRUNCATE",
            _ => "INSERT",
        };
        let e = super::AuditError::Immutable {
            verb,
            table: format!("warden.{name}"),
        };
        crate::errors::report(&e).report(PgLogLevel::ERROR);
        unreachable!()
    }
}

#[cfg(test)]
mod tests {
    use super::is_json_number;

    #[test]
    fn numbers_that_json_cannot_carry_are_quoted() {
        for n in ["0", "-1", "1.50", "1e+10", "-0.5"] {
            assert!(is_json_number(n), "{n}");
        }
        for n in ["NaN", "Infinity", "-Infinity", "", "-"] {
            assert!(!is_json_number(n), "{n}");
        }
    }

    #[test]
    fn the_redaction_marker_is_a_plain_string() {
        assert_eq!(
            super::super::record::json_str(super::REDACTED),
            "\"<redacted>\""
        );
    }
}
