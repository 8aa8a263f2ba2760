//! The audit trail's SQL functions.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;

use super::chain::{Break, Hash, GENESIS};
use super::record::{json_str, record, NewEvent, Status};
use super::seal::{to_hash, with_purging};
use super::AuditError;
use crate::types::level::Level;

fn superuser() -> bool {
    // SAFETY: reads the current role's attribute.
    unsafe { pg_sys::superuser() }
}

/// An audited table: its oid, its name as SQL (schema-qualified, quoted) and its kind.
struct Table {
    oid: pg_sys::Oid,
    sql: String,
}

fn table(c: &SpiClient<'_>, tbl: pg_sys::Oid, must_own: bool) -> Result<Table, AuditError> {
    let row = c.select(
        "SELECT c.oid::regclass::text, c.relkind::text FROM pg_catalog.pg_class c WHERE c.oid = $1",
        Some(1),
        &[tbl.into()],
    )?;
    let (sql, kind) = if row.is_empty() {
        (None, None)
    } else {
        row.first().get_two::<String, String>()?
    };
    let sql = sql.unwrap_or_else(|| tbl.to_u32().to_string());
    match kind.as_deref() {
        Some("r") | Some("p") => {}
        other => {
            let kind = match other {
                Some("v") => "a view",
                Some("m") => "a materialized view",
                Some("f") => "a foreign table",
                Some("i") | Some("I") => "an index",
                Some("S") => "a sequence",
                _ => "not a relation",
            };
            return Err(AuditError::NotATable {
                table: sql,
                kind: kind.into(),
            });
        }
    }
    // SAFETY: ownership check of an existing relation.
    if must_own && !unsafe { pg_sys::pg_class_ownercheck(tbl, pg_sys::GetUserId()) } {
        return Err(AuditError::NotOwner {
            table: sql,
            role: crate::context::current_role_name(),
        });
    }
    Ok(Table { oid: tbl, sql })
}

/// The relations of `t`'s partition tree (itself included).
fn tree(c: &SpiClient<'_>, t: &Table) -> Result<Vec<String>, AuditError> {
    let rows = c.select(
        "SELECT relid::text FROM pg_catalog.pg_partition_tree($1::regclass) \
          WHERE relid::regclass IS NOT NULL ORDER BY level, relid",
        None,
        &[t.oid.into()],
    )?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(s) = r.get::<String>(1)? {
            out.push(s);
        }
    }
    if out.is_empty() {
        out.push(t.sql.clone());
    }
    Ok(out)
}

