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

    /// The trigger Citus copies to every placement of the tables warden.citus_setup() replicates:
    /// a row written into one (as Citus writes a worker's copy, with no warden function around
    /// it) invalidates the node's cached copies, as warden's own writers do. Without it a worker
    /// would keep guarding with the holds it read before the coordinator placed a new one.
    #[pg_test]
    fn a_row_written_into_a_replicated_table_invalidates_the_cached_copies() {
        Spi::run("CREATE TABLE inv_people (id int PRIMARY KEY, tenant_id uuid NOT NULL, subject text, email text)")
            .unwrap();
        crate::catalog::watch();
        let before = crate::catalog::generation();
        Spi::run("SELECT 1").unwrap();
        assert_eq!(
            before,
            crate::catalog::generation(),
            "nothing invalidated yet"
        );
        Spi::run(
            "INSERT INTO warden.personal_data (tbl, column_name, subject_column, method)
             VALUES ('inv_people', 'email', 'subject', 'null')",
        )
        .unwrap();
        Spi::run("SELECT 1").unwrap();
        assert_ne!(
            before,
            crate::catalog::generation(),
            "the write into warden.personal_data invalidated the cached registry"
        );
        // a relation named like a shard is none without Citus: its lineage is itself
        Spi::run("CREATE TABLE inv_people_102008 (id int)").unwrap();
        let oid = one::<pg_sys::Oid>("SELECT 'inv_people_102008'::regclass::oid").unwrap();
        assert_eq!(crate::catalog::citus::shard_of(oid), Ok(None));
        assert_eq!(*crate::catalog::lineage(oid).unwrap(), vec![oid]);
    }

    /// Citus forgets a released subtransaction's SET LOCALs: warden notes a context changed inside
    /// one (RELEASE, the normal end of an exception block) to set it again at the outer level, and
    /// not one that was rolled back or left the carrier alone. (The re-propagation itself needs
    /// Citus: tested by hand, README "Running on Citus".)
    #[pg_test]
    fn a_context_changed_in_a_released_subtransaction_is_set_again_for_citus() {
        set_context(A, "read");
        assert!(!crate::context::needs_repropagation());
        let sub = |f: &dyn Fn(), release: bool| unsafe {
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            f();
            if release {
                pg_sys::ReleaseCurrentSubTransaction();
            } else {
                pg_sys::RollbackAndReleaseCurrentSubTransaction();
            }
        };
        // untouched, then rolled back: nothing to do
        sub(&|| (), true);
        assert!(!crate::context::needs_repropagation());
        sub(&|| set_context(B, "read"), false);
        assert!(!crate::context::needs_repropagation());
        assert_eq!(
            text("SELECT warden.current_tenant_id()").as_deref(),
            Some(A)
        );
        // changed inside a nested pair, both released: noted
        sub(
            &|| {
                sub(&|| set_context(B, "read"), true);
            },
            true,
        );
        assert!(crate::context::needs_repropagation());
        assert_eq!(
            text("SELECT warden.current_tenant_id()").as_deref(),
            Some(B)
        );
        // without Citus the next statement only clears the note
        crate::context::repropagate();
        assert!(!crate::context::needs_repropagation());
        // cleared inside a released one: noted too (the workers must lose it as well)
        sub(&|| Spi::run("SELECT warden.clear_context()").unwrap(), true);
        assert!(crate::context::needs_repropagation());
    }

    /// A token signed with the test cluster's secret (see pg_test::postgresql_conf_options).
    fn token(tenant: &str, level: &str, exp_offset: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = crate::jwt::Claims {
            tenant: crate::types::ident::Ident::parse(tenant).unwrap(),
            actor: crate::types::ident::Ident::parse(ACTOR).unwrap(),
            level: level.parse().unwrap(),
            exp: now + exp_offset,
            nbf: None,
            iat: None,
            scopes: None,
        };
        let key = crate::jwt::Key::new(b"pg-test-secret-0123456789abcdefghijklmnop").unwrap();
        crate::jwt::sign(&claims, now, "test", None, &key)
    }

    /// A token with exactly these `tenant_id` and `sub` JSON values (any JSON: an integer, a
    /// float, a boolean), signed with the test cluster's secret.
    fn raw_token(tenant_json: &str, sub_json: &str) -> String {
        use base64::Engine;
        use hmac::Mac;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let h = b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let p = b64.encode(format!(
            r#"{{"tenant_id":{tenant_json},"sub":{sub_json},"role":"read","exp":{}}}"#,
            now + 60
        ));
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(
            b"pg-test-secret-0123456789abcdefghijklmnop",
        )
        .unwrap();
        m.update(format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", b64.encode(m.finalize().into_bytes()))
    }

    #[pg_test]
    fn identifier_claims_authenticate_an_ordinary_role() {
        Spi::run("CREATE ROLE pgt_ids").unwrap();
        Spi::run("SET LOCAL ROLE pgt_ids").unwrap();
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[raw_token("42", r#""user_2NQ8xk1Lr3""#).as_str().into()],
        )
        .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant_id()").as_deref(),
            Some("42")
        );
        assert_eq!(
            text("SELECT warden.current_actor_id()").as_deref(),
            Some("user_2NQ8xk1Lr3")
        );
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
        assert_eq!(
            one::<i64>("SELECT warden.tenant_with_level_bigint('read')"),
            Some(42)
        );
        // the same identifier as a JSON string
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[raw_token(r#""042""#, "7").as_str().into()],
        )
        .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant_id()").as_deref(),
            Some("042")
        );
        assert_eq!(
            one::<i64>("SELECT warden.tenant_with_level_bigint('read')"),
            None
        );
        assert_eq!(
            text("SELECT warden.current_actor_id()").as_deref(),
            Some("7")
        );
    }

    #[pg_test]
    fn identifier_claims_through_set_local_of_the_carrier() {
        Spi::run("CREATE ROLE pgt_ids2").unwrap();
        Spi::run("SET LOCAL ROLE pgt_ids2").unwrap();
        let t = raw_token(r#""org_2abcXYZ9kQ""#, r#""auth0|5f7c8ec7""#);
        Spi::run(&format!("SET LOCAL warden.context_token = '{t}'")).unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant_id()").as_deref(),
            Some("org_2abcXYZ9kQ")
        );
        assert_eq!(
            text("SELECT warden.tenant_with_level_text('read')").as_deref(),
            Some("org_2abcXYZ9kQ")
        );
        assert_eq!(
            one::<i64>("SELECT warden.tenant_with_level_bigint('read')"),
            None
        );
    }

    #[pg_test(
        error = "warden: authentication failed: token claim \"tenant_id\" is invalid: the identifier is a non-integer number, not a string or an integer"
    )]
    fn a_float_tenant_claim_is_refused_by_authenticate() {
        Spi::run("CREATE ROLE pgt_ids3").unwrap();
        Spi::run("SET LOCAL ROLE pgt_ids3").unwrap();
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[raw_token("42.0", "1").as_str().into()],
        )
        .unwrap();
    }

    #[pg_test(
        error = "warden: authentication failed: token claim \"tenant_id\" is invalid: the identifier is a boolean, not a string or an integer"
    )]
    fn a_boolean_tenant_claim_is_refused_by_the_carrier() {
        Spi::run("CREATE ROLE pgt_ids4").unwrap();
        Spi::run("SET LOCAL ROLE pgt_ids4").unwrap();
        let t = raw_token("true", "1");
        Spi::run(&format!("SET LOCAL warden.context_token = '{t}'")).unwrap();
    }

    #[pg_test(
        error = "warden: authentication failed: token claim \"sub\" is invalid: the identifier contains a control character (U+0001)"
    )]
    fn a_control_character_in_a_subject_claim_is_refused() {
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[raw_token("42", r#""a\u0001b""#).as_str().into()],
        )
        .unwrap();
    }

    /// An ES256 key pair made with ring, its JWK, and a signer of compact JWTs with it.
    fn es256(kid: &str) -> (ring::signature::EcdsaKeyPair, serde_json::Value) {
        use base64::Engine;
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let p = kp.public_key().as_ref().to_vec();
        let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
                                     "x": b64.encode(&p[1..33]), "y": b64.encode(&p[33..65])});
        (kp, jwk)
    }

    fn es256_token(
        kp: &ring::signature::EcdsaKeyPair,
        kid: &str,
        payload: serde_json::Value,
    ) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h =
            b64.encode(serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid}).to_string());
        let p = b64.encode(payload.to_string());
        let sig = kp
            .sign(
                &ring::rand::SystemRandom::new(),
                format!("{h}.{p}").as_bytes(),
            )
            .unwrap();
        format!("{h}.{p}.{}", b64.encode(sig.as_ref()))
    }

    fn now_secs() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[pg_test]
    fn a_registered_issuers_es256_tokens_authenticate_in_its_claim_shape_and_rotate() {
        const ISS: &str = "https://clerk.example.test";
        let (kp, jwk) = es256("k1");
        Spi::run_with_args(
            "SELECT warden.register_issuer($1, $2::text::jsonb, $3::text::jsonb)",
            &[
                ISS.into(),
                serde_json::json!({"keys": [jwk]}).to_string().as_str().into(),
                r#"{"audience": "my-api", "tenant": "o.id", "level": "o.rol", "levels": {"admin": "admin", "member": "write"}}"#.into(),
            ],
        )
        .unwrap();
        assert_eq!(
            text("SELECT key_ids::text || ' ' || algorithms::text FROM warden.issuers").as_deref(),
            Some("{k1} {ES256}")
        );
        let now = now_secs();
        let clerk = |kp: &ring::signature::EcdsaKeyPair, kid: &str, rol: &str, aud: &str| {
            es256_token(
                kp,
                kid,
                serde_json::json!({"iss": ISS, "sub": "user_2NQ8xk1Lr3", "aud": aud,
                "o": {"id": "org_2abcXYZ9kQ", "rol": rol}, "exp": now + 60, "iat": now}),
            )
        };
        Spi::run("CREATE ROLE pgt_idp").unwrap();
        Spi::run("SET LOCAL ROLE pgt_idp").unwrap();
        let good = clerk(&kp, "k1", "member", "my-api");
        Spi::run_with_args("SELECT warden.authenticate($1)", &[good.as_str().into()]).unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant_id() || ' ' || warden.current_actor_id() || ' ' || warden.current_level()").as_deref(),
            Some("org_2abcXYZ9kQ user_2NQ8xk1Lr3 write")
        );
        let refused = |t: &str| -> String {
            PgTryBuilder::new(|| {
                Spi::run_with_args("SELECT warden.authenticate($1)", &[t.into()]).unwrap();
                "accepted".to_string()
            })
            .catch_others(crate::errors::caught_message)
            .execute()
        };
        assert!(
            refused(&clerk(&kp, "k1", "guest", "my-api")).contains("maps to no warden level"),
            "an unmapped role"
        );
        assert!(
            refused(&clerk(&kp, "k1", "member", "other-api")).contains("audience"),
            "another audience"
        );
        let (other, _) = es256("k1");
        assert!(
            refused(&clerk(&other, "k1", "member", "my-api")).contains("signature is invalid"),
            "another key, same kid"
        );
        // the issuer's name on an HS256 token signed with the server secret: refused
        let hs = crate::jwt::sign(
            &crate::jwt::Claims {
                tenant: crate::types::ident::Ident::parse("org_2abcXYZ9kQ").unwrap(),
                actor: crate::types::ident::Ident::parse("user_2NQ8xk1Lr3").unwrap(),
                level: crate::types::level::Level::Admin,
                exp: now + 60,
                nbf: None,
                iat: None,
                scopes: None,
            },
            now,
            ISS,
            None,
            &crate::jwt::Key::new(b"pg-test-secret-0123456789abcdefghijklmnop").unwrap(),
        );
        assert!(
            refused(&hs).contains("does not sign with HS256"),
            "{}",
            refused(&hs)
        );
        // an asymmetric token of an issuer nobody registered
        let stranger = es256_token(
            &kp,
            "k1",
            serde_json::json!({"iss": "https://stranger.test", "sub": "u",
            "tenant_id": "t", "role": "read", "exp": now + 60}),
        );
        assert!(
            refused(&stranger).contains("is not registered"),
            "{}",
            refused(&stranger)
        );
        // rotation: a new JWKS replaces the old key; the old key's tokens are refused
        Spi::run("RESET ROLE").unwrap();
        let (kp2, jwk2) = es256("k2");
        Spi::run_with_args(
            "SELECT warden.register_issuer($1, $2::text::jsonb, $3::text::jsonb)",
            &[
                ISS.into(),
                serde_json::json!({"keys": [jwk2]}).to_string().as_str().into(),
                r#"{"audience": "my-api", "tenant": "o.id", "level": "o.rol", "levels": {"admin": "admin", "member": "write"}}"#.into(),
            ],
        )
        .unwrap();
        Spi::run("SET LOCAL ROLE pgt_idp").unwrap();
        assert!(
            refused(&good).contains("has no key \"k1\""),
            "{}",
            refused(&good)
        );
        assert_eq!(refused(&clerk(&kp2, "k2", "admin", "my-api")), "accepted");
    }

    #[pg_test]
    fn a_propelauth_token_lists_several_orgs_and_the_application_names_one() {
        const ISS: &str = "https://auth.propel.example.test";
        let (kp, jwk) = es256("p1");
        Spi::run_with_args(
            "SELECT warden.register_issuer($1, $2::text::jsonb, $3::text::jsonb)",
            &[
                ISS.into(),
                serde_json::json!({"keys": [jwk]}).to_string().as_str().into(),
                r#"{"actor": "user_id", "orgs": "org_id_to_org_member_info", "level": "user_role", "levels": {"Owner": "admin", "Admin": "admin", "Member": "write"}}"#.into(),
            ],
        )
        .unwrap();
        let now = now_secs();
        let token = es256_token(
            &kp,
            "p1",
            serde_json::json!({"iss": ISS, "user_id": "u-7", "exp": now + 60, "iat": now,
                "org_id_to_org_member_info": {
                    "1001": {"org_id": "1001", "user_role": "Owner"},
                    "1002": {"org_id": "1002", "user_role": "Member"}}}),
        );
        Spi::run("CREATE ROLE pgt_propel").unwrap();
        Spi::run("SET LOCAL ROLE pgt_propel").unwrap();
        let level_in = |tenant: Option<&str>| -> String {
            PgTryBuilder::new(|| {
                Spi::run_with_args(
                    "SELECT warden.authenticate($1, $2)",
                    &[token.as_str().into(), tenant.into()],
                )
                .unwrap();
                text("SELECT warden.current_tenant_id() || ' ' || warden.current_actor_id() || ' ' || warden.current_level()")
                    .unwrap()
            })
            .catch_others(crate::errors::caught_message)
            .execute()
        };
        assert_eq!(level_in(Some("1001")), "1001 u-7 admin");
        assert_eq!(level_in(Some("1002")), "1002 u-7 write");
        assert!(level_in(Some("1003")).contains("does not grant tenant \"1003\""));
        assert!(level_in(None).contains("name several organizations"));
        // the carrier holds the choice; setting it by hand is no stronger than authenticate
        let b64 = |t: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t)
        };
        let set = |carrier: String| -> String {
            PgTryBuilder::new(|| {
                Spi::run(&format!("SET LOCAL warden.context_token = '{carrier}'")).unwrap();
                text("SELECT warden.current_tenant_id() || ' ' || warden.current_level()").unwrap()
            })
            .catch_others(crate::errors::caught_message)
            .execute()
        };
        assert_eq!(set(format!("{token}.{}", b64("1002"))), "1002 write");
        assert!(set(format!("{token}.{}", b64("1003"))).contains("does not grant tenant"));
        assert!(set(format!("{token}.!!")).contains("malformed"));
    }

    #[pg_test]
    fn revoke_tokens_signs_an_actor_out_by_issue_time_and_tenant() {
        const ISS: &str = "https://idp.revoke.test";
        let (kp, jwk) = es256("r1");
        Spi::run_with_args(
            "SELECT warden.register_issuer($1, $2::text::jsonb)",
            &[
                ISS.into(),
                serde_json::json!({"keys": [jwk]})
                    .to_string()
                    .as_str()
                    .into(),
            ],
        )
        .unwrap();
        let now = now_secs();
        let tok = |sub: &str, tenant: &str, role: &str, iat: i64| {
            es256_token(
                &kp,
                "r1",
                serde_json::json!({"iss": ISS, "sub": sub, "tenant_id": tenant, "role": role,
                    "iat": iat, "exp": now + 600}),
            )
        };
        let auth = |t: &str| -> String {
            PgTryBuilder::new(|| {
                Spi::run_with_args("SELECT warden.authenticate($1)", &[t.into()]).unwrap();
                "accepted".to_string()
            })
            .catch_others(crate::errors::caught_message)
            .execute()
        };
        let revoke = |actor: &str, before: &str| -> String {
            PgTryBuilder::new(|| {
                Spi::run_with_args(
                    &format!("SELECT warden.revoke_tokens($1, {before})"),
                    &[actor.into()],
                )
                .unwrap();
                "revoked".to_string()
            })
            .catch_others(crate::errors::caught_message)
            .execute()
        };
        Spi::run("CREATE ROLE pgt_revoke").unwrap();
        Spi::run("SET LOCAL ROLE pgt_revoke").unwrap();
        // another member of the tenant, not an admin: refused
        assert_eq!(auth(&tok("mallory", "t1", "write", now - 100)), "accepted");
        assert!(revoke("alice", "now()").contains("is for the actor themself"));
        assert!(revoke("alice", "now() + interval '1 hour'").contains("in the future"));
        // the actor themself, for tokens issued before a minute ago: every tenant
        let old_t1 = tok("alice", "t1", "write", now - 100);
        let old_t2 = tok("alice", "t2", "write", now - 100);
        let new_t1 = tok("alice", "t1", "write", now - 10);
        assert_eq!(auth(&old_t1), "accepted");
        assert_eq!(revoke("alice", "now() - interval '60 seconds'"), "revoked");
        Spi::run("SELECT 1").unwrap();
        assert!(auth(&old_t1).contains("were revoked"), "{}", auth(&old_t1));
        assert!(auth(&old_t2).contains("were revoked"));
        assert_eq!(auth(&new_t1), "accepted");
        // an admin of t1 signs bob out of t1 only
        let bob_t1 = tok("bob", "t1", "read", now - 5);
        let bob_t2 = tok("bob", "t2", "read", now - 5);
        assert_eq!(auth(&tok("admin-1", "t1", "admin", now - 5)), "accepted");
        assert_eq!(revoke("bob", "now()"), "revoked");
        assert!(auth(&bob_t1).contains("were revoked"));
        assert_eq!(auth(&bob_t2), "accepted");
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(
            text("SELECT string_agg(actor || ':' || coalesce(tenant, '*') || ':' || revoked_by, ',' ORDER BY id) FROM warden.token_revocations").as_deref(),
            Some("alice:*:alice,bob:t1:admin-1")
        );
        assert_eq!(
            text("SELECT count(*)::text FROM (SELECT action FROM warden.audit_pending UNION ALL SELECT action FROM warden.audit_events) e WHERE action = 'revoke_tokens'").as_deref(),
            Some("2")
        );
    }

    #[pg_test(
        error = "warden: warden.register_issuer() needs membership in warden_admin (current role: pgt_idp2)"
    )]
    fn registering_an_issuer_is_for_warden_admin() {
        let (_, jwk) = es256("k1");
        Spi::run("CREATE ROLE pgt_idp2").unwrap();
        Spi::run("SET LOCAL ROLE pgt_idp2").unwrap();
        Spi::run_with_args(
            "SELECT warden.register_issuer('https://x.test', $1::text::jsonb)",
            &[serde_json::json!({"keys": [jwk]})
                .to_string()
                .as_str()
                .into()],
        )
        .unwrap();
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
            tenant: crate::types::ident::Ident::parse(A).unwrap(),
            actor: crate::types::ident::Ident::parse(ACTOR).unwrap(),
            level: crate::types::level::Level::Admin,
            exp: now,
            nbf: None,
            iat: None,
            scopes: None,
        };
        let forged = crate::jwt::sign(
            &claims,
            0,
            "x",
            None,
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

    #[pg_test(error = "warden: authentication failed: token expired at 1000000000 (Unix time)")]
    fn the_carrier_refuses_an_expired_token_even_from_a_superuser() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{}'",
            token(A, "admin", 1_000_000_000 - now)
        ))
        .unwrap();
    }

    #[pg_test(
        error = "warden: authentication failed: token is malformed: expected three dot-separated parts"
    )]
    fn the_carrier_refuses_garbage() {
        Spi::run("SET LOCAL warden.context_token = 'garbage'").unwrap();
    }

    #[pg_test]
    fn an_ordinary_role_may_set_the_carrier_to_a_valid_token_with_set_local() {
        Spi::run("CREATE ROLE pgt_app").unwrap();
        Spi::run("SET LOCAL ROLE pgt_app").unwrap();
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{}'",
            token(A, "write", 60)
        ))
        .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(A)
        );
        assert_eq!(
            text("SELECT warden.current_level()").as_deref(),
            Some("write")
        );
    }

    #[pg_test(error = "warden: authentication failed: token signature is invalid")]
    fn an_ordinary_role_cannot_set_the_carrier_to_a_forged_token() {
        Spi::run("CREATE ROLE pgt_app3").unwrap();
        Spi::run("SET LOCAL ROLE pgt_app3").unwrap();
        let good = token(A, "read", 60);
        let (body, _) = good.rsplit_once('.').unwrap();
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{body}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'"
        ))
        .unwrap();
    }

    #[pg_test]
    fn a_session_level_value_is_not_a_context() {
        // set_config(..., false) (a superuser may; for others it is refused because it returns
        // the value): accepted, the token verifies, but ignored, because it would outlive the
        // transaction
        Spi::run_with_args(
            "SELECT set_config('warden.context_token', $1, false)",
            &[token(B, "admin", 60).as_str().into()],
        )
        .unwrap();
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
        // SET LOCAL on top of it is a context again
        Spi::run(&format!(
            "SET LOCAL warden.context_token = '{}'",
            token(B, "read", 60)
        ))
        .unwrap();
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(B)
        );
    }

    #[pg_test(
        error = "warden: warden.context_token is transaction-local: it cannot be set for the whole session: SET needs LOCAL"
    )]
    fn set_without_local_is_refused_even_with_a_valid_token() {
        Spi::run(&format!(
            "SET warden.context_token = '{}'",
            token(A, "admin", 60)
        ))
        .unwrap();
    }

    #[pg_test(
        error = "warden: warden.context_token is transaction-local: it cannot be stored (ALTER ROLE/DATABASE ... SET, a function's SET clause)"
    )]
    fn the_carrier_cannot_be_stored_in_a_role() {
        Spi::run("CREATE ROLE pgt_stored").unwrap();
        Spi::run(&format!(
            "ALTER ROLE pgt_stored SET warden.context_token = '{}'",
            token(A, "admin", 60)
        ))
        .unwrap();
    }

    #[pg_test]
    fn the_read_path_checks_the_audience_and_minted_tokens_carry_it() {
        Spi::run_with_args(
            "SELECT warden.authenticate($1)",
            &[token(A, "read", 60).as_str().into()],
        )
        .unwrap();
        assert!(text("SELECT warden.current_tenant()::text").is_some());
        // configuring an audience ends a context whose token has none
        Spi::run("SET LOCAL warden.jwt_audience = 'api'").unwrap();
        assert_eq!(text("SELECT warden.current_tenant()::text"), None);
        // set_context mints for the configured audience and issuer
        Spi::run("SET LOCAL warden.jwt_issuer = 'https://auth.example'").unwrap();
        set_context(B, "read");
        assert_eq!(
            text("SELECT warden.current_tenant()::text").as_deref(),
            Some(B)
        );
    }

    #[pg_test]
    fn the_context_readers_are_parallel_restricted() {
        let not_restricted = one::<i64>(
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'warden'::regnamespace
               AND proname IN ('current_tenant', 'current_actor', 'current_level', 'has_level', 'tenant_with_level',
                               'tenant_with_scope', 'key_allows')
               AND proparallel <> 'r'",
        );
        assert_eq!(not_restricted, Some(0));
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
        Spi::run(
            "GRANT EXECUTE ON FUNCTION warden.set_context(uuid, uuid, text), warden.set_context(text, text, text) TO pgt_mw",
        )
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

    /// The direct form Citus accepts is rewritten by the planner support function into the same
    /// once-per-statement InitPlan.
    #[pg_test]
    fn direct_policies_also_evaluate_the_context_once_per_statement() {
        Spi::run("CREATE TABLE pgt_direct (id int PRIMARY KEY, tenant_id uuid, body text)")
            .unwrap();
        Spi::run("SELECT warden.protect_table('pgt_direct', distributed => true)").unwrap();
        assert_eq!(
            text(
                "SELECT policy_form FROM warden.protected_tables WHERE relid = 'pgt_direct'::regclass"
            )
            .as_deref(),
            Some("direct")
        );
        let qual = text(
            "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy
              WHERE polname = 'warden_select' AND polrelid = 'pgt_direct'::regclass",
        )
        .unwrap();
        assert!(!qual.contains("SELECT"), "{qual}");
        Spi::run("CREATE ROLE pgt_reader3; GRANT SELECT ON pgt_direct TO pgt_reader3").unwrap();
        Spi::run("SET LOCAL ROLE pgt_reader3").unwrap();
        let plan = one::<pgrx::Json>(
            "EXPLAIN (VERBOSE, FORMAT JSON) SELECT count(*) FROM pgt_direct WHERE body LIKE '%x%'",
        )
        .unwrap()
        .0
        .to_string();
        assert!(plan.contains("InitPlan"), "{plan}");
        assert_eq!(plan.matches("tenant_with_level").count(), 1, "{plan}");
    }

    /// A table protected with a namespace and resource type (API key scopes), in the direct form
    /// Citus accepts: the scope check is evaluated once per statement too.
    #[pg_test]
    fn scoped_policies_evaluate_the_context_once_per_statement() {
        Spi::run("CREATE TABLE pgt_scoped (id int PRIMARY KEY, tenant_id uuid, body text)")
            .unwrap();
        Spi::run(
            "SELECT warden.protect_table('pgt_scoped', distributed => true, namespace => 'docs', resource_type => 'document')",
        )
        .unwrap();
        Spi::run("CREATE ROLE pgt_reader4; GRANT SELECT ON pgt_scoped TO pgt_reader4").unwrap();
        Spi::run("SET LOCAL ROLE pgt_reader4").unwrap();
        let plan = one::<pgrx::Json>(
            "EXPLAIN (VERBOSE, FORMAT JSON) SELECT count(*) FROM pgt_scoped WHERE body LIKE '%x%'",
        )
        .unwrap()
        .0
        .to_string();
        assert!(plan.contains("InitPlan"), "{plan}");
        assert_eq!(plan.matches("tenant_with_scope").count(), 1, "{plan}");
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

    // ---- audit trail ----

    /// Adds committed-looking events to the pending table (as the superuser, who may insert there)
    /// with the given age, and seals them.
    fn pending_event(action: &str, age: &str) {
        Spi::run(&format!(
            "INSERT INTO warden.audit_pending (occurred_at, action, status, changes) \
             VALUES (now() - interval '{age}', '{action}', 'success', '{{\"n\": 1.50}}')"
        ))
        .unwrap();
    }

    fn seal() -> i64 {
        one::<i64>("SELECT warden.seal_audit()").unwrap()
    }

    #[pg_test]
    fn the_hash_does_not_depend_on_session_settings() {
        head();
        Spi::run("SET LOCAL TimeZone = 'Asia/Kathmandu'").unwrap();
        Spi::run("SET LOCAL DateStyle = 'SQL, DMY'").unwrap();
        Spi::run("SET LOCAL extra_float_digits = -10").unwrap();
        Spi::run("SET LOCAL IntervalStyle = 'sql_standard'").unwrap();
        Spi::run(
            r#"SELECT warden.log_event('settings', 'test', '1', '{"z": 1, "a": [0.1, 1e3, "\u00e9"], "m": {"b": null, "a": true}}')"#,
        )
        .unwrap();
        pending_event("aged", "3 days");
        assert!(seal() >= 2);
        Spi::run("SET LOCAL TimeZone = 'America/St_Johns'").unwrap();
        Spi::run("SET LOCAL DateStyle = 'German'").unwrap();
        Spi::run("SET LOCAL extra_float_digits = 3").unwrap();
        Spi::run("SET LOCAL IntervalStyle = 'iso_8601'").unwrap();
        Spi::run("SET LOCAL lc_numeric = 'C'").unwrap();
        assert_eq!(
            text("SELECT intact::text || '/' || coalesce(reason, '-') FROM warden.verify_audit()")
                .as_deref(),
            Some("true/-")
        );
    }

    /// Seals what is pending (which takes the sealing lock until the end of the test, so that
    /// events other tests commit meanwhile cannot interleave) and returns the chain's head id.
    fn head() -> i64 {
        seal();
        one::<i64>("SELECT id FROM warden.audit_digest()").unwrap()
    }

    #[pg_test]
    fn the_chain_links_every_event_to_the_one_before() {
        let base = head();
        let base_hash = one::<Vec<u8>>("SELECT hash FROM warden.audit_digest()").unwrap();
        for i in 0..5 {
            Spi::run(&format!("SELECT warden.log_event('e{i}', 'test', '{i}')")).unwrap();
        }
        assert_eq!(seal(), 5);
        // each event's prev_hash is the hash of the one before, the first the previous head's
        assert_eq!(
            one::<i64>(&format!(
                "SELECT count(*) FROM warden.audit_events e \
                   JOIN warden.audit_events p ON p.id = e.id - 1 WHERE e.prev_hash = p.hash AND e.id > {base}"
            )),
            Some(if base > 0 { 5 } else { 4 })
        );
        assert_eq!(
            Spi::get_one_with_args::<bool>(
                &format!("SELECT prev_hash = $1 FROM warden.audit_events WHERE id = {base} + 1"),
                &[base_hash.as_slice().into()]
            )
            .unwrap(),
            Some(true)
        );
        let (id, hash) =
            Spi::get_two::<i64, Vec<u8>>("SELECT id, hash FROM warden.audit_digest()").unwrap();
        assert_eq!(id, Some(base + 5));
        assert_eq!(hash.map(|h| h.len()), Some(32));
    }

    #[pg_test]
    fn purge_removes_old_events_and_the_rest_still_verifies() {
        head();
        // start from an empty trail (what other tests committed is recent): a purge with no
        // retention removes every sealed event; its own event is still pending
        Spi::run("SET LOCAL warden.audit_retention = 0").unwrap();
        Spi::run("SELECT warden.purge_audit()").unwrap();
        let start = one::<i64>("SELECT max(id) FROM warden.audit_checkpoints").unwrap();
        pending_event("old 1", "400 days");
        pending_event("old 2", "399 days");
        pending_event("old 3", "398 days");
        // sealed in the order they occurred: the old events first, then the purge
        assert_eq!(seal(), 4);
        Spi::run("SELECT warden.log_event('recent', 'test', '1')").unwrap();
        assert_eq!(seal(), 1);
        let old3 = one::<Vec<u8>>(&format!(
            "SELECT hash FROM warden.audit_events WHERE id = {start} + 3 AND action = 'old 3'"
        ))
        .unwrap();
        Spi::run("SET LOCAL warden.audit_retention = '365d'").unwrap();
        assert_eq!(one::<i64>("SELECT warden.purge_audit()"), Some(3));
        // the checkpoint keeps where the chain now starts; the purge is itself an event
        assert_eq!(
            one::<bool>(&format!(
                "SELECT purged = 3 AND hash = (SELECT prev_hash FROM warden.audit_events WHERE id = {start} + 4) \
                   FROM warden.audit_checkpoints WHERE id = {start} + 3"
            )),
            Some(true)
        );
        assert_eq!(seal(), 1);
        assert_eq!(
            text("SELECT action || ' ' || (changes->>'deleted') FROM warden.audit_events ORDER BY id DESC LIMIT 1").as_deref(),
            Some("purge_audit 3")
        );
        assert_eq!(
            text("SELECT intact || ' ' || checked FROM warden.verify_audit()").as_deref(),
            Some("true 3")
        );
        // a digest of the checkpoint itself still holds; one of a purged event cannot be proven
        assert_eq!(
            Spi::get_one_with_args::<bool>(
                &format!("SELECT holds FROM warden.verify_audit_digest({start} + 3, $1)"),
                &[old3.as_slice().into()]
            )
            .unwrap(),
            Some(true)
        );
        assert_eq!(
            text(&format!(
                "SELECT holds || ' ' || (reason LIKE '%was purged%anchor a newer digest') \
                   FROM warden.verify_audit_digest({start} + 2, '\\x00')"
            ))
            .as_deref(),
            Some("false true")
        );
        // nothing is old enough any more
        assert_eq!(one::<i64>("SELECT warden.purge_audit()"), Some(0));
    }

    #[pg_test(error = "warden: only a superuser may call warden.purge_audit()")]
    fn purge_is_for_superusers_even_if_execute_is_granted() {
        Spi::run("CREATE ROLE pgt_purger").unwrap();
        Spi::run("GRANT EXECUTE ON FUNCTION warden.purge_audit() TO pgt_purger").unwrap();
        Spi::run("SET LOCAL ROLE pgt_purger").unwrap();
        Spi::run("SELECT warden.purge_audit()").unwrap();
    }

    #[pg_test]
    fn verification_finds_each_kind_of_tampering() {
        let b = head();
        for i in 0..6 {
            Spi::run(&format!("SELECT warden.log_event('e{i}', 'test', '{i}')")).unwrap();
        }
        assert_eq!(seal(), 6);
        let verdict = || {
            text(&format!(
                "SELECT intact || ' ' || coalesce((first_bad_id - {b})::text, '-') || ' ' \
                        || coalesce(replace(reason, first_bad_id::text, 'N'), '-') \
                   FROM warden.verify_audit()"
            ))
            .unwrap()
        };
        assert_eq!(verdict(), "true - -");
        // (ALTER TABLE ... DISABLE TRIGGER on warden's tables is refused to everyone: a tamperer
        // writes the catalogs, and touches pg_class so the relation is reloaded)
        Spi::run(
            "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgrelid = 'warden.audit_events'::regclass;
             UPDATE pg_catalog.pg_class SET relhastriggers = relhastriggers WHERE oid = 'warden.audit_events'::regclass",
        )
        .unwrap();
        // each tampering is undone before the next (SPI has no savepoints)
        // a changed value
        Spi::run(&format!(
            "UPDATE warden.audit_events SET resource_id = 'x' WHERE id = {b} + 3"
        ))
        .unwrap();
        assert_eq!(
            verdict(),
            "false 3 event N: hash does not match the event's content"
        );
        Spi::run(&format!(
            "UPDATE warden.audit_events SET resource_id = '2' WHERE id = {b} + 3"
        ))
        .unwrap();
        assert_eq!(verdict(), "true - -");
        // a deleted event in the middle
        Spi::run(&format!(
            "CREATE TEMP TABLE gone AS SELECT * FROM warden.audit_events WHERE id = {b} + 4; \
             DELETE FROM warden.audit_events WHERE id = {b} + 4"
        ))
        .unwrap();
        assert_eq!(verdict(), "false 4 event N is missing");
        Spi::run("INSERT INTO warden.audit_events SELECT * FROM gone").unwrap();
        assert_eq!(verdict(), "true - -");
        // a reordered pair (ids swapped)
        let swap = format!(
            "UPDATE warden.audit_events SET id = CASE id WHEN {b} + 2 THEN -3 ELSE -2 END WHERE id IN ({b} + 2, {b} + 3); \
             UPDATE warden.audit_events SET id = {b} - id WHERE id < 0"
        );
        Spi::run(&swap).unwrap();
        assert_eq!(
            verdict(),
            "false 2 event N: prev_hash does not match the previous event's hash"
        );
        Spi::run(&swap).unwrap();
        assert_eq!(verdict(), "true - -");
    }

    #[pg_test]
    fn an_autonomous_event_that_does_not_fit_the_queue_is_refused_and_counted() {
        let before = crate::audit::worker::status();
        assert!(before.preloaded, "the test cluster preloads warden");
        let too_long = vec![b'x'; crate::audit::queue::MAX_RECORD + 1];
        assert!(!crate::audit::worker::submit(&too_long));
        let after = crate::audit::worker::status();
        assert_eq!(after.overflowed, before.overflowed + 1);
        assert_eq!(
            one::<i64>("SELECT overflowed FROM warden.audit_queue_status()"),
            Some(after.overflowed)
        );
    }

    #[pg_test]
    fn a_hold_guards_the_next_statement_and_stops_when_its_subtransaction_rolls_back() {
        Spi::run("CREATE TABLE ht (id int PRIMARY KEY, tenant_id uuid NOT NULL)").unwrap();
        Spi::run("SELECT warden.protect_table('ht')").unwrap();
        Spi::run(&format!(
            "INSERT INTO ht VALUES (1, '{A}'), (2, '{A}'), (3, '{B}')"
        ))
        .unwrap();
        Spi::run(
            "CREATE FUNCTION pg_temp.try_delete(i int) RETURNS text LANGUAGE plpgsql AS $$
             BEGIN DELETE FROM ht WHERE id = i; RETURN 'deleted';
             EXCEPTION WHEN insufficient_privilege THEN RETURN sqlerrm; END $$",
        )
        .unwrap();
        set_context(A, "delete");
        // placed, then undone with its subtransaction: the backend's copy of the holds follows
        Spi::run(&format!(
            "DO $$ BEGIN PERFORM warden.place_hold('PG-1', 'undone', '{A}');
                       RAISE EXCEPTION 'undo';
                  EXCEPTION WHEN raise_exception THEN NULL; END $$"
        ))
        .unwrap();
        assert_eq!(
            text("SELECT pg_temp.try_delete(1)").as_deref(),
            Some("deleted")
        );
        // placed and standing: the very next statement of the same transaction is guarded
        Spi::run(&format!(
            "SELECT warden.place_hold('PG-2', 'standing', '{A}')"
        ))
        .unwrap();
        let refused = text("SELECT pg_temp.try_delete(2)").unwrap_or_default();
        assert!(refused.contains("legal hold \"PG-2\""), "{refused}");
        // another tenant's row is not held
        set_context(B, "delete");
        assert_eq!(
            text("SELECT pg_temp.try_delete(3)").as_deref(),
            Some("deleted")
        );
    }

    /// The verifier's canonical JSON from jsonb's binary form (audit::jsonb) is byte for byte the
    /// sealer's, canonical_json of the text form: on every shape (nested objects whose keys jsonb
    /// and canonical order differently, escapes, Unicode, numbers with scale, big and negative,
    /// arrays, scalars, empty containers) and on 2,000 generated documents.
    #[pg_test]
    fn jsonb_canonical_matches_the_text_path() {
        Spi::connect(|c| {
            let rows = c
                .select(
                    r#"SELECT j, j::text FROM (SELECT column1 AS j FROM (VALUES
                         ('{"b": 1, "a": {"zz": [1, 2.50, -3], "y": null}, "aaa": true}'::jsonb),
                         ('{"é": "\u0001 \" \\ \n \t \b \f \r /", "e": "ü😀", "": ""}'),
                         ('[1e3, 1.0E-5, -0.0, 123456789012345678901234567890.123456789, 0.000]'),
                         ('"just a string"'), ('42'), ('-1.5'), ('true'), ('null'), ('[]'), ('{}'),
                         ('[[], {}, [[{"k": [null]}]]]'),
                         ('{"long key first?": 1, "k": 2, "kk": 3, "K": 4, "_": 5, "~": 6, "\u00e9": 7}')) x
                       UNION ALL
                       SELECT jsonb_build_object(
                                  'id', g, 'n', g * 1.25, 'neg', -g, 'txt', md5(g::text) || E'\n' || chr(233 + g % 200),
                                  repeat('k', g % 7), jsonb_build_array(g % 3 = 0, NULL, g::text, jsonb_build_object('x' || g % 5, g / 7.0)),
                                  'nested', jsonb_build_object('b', g, 'a', jsonb_build_object(chr(97 + g % 26), 'v')))
                         FROM generate_series(1, 2000) g) v"#,
                    None,
                    &[],
                )
                .unwrap();
            let mut n = 0;
            for row in rows {
                let d = row
                    .get::<crate::audit::jsonb::JsonbDatum>(1)
                    .unwrap()
                    .unwrap();
                let t = row.get::<String>(2).unwrap().unwrap();
                let mut binary = Vec::new();
                assert!(unsafe { crate::audit::jsonb::canonical_into(d.0, &mut binary) });
                let text = crate::audit::canonical::canonical_json(&t).unwrap();
                assert_eq!(String::from_utf8(binary).unwrap(), text, "for {t}");
                n += 1;
            }
            assert_eq!(n, 2012);
        });
    }
}
