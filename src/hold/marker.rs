//! No DROP DATABASE under a hold. `DROP DATABASE` runs in another database, whose backend cannot
//! read the dropped one's holds, so each database with an active hold has a marker file,
//! `<data directory>/warden_holds/<database oid>`, listing the case_refs of its active holds, one
//! per line. The utility hook of every database reads it before `DROP DATABASE` (with or without
//! `FORCE`) and refuses while it lists a hold: after a restart too, and for a database no backend
//! has connected to since (the file is the server's, not a backend's).
//!
//! Written with the holds, around the commit: `place_hold` and `release_hold` note the active
//! holds as their transaction sees them; before the commit the file gets the union of what it
//! listed and what the transaction sees (a crash or a failed commit then leaves a hold too many:
//! fail closed), after the commit exactly what the transaction saw, and after an abort what it
//! listed before. Any backend that reads the holds (outside such a transaction, on a primary)
//! brings a file that differs back in line: holds placed before this version, or restored from a
//! dump, get their marker the first time their database reads its holds. A marker that cannot be
//! read, other than by being absent, refuses the drop. Files are written whole (a temporary file
//! renamed over the old one, then synced).

use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::io::Write;
use std::path::PathBuf;

use pgrx::prelude::*;
use pgrx::{pg_sys, PgLogLevel};

use super::HoldError;
use crate::audit::{record_autonomous, NewEvent, Status};

const DIR: &str = "warden_holds";

fn dir() -> Option<PathBuf> {
    // SAFETY: DataDir is set once at startup (null only before).
    let d = unsafe { pg_sys::DataDir };
    if d.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated path.
    let d = unsafe { CStr::from_ptr(d) }.to_string_lossy().into_owned();
    Some(PathBuf::from(d).join(DIR))
}

fn path(db: pg_sys::Oid) -> Option<PathBuf> {
    dir().map(|d| d.join(db.to_u32().to_string()))
}

