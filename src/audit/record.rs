//! The event path every module calls: [`record`] writes an event in the current transaction,
//! [`record_autonomous`] hands it to the sealing worker so that it is kept even though the current
//! transaction is about to fail.
//!
//! A recorded event goes to `warden.audit_pending`, a table with no index and no privileges for
//! anyone, by a direct heap insert (no SPI, no permission check, no plan): the writer pays for one
//! heap tuple and nothing else. It commits or rolls back with the writer's transaction; the sealing
//! worker (see `worker`) later moves committed events into `warden.audit_events`, numbered and
//! chained. Writers therefore never wait for one another.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::pg_sys;

use super::canonical::{escape_into, format_timestamp};
use crate::types::ident::Ident;

/// Seconds between 1970-01-01 and PostgreSQL's epoch 2000-01-01, in microseconds.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

/// The columns of `warden.audit_pending`, in attribute order.
pub const PENDING_COLUMNS: usize = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Success,
    Denied,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Denied => "denied",
            Status::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "success" => Some(Status::Success),
            "denied" => Some(Status::Denied),
            "error" => Some(Status::Error),
            _ => None,
        }
    }
}

/// An event before it is sealed: everything but the id and the hashes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub tenant: Option<Ident>,
    pub actor: Option<Ident>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// JSON text.
    pub changes: Option<String>,
    pub status: Status,
    /// Extra members of the `context` document (a JSON object's members, without braces), added
    /// after the standard ones.
    pub context_extra: Option<String>,
}

impl NewEvent {
    /// An event of the current context's tenant and actor (both NULL without a context).
    pub fn in_context(action: &str, status: Status) -> NewEvent {
        let claims = crate::context::current();
        NewEvent {
            tenant: claims.as_ref().map(|c| c.tenant.clone()),
            actor: claims.as_ref().map(|c| c.actor.clone()),
            action: action.to_owned(),
            resource_type: None,
            resource_id: None,
            changes: None,
            status,
            context_extra: None,
        }
    }

    pub fn resource(mut self, kind: &str, id: Option<&str>) -> NewEvent {
        self.resource_type = Some(kind.to_owned());
        self.resource_id = id.map(str::to_owned);
        self
    }

    pub fn changes(mut self, json: String) -> NewEvent {
        self.changes = Some(json);
        self
    }
}

thread_local! {
    /// The standard members of this transaction's context document, for (lxid, role, xid).
    static CONTEXT: std::cell::RefCell<(u32, pg_sys::Oid, u32, String)> =
        const { std::cell::RefCell::new((0, pg_sys::InvalidOid, 0, String::new())) };
}

/// The `context` document of an event: who and where, from the server's own state (never from
/// anything the client sends as data). Built once per transaction and role.
pub fn context_json(xid: Option<u32>, extra: Option<&str>) -> String {
    let lxid = crate::context::local_xid();
    // SAFETY: reads the current role.
    let user = unsafe { pg_sys::GetOuterUserId() };
    let xid = xid.unwrap_or(0);
    let mut s = CONTEXT
        .with_borrow(|c| {
            (lxid != 0 && c.0 == lxid && c.1 == user && c.2 == xid).then(|| c.3.clone())
        })
        .unwrap_or_else(|| {
            let base = context_members(xid, user);
            CONTEXT.set((lxid, user, xid, base.clone()));
            base
        });
    if let Some(e) = extra.filter(|e| !e.is_empty()) {
        s.push(',');
        s.push_str(e);
    }
    s.push('}');
    s
}

fn context_members(xid: u32, user: pg_sys::Oid) -> String {
    // SAFETY: reads of backend globals and catalog lookups that do not raise (missing_ok).
    unsafe {
        let mut s = String::with_capacity(160);
        s.push_str("{\"application_name\":");
        json_cstr(pg_sys::application_name, &mut s);
        s.push_str(",\"backend_pid\":");
        let pid = pg_sys::MyProcPid;
        s.push_str(&pid.to_string());
        s.push_str(",\"client_addr\":");
        match client_addr() {
            Some(a) => escape_into(&a, &mut s),
            None => s.push_str("null"),
        }
        s.push_str(",\"database_role\":");
        json_cstr(pg_sys::GetUserNameFromId(user, true), &mut s);
        s.push_str(",\"transaction_id\":");
        if xid != 0 {
            s.push_str(&xid.to_string());
        } else {
            s.push_str("null");
        }
        s
    }
}

