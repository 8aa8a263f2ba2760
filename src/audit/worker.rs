//! The sealing worker: one dynamic background worker per database, started on demand, that moves
//! committed events from `warden.audit_pending` into `warden.audit_events` (numbered and chained,
//! see `seal`) and commits the events queued for it in shared memory by `record_autonomous`.
//!
//! Shared memory holds one slot per database being served: the worker's state and latch, a
//! counter of commits that recorded events, and a bounded queue (`queue::Ring`) of autonomous
//! events. Writers never wait for the worker: at commit they bump the counter and set its latch,
//! or register a worker when there is none. The worker exits after `IDLE_EXIT` without work, so
//! that it never keeps a database from being dropped for long; the counter makes that exit race
//! free (it exits only if no commit was counted since its last sealing pass began).
//!
//! Without `shared_preload_libraries = 'warden'` there is no shared memory and no worker: events
//! still go to `warden.audit_pending` and are sealed by `SELECT warden.seal_audit()`.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::canonical::{decode_fields, encode_field, Field};
use super::queue::Ring;
use super::record::{NewEvent, Status};
use crate::types::ident::Ident;

/// Databases served at the same time (a further database waits for a free slot: its events stay
/// pending until then).
pub const SLOTS: usize = 8;
/// A worker with nothing to do for this long exits (a new one starts with the next commit).
const IDLE_EXIT: Duration = Duration::from_secs(2);
/// How often a running worker seals: `warden.audit_seal_interval`. Writers do not wake it (a
/// wake-up per commit would cost a sealing pass, a transaction with four statements, per commit):
/// it seals every interval, whatever has been committed since, so an event is normally sealed
/// within that time. Only an autonomous event, whose caller waits, wakes it at once.
fn pass_interval() -> Duration {
    Duration::from_millis(crate::gucs::AUDIT_SEAL_INTERVAL.get().max(1) as u64)
}
/// How often a pass looks at the whole pending table rather than only at the blocks committed
/// writers hinted since the last pass (a safety net: a failed pass hands its hints back, a
/// `COMMIT PREPARED` asks for a whole scan; this finds what a commit made while no slot served the
/// database left).
const FULL_SCAN_EVERY: Duration = Duration::from_secs(10);
/// A slot marked as starting for longer than this is taken to have failed to start.
const START_TIMEOUT_US: i64 = 10_000_000;

const FREE: u32 = 0;
const STARTING: u32 = 1;
const RUNNING: u32 = 2;

#[repr(C)]
struct Slot {
    dboid: u32,
    state: u32,
    pid: i32,
    latch: *mut pg_sys::Latch,
    state_since: i64,
    /// Commits that recorded events, counted after the commit.
    commits: u64,
    /// Autonomous events committed by the worker (compared with `ring.pushed`).
    confirmed: u64,
    /// Autonomous events whose confirmation a caller stopped waiting for.
    unconfirmed: u64,
    /// Autonomous events that could not be queued at all (a hot standby, no slot).
    unrecorded: u64,
    /// Sealing passes that failed (the worker logs the error and retries).
    failures: u64,
    /// The lowest and highest block of warden.audit_pending that writers put events in since the
    /// worker last looked (u32::MAX / 0 when none): where the next pass scans.
    min_block: std::sync::atomic::AtomicU32,
    max_block: std::sync::atomic::AtomicU32,
    /// Set by `COMMIT PREPARED`: the next pass scans the whole table.
    scan_all: std::sync::atomic::AtomicBool,
    ring: Ring,
}

#[repr(C)]
struct Shared {
    lock: *mut pg_sys::LWLock,
    slots: [Slot; SLOTS],
}

static mut SHARED: *mut Shared = std::ptr::null_mut();
static mut PREV_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP: pg_sys::shmem_startup_hook_type = None;
const TRANCHE: &std::ffi::CStr = c"warden_audit";

