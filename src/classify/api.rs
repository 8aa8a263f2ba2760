//! `warden.classify(target, level)` and the checks that keep CONFIDENTIAL and PHI tables
//! protected and audited afterwards (`unprotect_table`, `disable_audit`, and DDL through the
//! utility hook).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use serde_json::json;

use super::{missing, Classification, UnknownClassification};
use crate::audit::{NewEvent, Status};
use crate::errors::SqlError;

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("{0}")]
    Level(#[from] UnknownClassification),
    #[error("\"{0}\" is neither a schema nor a table")]
    NoTarget(String),
    #[error("must be owner of {kind} {target} to classify it (current role: {role})")]
    NotOwner {
        kind: &'static str,
        target: String,
        role: String,
    },
    #[error("{target} cannot be classified {level}: {}", gaps.join("; "))]
    Requirements {
        target: String,
        level: Classification,
        gaps: Vec<String>,
        fixes: Vec<&'static str>,
    },
    #[error("{what} is refused: {gap}")]
    WouldBreak { what: String, gap: String },
    #[error("{0} must not be NULL")]
    Null(&'static str),
    #[error("warden's classification table is not installed in this database")]
    NotInstalled,
    #[error("{0}")]
    Record(#[from] crate::audit::record::RecordError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl SqlError for ClassifyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ClassifyError::Level(_) | ClassifyError::Null(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            ClassifyError::NoTarget(_) => ERRCODE_UNDEFINED_OBJECT,
            ClassifyError::NotOwner { .. } => ERRCODE_INSUFFICIENT_PRIVILEGE,
            ClassifyError::Requirements { .. }
            | ClassifyError::WouldBreak { .. }
            | ClassifyError::NotInstalled
            | ClassifyError::Record(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ClassifyError::Internal(_) => ERRCODE_INTERNAL_ERROR,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            ClassifyError::Level(_) => "Use one of: PUBLIC, INTERNAL, CONFIDENTIAL, PHI.".into(),
            ClassifyError::NoTarget(_) => {
                "Name a schema, or a table (schema-qualified when a schema has the same name).".into()
            }
            ClassifyError::NotOwner { .. } => "Run it as the owner.".into(),
            ClassifyError::Requirements { fixes, .. } => {
                let mut f: Vec<&str> = Vec::new();
                for x in fixes {
                    if !f.contains(x) {
                        f.push(x);
                    }
                }
                format!("First {}; then classify again.", f.join(", then "))
            }
            ClassifyError::WouldBreak { .. } => {
                "CONFIDENTIAL and PHI tables stay protected and audited; classify the table lower first (warden.classify(table, 'INTERNAL')) if that is really intended.".into()
            }
            ClassifyError::Null(_) => "SELECT warden.classify('public.patients', 'PHI');".into(),
            ClassifyError::NotInstalled | ClassifyError::Record(_) => "ALTER EXTENSION warden UPDATE;".into(),
            ClassifyError::Internal(_) => return None,
        })
    }
}
crate::errors::sql_error!(ClassifyError);

/// What `classify` was given: a schema or a table, resolved.
enum Target {
    Schema { oid: pg_sys::Oid, name: String },
    Table { oid: pg_sys::Oid, name: String },
}