/// The case_refs a marker lists: `Ok(None)` without one, `Err` when it cannot be read.
pub fn read(db: pg_sys::Oid) -> Result<Option<Vec<String>>, String> {
    let p = path(db).ok_or("the data directory is not known")?;
    match std::fs::read_to_string(&p) {
        Ok(s) => Ok(Some(
            s.lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Writes the marker of `db` (removes it when `case_refs` is empty).
fn write(db: pg_sys::Oid, case_refs: &[String]) -> std::io::Result<()> {
    let Some(p) = path(db) else {
        return Ok(());
    };
    if case_refs.is_empty() {
        return match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = p.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        for c in case_refs {
            // a case_ref is one line (a newline in one would split it: still a hold)
            writeln!(f, "{}", c.replace('\n', " "))?;
        }
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &p)?;
    if let Some(d) = p.parent() {
        if let Ok(f) = std::fs::File::open(d) {
            let _ = f.sync_all();
        }
    }
    Ok(())
}

fn my_database() -> pg_sys::Oid {
    // SAFETY: reads this backend's database.
    unsafe { pg_sys::MyDatabaseId }
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for x in b {
        if !out.contains(x) {
            out.push(x.clone());
        }
    }
    out
}

struct Pending {
    lxid: pg_sys::LocalTransactionId,
    /// What the marker listed when the transaction first changed the holds.
    before: Vec<String>,
    /// The active holds as the transaction last saw them.
    after: Vec<String>,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

fn warn(e: std::io::Error) {
    pgrx::warning!(
        "warden: the held-database marker of this database could not be written ({e}); DROP DATABASE may not see its holds until it is"
    );
}

/// After `place_hold` or `release_hold` changed the holds: the active holds as this transaction
/// sees them now, for the marker at its commit.
pub fn holds_changed() -> Result<(), HoldError> {
    let after: Vec<String> = super::cache::as_holds_owner(|| {
        Spi::connect(|c| {
            let mut out = Vec::new();
            for row in c.select(
                "SELECT DISTINCT h.case_ref FROM warden.holds h
                  WHERE NOT EXISTS (SELECT 1 FROM warden.hold_releases r WHERE r.hold OPERATOR(pg_catalog.=) h.id)
                  ORDER BY 1",
                None,
                &[],
            )? {
                out.push(row.get::<String>(1)?.unwrap_or_default());
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
        .map_err(|e| e.to_string())
    })
    .map_err(HoldError::Unreadable)?;
    let lxid = crate::context::local_xid();
    let before = match PENDING.with_borrow(|p| {
        p.as_ref()
            .filter(|p| p.lxid == lxid)
            .map(|p| p.before.clone())
    }) {
        Some(b) => b,
        None => read(my_database())
            .map_err(HoldError::Unreadable)?
            .unwrap_or_default(),
    };
    PENDING.set(Some(Pending {
        lxid,
        before,
        after,
    }));
    if !CALLBACK.replace(true) {
        // SAFETY: registers a callback for the rest of this backend's life.
        unsafe { pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut()) };
    }
    Ok(())
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let db = my_database();
    match event {
        XACT_EVENT_PRE_COMMIT => {
            if let Some(p) = PENDING.with_borrow(|p| p.as_ref().map(|p| union(&p.before, &p.after)))
            {
                if let Err(e) = write(db, &p) {
                    // before the commit: refusing it keeps the hold and its marker together
                    let e = HoldError::Internal(format!(
                        "the held-database marker could not be written ({e}); the hold would not stop DROP DATABASE"
                    ));
                    crate::errors::report(&e).report(PgLogLevel::ERROR);
                }
            }
        }
        XACT_EVENT_COMMIT => {
            if let Some(p) = PENDING.take() {
                if let Err(e) = write(db, &p.after) {
                    warn(e);
                }
            }
        }
        XACT_EVENT_ABORT => {
            if let Some(p) = PENDING.take() {
                if let Err(e) = write(db, &p.before) {
                    warn(e);
                }
            }
        }
        _ => {}
    }
}

/// Brings this database's marker in line with the active holds a backend has just read (outside
/// a transaction that changes them, on a primary). Errors are warnings: the next read tries again.
pub fn resync(case_refs: &[String]) {
    if PENDING.with_borrow(|p| p.is_some()) {
        return;
    }
    // SAFETY: reads whether this server is a standby.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return;
    }
    let mut want: Vec<String> = Vec::new();
    for c in case_refs {
        if !want.contains(c) {
            want.push(c.clone());
        }
    }
    want.sort();
    let db = my_database();
    let have = match read(db) {
        Ok(h) => {
            let mut h = h.unwrap_or_default();
            h.sort();
            h
        }
        Err(_) => Vec::new(),
    };
    if have != want {
        if let Err(e) = write(db, &want) {
            warn(e);
        }
    }
}

/// Before `DROP DATABASE` (any form, from any database): refused while the database's marker lists
/// a hold, or cannot be read.
///
/// # Safety
/// `stmt` is the utility statement's parse tree.
pub unsafe fn before_utility(stmt: *mut pg_sys::Node) {
    // SAFETY: parse nodes; catalog lookup with missing_ok.
    unsafe {
        if stmt.is_null() || (*stmt).type_ != pg_sys::NodeTag::T_DropdbStmt {
            return;
        }
        let d = stmt.cast::<pg_sys::DropdbStmt>();
        if (*d).dbname.is_null() {
            return;
        }
        let name = CStr::from_ptr((*d).dbname).to_string_lossy().into_owned();
        let db = pg_sys::get_database_oid((*d).dbname, true);
        if db == pg_sys::InvalidOid {
            return;
        }
        let why = match read(db) {
            Ok(None) => return,
            Ok(Some(c)) if c.is_empty() => return,
            Ok(Some(c)) => format!(
                "legal hold{} {} cover{} data in it",
                if c.len() > 1 { "s" } else { "" },
                c.iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                if c.len() > 1 { "" } else { "s" }
            ),
            Err(e) => format!("whether a legal hold covers it cannot be determined ({e})"),
        };
        let e = HoldError::DropDatabase {
            database: name.clone(),
            why: why.clone(),
        };
        // on record in the server log, and in this database's trail when it has warden
        pgrx::log!("warden: DROP DATABASE {name} refused: {why}");
        if crate::audit::record::installed() {
            let mut ev = NewEvent::in_context("hold_violation", Status::Denied);
            ev.resource_type = Some("database".into());
            ev.resource_id = Some(name.clone());
            ev.changes = Some(
                serde_json::json!({"operation": "DROP DATABASE", "database": name, "reason": why})
                    .to_string(),
            );
            record_autonomous(&ev);
        }
        crate::errors::report(&e).report(PgLogLevel::ERROR);
    }
}