/// Requests the shared memory; called from `_PG_init` when warden is preloaded.
pub fn init() {
    // SAFETY: hook installation in the postmaster, once.
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        PREV_REQUEST = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(shmem_request);
        PREV_STARTUP = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(shmem_startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    // SAFETY: runs in the postmaster while shared memory is being sized.
    unsafe {
        if let Some(prev) = PREV_REQUEST {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    // SAFETY: as pgrx's own PgLwLock does: under AddinShmemInitLock, find or create the struct.
    unsafe {
        if let Some(prev) = PREV_STARTUP {
            prev();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let p = pg_sys::ShmemInitStruct(
            c"warden audit".as_ptr(),
            std::mem::size_of::<Shared>(),
            &mut found,
        )
        .cast::<Shared>();
        if !found {
            std::ptr::write_bytes(p.cast::<u8>(), 0, std::mem::size_of::<Shared>());
            (*p).lock = &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock;
        }
        SHARED = p;
        pg_sys::LWLockRelease(init_lock);
    }
}

/// Runs `f` on the shared state under its lock; None without shared memory.
fn with_shared<R>(f: impl FnOnce(&mut Shared) -> R) -> Option<R> {
    // SAFETY: SHARED is set once at startup and points into shared memory; the LWLock serializes
    // access, and is released by PostgreSQL's error cleanup if `f` raises.
    unsafe {
        let p = SHARED;
        if p.is_null() {
            return None;
        }
        pg_sys::LWLockAcquire((*p).lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let r = f(&mut *p);
        pg_sys::LWLockRelease((*p).lock);
        Some(r)
    }
}

fn find_slot(sh: &mut Shared, dboid: u32, claim: bool) -> Option<usize> {
    if let Some(i) = sh.slots.iter().position(|s| s.dboid == dboid) {
        return Some(i);
    }
    if !claim {
        return None;
    }
    let i = sh
        .slots
        .iter()
        .position(|s| s.dboid == 0 || (s.state == FREE && s.ring.is_empty()))?;
    let s = &mut sh.slots[i];
    let pushed = s.ring.pushed;
    // a reused slot starts with an empty ring; `confirmed` follows its `pushed` counter
    s.dboid = dboid;
    s.state = FREE;
    s.confirmed = pushed;
    s.min_block.store(u32::MAX, Ordering::Relaxed);
    s.max_block.store(0, Ordering::Relaxed);
    s.scan_all.store(false, Ordering::Relaxed);
    Some(i)
}

/// Wakes the worker of `dboid` (only for an autonomous event: `count_commit` is false), or says
/// that one must be started.
fn wake_or_claim(sh: &mut Shared, dboid: u32, count_commit: bool) -> bool {
    let Some(i) = find_slot(sh, dboid, true) else {
        return false;
    };
    let now = super::record::now();
    let s = &mut sh.slots[i];
    if count_commit {
        s.commits += 1;
    }
    match s.state {
        RUNNING if !s.latch.is_null() => {
            if !count_commit {
                // SAFETY: the latch of a live worker (its exit callback clears it under this lock).
                unsafe { pg_sys::SetLatch(s.latch) };
            }
            false
        }
        STARTING if now - s.state_since < START_TIMEOUT_US => false,
        _ => {
            s.state = STARTING;
            s.state_since = now;
            true
        }
    }
}

fn start_worker(dboid: u32) -> bool {
    let started = BackgroundWorkerBuilder::new("warden audit sealer")
        .set_type("warden audit sealer")
        .set_library("warden")
        .set_function("warden_audit_sealer_main")
        .set_argument(Some(pg_sys::Datum::from(dboid)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load_dynamic()
        .is_ok();
    if !started {
        with_shared(|sh| {
            if let Some(i) = find_slot(sh, dboid, false) {
                if sh.slots[i].state == STARTING {
                    sh.slots[i].state = FREE;
                }
            }
        });
    }
    started
}

thread_local! {
    /// This backend's slot for its database (an index into the slots; checked on use).
    static MY_SLOT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Notes that committed events lie in blocks `lo..=hi` of warden.audit_pending, so that the
/// worker's next pass scans them (two atomic operations; no lock but the first time). Called once
/// the commit is visible: a pass that takes the hint takes its snapshot later and sees the rows.
pub fn hint_blocks(lo: u32, hi: u32) {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    if let Some(i) = my_slot(dboid) {
        add_blocks(i, lo, hi);
    }
}

/// Widens slot `slot`'s range of blocks to scan by `lo..=hi`.
fn add_blocks(slot: usize, lo: u32, hi: u32) {
    // SAFETY: atomics in shared memory.
    let s = unsafe { &(*SHARED).slots[slot] };
    s.min_block.fetch_min(lo, Ordering::SeqCst);
    s.max_block.fetch_max(hi, Ordering::SeqCst);
}

/// After `COMMIT PREPARED`: the prepared transaction's events are visible now, in blocks its own
/// backend noted (and dropped at PREPARE); the next pass looks at the whole table.
pub fn request_full_scan() {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    if let Some(i) = my_slot(dboid) {
        // SAFETY: an atomic in shared memory.
        unsafe { &(*SHARED).slots[i] }
            .scan_all
            .store(true, Ordering::SeqCst);
    }
}

/// This backend's slot for database `dboid`: looked up under the lock the first time, then
/// checked by a racy read of the slot's database.
fn my_slot(dboid: u32) -> Option<usize> {
    match MY_SLOT.get() {
        // SAFETY: a racy read of the slot's database, only to decide whether to look it up again
        Some(i) if unsafe { !SHARED.is_null() && (*SHARED).slots[i].dboid == dboid } => Some(i),
        _ => {
            let i = with_shared(|sh| find_slot(sh, dboid, true)).flatten();
            MY_SLOT.set(i);
            i
        }
    }
}

/// The blocks written since the last call (and resets them): None when no event was written;
/// all of them after a `COMMIT PREPARED`.
fn take_blocks(slot: usize) -> Option<(u32, u32)> {
    // SAFETY: atomics in shared memory.
    let s = unsafe { &(*SHARED).slots[slot] };
    if s.scan_all.swap(false, Ordering::SeqCst) {
        s.min_block.swap(u32::MAX, Ordering::SeqCst);
        s.max_block.swap(0, Ordering::SeqCst);
        return Some((0, u32::MAX - 1));
    }
    let min = s.min_block.swap(u32::MAX, Ordering::SeqCst);
    let max = s.max_block.swap(0, Ordering::SeqCst);
    (min <= max).then_some((min, max))
}

/// After a commit that recorded events: wake (or start) the worker of `dboid`. Never raises.
pub fn notify(dboid: pg_sys::Oid) {
    let dboid = dboid.to_u32();
    if with_shared(|sh| wake_or_claim(sh, dboid, true)) == Some(true) {
        start_worker(dboid);
    }
}

/// An autonomous event as queued: its fields, encoded as the canonical serialization encodes
/// fields (occurred_at as PostgreSQL microseconds).
pub fn encode(ev: &NewEvent, occurred_at: pg_sys::TimestampTz, context: &str) -> Vec<u8> {
    fn text(t: Option<&str>) -> Field<'_> {
        t.map_or(Field::Null, Field::Text)
    }
    let fields = [
        Field::Int(occurred_at),
        text(ev.tenant.as_ref().map(Ident::as_str)),
        text(ev.actor.as_ref().map(Ident::as_str)),
        Field::Text(&ev.action),
        text(ev.resource_type.as_deref()),
        text(ev.resource_id.as_deref()),
        text(ev.changes.as_deref()),
        Field::Text(ev.status.as_str()),
        Field::Text(context),
    ];
    let mut out = Vec::with_capacity(256);
    for f in &fields {
        // text fields only fail beyond 4 GiB, which a queue record can never reach
        let _ = encode_field(f, &mut out);
    }
    out
}

/// The inverse of [`encode`]: the event, its time and its context document.
fn decode(rec: &[u8]) -> Option<(NewEvent, pg_sys::TimestampTz, String)> {
    let f = decode_fields(rec).ok()?;
    if f.len() != 9 {
        return None;
    }
    let text = |i: usize| -> Option<String> {
        (f[i].0 != b'N').then(|| String::from_utf8_lossy(f[i].1).into_owned())
    };
    // an identifier: text, or a uuid queued by a library before 0.6.0 (a reinstall under load)
    let ident = |i: usize| -> Option<Ident> {
        match f[i].0 {
            b'T' => Ident::parse(&String::from_utf8_lossy(f[i].1)).ok(),
            b'U' => uuid::Uuid::try_parse_ascii(f[i].1)
                .ok()
                .map(|u| Ident::from_uuid(&u)),
            _ => None,
        }
    };
    let at: i64 = std::str::from_utf8(f[0].1).ok()?.parse().ok()?;
    let ev = NewEvent {
        tenant: ident(1),
        actor: ident(2),
        action: text(3)?,
        resource_type: text(4),
        resource_id: text(5),
        changes: text(6),
        status: Status::parse(&text(7)?)?,
        context_extra: None,
    };
    Some((ev, at, text(8)?))
}

/// The action of a queued request to record an API key's use (not an event: the worker writes
/// `last_used_at` for it, in a transaction of its own).
const TOUCH: &str = "api_key_used";

/// Asks this database's worker to set `last_used_at` of API key `id` to `at` (unless it was set
/// less than a minute before that), without waiting: the caller's transaction writes nothing.
/// Dropped silently when there is no shared memory or the queue is full (the column is a hint).
pub fn touch_key(id: &[u8; 16], at: pg_sys::TimestampTz) {
    let mut rec = Vec::with_capacity(64);
    for f in [Field::Text(TOUCH), Field::Uuid(*id), Field::Int(at)] {
        let _ = encode_field(&f, &mut rec);
    }
    push(&rec);
}

/// Queues a record for this database's worker without waiting for it to be committed, and
/// without waking it: a running worker takes it with its next pass (within
/// `warden.audit_seal_interval`, in one transaction with everything else queued meanwhile); a
/// worker is started when none runs. False when it could not be queued (no shared memory, no
/// slot, a full queue: the overflow is counted).
pub fn push(rec: &[u8]) -> bool {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let start = with_shared(|sh| {
        let i = find_slot(sh, dboid, true)?;
        sh.slots[i].ring.push(rec).ok()?;
        // counted like a commit: it keeps the worker from exiting idle, and does not wake it,
        // unless the ring is half full
        let wake = sh.slots[i].ring.used() > super::queue::CAPACITY / 2;
        Some(wake_or_claim(sh, dboid, !wake))
    })
    .flatten();
    match start {
        None => false,
        Some(true) => {
            start_worker(dboid);
            true
        }
        Some(false) => true,
    }
}

/// The action of a queued request to note that a check ran (`verify_audit`, `audit_digest`): the
/// worker writes `warden.posture_checks` for it, which `security_lint` reads. Not an event, so that
/// verifying or anchoring the chain does not change it.
const CHECK: &str = "posture_check";

/// Asks this database's worker to note that `check` ran at `at` with `result`, by `role`, without
/// waiting. Dropped when it cannot be queued (the lint then reports the check as not run: the safe
/// side).
pub fn note_check(check: &str, at: pg_sys::TimestampTz, result: &str, role: &str) {
    let mut rec = Vec::with_capacity(96);
    for f in [
        Field::Text(CHECK),
        Field::Text(check),
        Field::Int(at),
        Field::Text(result),
        Field::Text(role),
    ] {
        let _ = encode_field(&f, &mut rec);
    }
    push(&rec);
}

/// A queued [`note_check`] request: check, time, result, role.
fn decode_check(rec: &[u8]) -> Option<(String, i64, String, String)> {
    let f = decode_fields(rec).ok()?;
    if f.len() != 5 || f[0].1 != CHECK.as_bytes() {
        return None;
    }
    let text = |i: usize| std::str::from_utf8(f[i].1).ok().map(str::to_owned);
    let at: i64 = std::str::from_utf8(f[2].1).ok()?.parse().ok()?;
    Some((text(1)?, at, text(3)?, text(4)?))
}

/// Writes the queued check notes (the latest of each check wins).
fn write_checks(checks: &[(String, i64, String, String)]) -> Result<(), super::seal::SealError> {
    if crate::catalog::warden_oid(c"posture_checks") == pg_sys::InvalidOid {
        return Ok(());
    }
    for (check, at, result, role) in checks {
        Spi::run_with_args(
            "INSERT INTO warden.posture_checks AS p (check_name, last_at, last_result, last_by_role)
             VALUES ($1, pg_catalog.to_timestamp($2::float8 / 1e6 + 946684800), $3, $4)
             ON CONFLICT (check_name) DO UPDATE
                SET last_at = excluded.last_at, last_result = excluded.last_result, last_by_role = excluded.last_by_role
              WHERE p.last_at <= excluded.last_at",
            &[check.as_str().into(), (*at).into(), result.as_str().into(), role.as_str().into()],
        )
        .map_err(|e| super::seal::SealError::Worker(e.to_string()))?;
    }
    Ok(())
}

/// The key and time of a queued [`touch_key`] request.
fn decode_touch(rec: &[u8]) -> Option<([u8; 16], i64)> {
    let f = decode_fields(rec).ok()?;
    if f.len() != 3 || f[0].1 != TOUCH.as_bytes() || f[1].0 != b'U' {
        return None;
    }
    let id = uuid::Uuid::try_parse_ascii(f[1].1).ok()?;
    let at: i64 = std::str::from_utf8(f[2].1).ok()?.parse().ok()?;
    Some((*id.as_bytes(), at))
}

/// Writes the queued `last_used_at` values: at most one write per key per minute, whatever the
/// number of requests.
fn write_touches(touches: &[([u8; 16], i64)]) -> Result<(), super::seal::SealError> {
    if crate::catalog::warden_oid(c"api_key_records") == pg_sys::InvalidOid {
        return Ok(());
    }
    for (id, at) in touches {
        Spi::run_with_args(
            "UPDATE warden.api_key_records
                SET last_used_at = pg_catalog.to_timestamp($2::float8 / 1e6 + 946684800)
              WHERE id = $1
                AND (last_used_at IS NULL
                     OR last_used_at < pg_catalog.to_timestamp($2::float8 / 1e6 + 946684800 - 60))",
            &[pgrx::Uuid::from_bytes(*id).into(), (*at).into()],
        )
        .map_err(|e| super::seal::SealError::Worker(e.to_string()))?;
    }
    Ok(())
}

/// Queues an autonomous record for this database's worker and waits (bounded) for it to be
/// committed. False when it was not confirmed.
pub fn submit(rec: &[u8]) -> bool {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    let queued = with_shared(|sh| {
        let i = find_slot(sh, dboid, true)?;
        match sh.slots[i].ring.push(rec) {
            Ok(()) => {
                let ticket = sh.slots[i].ring.pushed;
                let start = wake_or_claim(sh, dboid, false);
                Some((i, ticket, start))
            }
            Err(_) => None,
        }
    });
    // no shared memory, no free slot, or a full ring (which counted the overflow itself)
    let Some(Some((slot, ticket, start))) = queued else {
        return false;
    };
    if start && !start_worker(dboid) {
        with_shared(|sh| sh.slots[slot].unconfirmed += 1);
        return false;
    }
    let wait = Duration::from_millis(crate::gucs::AUDIT_AUTONOMOUS_WAIT.get().max(0) as u64);
    let deadline = Instant::now() + wait;
    loop {
        let done =
            with_shared(|sh| sh.slots[slot].dboid == dboid && sh.slots[slot].confirmed >= ticket)
                .unwrap_or(false);
        if done {
            return true;
        }
        if Instant::now() >= deadline {
            with_shared(|sh| sh.slots[slot].unconfirmed += 1);
            return false;
        }
        // SAFETY: a short sleep on our own latch; postmaster death ends the backend.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                5,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
    }
}

/// Counts an autonomous event that could not even be queued.
pub fn count_unrecorded() {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    with_shared(|sh| {
        if let Some(i) = find_slot(sh, dboid, true) {
            sh.slots[i].unrecorded += 1;
        }
    });
}

/// The queue's state for this database, for `warden.audit_queue_status()`.
pub struct QueueStatus {
    pub preloaded: bool,
    pub worker_pid: Option<i32>,
    pub queued_bytes: i64,
    pub autonomous_pushed: i64,
    pub autonomous_confirmed: i64,
    pub overflowed: i64,
    pub unconfirmed: i64,
    pub unrecorded: i64,
    pub failures: i64,
}

pub fn status() -> QueueStatus {
    // SAFETY: MyDatabaseId is set in a backend.
    let dboid = unsafe { pg_sys::MyDatabaseId }.to_u32();
    with_shared(|sh| match find_slot(sh, dboid, false) {
        Some(i) => {
            let s = &sh.slots[i];
            QueueStatus {
                preloaded: true,
                worker_pid: (s.state == RUNNING).then_some(s.pid),
                queued_bytes: s.ring.used() as i64,
                autonomous_pushed: s.ring.pushed as i64,
                autonomous_confirmed: s.confirmed as i64,
                overflowed: s.ring.overflowed as i64,
                unconfirmed: s.unconfirmed as i64,
                unrecorded: s.unrecorded as i64,
                failures: s.failures as i64,
            }
        }
        None => QueueStatus {
            preloaded: true,
            worker_pid: None,
            queued_bytes: 0,
            autonomous_pushed: 0,
            autonomous_confirmed: 0,
            overflowed: 0,
            unconfirmed: 0,
            unrecorded: 0,
            failures: 0,
        },
    })
    .unwrap_or(QueueStatus {
        preloaded: false,
        worker_pid: None,
        queued_bytes: 0,
        autonomous_pushed: 0,
        autonomous_confirmed: 0,
        overflowed: 0,
        unconfirmed: 0,
        unrecorded: 0,
        failures: 0,
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, arg: pg_sys::Datum) {
    let dboid = arg.value() as u32;
    // SAFETY: MyProcPid is ours.
    let me = unsafe { pg_sys::MyProcPid };
    with_shared(|sh| {
        if let Some(i) = find_slot(sh, dboid, false) {
            let s = &mut sh.slots[i];
            if s.pid == me {
                s.state = FREE;
                s.pid = 0;
                s.latch = std::ptr::null_mut();
            }
        }
    });
}

/// The worker's entry point (named in the dynamic registration).
#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn warden_audit_sealer_main(arg: pg_sys::Datum) {
    let dboid = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from(dboid)), None);
    // SAFETY: registers the cleanup of our slot, then claims it.
    let claimed = unsafe {
        pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(dboid));
        with_shared(|sh| {
            let i = find_slot(sh, dboid, true)?;
            let s = &mut sh.slots[i];
            if s.state == RUNNING && s.pid != 0 && s.pid != pg_sys::MyProcPid {
                return None; // another worker serves this database
            }
            s.state = RUNNING;
            s.pid = pg_sys::MyProcPid;
            s.latch = pg_sys::MyLatch;
            Some(i)
        })
        .flatten()
    };
    let Some(slot) = claimed else {
        return;
    };
    // The sealer's own commits need not wait for the WAL flush: if one is lost in a crash, the
    // events it moved are still pending (their writers' commits were durable) and are sealed
    // again. warden.audit_digest() flushes the WAL before it reports a head. No parallel plans
    // for its small statements.
    // SAFETY: session-level settings of this worker, set between transactions.
    unsafe {
        // a TID range scan from where the last pass found events, never a sequential scan over
        // the space of the rows it deleted
        for (name, value) in [
            (c"synchronous_commit", c"off"),
            (c"max_parallel_workers_per_gather", c"0"),
            (c"enable_seqscan", c"off"),
            // the batch's rows are matched with their ids by a hash join, not a nested loop
            (c"enable_nestloop", c"off"),
        ] {
            pg_sys::SetConfigOption(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_OVERRIDE,
            );
        }
    }
    let mut last_work = Instant::now();
    // The first pass waits one interval, as every later one does: a new worker's first pass is
    // its slowest (cold caches), and it would otherwise run in the middle of the burst of work
    // whose first commit started the worker, holding back VACUUM's horizon while that work loads
    // and vacuums its tables. An autonomous event (its caller waits) still wakes it at once.
    // (A new process's latch may already be set: the wait is for the time, or for a queued record.)
    let born = Instant::now();
    while born.elapsed() < pass_interval()
        && with_shared(|sh| sh.slots[slot].ring.is_empty()).unwrap_or(true)
    {
        if !BackgroundWorker::wait_latch(Some(pass_interval().saturating_sub(born.elapsed()))) {
            return;
        }
    }
    // the first pass looks at the whole table (what was pending when the worker started)
    let mut last_full: Option<Instant> = None;
    loop {
        let full_scan_due = last_full.is_none_or(|t| t.elapsed() >= FULL_SCAN_EVERY);
        if full_scan_due {
            last_full = Some(Instant::now());
        }
        // taken before the pass (whose snapshot is taken later, so it sees every commit hinted
        // so far): commits after this point are hinted for the next pass
        let blocks = take_blocks(slot);
        let seen = with_shared(|sh| sh.slots[slot].commits).unwrap_or(0);
        let records = with_shared(|sh| {
            let pushed = sh.slots[slot].ring.pushed;
            (sh.slots[slot].ring.pop(usize::MAX), pushed)
        });
        let (records, pushed) = records.unwrap_or_default();
        let mut touches: Vec<([u8; 16], i64)> =
            records.iter().filter_map(|r| decode_touch(r)).collect();
        touches.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        touches.dedup_by(|a, b| a.0 == b.0); // the latest request of each key
        let checks: Vec<(String, i64, String, String)> =
            records.iter().filter_map(|r| decode_check(r)).collect();
        let outcome = run_in_transaction(|| {
            let mut n = 0i64;
            for r in &records {
                if let Some((ev, at, ctx)) = decode(r) {
                    super::record::insert_pending(&ev, at, super::record::ContextValue::Text(&ctx))
                        .map_err(|e| super::seal::SealError::Worker(e.to_string()))?;
                    n += 1;
                }
            }
            // and the blocks of the autonomous events just written, in this transaction
            let own = super::record::take_txn_blocks();
            let range = if full_scan_due {
                Some((0, u32::MAX - 1))
            } else {
                match (blocks, own) {
                    (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                    (a, b) => a.or(b),
                }
            };
            match range {
                Some((lo, hi)) => super::seal::seal_range(lo, hi).map(|sealed| sealed + n),
                None => Ok(n),
            }
        });
        if !checks.is_empty() {
            if let Err(e) = run_in_transaction(|| write_checks(&checks)) {
                pgrx::log!("warden audit sealer: posture checks: {e}");
            }
        }
        if !touches.is_empty() {
            // apart from the events: a failure here never costs an event
            if let Err(e) = run_in_transaction(|| write_touches(&touches)) {
                pgrx::log!("warden audit sealer: API key last_used_at: {e}");
            }
        }
        match outcome {
            Ok(n) => {
                if !records.is_empty() {
                    with_shared(|sh| sh.slots[slot].confirmed = pushed);
                }
                if n > 0 {
                    last_work = Instant::now();
                }
            }
            Err(super::seal::SealError::NotInstalled) => return,
            Err(e) => {
                with_shared(|sh| sh.slots[slot].failures += 1);
                // the next pass looks at these blocks again
                if let Some((lo, hi)) = blocks {
                    add_blocks(slot, lo, hi);
                }
                pgrx::log!("warden audit sealer: {e}");
            }
        }
        if last_work.elapsed() >= IDLE_EXIT {
            let leave = with_shared(|sh| {
                let s = &mut sh.slots[slot];
                if s.commits == seen && s.ring.is_empty() {
                    s.state = FREE;
                    s.pid = 0;
                    s.latch = std::ptr::null_mut();
                    true
                } else {
                    false
                }
            })
            .unwrap_or(true);
            if leave {
                return;
            }
        }
        if !BackgroundWorker::wait_latch(Some(pass_interval())) {
            return;
        }
        if BackgroundWorker::sighup_received() {
            // SAFETY: rereads the configuration files between transactions.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
    }
}

/// Runs `body` in a transaction of its own: committed when it returns Ok, rolled back when it
/// returns Err or raises (the error is returned, so that the worker carries on).
fn run_in_transaction<T>(
    body: impl FnOnce() -> Result<T, super::seal::SealError> + std::panic::UnwindSafe,
) -> Result<T, super::seal::SealError> {
    // SAFETY: the worker is between transactions; every path below ends the one it starts.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let r = PgTryBuilder::new(body)
        .catch_others(|e| {
            Err(super::seal::SealError::Worker(
                crate::errors::caught_message(e),
            ))
        })
        .execute();
    // SAFETY: commit or abort the transaction started above.
    unsafe {
        if r.is_ok() {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
    }
    r
}
