//! The data-subject rights functions: register_personal_data, erase_subject, export_subject,
//! record_consent, delete_account (has_consent, consent_history and register_memberships are SQL,
//! in sql/privacy.sql).
//!
//! Each authorizes the caller from the verified context first, then reads and writes the
//! registered tables as the holds' owner with an explicit tenant filter (so erasure and export
//! reach every row of the subject in the tenant whatever the application role's grants), and is
//! an audit event that carries no personal value.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{JsonB, PgRelation};
use serde_json::{json, Map, Value};

use super::method::{Method, PSEUDONYM_LEN, REDACTED};
use super::PrivacyError;
use crate::audit::record::json_str;
use crate::audit::{record, record_autonomous, NewEvent, Status};
use crate::catalog as cache;
use crate::catalog::registry::{self, HoldInfo as Hold};
use crate::jwt::Claims;
use crate::types::ident::Ident;
use crate::types::level::Level;
use crate::types::SqlName;

fn privileged<R>(f: impl FnOnce() -> Result<R, pgrx::spi::Error>) -> Result<R, PrivacyError> {
    cache::as_owner_of(
        c"personal_data",
        "warden's personal-data tables are not installed in this database (ALTER EXTENSION warden UPDATE)",
        || f().map_err(|e| e.to_string()),
    )
    .map_err(|e| {
        // Citus: a node that cannot be reached is a state of the cluster, not a defect
        if crate::gucs::citus_loaded()
            && ["connection to the remote node", "failed to connect", "could not connect"]
                .iter()
                .any(|m| e.contains(m))
        {
            PrivacyError::Unreachable(e)
        } else {
            PrivacyError::Internal(e)
        }
    })
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An identifier from a uuid argument (the uuid forms of the functions, as before 0.6.0).
fn from_uuid(u: &pgrx::Uuid) -> Ident {
    Ident::from_uuid(&uuid::Uuid::from_bytes(*u.as_bytes()))
}

/// An identifier argument: NULL, empty, too long or with control characters is refused (22023).
fn ident_arg(v: Option<&str>, what: &'static str) -> Result<Ident, PrivacyError> {
    let v = v.ok_or_else(|| PrivacyError::Invalid(format!("{what} must not be NULL")))?;
    Ident::parse(v).map_err(|e| PrivacyError::Invalid(format!("{what} {e}")))
}

/// The type to cast an identifier to for comparing it with a column of type `sql_type` (as
/// `format_type` names it), or None when it cannot be a value of that type (no row matches).
fn cast_for(id: &Ident, sql_type: &str) -> Option<&'static str> {
    match sql_type {
        "uuid" => id.as_uuid().map(|_| "uuid"),
        "bigint" => id.as_i64().map(|_| "bigint"),
        "integer" => id.as_i32().map(|_| "integer"),
        t if t == "text" || t.starts_with("character varying") => Some("text"),
        _ => None,
    }
}

fn describe(claims: Option<Claims>) -> String {
    claims.map_or_else(
        || "no context".into(),
        |c| format!("level {} as {}", c.level.as_str(), c.actor),
    )
}

/// One registered personal-data column.
struct Column {
    name: String,
    method: Method,
    sql_type: String,
}

/// A table with registered personal data.
struct Registered {
    oid: pg_sys::Oid,
    name: String,
    tenant_column: String,
    tenant_type: String,
    subject_column: String,
    subject_type: String,
    columns: Vec<Column>,
}

