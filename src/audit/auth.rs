//! Authentication events: how the authentication floor's reports (`context::Sink`) become audit
//! events. Registered at `_PG_init` by [`super::init`].

use pgrx::pg_sys::panic::ErrorReport;

use super::record::json_str;
use super::{record, record_autonomous, AuditError, NewEvent, Status};
use crate::types::ident::Ident;

/// A failed authentication: a denied (or, for a configuration problem, error) event that survives
/// the rollback. Never the token itself.
fn failure(f: &crate::context::Failure<'_>) {
    let as_ident = |s: &Option<String>| s.as_deref().and_then(|s| Ident::parse(s).ok());
    let quote = |s: &Option<String>| s.as_deref().map_or("null".to_string(), json_str);
    let ev = NewEvent {
        tenant: if f.genuine { as_ident(&f.claimed_tenant) } else { None },
        actor: if f.genuine { as_ident(&f.claimed_subject) } else { None },
        action: "authenticate".into(),
        resource_type: Some("actor".into()),
        resource_id: f.claimed_subject.clone(),
        changes: Some(format!(
            "{{\"reason\":{},\"claimed_tenant\":{},\"claimed_subject\":{},\"signature_verified\":{}}}",
            json_str(&f.reason),
            quote(&f.claimed_tenant),
            quote(&f.claimed_subject),
            f.genuine
        )),
        status: if f.configuration {
            Status::Error
        } else {
            Status::Denied
        },
        context_extra: f.via.map(|v| format!("\"via\":{}", json_str(v))),
    };
    record_autonomous(&ev);
}

/// A successful `authenticate`, in its transaction (nothing where the trail is not installed).
fn success(actor: &str, level: &str) -> Result<(), ErrorReport> {
    if !super::record::installed() {
        return Ok(());
    }
    let ev = NewEvent::in_context("authenticate", Status::Success)
        .resource("actor", Some(actor))
        .changes(format!("{{\"level\":\"{level}\"}}"));
    record(&ev).map_err(AuditError::from)?;
    Ok(())
}

pub fn init() {
    crate::context::register_sink(crate::context::Sink { failure, success });
}