/// The client's address (`inet_client_addr()`), NULL over a Unix socket and in a worker.
fn client_addr() -> Option<String> {
    // SAFETY: inet_client_addr takes no arguments and returns NULL or an inet; inet_out formats it.
    unsafe {
        if pg_sys::MyProcPort.is_null() {
            return None;
        }
        let d = pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_client_addr, &[])?;
        let text = pgrx::fcinfo::direct_function_call_as_datum(pg_sys::inet_out, &[Some(d)])?;
        Some(
            CStr::from_ptr(text.cast_mut_ptr::<std::ffi::c_char>())
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// Appends a C string as a JSON string (`null` for a null pointer).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub unsafe fn json_cstr(p: *const std::ffi::c_char, out: &mut String) {
    if p.is_null() {
        out.push_str("null");
    } else {
        // SAFETY: a NUL-terminated string owned by PostgreSQL.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy();
        escape_into(&s, out);
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    escape_into(s, &mut out);
    out
}

/// The server clock, as a PostgreSQL timestamptz.
pub fn now() -> pg_sys::TimestampTz {
    // SAFETY: reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

/// A timestamptz as the canonical serialization writes it.
pub fn canonical_time(ts: pg_sys::TimestampTz) -> String {
    format_timestamp(ts.saturating_add(PG_EPOCH_OFFSET_US))
}

thread_local! {
    /// `warden.audit_pending` for the transaction it was looked up in.
    static PENDING: Cell<(u32, pg_sys::Oid)> = const { Cell::new((0, pg_sys::InvalidOid)) };
    /// Whether this transaction recorded an event (the sealer is woken at commit).
    static RECORDED: Cell<bool> = const { Cell::new(false) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
    /// The lowest and highest block of warden.audit_pending this transaction wrote events to
    /// (u32::MAX / 0 when none): handed to the sealing worker at commit.
    static TXN_BLOCKS: Cell<(u32, u32)> = const { Cell::new((u32::MAX, 0)) };
}

/// The blocks of warden.audit_pending this transaction wrote events to, and forgets them (the
/// sealing worker seals its own transaction's events in the same pass).
pub fn take_txn_blocks() -> Option<(u32, u32)> {
    let (lo, hi) = TXN_BLOCKS.replace((u32::MAX, 0));
    (lo <= hi).then_some((lo, hi))
}

/// The oid of `warden.audit_pending` in this database, or InvalidOid when warden is not installed.
pub fn pending_relid() -> pg_sys::Oid {
    let lxid = crate::context::local_xid();
    let (cached_lxid, oid) = PENDING.get();
    if lxid != 0 && cached_lxid == lxid {
        return oid;
    }
    // SAFETY: catalog lookups that do not raise (missing_ok).
    let oid = unsafe {
        let ns = pg_sys::get_namespace_oid(c"warden".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            pg_sys::InvalidOid
        } else {
            pg_sys::get_relname_relid(c"audit_pending".as_ptr(), ns)
        }
    };
    PENDING.set((lxid, oid));
    oid
}

/// Why an event could not be recorded in the current transaction.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the audit trail is not installed in this database (CREATE EXTENSION warden)")]
    NotInstalled,
    #[error("warden.audit_pending has been altered (it must have {PENDING_COLUMNS} columns and no index)")]
    Altered,
    #[error("this database's audit trail records uuid tenants and actors only, until its warden SQL is updated")]
    NeedsUpdate,
}

/// Whether this database has the audit trail (an older version of warden's SQL, before
/// `ALTER EXTENSION warden UPDATE`, does not: warden's own calls then record nothing).
pub fn installed() -> bool {
    pending_relid() != pg_sys::InvalidOid
}

thread_local! {
    /// This transaction's standard context document as a jsonb datum (in TopTransactionContext),
    /// for (lxid, role, xid): parsed once per transaction, not once per event.
    static CONTEXT_DATUM: Cell<(u32, pg_sys::Oid, u32, usize)> =
        const { Cell::new((0, pg_sys::InvalidOid, 0, 0)) };
}

/// The context column's value: a document to parse, or one parsed already.
pub enum ContextValue<'a> {
    Text(&'a str),
    Jsonb(pg_sys::Datum),
}

/// Records `ev` in the current transaction: it is kept exactly when the transaction commits.
pub fn record(ev: &NewEvent) -> Result<(), RecordError> {
    // SAFETY: assigns a transaction id (the transaction writes anyway).
    let xid = unsafe { pg_sys::GetTopTransactionId() }.into_inner();
    if ev.context_extra.is_some() {
        let context = context_json(Some(xid), ev.context_extra.as_deref());
        insert_pending(ev, now(), ContextValue::Text(&context))?;
    } else {
        let lxid = crate::context::local_xid();
        // SAFETY: reads the current role.
        let user = unsafe { pg_sys::GetOuterUserId() };
        let (l, u, x, d) = CONTEXT_DATUM.get();
        let datum = if lxid != 0 && l == lxid && u == user && x == xid && d != 0 {
            pg_sys::Datum::from(d)
        } else {
            let context = context_json(Some(xid), None);
            // SAFETY: parsed into TopTransactionContext, which lives as long as the cache key.
            let d = unsafe {
                let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopTransactionContext);
                let mut v = pg_sys::Datum::from(0usize);
                let mut null = false;
                set_jsonb(&mut v, &mut null, Some(&context));
                pg_sys::MemoryContextSwitchTo(old);
                v
            };
            CONTEXT_DATUM.set((lxid, user, xid, d.value()));
            d
        };
        insert_pending(ev, now(), ContextValue::Jsonb(datum))?;
    }
    RECORDED.set(true);
    ensure_callback();
    Ok(())
}

/// Inserts one row into `warden.audit_pending`, bypassing SQL (and so permissions, which no role
/// but the superuser has on the table).
pub fn insert_pending(
    ev: &NewEvent,
    occurred_at: pg_sys::TimestampTz,
    context: ContextValue<'_>,
) -> Result<(), RecordError> {
    let relid = pending_relid();
    if relid == pg_sys::InvalidOid {
        return Err(RecordError::NotInstalled);
    }
    // SAFETY: the relation is opened and locked for the insert; every datum is built for the
    // column type it goes into (checked by the column count and the table's creation script).
    unsafe {
        let rel = pg_sys::table_open(relid, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
        let desc = (*rel).rd_att;
        if (*desc).natts as usize != PENDING_COLUMNS || (*(*rel).rd_rel).relhasindex {
            pg_sys::table_close(rel, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
            return Err(RecordError::Altered);
        }
        let mut values = [pg_sys::Datum::from(0usize); PENDING_COLUMNS];
        let mut nulls = [false; PENDING_COLUMNS];
        values[0] = pg_sys::Datum::from(occurred_at);
        // tenant and actor are text since 0.6.0; a database not yet updated has uuid columns,
        // which take uuid identifiers only (anything else waits for ALTER EXTENSION UPDATE)
        let uuid_columns = (*(*desc).attrs.as_ptr().add(1)).atttypid == pg_sys::UUIDOID;
        for (i, id) in [(1, ev.tenant.as_ref()), (2, ev.actor.as_ref())] {
            if uuid_columns {
                let u = match id {
                    None => None,
                    Some(id) => match id.as_uuid() {
                        Some(u) => Some(*u.as_bytes()),
                        None => {
                            pg_sys::table_close(rel, pg_sys::RowExclusiveLock as pg_sys::LOCKMODE);
                            return Err(RecordError::NeedsUpdate);
                        }
                    },
                };
                set_uuid(&mut values[i], &mut nulls[i], u);
            } else {
                set_text(&mut values[i], &mut nulls[i], id.map(Ident::as_str));
            }
        }
        set_text(&mut values[3], &mut nulls[3], Some(&ev.action));
        set_text(&mut values[4], &mut nulls[4], ev.resource_type.as_deref());
        set_text(&mut values[5], &mut nulls[5], ev.resource_id.as_deref());
        set_jsonb(&mut values[6], &mut nulls[6], ev.changes.as_deref());
        set_text(&mut values[7], &mut nulls[7], Some(ev.status.as_str()));
        match context {
            ContextValue::Text(t) => set_jsonb(&mut values[8], &mut nulls[8], Some(t)),
            ContextValue::Jsonb(d) => values[8] = d,
        }
        let tuple = pg_sys::heap_form_tuple(desc, values.as_mut_ptr(), nulls.as_mut_ptr());
        pg_sys::simple_heap_insert(rel, tuple);
        // where the sealer should look once this commits (t_self is set by the insert)
        let tid = (*tuple).t_self;
        let block = (u32::from(tid.ip_blkid.bi_hi) << 16) | u32::from(tid.ip_blkid.bi_lo);
        let (lo, hi) = TXN_BLOCKS.get();
        TXN_BLOCKS.set((lo.min(block), hi.max(block)));
        ensure_callback();
        pg_sys::heap_freetuple(tuple);
        pg_sys::table_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    }
    Ok(())
}

unsafe fn set_uuid(v: &mut pg_sys::Datum, null: &mut bool, u: Option<[u8; 16]>) {
    match u {
        // SAFETY: a palloc'd 16-byte pg_uuid_t.
        Some(u) => unsafe {
            let p = pg_sys::palloc(16).cast::<u8>();
            std::ptr::copy_nonoverlapping(u.as_ptr(), p, 16);
            *v = pg_sys::Datum::from(p);
        },
        None => *null = true,
    }
}

unsafe fn set_text(v: &mut pg_sys::Datum, null: &mut bool, s: Option<&str>) {
    match s {
        // SAFETY: builds a palloc'd text from the bytes.
        Some(s) => unsafe {
            let t = pg_sys::cstring_to_text_with_len(s.as_ptr().cast(), s.len() as i32);
            *v = pg_sys::Datum::from(t);
        },
        None => *null = true,
    }
}

unsafe fn set_jsonb(v: &mut pg_sys::Datum, null: &mut bool, json: Option<&str>) {
    match json {
        // SAFETY: jsonb_in parses a NUL-terminated copy; invalid JSON raises an ERROR (22P02),
        // which the caller's transaction reports.
        Some(j) => unsafe {
            let c = std::ffi::CString::new(j.replace('\0', "")).unwrap_or_default();
            *v = pgrx::fcinfo::direct_function_call_as_datum(
                pg_sys::jsonb_in,
                &[Some(pg_sys::Datum::from(c.as_ptr()))],
            )
            .unwrap_or(pg_sys::Datum::from(0usize));
        },
        None => *null = true,
    }
}

fn ensure_callback() {
    if !CALLBACK.get() {
        // SAFETY: registers a transaction callback once per backend.
        unsafe { pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut()) };
        CALLBACK.set(true);
    }
}

/// At commit, tells the sealing worker of this database that there is something to seal (starting
/// it when it is not running). Nothing here may raise an error: the transaction has committed.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        // after the commit is visible to other transactions: the worker's next pass sees the rows
        pg_sys::XactEvent::XACT_EVENT_COMMIT => {
            if let Some((lo, hi)) = take_txn_blocks() {
                super::worker::hint_blocks(lo, hi);
            }
            if RECORDED.replace(false) {
                // SAFETY: MyDatabaseId is set in every backend that can record.
                super::worker::notify(unsafe { pg_sys::MyDatabaseId });
            }
        }
        // a prepared transaction commits elsewhere: its events are found by the worker's
        // periodic scan of the whole table
        pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            take_txn_blocks();
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            TXN_BLOCKS.set((u32::MAX, 0));
            RECORDED.set(false);
            super::seal::reset_flags();
        }
        _ => {}
    }
}