fn resolve(target: &str) -> Result<Target, ClassifyError> {
    Spi::connect(|c| {
        // a bare name is a schema when one exists by that name, else a table on the search path
        if !target.contains('.') {
            let row = c.select(
                "SELECT oid, pg_catalog.pg_has_role(nspowner, 'USAGE'), pg_catalog.quote_ident(nspname)
                   FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1",
                Some(1),
                &[target.into()],
            )?;
            if let Some(r) = row.into_iter().next() {
                let oid = r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid);
                let name = r.get::<String>(3)?.unwrap_or_default();
                if r.get::<bool>(2)? != Some(true) {
                    return Ok(Err(ClassifyError::NotOwner {
                        kind: "schema",
                        target: name,
                        role: crate::context::current_role_name(),
                    }));
                }
                return Ok(Ok(Target::Schema { oid, name }));
            }
        }
        let row = c.select(
            "SELECT k.oid, pg_catalog.pg_has_role(k.relowner, 'USAGE'),
                    k.oid::pg_catalog.regclass::pg_catalog.text, k.relkind::pg_catalog.text
               FROM pg_catalog.pg_class k
              WHERE k.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
            Some(1),
            &[target.into()],
        )?;
        let row = row
            .into_iter()
            .filter(|r| matches!(r.get::<String>(4).ok().flatten().as_deref(), Some("r" | "p")))
            .collect::<Vec<_>>();
        let Some(r) = row.into_iter().next() else {
            return Ok(Err(ClassifyError::NoTarget(target.into())));
        };
        let oid = r.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid);
        let name = r.get::<String>(3)?.unwrap_or_default();
        if r.get::<bool>(2)? != Some(true) {
            return Ok(Err(ClassifyError::NotOwner {
                kind: "table",
                target: name,
                role: crate::context::current_role_name(),
            }));
        }
        Ok(Ok(Target::Table { oid, name }))
    })
    .map_err(|e: pgrx::spi::Error| ClassifyError::Internal(e.to_string()))?
}

/// The tables a classification of `target` at `level` would apply to, with whether each is
/// protected and audited. For a schema: its tables without a classification of their own (or
/// of their partition root).
fn affected(target: &Target) -> Result<Vec<(String, bool, bool)>, ClassifyError> {
    let (query, oid) = match target {
        Target::Table { oid, .. } => (
            "SELECT t.relid::regclass::text,
                    EXISTS (SELECT 1 FROM warden.rls_coverage p WHERE p.relid = t.relid AND p.protected),
                    EXISTS (SELECT 1 FROM warden.audited_tables a WHERE a.relid = t.relid AND a.enabled)
               FROM (SELECT $1::regclass AS relid, 0 AS level
                     UNION SELECT p.relid, p.level FROM pg_catalog.pg_partition_tree($1::regclass) p) t
               JOIN pg_catalog.pg_class k ON k.oid = t.relid AND k.relkind IN ('r', 'p')
              WHERE t.relid = $1 OR NOT EXISTS (SELECT 1 FROM warden.classification_rules r WHERE r.tbl = t.relid)
              ORDER BY t.level, 1",
            *oid,
        ),
        Target::Schema { oid, .. } => (
            "SELECT k.oid::regclass::text,
                    EXISTS (SELECT 1 FROM warden.rls_coverage p WHERE p.relid = k.oid AND p.protected),
                    EXISTS (SELECT 1 FROM warden.audited_tables a WHERE a.relid = k.oid AND a.enabled)
               FROM pg_catalog.pg_class k
              WHERE k.relnamespace = $1 AND k.relkind IN ('r', 'p')
                AND NOT EXISTS (SELECT 1 FROM warden.classification_rules r
                                 WHERE r.tbl = k.oid
                                    OR (k.relispartition AND r.tbl = pg_catalog.pg_partition_root(k.oid)))
              ORDER BY 1",
            *oid,
        ),
    };
    Spi::connect(|c| {
        let mut out = Vec::new();
        for r in c.select(query, None, &[oid.into()])? {
            out.push((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<bool>(2)? == Some(true),
                r.get::<bool>(3)? == Some(true),
            ));
        }
        Ok(out)
    })
    .map_err(|e: pgrx::spi::Error| ClassifyError::Internal(e.to_string()))
}

