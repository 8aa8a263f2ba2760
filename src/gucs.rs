//! warden's configuration parameters. Everything that decides who is acting is superuser-only to
//! set (`PGC_SUSET`); the secret and the context carrier are also superuser-only to read.

use std::ffi::{CStr, CString};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;

/// HS256 key shared with the application's auth server. Superuser-only to set and to read.
pub static JWT_SECRET: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// When set, a token's `aud` must contain it.
pub static JWT_AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// When set, a token's `iss` must equal it.
pub static JWT_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub static JWT_LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(0);
/// Lifetime, in seconds, of the context token `warden.set_context()` mints.
pub static CONTEXT_TTL: GucSetting<i32> = GucSetting::<i32>::new(3600);
/// The carrier of the current context: a signed token, set transaction-locally by
/// `warden.authenticate()` and `warden.set_context()`. Applications cannot set or read it.
pub static CONTEXT_TOKEN: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

pub const CONTEXT_TOKEN_NAME: &CStr = c"warden.context_token";

const HIDDEN: GucFlags = GucFlags::SUPERUSER_ONLY.union(GucFlags::NO_SHOW_ALL);

pub fn init() {
    GucRegistry::define_string_guc(
        c"warden.jwt_secret",
        c"HS256 secret that signs warden tokens.",
        c"At least 32 bytes. Set it in postgresql.conf, with ALTER SYSTEM or ALTER DATABASE; only superusers can set or read it.",
        &JWT_SECRET,
        GucContext::Suset,
        HIDDEN,
    );
    GucRegistry::define_string_guc(
        c"warden.jwt_audience",
        c"When set, warden.authenticate() requires the token's aud claim to contain this value.",
        c"",
        &JWT_AUDIENCE,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_string_guc(
        c"warden.jwt_issuer",
        c"When set, warden.authenticate() requires the token's iss claim to equal this value.",
        c"",
        &JWT_ISSUER,
        GucContext::Suset,
        GucFlags::empty(),
    );
    GucRegistry::define_int_guc(
        c"warden.jwt_leeway",
        c"Seconds of clock skew tolerated when checking exp and nbf.",
        c"",
        &JWT_LEEWAY,
        0,
        300,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"warden.context_ttl",
        c"Lifetime of the context token minted by warden.set_context().",
        c"",
        &CONTEXT_TTL,
        1,
        86400,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        CONTEXT_TOKEN_NAME,
        c"Signed token carrying the current warden context (transaction-local).",
        c"Set only by warden.authenticate() and warden.set_context().",
        &CONTEXT_TOKEN,
        GucContext::Suset,
        HIDDEN | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
    // Any other warden.* name is an error rather than a free-for-all placeholder: `SET warden.tenant`
    // fails loudly instead of looking like it did something.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"warden".as_ptr()) };
}

/// Runs `f` on the current bytes of a string setting (empty when unset), without copying.
/// The borrow must not outlive `f`: the next SET may free the string.
pub fn with_bytes<R>(setting: &GucSetting<Option<CString>>, f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: PostgreSQL owns the pointer; it is either null or a NUL-terminated string that stays
    // valid until the setting is next assigned, which cannot happen while `f` runs pure Rust.
    let ptr = unsafe { *setting.as_ptr() };
    if ptr.is_null() {
        f(&[])
    } else {
        f(unsafe { CStr::from_ptr(ptr) }.to_bytes())
    }
}

/// A string setting as an owned `String`; `None` when unset or empty.
pub fn string(setting: &GucSetting<Option<CString>>) -> Option<String> {
    with_bytes(setting, |b| {
        (!b.is_empty()).then(|| String::from_utf8_lossy(b).into_owned())
    })
}
