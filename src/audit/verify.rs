//! Verification of the chain by a direct heap scan of `warden.audit_events`: no SPI, no executor,
//! one pass. Each event's own hash is checked against its content and stored `prev_hash` as it is
//! read (that check needs nothing else); the links (each `prev_hash` equal to the previous event's
//! hash) and the gapless ids are checked in id order. The sealer appends in id order, so the heap
//! is normally in id order too; an event met early (after a purge freed space at the start of the
//! table) waits in a small reorder buffer until its predecessor has been seen.

use std::collections::BTreeMap;

use pgrx::pg_sys;

use super::canonical::Event;
use super::chain::{link, Hash, Report, Verifier};
use super::record::PG_EPOCH_OFFSET_US;
use super::seal::to_hash;

/// Columns of `warden.audit_events`.
const COLUMNS: usize = 12;

unsafe fn text_of<'a>(d: pg_sys::Datum) -> &'a [u8] {
    // SAFETY: a text or bytea datum; detoasted (packed form kept) into the current context.
    unsafe {
        let v = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr());
        std::slice::from_raw_parts(
            pgrx::varlena::vardata_any(v).cast::<u8>(),
            pgrx::varlena::varsize_any_exhdr(v),
        )
    }
}

unsafe fn json_of<'a>(d: pg_sys::Datum) -> &'a str {
    // SAFETY: a jsonb datum, detoasted; JsonbToCString writes its text form (valid UTF-8 in a
    // UTF-8 database; anything else counts as changed content).
    unsafe {
        let jb = pg_sys::pg_detoast_datum(d.cast_mut_ptr()).cast::<pg_sys::Jsonb>();
        let len = pgrx::varlena::varsize_any(jb.cast());
        let p = pg_sys::JsonbToCString(std::ptr::null_mut(), &raw mut (*jb).root, len as i32);
        std::str::from_utf8(std::ffi::CStr::from_ptr(p).to_bytes()).unwrap_or("\u{fffd}")
    }
}

unsafe fn uuid_of(d: pg_sys::Datum) -> [u8; 16] {
    let mut u = [0u8; 16];
    // SAFETY: a uuid datum points at 16 bytes.
    unsafe { std::ptr::copy_nonoverlapping(d.cast_mut_ptr::<u8>(), u.as_mut_ptr(), 16) };
    u
}

/// One event as read: id, prev_hash, hash, and whether its hash matches its content.
struct Seen {
    prev: Hash,
    hash: Hash,
    content_ok: bool,
}

/// Verifies the events with `from <= id <= to`, starting after `start` (the event before `from`,
/// or a purge checkpoint; None: the chain's beginning).
pub fn scan(relid: pg_sys::Oid, start: Option<(i64, Hash)>, from: i64, to: i64) -> Report {
    let mut v = Verifier::new(start);
    let mut next = from;
    let mut early: BTreeMap<i64, Seen> = BTreeMap::new();
    // SAFETY: a plain heap scan under AccessShareLock with the active snapshot; per-event memory
    // lives in a context reset after each event.
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        if (*desc).natts as usize != COLUMNS {
            pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
            pgrx::error!("warden.audit_events has been altered: it must have {COLUMNS} columns");
        }
        let scan = pg_sys::heap_beginscan(
            rel,
            pg_sys::GetActiveSnapshot(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::ScanOptions::SO_TYPE_SEQSCAN
                | pg_sys::ScanOptions::SO_ALLOW_STRAT
                | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE,
        );
        let per_event = pg_sys::AllocSetContextCreateInternal(
            pg_sys::CurrentMemoryContext,
            c"warden verify_audit".as_ptr(),
            0,
            8 * 1024,
            8 * 1024 * 1024,
        );
        let mut buf = Vec::with_capacity(1024);
        let mut values = [pg_sys::Datum::from(0usize); COLUMNS];
        let mut nulls = [false; COLUMNS];
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            pg_sys::heap_deform_tuple(tuple, desc, values.as_mut_ptr(), nulls.as_mut_ptr());
            let id = values[0].value() as i64;
            if id < from || id > to {
                continue;
            }
            let old = pg_sys::MemoryContextSwitchTo(per_event);
            let text = |i: usize| -> Option<&str> {
                (!nulls[i]).then(|| std::str::from_utf8(text_of(values[i])).unwrap_or("\u{fffd}"))
            };
            let json = |i: usize| -> Option<&str> { (!nulls[i]).then(|| json_of(values[i])) };
            let prev = to_hash(if nulls[10] { &[] } else { text_of(values[10]) });
            let hash = to_hash(if nulls[11] { &[] } else { text_of(values[11]) });
            let ev = Event {
                id,
                occurred_at: (values[1].value() as i64).saturating_add(PG_EPOCH_OFFSET_US),
                tenant: (!nulls[2]).then(|| uuid_of(values[2])),
                actor: (!nulls[3]).then(|| uuid_of(values[3])),
                action: text(4).unwrap_or_default(),
                resource_type: text(5),
                resource_id: text(6),
                changes: json(7),
                status: text(8).unwrap_or_default(),
                context: json(9),
            };
            let content_ok = ev.canonical_into(&mut buf).is_ok() && link(&prev, &buf) == hash;
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::MemoryContextReset(per_event);
            let seen = Seen {
                prev,
                hash,
                content_ok,
            };
            if id == next {
                if !v.push_checked(id, &seen.prev, &seen.hash, seen.content_ok) {
                    break;
                }
                next += 1;
                while let Some(s) = early.remove(&next) {
                    if !v.push_checked(next, &s.prev, &s.hash, s.content_ok) {
                        break;
                    }
                    next += 1;
                }
            } else {
                early.insert(id, seen);
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::MemoryContextDelete(per_event);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
    }
    // what is left waited for an id that never came: the first of them is after a gap
    if v.intact() {
        if let Some((&id, s)) = early.iter().next() {
            v.push_checked(id, &s.prev, &s.hash, s.content_ok);
        }
    }
    v.finish()
}