/// Records `ev` through the sealing worker, in the worker's own transaction, so that it is kept
/// even if the caller's transaction then fails (a denied authentication, a refused destruction).
/// Waits at most `warden.audit_autonomous_wait` for the worker to confirm. Returns whether the
/// event is known to be committed; when it is not (the queue was full, no worker could start, the
/// wait ran out, a hot standby), the shortfall is counted in `warden.audit_queue_status()` and
/// logged in the server log, and the caller's own error still stands.
pub fn record_autonomous(ev: &NewEvent) -> bool {
    if !installed() {
        return false;
    }
    // SAFETY: reads backend globals.
    let (xid, standby) = unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny().into_inner(),
            pg_sys::RecoveryInProgress(),
        )
    };
    let context = context_json(Some(xid), ev.context_extra.as_deref());
    let rec = super::worker::encode(ev, now(), &context);
    let ok = if standby {
        super::worker::count_unrecorded();
        false
    } else {
        super::worker::submit(&rec)
    };
    if !ok {
        // the server log only: the caller gets its own error, the shortfall is the operator's
        pgrx::log!(
            "warden: audit event \"{}\" ({}) could not be recorded: {}",
            ev.action,
            ev.status.as_str(),
            if standby {
                "this is a hot standby"
            } else {
                "the sealing worker did not confirm it (see warden.audit_queue_status())"
            }
        );
    }
    ok
}

/// Queues `ev` for the sealing worker without waiting for its commit (the PHI read log: a wait
/// per statement would cost more than the read). Returns whether it was queued; the worker commits
/// it within `warden.audit_seal_interval`. Not on a hot standby.
pub fn record_queued(ev: &NewEvent) -> bool {
    if !installed() {
        return false;
    }
    // SAFETY: reads backend globals.
    let (xid, standby) = unsafe {
        (
            pg_sys::GetTopTransactionIdIfAny().into_inner(),
            pg_sys::RecoveryInProgress(),
        )
    };
    if standby {
        super::worker::count_unrecorded();
        return false;
    }
    let context = context_json(Some(xid), ev.context_extra.as_deref());
    let rec = super::worker::encode(ev, now(), &context);
    super::worker::push(&rec)
}
