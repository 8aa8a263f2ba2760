//! Putting tables under tenant isolation: `protect_table`, `unprotect_table`, `guard_schema`.
//!
//! A table is protected when row level security is enabled and forced and the four warden
//! policies exist; everything warden reports (`warden.protected_tables`, `warden.rls_coverage`)
//! is derived from the catalogs, so it survives pg_dump and cannot drift from the truth.
//!
//! Floor 4, capability: uses the floors below; never another capability.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{PgRelation, PgSqlErrorCode};

use crate::errors::SqlError;
use crate::gucs;
use crate::types::level::Level;
use crate::types::SqlName;

/// The policies warden creates: name, command, level required, and whether the predicate is a
/// USING, a WITH CHECK or both.
const POLICIES: [(&str, &str, Level, bool, bool); 4] = [
    ("warden_select", "SELECT", Level::Read, true, false),
    ("warden_insert", "INSERT", Level::Write, false, true),
    ("warden_update", "UPDATE", Level::Write, true, true),
    ("warden_delete", "DELETE", Level::Delete, true, false),
];

#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("{table} is {kind}, not a table")]
    NotATable { table: String, kind: String },
    #[error("must be owner of table {table} to change its protection (current role: {role})")]
    NotOwner { table: String, role: String },
    #[error("table {table} has no column \"{column}\"")]
    NoColumn { table: String, column: String },
    #[error("column \"{column}\" of table {table} is {actual}; a tenant column is uuid, text, varchar, bigint or integer")]
    NotUuid {
        table: String,
        column: String,
        actual: String,
    },
    #[error("schema \"{0}\" does not exist")]
    NoSchema(String),
    #[error("must be owner of schema {schema} to guard it (current role: {role})")]
    NotSchemaOwner { schema: String, role: String },
    #[error("{0} must not be NULL")]
    Null(&'static str),
    #[error("table {0} is distributed by Citus, which refuses policies that contain a subquery")]
    DistributedNeedsDirect(String),
    #[error("internal error: {0}")]
    Spi(#[from] pgrx::spi::Error),
    #[error("{0}")]
    Audit(#[from] crate::audit::record::RecordError),
    #[error("{0}")]
    Resource(String),
    #[error("whether Citus replicates warden's holds could not be read: {0}")]
    Citus(String),
}

impl SqlError for ProtectError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            ProtectError::NotATable { .. } => ERRCODE_WRONG_OBJECT_TYPE,
            ProtectError::NotOwner { .. } | ProtectError::NotSchemaOwner { .. } => {
                ERRCODE_INSUFFICIENT_PRIVILEGE
            }
            ProtectError::NoColumn { .. } => ERRCODE_UNDEFINED_COLUMN,
            ProtectError::NotUuid { .. } => ERRCODE_DATATYPE_MISMATCH,
            ProtectError::NoSchema(_) => ERRCODE_INVALID_SCHEMA_NAME,
            ProtectError::DistributedNeedsDirect(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ProtectError::Null(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            ProtectError::Spi(_) => ERRCODE_INTERNAL_ERROR,
            ProtectError::Audit(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ProtectError::Resource(_) => ERRCODE_INVALID_PARAMETER_VALUE,
            ProtectError::Citus(_) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            ProtectError::NotATable { kind, .. } if kind.contains("view") => {
                "warden protects ordinary and partitioned tables: protect the tables the view reads from.".into()
            }
            ProtectError::NotATable { .. } => "warden protects ordinary and partitioned tables.".into(),
            ProtectError::NotOwner { .. } => "Run it as the table's owner or a member of the owning role.".into(),
            ProtectError::NoColumn { table, .. } => {
                format!("Name the tenant column: SELECT warden.protect_table('{table}', 'org_id');")
            }
            ProtectError::NotUuid { table, column, .. } => {
                format!("Protect a column of one of those types, or convert this one, e.g.: ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {column}::text;")
            }
            ProtectError::NoSchema(_) => "Check the spelling; schema names are case-sensitive when quoted.".into(),
            ProtectError::NotSchemaOwner { .. } => "Run it as the schema's owner or a member of the owning role.".into(),
            ProtectError::Null(_) => "Name the table: SELECT warden.protect_table('docs');".into(),
            ProtectError::DistributedNeedsDirect(table) => {
                format!("Use the direct form: SELECT warden.protect_table('{table}', distributed => true);")
            }
            ProtectError::Audit(_) => "CREATE EXTENSION warden; (or ALTER EXTENSION warden UPDATE)".into(),
            ProtectError::Resource(_) => {
                "SELECT warden.protect_table('docs', namespace => 'docs', resource_type => 'document');".into()
            }
            ProtectError::Citus(_) => "Check the cluster (SELECT * FROM citus_check_cluster_node_health();), then SELECT * FROM warden.citus_setup(); on the coordinator.".into(),
            ProtectError::Spi(_) => return None,
        })
    }
}
crate::errors::sql_error!(ProtectError);

/// Marks warden's own DDL for the duration of `f` (`catalog::in_own_ddl`: the utility hook leaves
/// its statements to warden's event, the DDL event trigger does not react to them); restored on
/// error too.
fn busy<R>(f: impl FnOnce() -> R) -> R {
    crate::catalog::with_own_ddl(f)
}

/// Records one of warden's own administrative calls as an audit event.
/// Nothing is recorded in a database whose warden SQL predates the audit trail.
fn audit(action: &str, kind: &str, id: &str, changes: String) -> Result<(), ProtectError> {
    if !crate::audit::record::installed() {
        return Ok(());
    }
    let ev = crate::audit::NewEvent::in_context(action, crate::audit::Status::Success)
        .resource(kind, Some(id))
        .changes(changes);
    crate::audit::record(&ev)?;
    Ok(())
}

fn regclass_text(oid: pg_sys::Oid) -> Result<String, ProtectError> {
    Ok(
        Spi::get_one_with_args::<String>("SELECT $1::regclass::text", &[oid.into()])?
            .unwrap_or_default(),
    )
}

/// True while warden.protect_table() or unprotect_table() is running in this backend.
#[pg_extern(stable, parallel_safe)]
fn _ddl_in_progress() -> bool {
    crate::catalog::in_own_ddl()
}

/// What protect_table needs to know about one relation.
struct Target {
    oid: pg_sys::Oid,
    /// Schema-qualified, quoted: safe to splice into DDL.
    qualified: String,
}

/// Resolves the table and checks kind and ownership.
fn resolve(c: &SpiClient<'_>, oid: pg_sys::Oid) -> Result<Target, ProtectError> {
    let row = c.select(
        "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text, pg_has_role(c.relowner, 'USAGE')
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
        Some(1),
        &[oid.into()],
    )?;
    let row = row.first();
    let qualified = row.get::<String>(1)?.unwrap_or_default();
    let kind = row.get::<String>(2)?.unwrap_or_default();
    if kind != "r" && kind != "p" {
        let kind = match kind.as_str() {
            "v" => "a view",
            "m" => "a materialized view",
            "i" | "I" => "an index",
            "S" => "a sequence",
            "f" => "a foreign table",
            "c" => "a composite type",
            "t" => "a TOAST table",
            _ => "not a table",
        };
        return Err(ProtectError::NotATable {
            table: qualified,
            kind: kind.into(),
        });
    }
    if row.get::<bool>(3)? != Some(true) {
        return Err(ProtectError::NotOwner {
            table: qualified,
            role: crate::context::current_role_name(),
        });
    }
    Ok(Target { oid, qualified })
}

/// The relation and all its partitions (ordinary and partitioned), root first.
fn tree(c: &SpiClient<'_>, root: pg_sys::Oid) -> Result<Vec<Target>, ProtectError> {
    let rows = c.select(
        "SELECT k.oid, format('%I.%I', n.nspname, k.relname)
           FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
           LEFT JOIN pg_partition_tree($1) t ON t.relid = k.oid
          WHERE (k.oid = $1 OR t.relid IS NOT NULL) AND k.relkind IN ('r', 'p')
          ORDER BY coalesce(t.level, 0), k.relname",
        None,
        &[root.into()],
    )?;
    let mut out = Vec::new();
    for row in rows {
        out.push(Target {
            oid: row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid),
            qualified: row.get::<String>(2)?.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Drops whichever of warden's policies exist on `t`: one catalog lookup, and no
/// DROP POLICY IF EXISTS notices.
fn drop_warden_policies(c: &mut SpiClient<'_>, t: &Target) -> Result<(), ProtectError> {
    let names: Vec<&str> = POLICIES.iter().map(|p| p.0).collect();
    let existing = c.select(
        "SELECT polname::text FROM pg_policy WHERE polrelid = $1 AND polname = ANY ($2::name[])",
        None,
        &[t.oid.into(), names.into()],
    )?;
    let mut drops = Vec::new();
    for row in existing {
        drops.push(format!(
            "DROP POLICY {} ON {}",
            row.get::<String>(1)?.unwrap_or_default(),
            t.qualified
        ));
    }
    for d in drops {
        c.update(&d, None, &[])?;
    }
    Ok(())
}

/// How the policies reach the context: `(SELECT warden.tenant_with_level(...))`, an InitPlan
/// evaluated once per statement, or a direct call, which Citus accepts on distributed tables (it
/// refuses subqueries in policies) and which warden's planner support turns into the same InitPlan.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Form {
    Subquery,
    Direct,
}

/// The type of a tenant column, and so which accessor its policies compare it with: the context's
/// tenant converted to the column's type once per statement (an identifier that does not convert
/// matches no row).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TenantType {
    Uuid,
    /// text and varchar
    Text,
    Bigint,
    Integer,
}

impl TenantType {
    /// From `format_type` of the column (without typmod).
    fn of(sql_type: &str) -> Option<TenantType> {
        match sql_type {
            "uuid" => Some(TenantType::Uuid),
            "text" | "character varying" => Some(TenantType::Text),
            "bigint" => Some(TenantType::Bigint),
            "integer" => Some(TenantType::Integer),
            _ => None,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            TenantType::Uuid => "",
            TenantType::Text => "_text",
            TenantType::Bigint => "_bigint",
            TenantType::Integer => "_int",
        }
    }
}

/// The (namespace, resource type) of a table whose policies also check an API key's scopes.
/// Both are scope segment names (lower-case letters, digits, `_`, `-`, `.`): safe in a literal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Resource {
    pub namespace: String,
    pub resource_type: String,
}

impl Form {
    fn predicate(
        self,
        col: &str,
        kind: TenantType,
        level: Level,
        resource: Option<&Resource>,
    ) -> String {
        let suffix = kind.suffix();
        let call = match resource {
            None => format!("warden.tenant_with_level{suffix}('{level}')"),
            Some(r) => format!(
                "warden.tenant_with_scope{suffix}('{}', '{}', '{level}')",
                r.namespace, r.resource_type
            ),
        };
        match self {
            Form::Subquery => format!("{col} OPERATOR(pg_catalog.=) (SELECT {call})"),
            Form::Direct => format!("{col} OPERATOR(pg_catalog.=) {call}"),
        }
    }
}

/// Checks a namespace and resource type given to protect_table: both names as scopes spell them,
/// neither `*`. Without a resource type, the table's own name is used.
fn resource(
    namespace: Option<&str>,
    resource_type: Option<&str>,
    table_name: &str,
) -> Result<Option<Resource>, ProtectError> {
    let Some(namespace) = namespace else {
        return match resource_type {
            Some(_) => Err(ProtectError::Resource(
                "a resource_type needs a namespace".into(),
            )),
            None => Ok(None),
        };
    };
    let resource_type = resource_type.unwrap_or(table_name);
    let probe = format!("{namespace}:{resource_type}:read");
    match probe.parse::<crate::scope::Scope>() {
        Ok(s) if !matches!(s.namespace, crate::scope::Segment::Any)
            && !matches!(s.resource_type, crate::scope::Segment::Any) =>
        {
            Ok(Some(Resource {
                namespace: namespace.into(),
                resource_type: resource_type.into(),
            }))
        }
        _ => Err(ProtectError::Resource(format!(
            "namespace \"{namespace}\" and resource type \"{resource_type}\" must be lower-case names (a-z, 0-9, _, -, .), not *"
        ))),
    }
}

fn protect_one(
    c: &mut SpiClient<'_>,
    t: &Target,
    column: &str,
    form: Form,
    resource: Option<&Resource>,
) -> Result<(), ProtectError> {
    // The column is checked on every partition: attach can bring a partition with other numbers.
    let row = c.select(
        "SELECT format('%I', a.attname), format_type(a.atttypid, NULL), format_type(a.atttypid, a.atttypmod),
                EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indkey[0] = a.attnum)
           FROM pg_attribute a WHERE a.attrelid = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
        Some(1),
        &[t.oid.into(), column.into()],
    )?;
    if row.is_empty() {
        return Err(ProtectError::NoColumn {
            table: t.qualified.clone(),
            column: column.into(),
        });
    }
    let row = row.first();
    let col = row.get::<String>(1)?.unwrap_or_default();
    let Some(kind) = TenantType::of(&row.get::<String>(2)?.unwrap_or_default()) else {
        let actual = row.get::<String>(3)?.unwrap_or_default();
        return Err(ProtectError::NotUuid {
            table: t.qualified.clone(),
            column: column.into(),
            actual,
        });
    };
    let has_index = row.get::<bool>(4)? == Some(true);

    let q = &t.qualified;
    c.update(
        &format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"),
        None,
        &[],
    )?;
    drop_warden_policies(c, t)?;
    for (name, command, level, using, check) in POLICIES {
        let pred = form.predicate(&col, kind, level, resource);
        let using = if using {
            format!(" USING ({pred})")
        } else {
            String::new()
        };
        let check = if check {
            format!(" WITH CHECK ({pred})")
        } else {
            String::new()
        };
        c.update(
            &format!(
                "CREATE POLICY {name} ON {q} AS PERMISSIVE FOR {command} TO PUBLIC{using}{check}"
            ),
            None,
            &[],
        )?;
    }
    // TRUNCATE bypasses row level security: only the owner keeps it.
    let grantees = c.select(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END
           FROM pg_class k CROSS JOIN LATERAL aclexplode(k.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
          WHERE k.oid = $1 AND a.privilege_type = 'TRUNCATE' AND a.grantee <> k.relowner",
        None,
        &[t.oid.into()],
    )?;
    let mut revokes = Vec::new();
    for row in grantees {
        revokes.push(row.get::<String>(1)?.unwrap_or_default());
    }
    for g in revokes {
        c.update(
            &format!("REVOKE TRUNCATE ON {q} FROM {g} CASCADE"),
            None,
            &[],
        )?;
    }
    if !has_index {
        c.update(&format!("CREATE INDEX ON {q} ({col})"), None, &[])?;
    }
    // The legal-hold guards. With Citus: on a distributed table once the holds are replicated
    // (`warden.citus_setup()`; `_install_hold_guards` has Citus copy the row guard to its shards,
    // where it refuses everything while the holds are not replicated); not on a local table,
    // which Citus would then refuse to distribute. `place_hold` installs them on what it covers.
    let skip_on_citus = gucs::citus_loaded()
        && (!citus_distributed(c, t.oid)?
            || !crate::catalog::citus::is_replicated(c"holds").map_err(ProtectError::Citus)?);
    if guards_installed(c)? && !skip_on_citus {
        c.update(
            "SELECT warden._install_hold_guards($1, $2)",
            None,
            &[t.oid.into(), column.into()],
        )?;
    }
    let others = c
        .select(
            "SELECT string_agg(quote_ident(polname), ', ' ORDER BY polname) FROM pg_policy
              WHERE polrelid = $1 AND polpermissive AND polname NOT LIKE 'warden\\_%'",
            Some(1),
            &[t.oid.into()],
        )?
        .first()
        .get_one::<String>()?;
    if let Some(others) = others {
        warning!(
            "permissive policies on {q} not managed by warden ({others}) are OR-ed with tenant isolation and can widen it; \
             drop them or recreate them AS RESTRICTIVE"
        );
    }
    Ok(())
}

/// Checks that the caller owns `oid`, then runs `f` on it and each of its partitions, marked as
/// warden's own DDL so that the event trigger leaves it alone.
fn each_in_tree(
    oid: pg_sys::Oid,
    mut f: impl FnMut(&mut SpiClient<'_>, &Target) -> Result<(), ProtectError>,
) -> Result<(), ErrorReport> {
    busy(|| {
        Spi::connect_mut(|c| {
            resolve(c, oid)?;
            for t in tree(c, oid)? {
                f(c, &t)?;
            }
            Ok::<_, ProtectError>(())
        })
    })?;
    Ok(())
}

/// Whether Citus distributes `oid` (a row in pg_dist_partition).
fn citus_distributed(c: &SpiClient<'_>, oid: pg_sys::Oid) -> Result<bool, ProtectError> {
    Ok(c.select(
        "SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL",
        Some(1),
        &[],
    )?
    .first()
    .get_one::<bool>()?
        == Some(true)
        && c.select(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1::regclass)",
            Some(1),
            &[oid.into()],
        )?
        .first()
        .get_one::<bool>()?
            == Some(true))
}

/// Puts a table (and all its partitions) under tenant isolation. Idempotent.
/// `distributed`: write the policies in the form Citus accepts (a direct call, no subquery);
/// NULL (the default) means: when Citus is loaded or already distributes the table.
#[pg_extern(name = "protect_table", volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn protect_table_v3(
    tbl: Option<PgRelation>,
    tenant_column: default!(Option<SqlName>, "'tenant_id'"),
    distributed: default!(Option<bool>, "NULL"),
    namespace: default!(Option<&str>, "NULL"),
    resource_type: default!(Option<&str>, "NULL"),
) -> Result<(), ErrorReport> {
    // Not STRICT (distributed may be NULL), so the other arguments are checked here.
    let tbl = tbl.ok_or(ProtectError::Null("tbl"))?;
    let tenant_column = tenant_column.ok_or(ProtectError::Null("tenant_column"))?;
    crate::errors::ensure_writable(c"warden.protect_table()");
    let resource = resource(namespace, resource_type, tbl.name())?;
    let oid = tbl.oid();
    drop(tbl); // ALTER TABLE refuses a relation this backend still holds open
    let form = Spi::connect(|c| {
        let is_distributed = citus_distributed(c, oid)?;
        match distributed {
            Some(false) if is_distributed => Err(ProtectError::DistributedNeedsDirect(
                resolve(c, oid)?.qualified,
            )),
            Some(true) => Ok(Form::Direct),
            Some(false) => Ok(Form::Subquery),
            None if is_distributed || gucs::citus_loaded() => Ok(Form::Direct),
            None => Ok(Form::Subquery),
        }
    })?;
    each_in_tree(oid, |c, t| {
        protect_one(c, t, &tenant_column.0, form, resource.as_ref())
    })?;
    audit("protect_table", "table", &regclass_text(oid)?, {
        let mut c = serde_json::json!({
            "tenant_column": tenant_column.0,
            "policy_form": if form == Form::Direct { "direct" } else { "subquery" },
        });
        if let Some(r) = &resource {
            c["namespace"] = r.namespace.clone().into();
            c["resource_type"] = r.resource_type.clone().into();
        }
        c.to_string()
    })?;
    if form == Form::Subquery && gucs::citus_loaded() {
        notice!(
            "the policies use a subquery, which Citus refuses on distributed tables: before create_distributed_table(), run warden.protect_table(..., distributed => true)"
        );
    }
    Ok(())
}

