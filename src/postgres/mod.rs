//! PostgreSQL's entry points into warden: the hooks (utility, executor) in C (`hooks.c`), which
//! call the previous hook outside any pgrx guard so that PostgreSQL's errors pass through
//! unchanged, and the Rust halves they call before and after, which dispatch to the capabilities.
//!
//! Floor 5, PostgreSQL's entry points: may use every floor; dispatches to the capabilities.

use pgrx::pg_sys;
use pgrx::prelude::*;

pub mod log;
pub mod utility;

extern "C" {
    fn warden_install_hooks();
}

/// Installs the hooks (from `_PG_init`).
pub fn init() {
    // SAFETY: called once per process from _PG_init, before any statement runs.
    unsafe { warden_install_hooks() }
}

/// ProcessUtility, before the statement: a boxed [`utility::Before`] for
/// [`warden_utility_after`] or [`warden_utility_forget`].
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn warden_utility_before(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
) -> *mut std::ffi::c_void {
    // SAFETY: the hook's own arguments.
    let b = unsafe { utility::before(pstmt, query_string) };
    Box::into_raw(Box::new(b)).cast()
}

/// ProcessUtility, after the statement succeeded.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn warden_utility_after(
    state: *mut std::ffi::c_void,
    pstmt: *mut pg_sys::PlannedStmt,
    rows: u64,
) {
    if state.is_null() {
        return;
    }
    // SAFETY: made by warden_utility_before for this statement, taken back once.
    let b = unsafe { Box::from_raw(state.cast::<utility::Before>()) };
    // SAFETY: the statement that has just run.
    unsafe { utility::after(*b, pstmt, rows) }
}

/// ProcessUtility, when the statement raised: frees the state without calling PostgreSQL (the
/// error is being re-thrown unchanged).
#[no_mangle]
unsafe extern "C" fn warden_utility_forget(state: *mut std::ffi::c_void) {
    if !state.is_null() {
        // SAFETY: as in warden_utility_after; plain Rust data, dropped without any PostgreSQL call.
        let _ = std::panic::catch_unwind(|| {
            drop(unsafe { Box::from_raw(state.cast::<utility::Before>()) })
        });
    }
}

/// ExecutorStart, before the executor starts.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn warden_executor_start_before(qd: *mut pg_sys::QueryDesc, eflags: i32) {
    // Citus: a context set inside a released savepoint reaches the workers too
    crate::context::repropagate();
    if crate::gucs::LOG_REDACTION.get() && !crate::context::in_parallel_worker() {
        // the server log's redaction may not read the catalogs itself
        crate::catalog::subjects::refresh_for_log();
    }
    // SAFETY: the hook's own arguments.
    unsafe {
        crate::hold::guard::executor_start(qd);
        crate::classify::phi::executor_start(qd, eflags)
    }
}

/// ExecutorRun, after a run.
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn warden_executor_run_after(qd: *mut pg_sys::QueryDesc) {
    // SAFETY: the QueryDesc that has just run.
    unsafe { crate::classify::phi::executor_run(qd) }
}

/// ExecutorEnd, after the executor ended (`query_id` read before it freed the plan's state).
#[no_mangle]
#[pg_guard]
unsafe extern "C-unwind" fn warden_executor_end_after(qd: *mut pg_sys::QueryDesc, query_id: u64) {
    crate::classify::phi::executor_end(qd, query_id)
}