/// The registry, with each table's tenant column. A registered table that is no longer protected
/// is an error: warden would not know which tenant a row belongs to.
fn registry() -> Result<Vec<Registered>, PrivacyError> {
    let rows = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(
            "SELECT d.tbl::oid, format('%I.%I', n.nspname, k.relname), p.tenant_column::text,
                    d.subject_column::text, d.column_name::text, d.method, format_type(a.atttypid, a.atttypmod),
                    format_type(ta.atttypid, NULL), format_type(sa.atttypid, NULL)
               FROM warden.personal_data d
               JOIN pg_class k ON k.oid = d.tbl JOIN pg_namespace n ON n.oid = k.relnamespace
               LEFT JOIN warden.protected_tables p ON p.relid = d.tbl
               LEFT JOIN pg_attribute a ON a.attrelid = d.tbl AND a.attname = d.column_name AND NOT a.attisdropped
               LEFT JOIN pg_attribute ta ON ta.attrelid = d.tbl AND ta.attname = p.tenant_column AND NOT ta.attisdropped
               LEFT JOIN pg_attribute sa ON sa.attrelid = d.tbl AND sa.attname = d.subject_column AND NOT sa.attisdropped
              ORDER BY 2, d.column_name",
            None,
            &[],
        )? {
            out.push((
                row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?,
                row.get::<String>(4)?.unwrap_or_default(),
                row.get::<String>(5)?.unwrap_or_default(),
                row.get::<String>(6)?.unwrap_or_default(),
                row.get::<String>(7)?,
                row.get::<String>(8)?.unwrap_or_default(),
                row.get::<String>(9)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })?;
    let mut out: Vec<Registered> = Vec::new();
    for (oid, name, tcol, scol, col, method, ty, tenant_type, subject_type) in rows {
        let tenant_column = tcol.ok_or_else(|| PrivacyError::NotProtected(name.clone()))?;
        let sql_type = ty.ok_or_else(|| PrivacyError::NoColumn {
            table: name.clone(),
            column: col.clone(),
        })?;
        let column = Column {
            name: col,
            method: method.parse()?,
            sql_type,
        };
        match out.last_mut() {
            Some(r) if r.oid == oid => r.columns.push(column),
            _ => out.push(Registered {
                oid,
                name,
                tenant_column,
                tenant_type,
                subject_column: scol,
                subject_type,
                columns: vec![column],
            }),
        }
    }
    Ok(out)
}

/// Whether relations `a` and `b` are the same or one is a partition (at any depth) of the other.
fn related(a: pg_sys::Oid, b: pg_sys::Oid) -> Result<bool, PrivacyError> {
    if a == b {
        return Ok(true);
    }
    let la = cache::lineage(a).map_err(PrivacyError::Registry)?;
    let lb = cache::lineage(b).map_err(PrivacyError::Registry)?;
    Ok(la.contains(&b) || lb.contains(&a))
}

/// The first active hold covering personal data of `subject` in one of `tenants`.
/// Whether hold `h` covers personal data of `subject`: a hold on that subject, or on no subject,
/// over any table or over a table related to a registered one.
fn hold_covers(h: &Hold, subject: &Ident, reg: &[Registered]) -> Result<bool, PrivacyError> {
    if h.subject.as_ref().is_some_and(|s| s != subject) {
        return Ok(false);
    }
    let Some(t) = h.tbl else { return Ok(true) };
    for r in reg {
        if related(t, r.oid)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The first active hold covering personal data of `subject` in one of `tenants`.
fn covering_hold(
    subject: &Ident,
    tenants: &[Ident],
    reg: &[Registered],
) -> Result<Option<Hold>, PrivacyError> {
    let holds = registry::active_holds().map_err(PrivacyError::Registry)?;
    for h in holds.iter() {
        if tenants.contains(&h.tenant) && hold_covers(h, subject, reg)? {
            return Ok(Some(h.clone()));
        }
    }
    Ok(None)
}

fn table_owner(oid: pg_sys::Oid) -> Result<pg_sys::Oid, PrivacyError> {
    Ok(Spi::connect(|c| {
        c.select(
            "SELECT relowner FROM pg_class WHERE oid = $1",
            Some(1),
            &[oid.into()],
        )?
        .first()
        .get_one::<pg_sys::Oid>()
    })?
    .unwrap_or(pg_sys::InvalidOid))
}

/// Anonymizes every registered column of `subject`'s rows (in `tenant`, or in every tenant),
/// table by table; returns rows changed per table. The caller has checked the holds.
fn erase_rows(
    subject: &Ident,
    tenant: Option<&Ident>,
    reg: &[Registered],
) -> Result<Map<String, Value>, PrivacyError> {
    if reg
        .iter()
        .flat_map(|r| &r.columns)
        .any(|c| c.method == Method::Hash)
    {
        super::key()?;
    }
    let mut report = Map::new();
    for r in reg {
        // Citus refuses a STABLE function of a column in an UPDATE of a distributed table: there
        // the keyed hashes are computed here, from the subject's values, and the UPDATE maps each
        // value to its pseudonym (a jsonb parameter)
        let distributed = !crate::catalog::citus_distributed(Some(&[r.oid]))
            .map_err(PrivacyError::Internal)?
            .is_empty();
        let mut mapped: Vec<String> = Vec::new();
        let sets: Vec<String> = r
            .columns
            .iter()
            .map(|c| {
                let col = quote_ident(&c.name);
                let value = match &c.method {
                    Method::Null => "NULL".to_owned(),
                    Method::Redact => quote_literal(REDACTED),
                    Method::Hash if distributed => {
                        mapped.push(c.name.clone());
                        format!(
                            "(${}::jsonb OPERATOR(pg_catalog.->>) {col}::text)",
                            2 + usize::from(tenant.is_some()) + mapped.len() - 1
                        )
                    }
                    Method::Hash => format!("warden._pseudonym({col}::text)"),
                    Method::Constant(v) => format!("{}::{}", quote_literal(v), c.sql_type),
                };
                format!("{col} = {value}")
            })
            .collect();
        let methods: Map<String, Value> = r
            .columns
            .iter()
            .map(|c| (c.name.clone(), Value::String(c.method.as_stored())))
            .collect();
        // an identifier that cannot be a value of the column's type names no row of the table
        let (Some(scast), Some(tcast)) = (
            cast_for(subject, &r.subject_type),
            tenant.map_or(Some("text"), |t| cast_for(t, &r.tenant_type)),
        ) else {
            report.insert(r.name.clone(), json!({ "rows": 0, "columns": methods }));
            continue;
        };
        let mut sql = format!(
            "UPDATE {} SET {} WHERE {} OPERATOR(pg_catalog.=) $1::{scast}",
            r.name,
            sets.join(", "),
            quote_ident(&r.subject_column)
        );
        if tenant.is_some() {
            sql.push_str(&format!(
                " AND {} OPERATOR(pg_catalog.=) $2::{tcast}",
                quote_ident(&r.tenant_column)
            ));
        }
        // as the table's owner, under the current context: the owner's own triggers run with the
        // owner's rights (never the extension owner's), and row level security still applies
        let owner = table_owner(r.oid)?;
        let subject_filter = format!(
            "{} OPERATOR(pg_catalog.=) $1::{scast}{}",
            quote_ident(&r.subject_column),
            if tenant.is_some() {
                format!(
                    " AND {} OPERATOR(pg_catalog.=) $2::{tcast}",
                    quote_ident(&r.tenant_column)
                )
            } else {
                String::new()
            }
        );
        let n = super::while_erasing(|| {
            cache::as_role(owner, || {
                Spi::connect_mut(|c| {
                    let ids = || match tenant {
                        Some(t) => vec![subject.as_str().into(), t.as_str().into()],
                        None => vec![subject.as_str().into()],
                    };
                    let mut args = ids();
                    for col in &mapped {
                        let values = c.select(
                            &format!(
                                "SELECT DISTINCT {q}::text FROM {} WHERE {subject_filter} AND {q} IS NOT NULL",
                                r.name,
                                q = quote_ident(col)
                            ),
                            None,
                            &ids(),
                        )?;
                        let mut map = Map::new();
                        for v in values {
                            let Some(v) = v.get::<String>(1)? else { continue };
                            let h = c
                                .select("SELECT warden._pseudonym($1)", Some(1), &[v.as_str().into()])?
                                .first()
                                .get_one::<String>()?;
                            map.insert(v, h.map_or(Value::Null, Value::String));
                        }
                        args.push(Value::Object(map).to_string().into());
                    }
                    Ok::<_, pgrx::spi::Error>(c.update(&sql, None, &args)?.len())
                })
                .map_err(|e| e.to_string())
            })
            .map_err(PrivacyError::Internal)
        })?;
        report.insert(r.name.clone(), json!({ "rows": n, "columns": methods }));
    }
    Ok(report)
}

/// Declares which columns of a table hold a data subject's personal data, and how erasure
/// anonymizes them. The table's owner; the table must be protected.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn register_personal_data(
    tbl: Option<PgRelation>,
    subject_column: Option<SqlName>,
    columns: Option<Vec<Option<SqlName>>>,
    method: default!(Option<&str>, "'null'"),
) -> Result<(), ErrorReport> {
    let tbl = tbl.ok_or(PrivacyError::Invalid("tbl must not be NULL".into()))?;
    let subject_column = subject_column
        .ok_or(PrivacyError::Invalid(
            "subject_column must not be NULL".into(),
        ))?
        .0;
    let columns: Vec<String> = columns
        .ok_or(PrivacyError::Invalid("columns must not be NULL".into()))?
        .into_iter()
        .map(|c| {
            c.map(|c| c.0).ok_or(PrivacyError::Invalid(
                "columns must not contain NULL".into(),
            ))
        })
        .collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Err(PrivacyError::Invalid("columns must name at least one column".into()).into());
    }
    let method: Method = method
        .ok_or(PrivacyError::Invalid("method must not be NULL".into()))?
        .parse()
        .map_err(PrivacyError::from)?;
    crate::errors::ensure_writable(c"warden.register_personal_data()");
    let oid = tbl.oid();
    drop(tbl);
    Spi::connect(|c| -> Result<(), PrivacyError> {
        let row = c.select(
            "SELECT format('%I.%I', n.nspname, k.relname), pg_has_role(k.relowner, 'USAGE'),
                    p.tenant_column::text,
                    (SELECT min(d.subject_column)::text FROM warden.personal_data d WHERE d.tbl = k.oid)
               FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
               LEFT JOIN warden.protected_tables p ON p.relid = k.oid
              WHERE k.oid = $1",
            Some(1),
            &[oid.into()],
        )?;
        let row = row.first();
        let table = row.get::<String>(1)?.unwrap_or_default();
        if row.get::<bool>(2)? != Some(true) {
            return Err(PrivacyError::NotOwner {
                table,
                role: crate::context::current_role_name(),
            });
        }
        let Some(tenant_column) = row.get::<String>(3)? else {
            return Err(PrivacyError::NotProtected(table));
        };
        if let Some(existing) = row.get::<String>(4)? {
            if existing != subject_column {
                return Err(PrivacyError::OtherSubjectColumn {
                    table,
                    existing,
                    given: subject_column.clone(),
                });
            }
        }
        let attr = |name: &str| -> Result<Option<(String, bool, String, i32)>, PrivacyError> {
            let r = c.select(
                "SELECT format_type(a.atttypid, a.atttypmod), a.attnotnull, t.typcategory::text,
                        CASE WHEN a.atttypid IN ('varchar'::regtype, 'bpchar'::regtype) AND a.atttypmod > 4
                             THEN a.atttypmod - 4 ELSE -1 END
                   FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                  WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                Some(1),
                &[oid.into(), name.into()],
            )?;
            if r.is_empty() {
                return Ok(None);
            }
            let r = r.first();
            Ok(Some((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<bool>(2)? == Some(true),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<i32>(4)?.unwrap_or(-1),
            )))
        };
        match attr(&subject_column)? {
            None => {
                return Err(PrivacyError::NoColumn {
                    table,
                    column: subject_column.clone(),
                })
            }
            Some((ty, ..))
                if !matches!(ty.as_str(), "uuid" | "text" | "bigint" | "integer")
                    && !ty.starts_with("character varying") =>
            {
                return Err(PrivacyError::NotUuid {
                    table,
                    column: subject_column.clone(),
                    actual: ty,
                })
            }
            _ => {}
        }
        for col in &columns {
            let Some((ty, not_null, category, max_len)) = attr(col)? else {
                return Err(PrivacyError::NoColumn {
                    table,
                    column: col.clone(),
                });
            };
            let bad = |why: String| PrivacyError::BadMethod {
                table: table.clone(),
                column: col.clone(),
                method: method.as_stored(),
                why,
            };
            if *col == subject_column || *col == tenant_column {
                return Err(bad(
                    "it identifies the row's subject or tenant, which erasure keeps".into(),
                ));
            }
            match &method {
                Method::Null if not_null => return Err(bad("the column is NOT NULL".into())),
                Method::Redact | Method::Hash if category != "S" => {
                    return Err(bad(format!("the column is {ty}, not a string type")))
                }
                Method::Redact if max_len >= 0 && (max_len as usize) < REDACTED.len() => {
                    return Err(bad(format!("{ty} is shorter than the marker {REDACTED}")))
                }
                Method::Hash if max_len >= 0 && (max_len as usize) < PSEUDONYM_LEN => {
                    return Err(bad(format!(
                        "{ty} is shorter than a pseudonym ({PSEUDONYM_LEN} characters)"
                    )))
                }
                Method::Constant(v) => {
                    // the constant must be a value of the column's type (its input function decides)
                    c.select(&format!("SELECT {}::{ty}", quote_literal(v)), Some(1), &[])?;
                }
                _ => {}
            }
        }
        Ok(())
    })?;
    let stored = method.as_stored();
    privileged(|| {
        Spi::connect_mut(|c| {
            for col in &columns {
                c.update(
                    "DELETE FROM warden.personal_data WHERE tbl = $1 AND column_name = $2",
                    None,
                    &[oid.into(), col.as_str().into()],
                )?;
                c.update(
                    "INSERT INTO warden.personal_data (tbl, column_name, subject_column, method) VALUES ($1, $2, $3, $4)",
                    None,
                    &[oid.into(), col.as_str().into(), subject_column.as_str().into(), stored.as_str().into()],
                )?;
            }
            Ok(())
        })
    })?;
    cache::invalidate(c"personal_data");
    let table = Spi::get_one_with_args::<String>("SELECT $1::regclass::text", &[oid.into()])
        .map_err(PrivacyError::from)?
        .unwrap_or_default();
    let ev = NewEvent::in_context("register_personal_data", Status::Success)
        .resource("table", Some(&table))
        .changes(
            json!({ "subject_column": subject_column, "columns": columns, "method": stored })
                .to_string(),
        );
    record(&ev).map_err(PrivacyError::from)?;
    Ok(())
}

/// The keyed hash (pseudonym) of a value: what the `hash` method stores. Not for PUBLIC: it would
/// let anyone test guesses against pseudonyms.
/// Callable only while warden erases (the `hash` method's UPDATE runs as the table's owner) and by
/// superusers: otherwise it would let anyone test guesses against the pseudonyms in the trail.
#[pg_extern(stable, parallel_safe, strict)]
#[search_path(pg_catalog, pg_temp)]
fn _pseudonym(value: &str) -> Result<String, ErrorReport> {
    // SAFETY: reads the current role's attribute.
    if !super::erasing() && !unsafe { pg_sys::superuser() } {
        return Err(PrivacyError::Oracle.into());
    }
    Ok(super::method::pseudonym(&super::key()?, value.as_bytes()))
}

fn require_claims(what: &'static str, needs: &'static str) -> Result<Claims, PrivacyError> {
    crate::context::current().ok_or(PrivacyError::NotAllowed {
        what,
        needs,
        current: "no context".into(),
    })
}

/// Anonymizes every registered column of every row of `subject` in the current tenant, in one
/// transaction, and returns a report per table. Refused (and recorded) while a legal hold covers
/// the subject's data. Admin level.
#[pg_extern(volatile, parallel_unsafe, name = "erase_subject")]
#[search_path(pg_catalog, pg_temp)]
fn erase_subject_id(subject: Option<&str>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    erase(
        subject.map(|s| ident_arg(Some(s), "subject")).transpose()?,
        reason,
    )
}

/// `erase_subject` of a uuid subject, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn erase_subject(subject: Option<pgrx::Uuid>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    erase(subject.as_ref().map(from_uuid), reason)
}