/// Quotes `s` as an SQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Puts a table under audit: row triggers for INSERT, UPDATE and DELETE and statement triggers
/// for TRUNCATE (on the table and on each partition; later partitions get them from warden's
/// DDL event trigger), enabled ALWAYS so that session_replication_role cannot skip them. The
/// values of the `redact` columns are never stored. Idempotent; calling it again with other
/// `redact` columns replaces them.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn enable_audit(
    tbl: Option<pgrx::PgRelation>,
    redact: default!(Option<Vec<Option<crate::types::SqlName>>>, "'{}'"),
) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.enable_audit()");
    let tbl = tbl.ok_or(AuditError::Null("tbl"))?.oid(); // closes the relation: DDL follows
                                                         // Citus: on a distributed table the row trigger is copied to every shard (each node records
                                                         // the changes of its shards in its own trail) only with citus.enable_unsafe_triggers, set
                                                         // here for warden's statements and put back after them
    let distributed = !crate::catalog::citus_distributed(Some(&[tbl]))
        .map_err(|e| AuditError::Unreadable(format!("Citus's metadata could not be read: {e}")))?
        .is_empty();
    let redact: Vec<String> = redact
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|n| n.0)
        .collect();
    let changed = crate::catalog::without_weakening_check(|| {
        Spi::connect_mut(|c| -> Result<bool, AuditError> {
            let t = table(c, tbl, true)?;
            for col in &redact {
                let found = c
                .select(
                    "SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2 \
                       AND attnum > 0 AND NOT attisdropped",
                    Some(1),
                    &[t.oid.into(), col.as_str().into()],
                )?
                .len();
                if found == 0 {
                    return Err(AuditError::NoColumn {
                        table: t.sql.clone(),
                        column: col.clone(),
                    });
                }
            }
            let current = audit_args(c, t.oid)?;
            let parts = tree(c, &t)?;
            let unsafe_saved = if distributed {
                let saved = c
                    .select(
                        "SELECT pg_catalog.current_setting('citus.enable_unsafe_triggers')",
                        Some(1),
                        &[],
                    )?
                    .first()
                    .get_one::<String>()?;
                c.update(
                    "SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true)",
                    None,
                    &[],
                )?;
                saved
            } else {
                None
            };
            let truncate_everywhere = c
            .select(
                "SELECT count(*) = 0 FROM pg_catalog.pg_partition_tree($1::regclass) p \
                  WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g \
                                     WHERE g.tgrelid = p.relid AND g.tgname = 'warden_audit_truncate')",
                Some(1),
                &[t.oid.into()],
            )?
            .first()
            .get_one::<bool>()?
            .unwrap_or(false);
            if current.as_ref() == Some(&redact) && truncate_everywhere {
                return Ok(false);
            }
            let args = redact
                .iter()
                .map(|r| literal(r))
                .collect::<Vec<_>>()
                .join(", ");
            if current.is_some() {
                c.update(
                    &format!("DROP TRIGGER warden_audit_row ON {}", t.sql),
                    None,
                    &[],
                )?;
            }
            c.update(
                &format!(
                    "CREATE TRIGGER warden_audit_row AFTER INSERT OR UPDATE OR DELETE ON {} \
                 FOR EACH ROW EXECUTE FUNCTION warden._audit_row({args})",
                    t.sql
                ),
                None,
                &[],
            )?;
            for p in &parts {
                // update(), not select(): a fresh snapshot sees triggers that warden's DDL event
                // trigger added for the previous ALTER TABLE
                let no_truncate = c
                    .update(
                        "SELECT 1 FROM pg_catalog.pg_trigger \
                      WHERE tgrelid = $1::regclass AND tgname = 'warden_audit_truncate'",
                        Some(1),
                        &[p.as_str().into()],
                    )?
                    .is_empty();
                if no_truncate {
                    c.update(
                        &format!(
                            "CREATE TRIGGER warden_audit_truncate AFTER TRUNCATE ON {p} \
                         FOR EACH STATEMENT EXECUTE FUNCTION warden._audit_truncate()"
                        ),
                        None,
                        &[],
                    )?;
                }
                // one subcommand per statement (Citus refuses more with ENABLE TRIGGER)
                for trigger in ["warden_audit_truncate", "warden_audit_row"] {
                    c.update(
                        &format!("ALTER TABLE {p} ENABLE ALWAYS TRIGGER {trigger}"),
                        None,
                        &[],
                    )?;
                }
            }
            if let Some(saved) = unsafe_saved {
                c.update(
                    "SELECT pg_catalog.set_config('citus.enable_unsafe_triggers', $1, true)",
                    None,
                    &[saved.into()],
                )?;
            }
            let ev = NewEvent::in_context("enable_audit", Status::Success)
                .resource("table", Some(&t.sql))
                .changes(format!(
                    "{{\"redact\":[{}]}}",
                    redact
                        .iter()
                        .map(|r| json_str(r))
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            record(&ev)?;
            Ok(true)
        })
    })?;
    if !changed {
        pgrx::notice!("warden: the table is already audited with these settings");
    }
    Ok(())
}

/// The redacted columns of an audited table (None when it is not audited).
fn audit_args(c: &SpiClient<'_>, tbl: pg_sys::Oid) -> Result<Option<Vec<String>>, AuditError> {
    let t = c.select(
        "SELECT tgargs, tgnargs FROM pg_catalog.pg_trigger \
          WHERE tgrelid = $1 AND tgname = 'warden_audit_row'",
        Some(1),
        &[tbl.into()],
    )?;
    if t.is_empty() {
        return Ok(None);
    }
    let (args, n) = t.first().get_two::<Vec<u8>, i16>()?;
    let args = args.unwrap_or_default();
    let mut out: Vec<String> = args
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    out.truncate(n.unwrap_or(0).max(0) as usize);
    Ok(Some(out))
}

/// Whether a table carries warden's audit row trigger.
pub fn is_audited(relid: pg_sys::Oid) -> bool {
    Spi::connect(|c| {
        c.select(
            "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1 AND tgname = 'warden_audit_row'",
            Some(1),
            &[relid.into()],
        )
        .map(|t| !t.is_empty())
    })
    .unwrap_or(false)
}

/// Ends auditing of a table (its owner, at admin level or as a superuser). Itself an event.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn disable_audit(tbl: Option<pgrx::PgRelation>) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.disable_audit()");
    let tbl = tbl.ok_or(AuditError::Null("tbl"))?.oid();
    let level = crate::context::current().map(|c| c.level);
    if !superuser() && level != Some(Level::Admin) {
        return Err(AuditError::NeedsAdmin {
            what: "warden.disable_audit()",
            current: level.map_or("no context".into(), |l| l.as_str().into()),
        }
        .into());
    }
    let name = Spi::get_one_with_args::<String>("SELECT $1::regclass::text", &[tbl.into()])
        .ok()
        .flatten()
        .unwrap_or_default();
    crate::catalog::registry::check_weakening(tbl, "warden.disable_audit()", &name)?;
    let was = Spi::connect_mut(|c| -> Result<bool, AuditError> {
        let t = table(c, tbl, true)?;
        if audit_args(c, t.oid)?.is_none() {
            return Ok(false);
        }
        c.update(
            &format!("DROP TRIGGER warden_audit_row ON {}", t.sql),
            None,
            &[],
        )?;
        for p in tree(c, &t)? {
            c.update(
                &format!(
                    "DO $d$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger \
                       WHERE tgrelid = {} AND tgname = 'warden_audit_truncate') THEN \
                       DROP TRIGGER warden_audit_truncate ON {p}; END IF; END $d$",
                    literal(&p) + "::regclass"
                ),
                None,
                &[],
            )?;
        }
        record(
            &NewEvent::in_context("disable_audit", Status::Success).resource("table", Some(&t.sql)),
        )?;
        Ok(true)
    })?;
    if !was {
        pgrx::notice!("warden: the table is not audited");
    }
    Ok(())
}

