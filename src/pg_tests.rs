//! In-database unit tests (`cargo pgrx test pg15`). They run as a superuser inside one
//! transaction; behaviour across transactions and roles is covered by tests/ and pg_test/.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    const A: &str = "00000000-0000-0000-0000-00000000000a";
    const B: &str = "00000000-0000-0000-0000-00000000000b";
    const ACTOR: &str = "00000000-0000-0000-0000-000000000001";

    fn one<T: FromDatum + IntoDatum>(sql: &str) -> Option<T> {
        Spi::get_one::<T>(sql).expect("query failed")
    }

    fn text(sql: &str) -> Option<String> {
        one::<String>(sql)
    }

    fn set_context(tenant: &str, level: &str) {
        Spi::run(&format!(
            "SELECT warden.set_context('{tenant}', '{ACTOR}', '{level}')"
        ))
        .unwrap();
    }

    /// A token signed with the test cluster's secret (see pg_test::postgresql_conf_options).
    fn token(tenant: &str, level: &str, exp_offset: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = crate::jwt::Claims {
            tenant: uuid::Uuid::parse_str(tenant).unwrap(),
            actor: uuid::Uuid::parse_str(ACTOR).unwrap(),
            level: level.parse().unwrap(),
            exp: now + exp_offset,
            nbf: None,
        };
        let key = crate::jwt::Key::new(b"pg-test-secret-0123456789abcdefghijklmnop").unwrap();
        crate::jwt::sign(&claims, now, "test", &key)
    }

    #[pg_test]
    fn without_context_everything_is_null_or_false() {
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
        assert_eq!(text("SELECT warden.current_actor()::text"), None);
        assert_eq!(text("SELECT warden.current_level()"), None);
        assert_eq!(one::<bool>("SELECT warden.has_level('read')"), Some(false));
        assert_eq!(text("SELECT warden.tenant_with_level('read')::text"), None);
    }

    #[pg_test]
    fn set_context_fills_every_accessor() {
        set_context(A, "write");
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(A)
        );
        assert_eq!(
            text("SELECT warden.current_actor()::text").as_deref(),
            Some(ACTOR)
        );
        assert_eq!(
            text("SELECT warden.current_level()").as_deref(),
            Some("write")
        );
    }

    #[pg_test]
    fn levels_imply_the_ones_below_only() {
        set_context(A, "delete");
        let held: Vec<bool> = ["read", "write", "delete", "admin"]
            .iter()
            .map(|l| one::<bool>(&format!("SELECT warden.has_level('{l}')")).unwrap())
            .collect();
        assert_eq!(held, [true, true, true, false]);
        assert_eq!(
            text("SELECT warden.tenant_with_level('delete')::text").as_deref(),
            Some(A)
        );
        assert_eq!(text("SELECT warden.tenant_with_level('admin')::text"), None);
    }

    #[pg_test]
    fn a_new_context_replaces_the_old_and_clear_ends_it() {
        set_context(A, "admin");
        set_context(B, "read");
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(B)
        );
        assert_eq!(one::<bool>("SELECT warden.has_level('write')"), Some(false));
        Spi::run("SELECT warden.clear_context()").unwrap();
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
    }

    #[pg_test]
    fn authenticate_accepts_a_token_signed_with_the_server_secret() {
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[token(B, "read", 60).as_str().into()],
        )
        .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(B)
        );
        assert_eq!(
            text("SELECT warden.current_level()").as_deref(),
            Some("read")
        );
    }

    #[pg_test(error = "warden: authentication failed: token expired at 1000000000 (Unix time)")]
    fn authenticate_refuses_an_expired_token() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let expired = token(A, "read", 1_000_000_000 - now);
        Spi::run_with_args("SELECT warden.authenticate($1)", &[expired.as_str().into()]).unwrap();
    }

    #[pg_test(error = "warden: authentication failed: token signature is invalid")]
    fn authenticate_refuses_a_token_signed_with_another_secret() {
        let now = 2_000_000_000;
        let claims = crate::jwt::Claims {
            tenant: uuid::Uuid::parse_str(A).unwrap(),
            actor: uuid::Uuid::parse_str(ACTOR).unwrap(),
            level: crate::level::Level::Admin,
            exp: now,
            nbf: None,
        };
        let forged = crate::jwt::sign(
            &claims,
            0,
            "x",
            &crate::jwt::Key::new(b"not-the-server-secret-0123456789abcdef").unwrap(),
        );
        Spi::run_with_args("SELECT warden.authenticate($1)", &[forged.as_str().into()]).unwrap();
    }

    #[pg_test]
    fn the_context_dies_when_the_secret_changes() {
        set_context(A, "read");
        assert!(text("SELECT warden.current_tenant()::text").is_some());
        Spi::run("SET LOCAL warden.jwt_secret = 'a-rotated-secret-0123456789abcdefghijkl'")
            .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant()::text"),
            None,
            "cache must be keyed by the secret"
        );
    }

    #[pg_test]
    fn an_expired_token_planted_by_a_superuser_gives_no_context() {
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{}'",
            token(A, "admin", -1)
        ))
        .unwrap();
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
        Spi::run("SET LOCAL warden.context_token = 'garbage'").unwrap();
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
    }

    #[pg_test(error = "permission denied to set parameter \"warden.context_token\"")]
    fn an_ordinary_role_cannot_set_the_context_carrier() {
        Spi::run("CREATE ROLE pgt_app").unwrap();
        Spi::run("SET LOCAL ROLE pgt_app").unwrap();
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{}'",
            token(A, "admin", 60)
        ))
        .unwrap();
    }

    #[pg_test(
        error = "must be superuser or have privileges of pg_read_all_settings to examine \"warden.jwt_secret\""
    )]
    fn an_ordinary_role_cannot_read_the_secret() {
        Spi::run("CREATE ROLE pgt_reader").unwrap();
        Spi::run("SET LOCAL ROLE pgt_reader").unwrap();
        Spi::run("SELECT current_setting('warden.jwt_secret')").unwrap();
    }

    #[pg_test(
        error = "warden: permission denied to set the warden context: role \"pgt_mw\" is not a member of warden_context_setter"
    )]
    fn set_context_checks_membership_even_if_execute_is_granted() {
        Spi::run("CREATE ROLE pgt_mw").unwrap();
        Spi::run("GRANT EXECUTE ON FUNCTION warden.set_context(uuid, uuid, text) TO pgt_mw")
            .unwrap();
        Spi::run("SET LOCAL ROLE pgt_mw").unwrap();
        set_context(A, "read");
    }

    #[pg_test]
    fn a_member_of_the_setter_role_may_set_context() {
        Spi::run("CREATE ROLE pgt_mw2 IN ROLE warden_context_setter").unwrap();
        Spi::run("SET LOCAL ROLE pgt_mw2").unwrap();
        set_context(B, "write");
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(B)
        );
    }

    #[pg_test(error = "warden: \"owner\" is not a warden level")]
    fn unknown_levels_are_refused() {
        one::<bool>("SELECT warden.has_level('owner')");
    }

    /// The policy helper must run once per statement (an InitPlan), never once per row.
    #[pg_test]
    fn policies_evaluate_the_context_once_per_statement() {
        Spi::run("CREATE TABLE pgt_docs (id int PRIMARY KEY, tenant_id uuid, body text)").unwrap();
        Spi::run("SELECT warden.protect_table('pgt_docs')").unwrap();
        Spi::run("CREATE ROLE pgt_reader2; GRANT SELECT ON pgt_docs TO pgt_reader2").unwrap();
        Spi::run("SET LOCAL ROLE pgt_reader2").unwrap();
        let plan = one::<pgrx::Json>(
            "EXPLAIN (VERBOSE, FORMAT JSON) SELECT count(*) FROM pgt_docs WHERE body LIKE '%x%'",
        )
        .unwrap()
        .0
        .to_string();
        assert!(plan.contains("InitPlan"), "{plan}");
        assert_eq!(plan.matches("tenant_with_level").count(), 1, "{plan}");
    }

    #[pg_test]
    fn protected_rows_follow_the_context() {
        Spi::run("CREATE TABLE pgt_rows (tenant_id uuid, v int)").unwrap();
        Spi::run(&format!(
            "INSERT INTO pgt_rows VALUES ('{A}', 1), ('{A}', 2), ('{B}', 3)"
        ))
        .unwrap();
        Spi::run("SELECT warden.protect_table('pgt_rows')").unwrap();
        Spi::run("CREATE ROLE pgt_app2; GRANT SELECT ON pgt_rows TO pgt_app2").unwrap();
        Spi::run("SET LOCAL ROLE pgt_app2").unwrap();
        assert_eq!(one::<i64>("SELECT count(*) FROM pgt_rows"), Some(0));
        set_context_as_superuser(A, "read");
        assert_eq!(one::<i64>("SELECT sum(v) FROM pgt_rows"), Some(3));
        set_context_as_superuser(B, "read");
        assert_eq!(one::<i64>("SELECT sum(v) FROM pgt_rows"), Some(3));
        assert_eq!(one::<i64>("SELECT count(*) FROM pgt_rows"), Some(1));
    }

    /// SET ROLE back to the superuser just long enough to set the context.
    fn set_context_as_superuser(tenant: &str, level: &str) {
        Spi::run("RESET ROLE").unwrap();
        set_context(tenant, level);
        Spi::run("SET LOCAL ROLE pgt_app2").unwrap();
    }
}