fn erase(subject: Option<Ident>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    const WHAT: &str = "warden.erase_subject()";
    let claims = require_claims(WHAT, "admin level")?;
    if claims.level != Level::Admin {
        return Err(PrivacyError::NotAllowed {
            what: WHAT,
            needs: "admin level",
            current: describe(Some(claims)),
        }
        .into());
    }
    let subject = subject.ok_or(PrivacyError::Invalid("subject must not be NULL".into()))?;
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or(PrivacyError::Invalid(
            "reason must not be NULL or empty".into(),
        ))?;
    crate::errors::ensure_writable(c"warden.erase_subject()");
    let tenant = claims.tenant.clone();
    let reg = registry()?;
    if let Some(h) = covering_hold(&subject, std::slice::from_ref(&tenant), &reg)? {
        let ev = NewEvent::in_context("erase_subject", Status::Denied)
            .resource("subject", Some(&subject.to_string()))
            .changes(json!({ "reason": reason, "hold": h.id, "case_ref": h.case_ref }).to_string());
        record_autonomous(&ev);
        return Err(PrivacyError::Held {
            what: WHAT,
            subject: subject.to_string(),
            case_ref: h.case_ref,
            hold: h.id,
        }
        .into());
    }
    let tables = erase_rows(&subject, Some(&tenant), &reg)?;
    // crypto-shredding: whatever was encrypted with the subject's key, backups included, is gone
    let destroyed = registry::subject_erased(&tenant, &subject, &claims.actor)
        .map_err(PrivacyError::Internal)?;
    let erased_at = Spi::get_one::<String>(
        "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .map_err(PrivacyError::from)?
    .unwrap_or_default();
    let report = json!({
        "subject": subject.to_string(),
        "tenant": claims.tenant.to_string(),
        "erased_at": erased_at,
        "tables": tables,
        "subject_key": Value::Null,
    });
    let mut report = report;
    for (k, v) in destroyed {
        report[k] = v;
    }
    let ev = NewEvent::in_context("erase_subject", Status::Success)
        .resource("subject", Some(&subject.to_string()))
        .changes(json!({ "reason": reason, "tables": report["tables"], "subject_key": report["subject_key"] }).to_string());
    record(&ev).map_err(PrivacyError::from)?;
    Ok(JsonB(report))
}

/// All registered personal data of `subject` in the current tenant (GDPR Art. 15 and 20): for the
/// subject themself or admin level.
#[pg_extern(volatile, parallel_unsafe, name = "export_subject")]
#[search_path(pg_catalog, pg_temp)]
fn export_subject_id(subject: Option<&str>) -> Result<JsonB, ErrorReport> {
    export(subject.map(|s| ident_arg(Some(s), "subject")).transpose()?)
}

/// `export_subject` of a uuid subject, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn export_subject(subject: Option<pgrx::Uuid>) -> Result<JsonB, ErrorReport> {
    export(subject.as_ref().map(from_uuid))
}