/// Records an application or security event (see the SQL wrapper `warden.log_event`).
#[pg_extern(volatile, parallel_unsafe)]
fn _log_event(
    action: Option<&str>,
    resource_type: Option<&str>,
    resource_id: Option<&str>,
    details: Option<&str>,
    status: Option<&str>,
) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.log_event()");
    let action = action.ok_or(AuditError::Null("action"))?;
    if action.trim().is_empty() {
        return Err(AuditError::EmptyAction.into());
    }
    let status = status.unwrap_or("success");
    let status = Status::parse(status).ok_or_else(|| AuditError::BadStatus(status.into()))?;
    let mut ev = NewEvent::in_context(action, status);
    ev.resource_type = resource_type.map(str::to_owned);
    ev.resource_id = resource_id.map(str::to_owned);
    ev.changes = details.map(str::to_owned);
    ev.context_extra = Some("\"via\":\"warden.log_event\"".into());
    record(&ev).map_err(AuditError::from)?;
    Ok(())
}

/// Removes the events older than `warden.audit_retention`, from the start of the chain, and
/// leaves a checkpoint (the last removed event's id and hash) from which the rest still verifies.
/// Superuser only. Itself an event.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn purge_audit() -> Result<i64, ErrorReport> {
    if !superuser() {
        return Err(AuditError::NotSuperuser("warden.purge_audit()").into());
    }
    crate::errors::ensure_writable(c"warden.purge_audit()");
    let retention = i64::from(crate::gucs::AUDIT_RETENTION.get());
    let unreadable =
        |e: String| AuditError::Unreadable(format!("the legal holds could not be read: {e}"));
    let holds = crate::catalog::citus::read_from(c"holds").map_err(unreadable)?;
    let releases = crate::catalog::citus::read_from(c"hold_releases").map_err(unreadable)?;
    let (through, deleted, cutoff) = Spi::connect_mut(
        |c| -> Result<(Option<i64>, i64, String), AuditError> {
            c.update(
                "LOCK TABLE warden.audit_events IN SHARE ROW EXCLUSIVE MODE",
                None,
                &[],
            )?;
            let row = c.select(
            "SELECT pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8), \
                    pg_catalog.to_char((pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8)) \
                                       AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
            Some(1),
            &[retention.into()],
        )?;
            let (cutoff, cutoff_text) = row.first().get_two::<TimestampWithTimeZone, String>()?;
            let k = c
            .select(
                "SELECT least((SELECT min(id) - 1 FROM warden.audit_events WHERE occurred_at >= $1), \
                              (SELECT max(id) FROM warden.audit_events)), \
                        (SELECT min(id) FROM warden.audit_events)",
                Some(1),
                &[cutoff.into()],
            )?
            .first()
            .get_two::<i64, i64>()?;
            let (through, deleted) = match k {
                (Some(k), Some(first)) if k >= first => {
                    let hash = c
                        .select(
                            "SELECT hash FROM warden.audit_events WHERE id = $1",
                            Some(1),
                            &[k.into()],
                        )?
                        .first()
                        .get_one::<Vec<u8>>()?
                        .unwrap_or_default();
                    // events of a tenant under an active legal hold stay (any hold scope); the
                    // holds as this node's copy has them (with Citus, reference tables that a
                    // query of a local table must not name)
                    let n = with_purging(|| {
                        c.update(
                            &format!("DELETE FROM warden.audit_events WHERE id <= $1
                                AND (tenant IS NULL OR tenant NOT IN (
                                     SELECT h.tenant FROM {holds} h
                                      WHERE NOT EXISTS (SELECT 1 FROM {releases} r WHERE r.hold = h.id)))"),
                            None,
                            &[k.into()],
                        )
                        .map(|t| t.len() as i64)
                    })?;
                    // what stays below the checkpoint is sealed by a digest in it
                    c.update(
                        "INSERT INTO warden.audit_checkpoints (id, hash, purged, cutoff, retained, retained_digest)
                         SELECT $1, $2, $3, $4, count(*), warden._retained_digest($1) FROM warden.audit_events WHERE id <= $1",
                        None,
                        &[k.into(), hash.into(), n.into(), cutoff.into()],
                    )?;
                    (Some(k), n)
                }
                _ => (None, 0),
            };
            Ok((through, deleted, cutoff_text.unwrap_or_default()))
        },
    )?;
    let ev = NewEvent::in_context("purge_audit", Status::Success)
        .resource("audit_events", through.map(|t| t.to_string()).as_deref())
        .changes(format!(
            "{{\"through_id\":{},\"deleted\":{deleted},\"cutoff\":{},\"retention_seconds\":{retention}}}",
            through.map_or("null".into(), |t| t.to_string()),
            json_str(&cutoff)
        ));
    record(&ev).map_err(AuditError::from)?;
    Ok(deleted)
}