/// warden 0.1.0's `protect_table(regclass, name)`: kept so that a database still at 0.1.0 works
/// with this library until `ALTER EXTENSION warden UPDATE` (no SQL is generated for it).
#[pg_extern(sql = false)]
fn protect_table(tbl: PgRelation, tenant_column: SqlName) -> Result<(), ErrorReport> {
    protect_table_v3(Some(tbl), Some(tenant_column), Some(false), None, None)
}

/// warden 0.2.0-0.4.0's `protect_table(regclass, name, boolean)`, kept likewise (a C function
/// reads only the arguments its SQL declaration passes).
#[pg_extern(sql = false)]
fn protect_table_v2(
    tbl: Option<PgRelation>,
    tenant_column: Option<SqlName>,
    distributed: Option<bool>,
) -> Result<(), ErrorReport> {
    protect_table_v3(tbl, tenant_column, distributed, None, None)
}

/// Whether this database's warden SQL has the hold guards (0.4.0 and later).
fn guards_installed(c: &SpiClient<'_>) -> Result<bool, ProtectError> {
    Ok(c.select(
        "SELECT to_regprocedure('warden._install_hold_guards(regclass, name)') IS NOT NULL",
        Some(1),
        &[],
    )?
    .first()
    .get_one::<bool>()?
        == Some(true))
}