/// Classifies a schema or a table (its owner). CONFIDENTIAL and PHI need every table it applies to
/// protected and audited, and PHI needs warden in shared_preload_libraries (reads are logged by an
/// executor hook): otherwise refused with the list of what is missing.
/// No `SET search_path`: a table name is resolved on the caller's search path, as a regclass
/// argument would be; every name in the statements below is schema-qualified.
#[pg_extern(volatile, parallel_unsafe)]
fn classify(target: Option<&str>, level: Option<&str>) -> Result<(), ErrorReport> {
    let target = target.ok_or(ClassifyError::Null("target"))?;
    let level: Classification = level
        .ok_or(ClassifyError::Null("level"))?
        .parse()
        .map_err(ClassifyError::Level)?;
    crate::errors::ensure_writable(c"warden.classify()");
    let rules = crate::catalog::warden_oid(c"classification_rules");
    if rules == pg_sys::InvalidOid {
        return Err(ClassifyError::NotInstalled.into());
    }
    // the target on the caller's search path; everything after on pg_catalog's alone
    let t = resolve(target)?;
    with_catalog_search_path(|| classify_resolved(t, level, rules))?;
    Ok(())
}

/// Runs `f` with `search_path = pg_catalog, pg_temp`, as a function's SET clause would, and puts
/// the caller's back afterwards (an error rolls it back with the (sub)transaction).
fn with_catalog_search_path<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: the GUC nesting protocol of fmgr_security_definer: a new nest level, a SAVE-action
    // setting inside it, and AtEOXact_GUC to pop it.
    unsafe {
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            c"pg_catalog, pg_temp".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        let r = f();
        pg_sys::AtEOXact_GUC(true, nest);
        r
    }
}

fn classify_resolved(
    t: Target,
    level: Classification,
    rules: pg_sys::Oid,
) -> Result<(), ClassifyError> {
    let name = match &t {
        Target::Schema { name, .. } | Target::Table { name, .. } => name.clone(),
    };
    let mut gaps = Vec::new();
    let mut fixes = Vec::new();
    let preloaded = crate::catalog::preloaded();
    if level.logs_reads() && !preloaded {
        gaps.push(
            "warden is not in shared_preload_libraries, so reads of PHI cannot be logged"
                .to_string(),
        );
        fixes.extend(missing(level, true, true, false));
    }
    if level.needs_protection() {
        for (table, protected, audited) in affected(&t)? {
            let m = missing(level, protected, audited, true);
            if !m.is_empty() {
                let what: Vec<&str> = [
                    (!protected).then_some("protected"),
                    (!audited).then_some("audited"),
                ]
                .into_iter()
                .flatten()
                .collect();
                gaps.push(format!("{table} is not {}", what.join(" or ")));
                fixes.extend(m);
            }
        }
    }
    if !gaps.is_empty() {
        return Err(ClassifyError::Requirements {
            target: name,
            level,
            gaps,
            fixes,
        });
    }
    let actor = crate::context::current().map(|c| c.actor.into_string());
    let (column, oid) = match &t {
        Target::Schema { oid, .. } => ("schema_name", *oid),
        Target::Table { oid, .. } => ("tbl", *oid),
    };
    let by_cast = crate::catalog::id_cast(c"classification_rules", c"classified_by");
    crate::catalog::as_owner_of(c"classification_rules", "", || {
        Spi::connect_mut(|c| {
            c.update(
                &format!(
                    "INSERT INTO warden.classification_rules ({column}, level, classified_by, classified_by_role, classified_at)
                     VALUES ($1, $2, $3{by_cast}, $4, pg_catalog.now())
                     ON CONFLICT ({column}) DO UPDATE
                        SET level = excluded.level, classified_at = excluded.classified_at,
                            classified_by = excluded.classified_by,
                            classified_by_role = excluded.classified_by_role"
                ),
                None,
                &[
                    oid.into(),
                    level.as_str().into(),
                    actor.into(),
                    crate::context::current_role_name().into(),
                ],
            )
            .map(|_| ())
        })
        .map_err(|e| e.to_string())
    })
    .map_err(ClassifyError::Internal)?;
    // SAFETY: queues a relcache invalidation (sent at commit): every backend reloads its rules.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(rules) };
    if crate::audit::record::installed() {
        let ev = NewEvent::in_context("classify", Status::Success)
            .resource(
                match t {
                    Target::Schema { .. } => "schema",
                    Target::Table { .. } => "table",
                },
                Some(&name),
            )
            .changes(json!({ "level": level.as_str() }).to_string());
        crate::audit::record(&ev).map_err(ClassifyError::Record)?;
    }
    Ok(())
}