/// Where verification starts: the last purge checkpoint, or the genesis.
fn chain_start(c: &SpiClient<'_>) -> Result<Option<(i64, Hash)>, AuditError> {
    let t = c.select(
        "SELECT id, hash FROM warden.audit_checkpoints ORDER BY id DESC LIMIT 1",
        Some(1),
        &[],
    )?;
    if t.is_empty() {
        return Ok(None);
    }
    let (id, hash) = t.first().get_two::<i64, Vec<u8>>()?;
    Ok(id.map(|id| (id, to_hash(&hash.unwrap_or_default()))))
}

/// Checks the events a legal hold kept below the last purge checkpoint: each one's own hash, and
/// their ids and hashes together against the digest the checkpoint recorded.
fn retained_break(c: &SpiClient<'_>) -> Result<Option<(i64, String)>, AuditError> {
    let t = c.select(
        "SELECT c.id, c.retained, c.retained_digest = warden._retained_digest(c.id),
                (SELECT min(e.id) FROM warden.audit_events e WHERE e.id <= c.id AND NOT warden._audit_event_ok(e))
           FROM warden.audit_checkpoints c ORDER BY c.id DESC LIMIT 1",
        Some(1),
        &[],
    )?;
    if t.is_empty() {
        return Ok(None);
    }
    let row = t.first();
    let id = row.get::<i64>(1)?.unwrap_or(0);
    let retained = row.get::<i64>(2)?.unwrap_or(0);
    if let Some(bad) = row.get::<i64>(4)? {
        return Ok(Some((
            bad,
            format!("event {bad} (kept by a legal hold): its hash does not match its content"),
        )));
    }
    if row.get::<bool>(3)? != Some(true) {
        return Ok(Some((
            id,
            format!("the {retained} events kept by legal holds below checkpoint {id} were changed or deleted"),
        )));
    }
    Ok(None)
}