fn export(subject: Option<Ident>) -> Result<JsonB, ErrorReport> {
    const WHAT: &str = "warden.export_subject()";
    const NEEDS: &str = "the subject's own context or admin level";
    let claims = require_claims(WHAT, NEEDS)?;
    let subject = subject.ok_or(PrivacyError::Invalid("subject must not be NULL".into()))?;
    if claims.level != Level::Admin && claims.actor != subject {
        return Err(PrivacyError::NotAllowed {
            what: WHAT,
            needs: NEEDS,
            current: describe(Some(claims)),
        }
        .into());
    }
    let tenant = claims.tenant.clone();
    let reg = registry()?;
    let mut tables = Map::new();
    let mut counts = Map::new();
    for r in &reg {
        let (Some(scast), Some(tcast)) = (
            cast_for(&subject, &r.subject_type),
            cast_for(&tenant, &r.tenant_type),
        ) else {
            counts.insert(r.name.clone(), json!(0));
            tables.insert(r.name.clone(), json!([]));
            continue;
        };
        let members: Vec<String> = r
            .columns
            .iter()
            .map(|c| format!("{}, {}", quote_literal(&c.name), quote_ident(&c.name)))
            .collect();
        let sql = format!(
            "SELECT coalesce(jsonb_agg(jsonb_build_object({}) ORDER BY ctid), '[]')::text FROM {} \
              WHERE {} OPERATOR(pg_catalog.=) $1::{scast} AND {} OPERATOR(pg_catalog.=) $2::{tcast}",
            members.join(", "),
            r.name,
            quote_ident(&r.subject_column),
            quote_ident(&r.tenant_column)
        );
        let text = privileged(|| {
            Spi::connect(|c| {
                c.select(
                    &sql,
                    None,
                    &[subject.as_str().into(), tenant.as_str().into()],
                )?
                .first()
                .get_one::<String>()
            })
        })?
        .unwrap_or_else(|| "[]".into());
        let rows: Value =
            serde_json::from_str(&text).map_err(|e| PrivacyError::Internal(e.to_string()))?;
        counts.insert(r.name.clone(), json!(rows.as_array().map_or(0, Vec::len)));
        tables.insert(r.name.clone(), rows);
    }
    // the prior versions legal holds kept of the subject's rows (their registered columns)
    let preserved: Value = if crate::catalog::warden_oid(c"preserved_versions")
        == pg_sys::InvalidOid
    {
        json!([])
    } else {
        let text = privileged(|| {
                Spi::connect(|c| {
                    c.select(
                        "SELECT coalesce(jsonb_agg(jsonb_build_object(
                                    'table', v.table_name, 'replaced_at', v.replaced_at, 'case_refs', v.case_refs,
                                    'erased', v.erased_at IS NOT NULL,
                                    'values', (SELECT coalesce(jsonb_object_agg(k, v.old_row -> k), '{}')
                                                 FROM unnest(v.personal_columns) k)) ORDER BY v.id), '[]')::text
                           FROM warden.preserved_versions v WHERE v.tenant = $1 AND v.subject = $2",
                        None,
                        &[tenant.as_str().into(), subject.as_str().into()],
                    )?
                    .first()
                    .get_one::<String>()
                })
            })?
            .unwrap_or_else(|| "[]".into());
        let mut preserved: Value =
            serde_json::from_str(&text).map_err(|e| PrivacyError::Internal(e.to_string()))?;
        // Citus: each worker keeps the versions of its shards' rows; a worker that cannot be
        // asked fails the export (never a partial one)
        if crate::gucs::citus_loaded() {
            for v in worker_versions(&tenant, &subject)? {
                if let Some(a) = preserved.as_array_mut() {
                    a.push(v);
                }
            }
        }
        preserved
    };
    let ev = NewEvent::in_context("export_subject", Status::Success)
        .resource("subject", Some(&subject.to_string()))
        .changes(
            json!({ "rows": counts, "preserved_versions": preserved.as_array().map_or(0, Vec::len) })
                .to_string(),
        );
    record(&ev).map_err(PrivacyError::from)?;
    Ok(JsonB(json!({
        "subject": subject.to_string(),
        "tenant": tenant.to_string(),
        "tables": tables,
        "preserved_versions": preserved,
    })))
}

