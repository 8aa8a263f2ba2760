//! `warden.require_tls`: no context on a connection without TLS 1.2 or later.
//!
//! Floor 2, authentication. The connection's TLS version is PostgreSQL's own answer
//! (`be_tls_get_version`, which reads the backend's OpenSSL session; NULL on a plain TCP
//! connection, a Unix socket, or a process without a client such as a background worker).

use std::ffi::{c_char, CStr};

use pgrx::pg_sys;

use crate::gucs;

extern "C" {
    /// libpq-be.h: the negotiated protocol ("TLSv1.3"), or NULL when the connection has no TLS.
    fn be_tls_get_version(port: *mut pg_sys::Port) -> *const c_char;
}

/// This connection's TLS protocol, or `None` (no TLS, a Unix socket, no client connection).
pub fn tls_version() -> Option<String> {
    // SAFETY: MyProcPort is the backend's client connection (null without one);
    // be_tls_get_version only reads it and returns a static string or NULL.
    unsafe {
        let port = pg_sys::MyProcPort;
        if port.is_null() {
            return None;
        }
        let v = be_tls_get_version(port);
        (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

/// Whether `version` (OpenSSL's name) is TLS 1.2 or later.
pub fn acceptable(version: &str) -> bool {
    matches!(version, "TLSv1.2" | "TLSv1.3")
        || version
            .strip_prefix("TLSv1.")
            .and_then(|m| m.parse::<u32>().ok())
            .is_some_and(|m| m >= 2)
        || version
            .strip_prefix("TLSv")
            .and_then(|m| m.split('.').next()?.parse::<u32>().ok())
            .is_some_and(|major| major >= 2)
}

/// `None` when a context may be established on this connection; otherwise why not.
pub fn refusal() -> Option<String> {
    if !gucs::REQUIRE_TLS.get() {
        return None;
    }
    match tls_version() {
        Some(v) if acceptable(&v) => None,
        Some(v) => Some(format!("the connection uses {v}, older than TLS 1.2")),
        None => {
            Some("the connection does not use TLS (a plain TCP connection or a Unix socket)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn tls_versions() {
        for v in ["TLSv1.2", "TLSv1.3", "TLSv2.0"] {
            assert!(acceptable(v), "{v}");
        }
        for v in ["TLSv1", "TLSv1.1", "SSLv3", "", "unknown"] {
            assert!(!acceptable(v), "{v}");
        }
    }
}