/// Verifies events `from..=to` after `start`: each event's hash against its content by a query the
/// planner runs in parallel on a large table (`warden._audit_event_ok`), then the links and the
/// gapless ids by one heap scan that reads no content. The first break in id order wins, a broken
/// link or gap before a bad content at the same id (as [`Verifier`] orders them).
fn verify_range(
    start: Option<(i64, Hash)>,
    from: i64,
    to: i64,
) -> Result<super::chain::Report, AuditError> {
    let bad_content = super::verify::first_bad_content(from, to)?;
    let links = super::verify::scan_links(events_relid(), start, from, to);
    Ok(match (links.first_bad.as_ref(), bad_content) {
        (Some((at, _)), Some(c)) if c < *at => content_break(c, from),
        (None, Some(c)) => content_break(c, from),
        _ => links,
    })
}

fn content_break(id: i64, from: i64) -> super::chain::Report {
    super::chain::Report {
        checked: (id - from).max(0) as u64,
        head: None,
        first_bad: Some((id, Break::Content)),
    }
}

/// `warden.audit_events`.
fn events_relid() -> pg_sys::Oid {
    // SAFETY: catalog lookups that do not raise.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"warden".as_ptr(), false);
        pg_sys::get_relname_relid(c"audit_events".as_ptr(), ns)
    }
}

fn reason(b: &Break, id: i64) -> String {
    match b {
        Break::Gap { expected } => format!("event {expected} is missing"),
        Break::Link => format!("event {id}: {b}"),
        Break::Content => format!("event {id}: {b}"),
    }
}

/// Checks the chain from `from_id` (default: its start, after the last purge) to `to_id`
/// (default: its head): every event's hash over its content and the previous event's hash, and
/// that no id is missing. Returns whether it is intact, how many events were checked, and the first
/// bad id with the reason.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn verify_audit(
    from_id: default!(Option<i64>, "NULL"),
    to_id: default!(Option<i64>, "NULL"),
) -> Result<
    TableIterator<
        'static,
        (
            name!(intact, bool),
            name!(checked, i64),
            name!(first_bad_id, Option<i64>),
            name!(reason, Option<String>),
        ),
    >,
    ErrorReport,
> {
    let report = Spi::connect_mut(|c| -> Result<_, AuditError> {
        let (start, from) = match from_id {
            None => {
                let cp = chain_start(c)?;
                (cp, cp.map_or(1, |(id, _)| id + 1))
            }
            Some(f) => {
                // start after the event before `from`, as the event at `from` links to it
                let t = c.select(
                    "SELECT prev_hash FROM warden.audit_events WHERE id = $1",
                    Some(1),
                    &[f.into()],
                )?;
                let prev = if t.is_empty() {
                    None
                } else {
                    t.first().get_one::<Vec<u8>>()?
                };
                match prev {
                    Some(p) if f > 1 => (Some((f - 1, to_hash(&p))), f),
                    Some(p) if to_hash(&p) == GENESIS => (None, f),
                    _ => {
                        return Ok((0, Some((f, format!("event {f} is missing")))));
                    }
                }
            }
        };
        let to = to_id.unwrap_or(i64::MAX);
        if from_id.is_none() {
            // events a legal hold kept below the last checkpoint: each one's content, and the set
            // against the checkpoint's digest
            if let Some(bad) = retained_break(c)? {
                return Ok((0, Some(bad)));
            }
        }
        let r = verify_range(start, from, to)?;
        Ok((
            r.checked as i64,
            r.first_bad.map(|(id, b)| (id, reason(&b, id))),
        ))
    })?;
    let (checked, bad) = report;
    // a trace for security_lint (the last verification), not an event
    super::worker::note_check(
        if from_id.is_none() && to_id.is_none() {
            "verify_audit"
        } else {
            "verify_audit_range"
        },
        super::record::now(),
        if bad.is_none() { "intact" } else { "broken" },
        // SAFETY: reads the session's role (this function runs as its definer).
        &crate::context::role_name(unsafe { pg_sys::GetSessionUserId() }),
    );
    Ok(TableIterator::once((
        bad.is_none(),
        checked,
        bad.as_ref().map(|b| b.0),
        bad.map(|b| b.1),
    )))
}

