//! warden: tenant isolation, an unforgeable per-transaction context and data protection,
//! enforced by PostgreSQL itself. Each capability lives in its own module.

// SQL-callable functions return Result<_, ErrorReport>: pgrx raises an ErrorReport with its own
// SQLSTATE, hint and detail, but only when it is returned unboxed (a Box<ErrorReport> would be
// reported as SQLSTATE 22000). Its size is therefore not ours to shrink.
#![allow(clippy::result_large_err)]

use pgrx::prelude::*;

/// Version-1 calling convention record for a hand-declared C function.
macro_rules! finfo_v1 {
    ($name:ident) => {
        #[no_mangle]
        pub extern "C" fn $name() -> &'static pg_sys::Pg_finfo_record {
            const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
            &V1
        }
    };
}

// Floors (README, "Layout"; scripts/check_floors.py enforces them): each module uses only its own
// floor and those below; a capability never names another capability.
// 1. ground
mod catalog;
mod errors;
mod gucs;
mod planner;
mod types;
// 2. authentication
mod context;
mod jwt;
mod scope;
// 3. the event path
pub mod audit;
// 4. capabilities
mod classify;
mod crypto;
pub mod hold;
mod keys;
pub mod privacy;
mod protect;
mod providers;
// 5. PostgreSQL's entry points
mod postgres;
// property-based fuzzing of the parsers (test code)
#[cfg(test)]
mod fuzz;

::pgrx::pg_module_magic!(name, version);

extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
extension_sql_file!(
    "../sql/audit.sql",
    name = "audit",
    requires = [
        "bootstrap",
        context::tenant_with_level,
        context::tenant_with_level_text
    ]
);
extension_sql_file!(
    "../sql/hold.sql",
    name = "hold",
    requires = [
        "audit",
        context::tenant_with_level,
        context::tenant_with_level_text
    ]
);
extension_sql_file!(
    "../sql/privacy.sql",
    name = "privacy",
    requires = ["hold", context::current_tenant, context::current_tenant_id]
);
extension_sql_file!(
    "../sql/keys.sql",
    name = "keys",
    requires = [
        "privacy",
        context::has_level,
        context::current_tenant,
        context::current_tenant_id,
        keys::api::_key_stale_after
    ]
);
extension_sql_file!(
    "../sql/classify.sql",
    name = "classify",
    requires = ["keys"]
);
extension_sql_file!(
    "../sql/crypto.sql",
    name = "crypto",
    requires = [
        "keys",
        context::current_tenant,
        context::current_tenant_id,
        context::tenant_with_level,
        context::tenant_with_level_text
    ]
);
extension_sql_file!(
    "../sql/providers.sql",
    name = "providers",
    requires = ["crypto"]
);
extension_sql_file!(
    "../sql/preserve.sql",
    name = "preserve",
    requires = ["providers", context::tenant_with_level_text]
);
extension_sql_file!(
    "../sql/posture.sql",
    name = "posture",
    requires = ["preserve"]
);
extension_sql_file!(
    "../sql/compliance.sql",
    name = "compliance",
    requires = ["posture"]
);
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::init();
    context::init();
    gucs::reserve_prefix();
    catalog::init();
    catalog::subjects::init();
    context::revocation::init();
    context::issuers::init();
    audit::init();
    hold::init();
    keys::api::init();
    crypto::api::init();
    classify::api::init();
    postgres::init();
}

#[cfg(any(test, feature = "pg_test"))]
mod pg_tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![
            "shared_preload_libraries = 'warden'",
            "warden.jwt_secret = 'pg-test-secret-0123456789abcdefghijklmnop'",
        ]
    }
}