fn unprotect_one(c: &mut SpiClient<'_>, t: &Target) -> Result<(), ProtectError> {
    let q = &t.qualified;
    // what other capabilities installed with the protection goes first, or refuses (a held
    // table keeps its guards and its protection until the hold is released)
    if let Err(e) = crate::catalog::registry::before_unprotect(t.oid, q) {
        e.report(PgLogLevel::ERROR);
    }
    drop_warden_policies(c, t)?;
    let keep = c
                .select(
                    "SELECT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = $1)
                         OR EXISTS (SELECT 1 FROM pg_class k JOIN warden.guarded_schemas g
                                      ON g.schema_name = k.relnamespace::regnamespace WHERE k.oid = $1)",
                    Some(1),
                    &[t.oid.into()],
                )?
                .first()
                .get_one::<bool>()?
                == Some(true);
    if !keep {
        c.update(
            &format!("ALTER TABLE {q} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"),
            None,
            &[],
        )?;
    }
    Ok(())
}

/// Removes warden's policies from a table and its partitions. Row level security stays on when
/// other policies remain or the schema is guarded (deny by default); TRUNCATE is not re-granted.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn unprotect_table(tbl: PgRelation) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.unprotect_table()");
    let oid = tbl.oid();
    drop(tbl);
    let name = regclass_text(oid)?;
    crate::catalog::registry::check_weakening(oid, "warden.unprotect_table()", &name)?;
    each_in_tree(oid, unprotect_one)?;
    audit(
        "unprotect_table",
        "table",
        &regclass_text(oid)?,
        "{}".into(),
    )?;
    Ok(())
}