/// The prior versions of `subject`'s rows that the Citus workers keep (empty without Citus's
/// metadata), asked as the holds' owner; an error when a worker cannot be asked.
fn worker_versions(tenant: &Ident, subject: &Ident) -> Result<Vec<Value>, PrivacyError> {
    let query = format!(
        "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                    'table', v.table_name, 'replaced_at', v.replaced_at, 'case_refs', v.case_refs,
                    'erased', v.erased_at IS NOT NULL,
                    'values', (SELECT coalesce(pg_catalog.jsonb_object_agg(k, v.old_row OPERATOR(pg_catalog.->) k), '{{}}')
                                 FROM pg_catalog.unnest(v.personal_columns) k)) ORDER BY v.id), '[]')::text
           FROM warden.preserved_versions v WHERE v.tenant OPERATOR(pg_catalog.=) {} AND v.subject OPERATOR(pg_catalog.=) {}",
        quote_literal(tenant.as_str()),
        quote_literal(subject.as_str())
    );
    let rows = privileged(|| {
        Spi::connect(|c| {
            let present = c
                .select(
                    "SELECT pg_catalog.to_regproc('pg_catalog.run_command_on_workers') IS NOT NULL
                        AND pg_catalog.to_regclass('pg_catalog.pg_dist_node') IS NOT NULL",
                    Some(1),
                    &[],
                )?
                .first()
                .get_one::<bool>()?
                == Some(true);
            let mut out = Vec::new();
            if present {
                for r in c.select(
                    "SELECT w.nodename || ':' || w.nodeport, w.success, w.result
                       FROM pg_catalog.run_command_on_workers($1) w",
                    None,
                    &[query.as_str().into()],
                )? {
                    out.push((
                        r.get::<String>(1)?.unwrap_or_default(),
                        r.get::<bool>(2)? == Some(true),
                        r.get::<String>(3)?.unwrap_or_default(),
                    ));
                }
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
    })?;
    let mut versions = Vec::new();
    for (node, ok, result) in rows {
        if !ok {
            return Err(PrivacyError::Unreachable(format!(
                "worker {node} could not be asked for the prior versions it keeps: {result}"
            )));
        }
        let v: Value =
            serde_json::from_str(&result).map_err(|e| PrivacyError::Internal(e.to_string()))?;
        if let Value::Array(a) = v {
            versions.extend(a);
        }
    }
    Ok(versions)
}

/// Records a consent (granted) or an objection or withdrawal (not granted) of `subject` for
/// `purpose` in the current tenant. The history is append-only. The subject themself, or write
/// level. Returns the record's id.
#[pg_extern(volatile, parallel_unsafe, name = "record_consent")]
#[search_path(pg_catalog, pg_temp)]
fn record_consent_id(
    subject: Option<&str>,
    purpose: Option<&str>,
    granted: Option<bool>,
    source: Option<&str>,
) -> Result<i64, ErrorReport> {
    let subject = subject.map(|s| ident_arg(Some(s), "subject")).transpose()?;
    consent(subject, purpose, granted, source)
}

/// `record_consent` of a uuid subject, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn record_consent(
    subject: Option<pgrx::Uuid>,
    purpose: Option<&str>,
    granted: Option<bool>,
    source: Option<&str>,
) -> Result<i64, ErrorReport> {
    consent(subject.as_ref().map(from_uuid), purpose, granted, source)
}

fn consent(
    subject: Option<Ident>,
    purpose: Option<&str>,
    granted: Option<bool>,
    source: Option<&str>,
) -> Result<i64, ErrorReport> {
    const WHAT: &str = "warden.record_consent()";
    const NEEDS: &str = "the subject's own context or write level";
    let claims = require_claims(WHAT, NEEDS)?;
    let subject = subject.ok_or(PrivacyError::Invalid("subject must not be NULL".into()))?;
    if !claims.level.implies(Level::Write) && claims.actor != subject {
        return Err(PrivacyError::NotAllowed {
            what: WHAT,
            needs: NEEDS,
            current: describe(Some(claims)),
        }
        .into());
    }
    let purpose = purpose
        .filter(|p| !p.trim().is_empty())
        .ok_or(PrivacyError::Invalid(
            "purpose must not be NULL or empty".into(),
        ))?;
    let granted = granted.ok_or(PrivacyError::Invalid("granted must not be NULL".into()))?;
    let source = source.ok_or(PrivacyError::Invalid("source must not be NULL".into()))?;
    crate::errors::ensure_writable(c"warden.record_consent()");
    let (tenant, actor) = (claims.tenant.as_str(), claims.actor.as_str());
    let id = privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"consents", c"tenant");
            c.update(
                &format!("INSERT INTO warden.consents (tenant, subject, purpose, granted, source, recorded_by)
                 VALUES ($1{t}, $2{t}, $3, $4, $5, $6{t}) RETURNING id"),
                Some(1),
                &[tenant.into(), subject.as_str().into(), purpose.into(), granted.into(), source.into(), actor.into()],
            )?
            .first()
            .get_one::<i64>()
        })
    })?
    .unwrap_or_default();
    let ev = NewEvent::in_context("record_consent", Status::Success)
        .resource("subject", Some(&subject.to_string()))
        .changes(format!(
            "{{\"purpose\":{},\"granted\":{granted},\"source\":{},\"id\":{id}}}",
            json_str(purpose),
            json_str(source)
        ));
    record(&ev).map_err(PrivacyError::from)?;
    Ok(id)
}

