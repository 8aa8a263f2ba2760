//! Canonical JSON (audit::canonical) straight from jsonb's binary form, for verification: the
//! values are read with PostgreSQL's jsonb iterator where they lie in the row (no text form, no
//! second parse). The bytes are those of `canonical_json(JsonbToCString(x))`, which the sealer's
//! serialization gives: object members sorted by the UTF-8 bytes of their keys (jsonb keeps them
//! by length, then bytes), strings escaped as canonical.rs says, numbers as `numeric_out` writes
//! them (plain decimal with their scale, which is already canonical: jsonb numbers have no exponent
//! and no negative zero), `true`, `false`, `null`. The `#[pg_test]`
//! `jsonb_canonical_matches_the_text_path` checks the equivalence on generated documents.

use pgrx::pg_sys;

use super::canonical::{escape_bytes, CanonicalError, Event, Field};

/// A jsonb value as SPI returns it, not converted: its datum, valid while the SPI result is.
pub struct JsonbDatum(pub pg_sys::Datum);

impl pgrx::FromDatum for JsonbDatum {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbDatum> {
        (!is_null).then_some(JsonbDatum(datum))
    }
}

impl pgrx::IntoDatum for JsonbDatum {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// Appends the canonical JSON of a jsonb datum (detoasted here) to `out`; false when a string
/// is not UTF-8 (a database in another encoding: the event counts as changed).
///
/// # Safety
/// `d` is a jsonb datum; allocations go to the current memory context.
pub unsafe fn canonical_into(d: pg_sys::Datum, out: &mut Vec<u8>) -> bool {
    // SAFETY: see above.
    unsafe {
        // an uncompressed 4-byte header is read where it lies (aligned); anything else detoasted
        let mut v = d.cast_mut_ptr::<pg_sys::varlena>();
        if !pgrx::varlena::varatt_is_4b_u(v) {
            v = pg_sys::pg_detoast_datum(v);
        }
        let jb = v.cast::<pg_sys::Jsonb>();
        container(&raw mut (*jb).root, out)
    }
}

/// The canonical serialization of `ev` (written into `out`) with its `changes` and `context`
/// given as jsonb datums (`ev.changes`/`ev.context` are not read): what the sealer hashes and the
/// verifier checks. `json` is a scratch buffer. `Ok(false)` when a JSON string is not UTF-8.
///
/// # Safety
/// The datums are jsonb; allocations go to the current memory context.
pub unsafe fn event_canonical_into(
    ev: &Event<'_>,
    changes: Option<pg_sys::Datum>,
    context: Option<pg_sys::Datum>,
    json: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<bool, CanonicalError> {
    json.clear();
    let mut ranges = [None, None];
    for (r, d) in ranges.iter_mut().zip([changes, context]) {
        if let Some(d) = d {
            let at = json.len();
            // SAFETY: see above.
            if !unsafe { canonical_into(d, json) } {
                return Ok(false);
            }
            *r = Some(at..json.len());
        }
    }
    let field = |r: &Option<std::ops::Range<usize>>| {
        r.clone()
            .map_or(Field::Null, |r| Field::CanonicalJson(&json[r]))
    };
    ev.canonical_into_with(field(&ranges[0]), field(&ranges[1]), out)?;
    Ok(true)
}

unsafe fn bytes<'a>(p: *const std::ffi::c_char, len: std::ffi::c_int) -> &'a [u8] {
    // SAFETY: a jsonb string: `len` bytes inside the (detoasted) container.
    unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
}

/// One container (object, array or raw scalar), nested containers by recursion.
unsafe fn container(c: *mut pg_sys::JsonbContainer, out: &mut Vec<u8>) -> bool {
    use pg_sys::JsonbIteratorToken::*;
    // SAFETY: `c` is a container of a detoasted jsonb; the iterator frees itself at its end.
    unsafe {
        let mut it = pg_sys::JsonbIteratorInit(c);
        let mut v: pg_sys::JsonbValue = std::mem::zeroed();
        match pg_sys::JsonbIteratorNext(&mut it, &mut v, true) {
            WJB_BEGIN_ARRAY => {
                let raw = v.val.array.rawScalar;
                if !raw {
                    out.push(b'[');
                }
                let mut first = true;
                while pg_sys::JsonbIteratorNext(&mut it, &mut v, true) == WJB_ELEM {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    if !value(&v, out) {
                        return false;
                    }
                }
                if !raw {
                    out.push(b']');
                }
                true
            }
            WJB_BEGIN_OBJECT => {
                let mut members: Vec<(&[u8], pg_sys::JsonbValue)> =
                    Vec::with_capacity(v.val.object.nPairs.max(0) as usize);
                while pg_sys::JsonbIteratorNext(&mut it, &mut v, true) == WJB_KEY {
                    let key = bytes(v.val.string.val, v.val.string.len);
                    if pg_sys::JsonbIteratorNext(&mut it, &mut v, true) != WJB_VALUE {
                        return false;
                    }
                    members.push((key, v));
                }
                // jsonb orders keys by length, then bytes; canonical JSON by bytes
                members.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, x)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let Ok(k) = std::str::from_utf8(k) else {
                        return false;
                    };
                    escape_bytes(k, out);
                    out.push(b':');
                    if !value(x, out) {
                        return false;
                    }
                }
                out.push(b'}');
                true
            }
            _ => false,
        }
    }
}

/// One value: a scalar, or a nested container (`jbvBinary`, as the iterator returns them).
#[allow(non_upper_case_globals)] // PostgreSQL's names for the value types
unsafe fn value(v: &pg_sys::JsonbValue, out: &mut Vec<u8>) -> bool {
    use pg_sys::jbvType::*;
    // SAFETY: `v` came from the iterator: its union member is the one its type names.
    unsafe {
        match v.type_ {
            jbvNull => out.extend_from_slice(b"null"),
            jbvBool => out.extend_from_slice(if v.val.boolean { b"true" } else { b"false" }),
            jbvString => {
                let Ok(s) = std::str::from_utf8(bytes(v.val.string.val, v.val.string.len)) else {
                    return false;
                };
                escape_bytes(s, out);
            }
            jbvNumeric => {
                let Some(d) = pgrx::fcinfo::direct_function_call_as_datum(
                    pg_sys::numeric_out,
                    &[Some(pg_sys::Datum::from(v.val.numeric))],
                ) else {
                    return false;
                };
                let p = d.cast_mut_ptr::<std::ffi::c_char>();
                out.extend_from_slice(std::ffi::CStr::from_ptr(p).to_bytes());
                pg_sys::pfree(p.cast());
            }
            jbvBinary => return container(v.val.binary.data, out),
            _ => return false,
        }
        true
    }
}