/// The head of the chain (the last sealed event's id and hash), to keep outside the database.
#[pg_extern(stable, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn audit_digest(
) -> Result<TableIterator<'static, (name!(id, i64), name!(hash, Vec<u8>))>, ErrorReport> {
    let head = Spi::connect(super::seal::head).map_err(AuditError::from)?;
    // the sealer commits without waiting for the WAL flush: make the head durable before it is
    // anchored anywhere (not on a standby, which cannot write WAL)
    // SAFETY: flushes WAL up to what has been inserted so far.
    unsafe {
        if !pg_sys::RecoveryInProgress() {
            pg_sys::XLogFlush(pg_sys::GetXLogInsertRecPtr());
        }
    }
    super::worker::note_check(
        "audit_digest",
        super::record::now(),
        &head.0.to_string(),
        // SAFETY: as above.
        &crate::context::role_name(unsafe { pg_sys::GetSessionUserId() }),
    );
    Ok(TableIterator::once((head.0, head.1.to_vec())))
}

/// Whether a digest kept outside the database still holds: the chain verifies from its start up
/// to event `id`, and that event's hash is `hash`. False also when the event is gone (the tail was
/// cut) or was purged.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn verify_audit_digest(
    id: Option<i64>,
    hash: Option<Vec<u8>>,
) -> Result<
    TableIterator<
        'static,
        (
            name!(holds, bool),
            name!(checked, i64),
            name!(first_bad_id, Option<i64>),
            name!(reason, Option<String>),
        ),
    >,
    ErrorReport,
> {
    let id = id.ok_or(AuditError::Null("id"))?;
    let hash = to_hash(&hash.ok_or(AuditError::Null("hash"))?);
    let out = Spi::connect_mut(|c| -> Result<_, AuditError> {
        let start = chain_start(c)?;
        if let Some((cp, cp_hash)) = start {
            if id == cp {
                let ok = cp_hash == hash;
                let why = (!ok).then(|| format!("checkpoint {id} has another hash"));
                return Ok((ok, 0, (!ok).then_some(id), why));
            }
            if id < cp {
                return Ok((
                    false,
                    0,
                    Some(id),
                    Some(format!("event {id} was purged (the chain now starts after {cp}): anchor a newer digest")),
                ));
            }
        }
        let from = start.map_or(1, |(c, _)| c + 1);
        let r = verify_range(start, from, id)?;
        if let Some((bad, b)) = &r.first_bad {
            return Ok((false, r.checked as i64, Some(*bad), Some(reason(b, *bad))));
        }
        match r.head {
            Some((hid, hh)) if hid == id && hh == hash => Ok((true, r.checked as i64, None, None)),
            Some((hid, _)) if hid == id => Ok((
                false,
                r.checked as i64,
                Some(id),
                Some(format!("event {id} has another hash than the digest")),
            )),
            other => {
                let end = other.map_or(from - 1, |(h, _)| h);
                Ok((
                    false,
                    r.checked as i64,
                    Some(end + 1),
                    Some(format!("event {id} is missing: the chain ends at {end}")),
                ))
            }
        }
    })?;
    Ok(TableIterator::once(out))
}

/// The sealing worker and its queue in this database, and the events waiting to be sealed.
#[pg_extern(volatile, parallel_unsafe, security_definer)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn audit_queue_status() -> Result<
    TableIterator<
        'static,
        (
            name!(preloaded, bool),
            name!(worker_pid, Option<i32>),
            name!(pending_events, i64),
            name!(queued_bytes, i64),
            name!(autonomous_queued, i64),
            name!(autonomous_confirmed, i64),
            name!(overflowed, i64),
            name!(unconfirmed, i64),
            name!(unrecorded, i64),
            name!(sealing_failures, i64),
        ),
    >,
    ErrorReport,
> {
    // select(), not Spi::get_one (which assigns a transaction id): this works on a standby
    let pending = Spi::connect(|c| {
        c.select("SELECT count(*) FROM warden.audit_pending", Some(1), &[])?
            .first()
            .get_one::<i64>()
    })
    .map_err(AuditError::from)?
    .unwrap_or(0);
    let s = super::worker::status();
    Ok(TableIterator::once((
        s.preloaded,
        s.worker_pid,
        pending,
        s.queued_bytes,
        s.autonomous_pushed,
        s.autonomous_confirmed,
        s.overflowed,
        s.unconfirmed,
        s.unrecorded,
        s.failures,
    )))
}