/// Where an account stands: the tenants where it is a member or has registered personal data,
/// those where it is the last admin, and whether any membership table is registered.
struct Standing {
    tenants: Vec<Ident>,
    last_admin: Vec<String>,
    memberships_registered: bool,
}

fn actor_tenants(actor: &Ident, reg: &[Registered]) -> Result<Standing, PrivacyError> {
    let memberships = Spi::connect(|c| {
        let mut out = Vec::new();
        for row in c.select(
            "SELECT format('%I.%I', n.nspname, k.relname), m.actor_column::text, m.level_column::text, p.tenant_column::text
               FROM warden.membership_tables m JOIN pg_class k ON k.oid = m.tbl
               JOIN pg_namespace n ON n.oid = k.relnamespace
               LEFT JOIN warden.protected_tables p ON p.relid = m.tbl ORDER BY 1",
            None,
            &[],
        )? {
            out.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?,
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })?;
    let mut tenants: Vec<Ident> = Vec::new();
    let mut last_admin = Vec::new();
    let add = |list: Vec<String>, tenants: &mut Vec<Ident>| {
        for t in list.iter().filter_map(|t| Ident::parse(t).ok()) {
            if !tenants.contains(&t) {
                tenants.push(t);
            }
        }
    };
    let registered = !memberships.is_empty();
    for (table, actor_col, level_col, tenant_col) in &memberships {
        let tenant_col = tenant_col
            .clone()
            .ok_or_else(|| PrivacyError::NotProtected(table.clone()))?;
        let (a, l, t) = (
            quote_ident(actor_col),
            quote_ident(level_col),
            quote_ident(&tenant_col),
        );
        let (member_of, last) = privileged(|| {
            Spi::connect(|c| {
                let mut member_of = Vec::new();
                for row in c.select(
                    &format!("SELECT DISTINCT {t}::text FROM {table} WHERE {a}::text = $1"),
                    None,
                    &[actor.as_str().into()],
                )? {
                    if let Some(u) = row.get::<String>(1)? {
                        member_of.push(u);
                    }
                }
                let mut last = Vec::new();
                for row in c.select(
                    &format!(
                        "SELECT DISTINCT m.{t}::text FROM {table} m WHERE m.{a}::text = $1 AND m.{l}::text = 'admin'
                            AND NOT EXISTS (SELECT 1 FROM {table} o WHERE o.{t} = m.{t} AND o.{l}::text = 'admin' AND o.{a}::text <> $1)"
                    ),
                    None,
                    &[actor.as_str().into()],
                )? {
                    last.push(row.get::<String>(1)?.unwrap_or_default());
                }
                Ok((member_of, last))
            })
        })?;
        add(member_of, &mut tenants);
        last_admin.extend(last);
    }
    for r in reg {
        let Some(cast) = cast_for(actor, &r.subject_type) else {
            continue;
        };
        let sql = format!(
            "SELECT DISTINCT {}::text FROM {} WHERE {} = $1::{cast}",
            quote_ident(&r.tenant_column),
            r.name,
            quote_ident(&r.subject_column)
        );
        let list = privileged(|| {
            Spi::connect(|c| {
                let mut out = Vec::new();
                for row in c.select(&sql, None, &[actor.as_str().into()])? {
                    if let Some(u) = row.get::<String>(1)? {
                        out.push(u);
                    }
                }
                Ok(out)
            })
        })?;
        add(list, &mut tenants);
    }
    Ok(Standing {
        tenants,
        last_admin,
        memberships_registered: registered,
    })
}

/// Deletes an account: checks who is asking (the actor themself with a fresh token, or an admin
/// of one of the actor's tenants) and the prerequisites (not a tenant's last admin, no legal hold
/// over the actor's data), refusing with the whole list; then erases the actor's personal data in
/// every tenant and refuses every token of the actor issued before now.
#[pg_extern(volatile, parallel_unsafe, name = "delete_account")]
#[search_path(pg_catalog, pg_temp)]
fn delete_account_id(actor: Option<&str>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    delete(
        actor.map(|a| ident_arg(Some(a), "actor")).transpose()?,
        reason,
    )
}

/// `delete_account` of a uuid actor, as before 0.6.0.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn delete_account(actor: Option<pgrx::Uuid>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    delete(actor.as_ref().map(from_uuid), reason)
}