/// The effective classification of table `oid` (own, partition root's, schema's), if any.
/// Nothing in a database whose warden SQL has no classifications.
pub fn level_of(oid: pg_sys::Oid) -> Result<Option<Classification>, String> {
    if crate::catalog::warden_oid(c"classification_rules") == pg_sys::InvalidOid {
        return Ok(None);
    }
    let level = Spi::get_one_with_args::<String>(
        "SELECT coalesce(
                    (SELECT r.level FROM warden.classification_rules r WHERE r.tbl = $1::regclass),
                    (SELECT r.level FROM warden.classification_rules r
                      WHERE r.tbl = pg_catalog.pg_partition_root($1::regclass) AND r.tbl <> $1::regclass),
                    (SELECT r.level FROM warden.classification_rules r JOIN pg_catalog.pg_class k
                         ON k.relnamespace = r.schema_name WHERE k.oid = $1))",
        &[oid.into()],
    )
    .map_err(|e| e.to_string())?;
    Ok(level.and_then(|l| l.parse().ok()))
}

/// Refuses `what` on table `oid` when its classification requires what it would remove
/// (`unprotect_table`, `disable_audit`).
pub fn refuse_weakening(oid: pg_sys::Oid, what: &str, table: &str) -> Result<(), ClassifyError> {
    match level_of(oid).map_err(ClassifyError::Internal)? {
        Some(l) if l.needs_protection() => Err(ClassifyError::WouldBreak {
            what: what.into(),
            gap: format!("{table} is classified {l} (it must stay protected and audited)"),
        }),
        _ => Ok(()),
    }
}

/// [`refuse_weakening`] as `registry::check_weakening` asks for it.
fn check_weakening(oid: pg_sys::Oid, what: &str, table: &str) -> Result<(), ErrorReport> {
    refuse_weakening(oid, what, table).map_err(ErrorReport::from)
}

/// Registers the weakening check and watches the classification rules (from `_PG_init`).
pub fn init() {
    crate::catalog::watch_tables(&[c"classification_rules"]);
    // with Citus, every node reads the rules (the PHI reads of a shard are recorded on its node)
    crate::catalog::citus::replicate(&[c"classification_rules"]);
    crate::catalog::registry::provide_weakening_check(check_weakening);
}

/// After DDL that can weaken a table (ALTER TABLE, policies, triggers): refuses the statement when
/// a CONFIDENTIAL or PHI table is no longer protected and audited. Cheap when nothing is
/// classified.
pub fn after_utility(operation: &str) {
    // SAFETY: reads a backend global.
    // SAFETY: reads backend globals. A superuser with row_security off is how pg_restore runs:
    // it restores the classifications before the policies and triggers they require.
    let restore = unsafe { !pg_sys::row_security && pg_sys::superuser() };
    if crate::catalog::weakening_unchecked()
        || crate::catalog::in_own_ddl()
        || unsafe { pg_sys::creating_extension }
        || restore
        // Citus: DDL of a distributed table is checked on the coordinator, where it is issued;
        // a worker applies it to the shell and the shards (README, "Running on Citus")
        || crate::catalog::citus::on_worker()
    {
        return;
    }
    if crate::catalog::warden_oid(c"classification_rules") == pg_sys::InvalidOid {
        return;
    }
    // SAFETY: makes the statement's own catalog changes visible to the check.
    unsafe { pg_sys::CommandCounterIncrement() };
    let gap = Spi::get_one::<String>(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM warden.classification_rules
                                   WHERE level IN ('CONFIDENTIAL', 'PHI'))
                     THEN warden._classification_gap() END",
    );
    let gap = match gap {
        Ok(g) => g,
        Err(e) => Some(format!("the classifications could not be checked ({e})")),
    };
    if let Some(gap) = gap {
        let e = ClassifyError::WouldBreak {
            what: operation.into(),
            gap,
        };
        crate::errors::report(&e).report(PgLogLevel::ERROR);
    }
}
