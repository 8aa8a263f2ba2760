//! How module errors become PostgreSQL errors: each module's thiserror enum implements
//! [`SqlError`] (its SQLSTATE, hint and detail), and `?` turns it into an [`ErrorReport`].
//! A pgrx function never returns a bare error, which pgrx would report as SQLSTATE 22000.
//!
//! Floor 1, ground: uses nothing of warden.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgSqlErrorCode;

pub trait SqlError: std::fmt::Display {
    fn sqlstate(&self) -> PgSqlErrorCode;
    /// What the user should do about it.
    fn hint(&self) -> Option<String> {
        None
    }
    fn detail(&self) -> Option<String> {
        None
    }
}

/// Builds the report for `e`; modules call it from their `From<..> for ErrorReport`.
#[track_caller]
pub fn report<E: SqlError>(e: &E) -> ErrorReport {
    let mut r = ErrorReport::new(e.sqlstate(), format!("warden: {e}"), "warden");
    if let Some(h) = e.hint() {
        r = r.set_hint(h);
    }
    if let Some(d) = e.detail() {
        r = r.set_detail(d);
    }
    r
}

/// Implements `From<$t> for ErrorReport` through [`report`]: `crate::errors::sql_error!(MyError);`.
macro_rules! sql_error {
    ($t:ty) => {
        impl From<$t> for pgrx::pg_sys::panic::ErrorReport {
            #[track_caller]
            fn from(e: $t) -> Self {
                $crate::errors::report(&e)
            }
        }
    };
}
pub(crate) use sql_error;

/// Refuses to run a function that writes on a hot standby or in a READ ONLY transaction, with
/// PostgreSQL's own error: SQLSTATE 25006, "cannot execute `what` in a read-only transaction".
/// Without it the first write through SPI would try to assign a transaction id and fail with an
/// internal error (XX000) on a standby.
pub fn ensure_writable(what: &std::ffi::CStr) {
    // SAFETY: a plain check of XactReadOnly that raises an ERROR through pgrx's guard.
    unsafe { pgrx::pg_sys::PreventCommandIfReadOnly(what.as_ptr()) }
}

/// The message of an error caught with `PgTryBuilder` (a PostgreSQL error, a report, or a panic).
pub fn caught_message(e: pgrx::pg_sys::panic::CaughtError) -> String {
    use pgrx::pg_sys::panic::CaughtError;
    match e {
        CaughtError::PostgresError(r)
        | CaughtError::ErrorReport(r)
        | CaughtError::RustPanic { ereport: r, .. } => r.message().to_owned(),
    }
}

/// Runs `f` with the thread-local flag `flag` set, and puts its previous value back afterwards,
/// also when `f` unwinds (a PostgreSQL error).
pub fn with_flag<R>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    f: impl FnOnce() -> R,
) -> R {
    struct Reset(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            self.0.set(self.1);
        }
    }
    let _reset = Reset(flag, flag.replace(true));
    f()
}