fn delete(actor: Option<Ident>, reason: Option<&str>) -> Result<JsonB, ErrorReport> {
    const WHAT: &str = "warden.delete_account()";
    const NEEDS: &str = "the actor's own token issued within warden.reauth_window, or admin level in one of the actor's tenants";
    let claims = require_claims(WHAT, NEEDS)?;
    let actor = actor.ok_or(PrivacyError::Invalid("actor must not be NULL".into()))?;
    let reason = reason
        .filter(|r| !r.trim().is_empty())
        .ok_or(PrivacyError::Invalid(
            "reason must not be NULL or empty".into(),
        ))?;
    crate::errors::ensure_writable(c"warden.delete_account()");
    let reg = registry()?;
    let Standing {
        tenants,
        last_admin,
        memberships_registered,
    } = actor_tenants(&actor, &reg)?;
    let own = claims.actor == actor;
    if own {
        let window = i64::from(crate::gucs::REAUTH_WINDOW.get());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let fresh = claims.iat.is_some_and(|iat| now - iat <= window);
        if !fresh {
            return Err(PrivacyError::NotAllowed {
                what: WHAT,
                needs: "re-authentication: a token issued within warden.reauth_window",
                current: match claims.iat {
                    Some(iat) => format!(
                        "a token issued {} s ago; the window is {window} s",
                        now - iat
                    ),
                    None => "a token without iat".into(),
                },
            }
            .into());
        }
    } else if claims.level != Level::Admin || !tenants.contains(&claims.tenant) {
        return Err(PrivacyError::NotAllowed {
            what: WHAT,
            needs: NEEDS,
            current: describe(Some(claims)),
        }
        .into());
    }
    let mut failures = Vec::new();
    if !memberships_registered {
        failures.push(
            "no membership table is registered (warden.register_memberships), so warden cannot check that the account is not a tenant's last admin".to_owned(),
        );
    }
    for t in &last_admin {
        failures.push(format!("the account is the last admin of tenant {t}: transfer ownership to another admin first"));
    }
    let subject = actor.clone();
    let holds = registry::active_holds().map_err(PrivacyError::Registry)?;
    for h in holds.iter() {
        // a hold on the actor covers them wherever it was placed
        let covers = h.subject.as_ref() == Some(&subject)
            || (tenants.contains(&h.tenant) && hold_covers(h, &subject, &reg)?);
        if covers {
            failures.push(format!(
                "legal hold \"{}\" ({}) covers the account's data in tenant {}",
                h.case_ref, h.id, h.tenant
            ));
        }
    }
    let already = privileged(|| {
        Spi::connect(|c| {
            let t = crate::catalog::id_cast(c"deleted_accounts", c"actor");
            c.select(
                &format!("SELECT 'see warden.deleted_accounts'::text FROM warden.deleted_accounts WHERE actor = $1{t}"),
                Some(1),
                &[actor.as_str().into()],
            )?
            .first()
            .get_one::<String>()
        })
    })
    .unwrap_or(None);
    if let Some(at) = already {
        failures.push(format!("the account was already deleted ({at})"));
    }
    if !failures.is_empty() {
        let ev = NewEvent::in_context("delete_account", Status::Denied)
            .resource("actor", Some(&actor.to_string()))
            .changes(json!({ "reason": reason, "failures": failures }).to_string());
        record_autonomous(&ev);
        return Err(PrivacyError::Prerequisites {
            actor: actor.to_string(),
            failures,
        }
        .into());
    }
    // tenant by tenant, each under a context of that tenant, so that its row level security
    // decides what the owner-run erasure reaches
    let mut erased = Map::new();
    let me = claims.actor.clone();
    for t in &tenants {
        let part = crate::context::with_tenant_context(t.clone(), me.clone(), || {
            erase_rows(&actor, Some(t), &reg)
        })??;
        let mut tables = Map::new();
        for (table, v) in part {
            if v["rows"].as_u64() != Some(0) {
                tables.insert(table, v);
            }
        }
        erased.insert(t.to_string(), Value::Object(tables));
    }
    let by = claims.actor.as_str();
    let deleted_at = privileged(|| {
        Spi::connect_mut(|c| {
            let t = crate::catalog::id_cast(c"deleted_accounts", c"actor");
            c.update(
                &format!("INSERT INTO warden.deleted_accounts (actor, deleted_at, deleted_by, reason)
                 VALUES ($1{t}, pg_catalog.clock_timestamp(), $2{t}, $3)
                 RETURNING to_char(deleted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
                Some(1),
                &[actor.as_str().into(), by.into(), reason.into()],
            )?
            .first()
            .get_one::<String>()
        })
    })?
    .unwrap_or_default();
    // the account's API keys, revoked
    let ended = registry::account_deleted(&actor, &me).map_err(PrivacyError::Internal)?;
    cache::invalidate(c"deleted_accounts");
    let tenants: Vec<String> = tenants.iter().map(Ident::to_string).collect();
    let report = json!({
        "actor": actor.to_string(),
        "deleted_at": deleted_at,
        "tenants": tenants,
        "erased": erased,
        "tokens": "refused when issued at or before deleted_at",
    });
    let mut report = report;
    for (k, v) in ended {
        report[k] = v;
    }
    let ev = NewEvent::in_context("delete_account", Status::Success)
        .resource("actor", Some(&actor.to_string()))
        .changes(
            json!({ "reason": reason, "tenants": report["tenants"], "erased": report["erased"] })
                .to_string(),
        );
    record(&ev).map_err(PrivacyError::from)?;
    Ok(JsonB(report))
}
