//! What the capabilities provide to each other and to the floors below, registered
//! at `_PG_init`. A lower floor, or a capability asking about another's state, calls through here
//! and never names the capability that answers:
//!
//! | slot | provided by | asked by |
//! |---|---|---|
//! | [`active_holds`] | `hold` | `privacy` (erasure and account deletion refused under a hold) |
//! | [`check_weakening`] | `classify` | `protect` (unprotect_table), `audit` (disable_audit) |
//! | [`before_unprotect`] | `hold` | `protect` (a held table keeps its guards) |
//! | [`subject_erased`] | `crypto` | `privacy` (crypto-shredding of the subject's key) |
//! | [`account_deleted`] | `keys` | `privacy` (the account's API keys revoked) |
//!
//! Each provider's answer keeps its own error (SQLSTATE, hint): a check returns an `ErrorReport`
//! the caller raises as it is.

use std::rc::Rc;
use std::sync::RwLock;

use pgrx::pg_sys;

use crate::types::ident::Ident;
use pgrx::pg_sys::panic::ErrorReport;

/// One active legal hold, as the holds' owner reports it.
#[derive(Debug, Clone)]
pub struct HoldInfo {
    pub id: String,
    pub case_ref: String,
    pub tenant: Ident,
    pub tbl: Option<pg_sys::Oid>,
    pub subject: Option<Ident>,
}

/// The active holds (Err: they could not be read; the caller refuses).
pub type ActiveHolds = fn() -> Result<Rc<Vec<HoldInfo>>, String>;
/// Refuses (as an `ErrorReport` to raise) when `what` would leave table `relid` (named `table`)
/// weaker than a capability requires.
pub type WeakeningCheck =
    fn(relid: pg_sys::Oid, what: &str, table: &str) -> Result<(), ErrorReport>;
/// Runs before `unprotect_table` removes warden's policies from one table of a tree: refuses, or
/// removes what the capability installed with the protection.
pub type BeforeUnprotect = fn(relid: pg_sys::Oid, qualified: &str) -> Result<(), ErrorReport>;
/// After `erase_subject` anonymized the subject's rows: what the capability also destroyed, as a
/// (report key, value) pair for the erasure's report.
pub type SubjectErased = fn(
    tenant: &Ident,
    subject: &Ident,
    by: &Ident,
) -> Result<Option<(&'static str, serde_json::Value)>, String>;
/// After `delete_account` recorded the deletion of `actor` (run by `by`): what the capability
/// also ended, as a (report key, value) pair.
pub type AccountDeleted =
    fn(actor: &Ident, by: &Ident) -> Result<(&'static str, serde_json::Value), String>;

struct Slots {
    active_holds: Option<ActiveHolds>,
    weakening: Vec<WeakeningCheck>,
    unprotect: Vec<BeforeUnprotect>,
    erased: Vec<SubjectErased>,
    deleted: Vec<AccountDeleted>,
}

static SLOTS: RwLock<Slots> = RwLock::new(Slots {
    active_holds: None,
    weakening: Vec::new(),
    unprotect: Vec::new(),
    erased: Vec::new(),
    deleted: Vec::new(),
});

fn write(f: impl FnOnce(&mut Slots)) {
    let mut s = SLOTS.write().unwrap_or_else(|e| e.into_inner());
    f(&mut s)
}

fn read<R>(f: impl FnOnce(&Slots) -> R) -> R {
    let s = SLOTS.read().unwrap_or_else(|e| e.into_inner());
    f(&s)
}

pub fn provide_active_holds(f: ActiveHolds) {
    write(|s| s.active_holds = Some(f));
}

pub fn provide_weakening_check(f: WeakeningCheck) {
    write(|s| s.weakening.push(f));
}

pub fn provide_before_unprotect(f: BeforeUnprotect) {
    write(|s| s.unprotect.push(f));
}

pub fn provide_subject_erased(f: SubjectErased) {
    write(|s| s.erased.push(f));
}

pub fn provide_account_deleted(f: AccountDeleted) {
    write(|s| s.deleted.push(f));
}

/// The active holds. Fails closed: with no provider registered, the holds cannot be known.
pub fn active_holds() -> Result<Rc<Vec<HoldInfo>>, String> {
    match read(|s| s.active_holds) {
        Some(f) => f(),
        None => Err("no legal-hold provider is registered (warden is not initialized)".into()),
    }
}

/// Every registered weakening check; the first refusal.
pub fn check_weakening(relid: pg_sys::Oid, what: &str, table: &str) -> Result<(), ErrorReport> {
    for f in read(|s| s.weakening.clone()) {
        f(relid, what, table)?;
    }
    Ok(())
}

/// Every registered hook before one table loses warden's policies; the first refusal.
pub fn before_unprotect(relid: pg_sys::Oid, qualified: &str) -> Result<(), ErrorReport> {
    for f in read(|s| s.unprotect.clone()) {
        f(relid, qualified)?;
    }
    Ok(())
}

/// What the providers destroyed with the subject's data.
pub fn subject_erased(
    tenant: &Ident,
    subject: &Ident,
    by: &Ident,
) -> Result<Vec<(&'static str, serde_json::Value)>, String> {
    let mut out = Vec::new();
    for f in read(|s| s.erased.clone()) {
        out.extend(f(tenant, subject, by)?);
    }
    Ok(out)
}

/// What the providers ended with the account.
pub fn account_deleted(
    actor: &Ident,
    by: &Ident,
) -> Result<Vec<(&'static str, serde_json::Value)>, String> {
    let mut out = Vec::new();
    for f in read(|s| s.deleted.clone()) {
        out.push(f(actor, by)?);
    }
    Ok(out)
}