fn schema_owned(c: &SpiClient<'_>, schema: &str) -> Result<pg_sys::Oid, ProtectError> {
    let row = c.select(
        "SELECT oid, pg_has_role(nspowner, 'USAGE'), format('%I', nspname) FROM pg_namespace WHERE nspname = $1",
        Some(1),
        &[schema.into()],
    )?;
    if row.is_empty() {
        return Err(ProtectError::NoSchema(schema.into()));
    }
    let row = row.first();
    if row.get::<bool>(2)? != Some(true) {
        let schema = row.get::<String>(3)?.unwrap_or_default();
        return Err(ProtectError::NotSchemaOwner {
            schema,
            role: crate::context::current_role_name(),
        });
    }
    Ok(row.get::<pg_sys::Oid>(1)?.unwrap_or(pg_sys::InvalidOid))
}

/// From now on, every table created in `schema` gets row level security enabled and forced at
/// once (it shows no rows to anyone) until it is protected with warden.protect_table().
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn guard_schema(schema: SqlName) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.guard_schema()");
    Spi::connect_mut(|c| {
        let oid = schema_owned(c, &schema.0)?;
        c.update(
            "INSERT INTO warden.guarded_schemas (schema_name) VALUES ($1::oid::regnamespace) ON CONFLICT DO NOTHING",
            None,
            &[oid.into()],
        )?;
        let open = c
            .select(
                "SELECT count(*)::int FROM warden.rls_coverage WHERE schema_name = $1 AND NOT protected",
                None,
                &[schema.0.as_str().into()],
            )?
            .first()
            .get_one::<i32>()?
            .unwrap_or(0);
        audit("guard_schema", "schema", &schema.0, "{}".into())?;
        if open > 0 {
            notice!(
                "schema {} has {open} existing table(s) that are not protected; see warden.rls_coverage",
                schema.0
            );
        }
        Ok::<_, ProtectError>(())
    })?;
    Ok(())
}

/// Stops guarding `schema`. Tables already created keep their row level security.
#[pg_extern(volatile, parallel_unsafe)]
#[search_path(pg_catalog, pg_temp)]
fn unguard_schema(schema: SqlName) -> Result<(), ErrorReport> {
    crate::errors::ensure_writable(c"warden.unguard_schema()");
    Spi::connect_mut(|c| {
        let oid = schema_owned(c, &schema.0)?;
        c.update(
            "DELETE FROM warden.guarded_schemas WHERE schema_name = $1::oid::regnamespace",
            None,
            &[oid.into()],
        )?;
        audit("unguard_schema", "schema", &schema.0, "{}".into())?;
        Ok::<_, ProtectError>(())
    })?;
    Ok(())
}
