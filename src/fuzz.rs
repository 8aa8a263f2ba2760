//! Property-based fuzzing (proptest) of every parser that reads what a client, a token, an identity
//! provider or a log message brings: the HS256 JWT verifier, the JWKS parser and the asymmetric
//! verifier, the API key parser, the scope grammar, the canonical JSON serializer, the ciphertext
//! envelope, the claim path reader and the server log's redaction scanner. Each target has an
//! arbitrary-input property (no panic, no acceptance of what was not made valid) and a
//! structure-aware one (inputs built the way the real ones are, then changed: a changed token,
//! key or ciphertext is refused; a round trip gives back what went in).
//!
//! In the test command each target runs a fixed number of cases (`WARDEN_FUZZ_CASES`, default
//! 1,000; a few seconds in all). For a long run, `scripts/fuzz.sh TARGET SECONDS` sets
//! `WARDEN_FUZZ_SECONDS`: batches of 10,000 cases with fresh random seeds until the time is up,
//! then the number of cases tried. A failure is shrunk by proptest and reported with its minimal
//! input; every one found is kept below as a regression test (`found_*`).

use std::fmt::Debug;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestError, TestRunner};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::audit::canonical::canonical_json;
use crate::crypto::envelope;
use crate::jwt::jwks;
use crate::jwt::{self, Expectations};
use crate::keys::format as keyfmt;
use crate::postgres::log;
use crate::scope::Scope;
use crate::types::level::Level;

/// Runs `test` on inputs from `strategy`: a fixed number of cases, or batches until
/// `WARDEN_FUZZ_SECONDS` have passed. Panics with proptest's minimal failing input.
fn run<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let seconds = std::env::var("WARDEN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let cases = match seconds {
        Some(_) => 10_000,
        None => std::env::var("WARDEN_FUZZ_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1_000),
    };
    let start = Instant::now();
    let mut total: u64 = 0;
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 20_000,
            ..Config::default()
        });
        match runner.run(&strategy, &test) {
            Ok(()) => {}
            Err(TestError::Fail(why, input)) => {
                panic!("fuzz {name}: {why}\nminimal input: {input:#?}")
            }
            Err(TestError::Abort(why)) => panic!("fuzz {name}: aborted: {why}"),
        }
        total += u64::from(cases);
        match seconds {
            Some(s) if start.elapsed() < Duration::from_secs(s) => continue,
            _ => break,
        }
    }
    eprintln!(
        "fuzz {name}: {total} cases in {:.1} s, no failure",
        start.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// generators

/// The random bytes a new API key is made of.
fn random_key_bytes() -> impl Strategy<Value = [u8; keyfmt::RANDOM_BYTES]> {
    vec(any::<u8>(), keyfmt::RANDOM_BYTES).prop_map(|v| v.try_into().unwrap())
}

/// Any JSON value, nested a few levels, with arbitrary (Unicode, control) strings and keys.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z_.]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(
                prop_oneof![any::<String>(), "[a-z_.]{1,8}".prop_map(String::from)],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value a claim might hold: what providers put there and what an attacker might.
fn claim_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        "[A-Za-z0-9_|:@.-]{0,40}".prop_map(Value::String),
        any::<String>().prop_map(Value::String),
        json_value(),
    ]
}

/// A numeric claim (`exp`, `nbf`, `iat`) near `now`, or something that is not one.
fn time_claim(now: i64) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => (-600i64..600).prop_map(move |d| Some(Value::from(now + d))),
        1 => Just(None),
        1 => any::<i64>().prop_map(|i| Some(Value::from(i))),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| Some(Value::from(f))),
        1 => claim_value().prop_map(Some),
    ]
}

const NOW: i64 = 1_800_000_000;

/// A token payload: warden's claims (or junk in their place) and extra claims.
fn payload() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(0.9, claim_value()),
        prop::option::weighted(0.9, claim_value()),
        prop::option::weighted(
            0.9,
            prop_oneof![
                prop::sample::select(vec![
                    "read", "write", "delete", "admin", "ADMIN", "owner", ""
                ])
                .prop_map(Value::from),
                claim_value(),
            ],
        ),
        time_claim(NOW),
        time_claim(NOW),
        time_claim(NOW),
        btree_map("[a-z_]{1,6}", json_value(), 0..3),
    )
        .prop_map(|(tenant, sub, role, exp, nbf, iat, extra)| {
            let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [
                ("tenant_id", tenant),
                ("sub", sub),
                ("role", role),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

/// A JWT header: mostly HS256, sometimes another or no algorithm, with extra members.
fn header() -> impl Strategy<Value = Value> {
    (
        prop::option::weighted(
            0.95,
            prop_oneof![
                6 => Just("HS256".to_owned()),
                1 => prop::sample::select(vec!["none", "HS384", "RS256", "hs256", "HS256 ", "ES256", "EdDSA"]).prop_map(String::from),
                1 => any::<String>(),
            ],
        ),
        prop::option::of(prop::sample::select(vec!["JWT", "at+jwt", ""])),
        prop::option::of("[a-z0-9-]{0,10}"),
    )
        .prop_map(|(alg, typ, kid)| {
            let mut h = serde_json::Map::new();
            if let Some(a) = alg {
                h.insert("alg".into(), a.into());
            }
            if let Some(t) = typ {
                h.insert("typ".into(), t.into());
            }
            if let Some(k) = kid {
                h.insert("kid".into(), k.into());
            }
            Value::Object(h)
        })
}

/// A change to a string: the character at `at` (modulo the length) replaced, removed, or
/// something inserted there.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Remove(usize),
    Insert(usize, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    let c = prop_oneof![
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), c.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), c).prop_map(|(i, c)| Edit::Insert(i, c)),
    ]
}

fn apply(s: &str, e: &Edit) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let n = chars.len().max(1);
    match *e {
        Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
        Edit::Remove(i) if !chars.is_empty() => {
            chars.remove(i % n);
        }
        Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
        _ => {}
    }
    chars.into_iter().collect()
}

fn apply_bytes(b: &[u8], e: &Edit) -> Vec<u8> {
    let mut v = b.to_vec();
    let n = v.len().max(1);
    match *e {
        Edit::Replace(i, c) if !v.is_empty() => {
            let i = i % n;
            // a replacement that changes the byte
            v[i] ^= (c as u32 as u8) | 1;
        }
        Edit::Remove(i) if !v.is_empty() => {
            v.remove(i % n);
        }
        Edit::Insert(i, c) => v.insert(i % (v.len() + 1), c as u32 as u8),
        _ => {}
    }
    v
}

// ---------------------------------------------------------------------------------------------
// the HS256 verifier

const SECRET: &[u8] = b"fuzzing-secret-0123456789abcdef-0123456789";
static HS_KEY: LazyLock<jwt::Key> = LazyLock::new(|| jwt::Key::new(SECRET).unwrap());

fn expect() -> Expectations<'static> {
    Expectations {
        key: &HS_KEY,
        audience: None,
        issuer: None,
        leeway: 0,
        now: NOW,
    }
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// An HS256 token of exactly these header and payload bytes, signed with `SECRET`.
fn hs256(header: &[u8], payload: &[u8]) -> String {
    let (h, p) = (b64(header), b64(payload));
    let mut m = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    m.update(format!("{h}.{p}").as_bytes());
    format!("{h}.{p}.{}", b64(&m.finalize().into_bytes()))
}

/// What verify must conclude from a token it accepts: the claims are the payload's.
fn accepted_claims_match(header: &Value, p: &Value, c: &jwt::Claims) -> Result<(), TestCaseError> {
    prop_assert_eq!(header.get("alg").and_then(Value::as_str), Some("HS256"));
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    prop_assert_eq!(text(p.get("tenant_id")), Some(c.tenant.as_str().to_owned()));
    prop_assert_eq!(text(p.get("sub")), Some(c.actor.as_str().to_owned()));
    prop_assert_eq!(
        p.get("role").and_then(Value::as_str),
        Some(c.level.as_str())
    );
    prop_assert!(c.exp > NOW, "an expired token was accepted: exp {}", c.exp);
    if let Some(nbf) = c.nbf {
        prop_assert!(
            nbf <= NOW,
            "a token not yet valid was accepted: nbf {}",
            nbf
        );
    }
    Ok(())
}

#[test]
fn jwt_hs256_arbitrary_input() {
    let token_like = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.=-]{0,200}".prop_map(String::from),
        "eyJ[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,120}\\.[A-Za-z0-9_-]{0,60}"
            .prop_map(String::from),
    ];
    run("jwt_hs256_arbitrary_input", token_like, |t| {
        // nothing unsigned is accepted; nothing panics
        prop_assert!(jwt::verify(&t, &expect()).is_err());
        let _ = jwt::peek(&t);
        let _ = jwt::claimed_identity(&t);
        Ok(())
    });
}

#[test]
fn jwt_hs256_signed_then_changed() {
    let strategy = (header(), payload(), edit(), any::<bool>());
    run(
        "jwt_hs256_signed_then_changed",
        strategy,
        |(h, p, e, pretty)| {
            let hb = if pretty {
                serde_json::to_vec_pretty(&h).unwrap()
            } else {
                serde_json::to_vec(&h).unwrap()
            };
            let token = hs256(&hb, &serde_json::to_vec(&p).unwrap());
            if let Ok(c) = jwt::verify(&token, &expect()) {
                accepted_claims_match(&h, &p, &c)?;
            }
            // any change to the token's text is refused
            let changed = apply(&token, &e);
            if changed != token {
                prop_assert!(
                    jwt::verify(&changed, &expect()).is_err(),
                    "a changed token was accepted: {}",
                    changed
                );
            }
            Ok(())
        },
    );
}

#[test]
fn jwt_hs256_minted_tokens_round_trip() {
    let strategy = (
        "[A-Za-z0-9_|@.-]{1,40}",
        "[A-Za-z0-9_|@.-]{1,40}",
        prop::sample::select(vec![Level::Read, Level::Write, Level::Delete, Level::Admin]),
        1i64..100_000,
    );
    run(
        "jwt_hs256_minted_tokens_round_trip",
        strategy,
        |(tenant, actor, level, ttl)| {
            let claims = jwt::Claims {
                tenant: crate::types::ident::Ident::parse(&tenant).unwrap(),
                actor: crate::types::ident::Ident::parse(&actor).unwrap(),
                level,
                exp: NOW + ttl,
                nbf: None,
                iat: Some(NOW),
                scopes: None,
            };
            let t = jwt::sign(&claims, NOW, "warden", None, &HS_KEY);
            let back =
                jwt::verify(&t, &expect()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back.tenant.as_str(), tenant.as_str());
            prop_assert_eq!(back.actor.as_str(), actor.as_str());
            prop_assert_eq!(back.level, level);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// JWKS and the asymmetric verifier

/// One JWK-shaped object: real-looking members with random values, or junk.
fn jwk() -> impl Strategy<Value = Value> {
    let b64s = prop_oneof![
        vec(any::<u8>(), 0..300).prop_map(|v| b64(&v)),
        "[A-Za-z0-9_=+/-]{0,50}".prop_map(String::from),
    ];
    (
        prop::sample::select(vec!["RSA", "EC", "OKP", "oct", "rsa", ""]),
        prop::option::of(prop::sample::select(vec![
            "P-256",
            "P-384",
            "Ed25519",
            "X25519",
            "secp256k1",
        ])),
        prop::option::of(prop::sample::select(vec![
            "RS256", "RS384", "RS512", "PS256", "ES256", "EdDSA", "HS256", "none", "RSA-OAEP",
        ])),
        prop::option::of(prop::sample::select(vec!["sig", "enc", ""])),
        prop::option::of(claim_value()),
        b64s.clone(),
        b64s.clone(),
        b64s.clone(),
        b64s,
        any::<bool>(),
    )
        .prop_map(|(kty, crv, alg, use_, kid, n, e, x, y, junk)| {
            let mut m = serde_json::Map::new();
            m.insert("kty".into(), kty.into());
            if let Some(c) = crv {
                m.insert("crv".into(), c.into());
            }
            if let Some(a) = alg {
                m.insert("alg".into(), a.into());
            }
            if let Some(u) = use_ {
                m.insert("use".into(), u.into());
            }
            if let Some(k) = kid {
                m.insert("kid".into(), k);
            }
            match kty {
                "RSA" => {
                    m.insert("n".into(), n.into());
                    m.insert("e".into(), e.into());
                }
                _ => {
                    m.insert("x".into(), x.into());
                    m.insert("y".into(), y.into());
                }
            }
            if junk {
                m.insert("n".into(), json!(42));
            }
            Value::Object(m)
        })
}

#[test]
fn jwks_parser() {
    let strategy = prop_oneof![
        3 => vec(jwk(), 0..4).prop_map(|keys| json!({ "keys": keys })),
        1 => json_value(),
        1 => json_value().prop_map(|v| json!({ "keys": v })),
    ];
    run("jwks_parser", strategy, |v| {
        if let Ok(set) = jwks::parse(&v) {
            // a parsed set has keys, and every key can be asked to verify anything
            prop_assert!(!set.keys.is_empty());
            for k in &set.keys {
                prop_assert!(!k.verifies(b"message", b"signature"));
            }
        }
        let _ = jwks::parse_options(&v);
        Ok(())
    });
}

struct Signers {
    ec: ring::signature::EcdsaKeyPair,
    ed: ring::signature::Ed25519KeyPair,
    rsa: ring::signature::RsaKeyPair,
    keys: Vec<jwks::Key>,
}

/// Which key signs: (its algorithm, its kid in the set).
const SIGNING: [(&str, &str); 4] = [
    ("ES256", "ec1"),
    ("EdDSA", "ed1"),
    ("RS256", "rs1"),
    ("PS256", "ps1"),
];

static SIGNERS: LazyLock<Signers> = LazyLock::new(|| {
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let rng = ring::rand::SystemRandom::new();
    let ec8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let ec =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, ec8.as_ref(), &rng).unwrap();
    let ed8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = Ed25519KeyPair::from_pkcs8(ed8.as_ref()).unwrap();
    let p = ec.public_key().as_ref().to_vec();
    // the 2,048-bit RSA key of jwks' tests (ring does not generate RSA keys), as RS256 and PS256
    let (rsa, rsa_jwk) = crate::jwt::jwks::tests::rsa();
    let mut rs = rsa_jwk.clone();
    rs["kid"] = "rs1".into();
    rs["alg"] = "RS256".into();
    let mut ps = rsa_jwk;
    ps["kid"] = "ps1".into();
    ps["alg"] = "PS256".into();
    let set = jwks::parse(&json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64(&p[1..33]), "y": b64(&p[33..65])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64(ed.public_key().as_ref())},
        rs, ps,
    ]}))
    .unwrap();
    Signers {
        ec,
        ed,
        rsa,
        keys: set.keys,
    }
});

#[test]
fn asymmetric_signed_then_changed() {
    let strategy = (
        0..SIGNING.len(),
        prop::option::weighted(
            0.8,
            prop::sample::select(vec!["ec1", "ed1", "rs1", "ps1", "other"]),
        ),
        prop::option::weighted(
            0.9,
            prop::sample::select(vec![
                "ES256", "EdDSA", "RS256", "PS256", "RS512", "HS256", "none",
            ]),
        ),
        payload(),
        edit(),
    );
    run(
        "asymmetric_signed_then_changed",
        strategy,
        |(signer, kid, alg, mut p, e)| {
            let s = &*SIGNERS;
            p["iss"] = "https://fuzz.example.test".into();
            let mut h = serde_json::Map::new();
            if let Some(a) = alg {
                h.insert("alg".into(), a.into());
            }
            if let Some(k) = kid {
                h.insert("kid".into(), k.into());
            }
            let (h64, p64) = (
                b64(&serde_json::to_vec(&h).unwrap()),
                b64(&serde_json::to_vec(&p).unwrap()),
            );
            let msg = format!("{h64}.{p64}");
            let rng = ring::rand::SystemRandom::new();
            let sig = match SIGNING[signer].0 {
                "ES256" => s.ec.sign(&rng, msg.as_bytes()).unwrap().as_ref().to_vec(),
                "EdDSA" => s.ed.sign(msg.as_bytes()).as_ref().to_vec(),
                rsa => {
                    let mut sig = vec![0u8; s.rsa.public().modulus_len()];
                    let padding: &'static dyn ring::signature::RsaEncoding = if rsa == "RS256" {
                        &ring::signature::RSA_PKCS1_SHA256
                    } else {
                        &ring::signature::RSA_PSS_SHA256
                    };
                    s.rsa.sign(padding, &rng, msg.as_bytes(), &mut sig).unwrap();
                    sig
                }
            };
            let token = format!("{msg}.{}", b64(&sig));
            let o = jwks::Options::default();
            let verdict =
                jwt::verify_issued(&token, "https://fuzz.example.test", &s.keys, &o, NOW, None);
            if verdict.is_ok() {
                // accepted only with the signing key's own algorithm and key id (or none)
                let (want, own) = SIGNING[signer];
                prop_assert_eq!(alg, Some(want));
                prop_assert!(
                    kid.is_none() || kid == Some(own),
                    "accepted with kid {:?}",
                    kid
                );
            }
            let changed = apply(&token, &e);
            if changed != token {
                prop_assert!(
                    jwt::verify_issued(
                        &changed,
                        "https://fuzz.example.test",
                        &s.keys,
                        &o,
                        NOW,
                        None
                    )
                    .is_err(),
                    "a changed token was accepted: {}",
                    changed
                );
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// API keys and scopes

#[test]
fn api_key_parser() {
    let strategy = (
        random_key_bytes(),
        edit(),
        prop_oneof![
            any::<String>(),
            "wdn_[0-9a-fA-F]{10,14}_[A-Za-z0-9_-]{40,46}".prop_map(String::from)
        ],
    );
    run("api_key_parser", strategy, |(random, e, junk)| {
        let k = keyfmt::mint(&random);
        prop_assert_eq!(keyfmt::parse(&k.plaintext), Ok(k.id.as_str()));
        prop_assert_eq!(k.plaintext.len(), keyfmt::KEY_LEN);
        // a parsed key is canonical: 60 characters, the prefix, lower-case hex, a base64url
        // secret that re-encodes to itself
        for s in [apply(&k.plaintext, &e), junk] {
            if let Ok(id) = keyfmt::parse(&s) {
                prop_assert_eq!(s.len(), keyfmt::KEY_LEN);
                prop_assert!(s.starts_with(keyfmt::PREFIX));
                prop_assert!(id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                let secret = &s[keyfmt::PREFIX.len() + keyfmt::ID_LEN + 1..];
                let bytes = URL_SAFE_NO_PAD.decode(secret).unwrap();
                prop_assert_eq!(b64(&bytes), secret);
                prop_assert!(s == k.plaintext || keyfmt::hash(&s) != k.hash);
            }
        }
        Ok(())
    });
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_owned()),
        "[a-z0-9_.-]{1,12}".prop_map(String::from)
    ]
}

fn scope_text() -> impl Strategy<Value = String> {
    (
        segment(),
        segment(),
        prop::sample::select(vec!["read", "write", "delete", "admin", "*"]),
    )
        .prop_map(|(a, b, c)| format!("{a}:{b}:{c}"))
}

#[test]
fn scope_grammar() {
    let strategy = (
        scope_text(),
        scope_text(),
        prop_oneof![
            any::<String>(),
            "[a-zA-Z0-9_.:*-]{0,30}".prop_map(String::from)
        ],
        "[a-z0-9_.-]{1,12}",
        "[a-z0-9_.-]{1,12}",
        prop::sample::select(vec![Level::Read, Level::Write, Level::Delete, Level::Admin]),
    );
    run("scope_grammar", strategy, |(a, b, junk, ns, rt, op)| {
        // a well-formed scope parses and prints as itself
        let sa: Scope = a
            .parse()
            .map_err(|e: crate::scope::ScopeError| TestCaseError::fail(e.to_string()))?;
        let sb: Scope = b
            .parse()
            .map_err(|e: crate::scope::ScopeError| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(sa.to_string(), a);
        // anything that parses prints back to the same text (one spelling per scope)
        if let Ok(s) = junk.parse::<Scope>() {
            prop_assert_eq!(s.to_string(), junk);
        }
        // covering is sound: what b allows, a scope covering b allows too
        if sa.covers(&sb) && sb.allows(&ns, &rt, op) {
            prop_assert!(sa.allows(&ns, &rt, op));
        }
        // and each scope covers itself
        prop_assert!(sa.covers(&sa));
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// canonical JSON

/// A JSON number's text: sign, integer digits, fraction, exponent.
fn number_text() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop_oneof![
            Just("0".to_owned()),
            "[1-9][0-9]{0,20}".prop_map(String::from)
        ],
        prop::option::of("[0-9]{1,20}"),
        prop::option::of((
            prop::sample::select(vec!["e", "E"]),
            prop::sample::select(vec!["", "+", "-"]),
            0u32..60,
        )),
    )
        .prop_map(|(neg, int, frac, exp)| {
            let mut s = String::new();
            if neg {
                s.push('-');
            }
            s.push_str(&int);
            if let Some(f) = frac {
                s.push('.');
                s.push_str(&f);
            }
            if let Some((e, sign, n)) = exp {
                s.push_str(&format!("{e}{sign}{n}"));
            }
            s
        })
}

/// A JSON document as text, objects' members in an order chosen by `seed` (not sorted), numbers
/// in any of their spellings, whitespace here and there.
fn json_text(v: &Value, seed: u64, numbers: &mut std::slice::Iter<'_, String>, out: &mut String) {
    let ws = if seed.is_multiple_of(3) { " \n\t" } else { "" };
    match v {
        Value::Object(m) => {
            let mut members: Vec<_> = m.iter().collect();
            let n = members.len().max(1);
            members.rotate_left((seed as usize) % n);
            if seed.is_multiple_of(2) {
                members.reverse();
            }
            out.push('{');
            for (i, (k, x)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(ws);
                out.push(':');
                json_text(
                    x,
                    seed.wrapping_mul(31).wrapping_add(i as u64),
                    numbers,
                    out,
                );
            }
            out.push_str(ws);
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text(x, seed.wrapping_add(i as u64), numbers, out);
            }
            out.push(']');
        }
        Value::Number(n) => match numbers.next() {
            Some(t) if seed % 2 == 1 => out.push_str(t),
            _ => out.push_str(&n.to_string()),
        },
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

/// Whether two parsed documents are the same JSON (numbers by value: serde_json's parser, without
/// its float_roundtrip feature, may be one unit in the last place off for long decimals).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q || (p - q).abs() <= 1e-15 * p.abs().max(q.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn canonical_json_serializer() {
    let strategy = (
        json_value(),
        any::<u64>(),
        any::<u64>(),
        vec(number_text(), 0..8),
        prop_oneof![
            any::<String>(),
            "[\\[\\]{}:,\"0-9eE.+ a-z-]{0,40}".prop_map(String::from)
        ],
    );
    run(
        "canonical_json_serializer",
        strategy,
        |(v, seed1, seed2, numbers, junk)| {
            let mut t1 = String::new();
            json_text(&v, seed1, &mut numbers.iter(), &mut t1);
            let mut t2 = String::new();
            json_text(&v, seed2, &mut [].iter(), &mut t2);
            let c1 =
                canonical_json(&t1).map_err(|e| TestCaseError::fail(format!("{e} for {t1}")))?;
            let c2 =
                canonical_json(&t2).map_err(|e| TestCaseError::fail(format!("{e} for {t2}")))?;
            // the canonical form is JSON, the same document, whatever the key order and spelling
            let parsed: Value =
                serde_json::from_str(&c1).map_err(|e| TestCaseError::fail(format!("{e}: {c1}")))?;
            let original: Value = serde_json::from_str(&t1).unwrap();
            prop_assert!(same_json(&parsed, &original), "{} is not {}", c1, t1);
            // key order and whitespace never matter: the same document in another order
            let mut t3 = String::new();
            json_text(&v, seed1, &mut [].iter(), &mut t3);
            prop_assert_eq!(&c2, &canonical_json(&t3).unwrap());
            // idempotent, no insignificant whitespace
            prop_assert_eq!(canonical_json(&c1).unwrap(), c1.clone());
            // a number with an exponent no jsonb value has: refused (more than 6 digits) or
            // expanded to at most a million digits, never an allocation the size of the exponent
            let huge = format!(
                "[1{}]",
                [
                    "e999999999999",
                    "e-999999999999",
                    "e9223372036854775807",
                    "e-9223372036854775807",
                    "E+4000000",
                    "e999999",
                    "E-999999"
                ][(seed1 % 7) as usize]
            );
            if let Ok(c) = canonical_json(&huge) {
                prop_assert!(
                    c.len() <= 1_000_003,
                    "{} expanded to {} bytes",
                    huge,
                    c.len()
                );
            }
            // arbitrary text: an error or a canonical document, never a panic
            if let Ok(c) = canonical_json(&junk) {
                prop_assert_eq!(canonical_json(&c).unwrap(), c);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// the ciphertext envelope

#[test]
fn ciphertext_envelope() {
    let strategy = (
        any::<[u8; 32]>(),
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<[u8; envelope::NONCE_LEN]>(),
        vec(any::<u8>(), 0..64),
        vec(any::<u8>(), 0..256),
        edit(),
        vec(any::<u8>(), 0..128),
    );
    run(
        "ciphertext_envelope",
        strategy,
        |(key, id, version, nonce, aad, plaintext, e, junk)| {
            let kr = envelope::KeyRef { id, version };
            let ct = envelope::seal(&key, kr, &nonce, &aad, &plaintext);
            prop_assert_eq!(envelope::key_ref(&ct).ok(), Some(kr));
            prop_assert_eq!(
                envelope::open(&key, &ct, &aad).ok(),
                Some(plaintext.clone())
            );
            // a changed ciphertext, another aad, another key: refused
            let changed = apply_bytes(&ct, &e);
            if changed != ct {
                prop_assert!(envelope::open(&key, &changed, &aad).is_err());
            }
            let mut other_aad = aad.clone();
            other_aad.push(0);
            prop_assert!(envelope::open(&key, &ct, &other_aad).is_err());
            let mut other_key = key;
            other_key[0] ^= 1;
            prop_assert!(envelope::open(&other_key, &ct, &aad).is_err());
            // arbitrary bytes: never accepted, never a panic
            let _ = envelope::key_ref(&junk);
            prop_assert!(envelope::open(&key, &junk, &aad).is_err());
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// claim paths

#[test]
fn claim_path_reader() {
    let strategy = (
        vec("[a-z_:/]{1,8}", 1..5),
        json_value(),
        json_value(),
        "[a-z_.:/]{0,30}",
    );
    run(
        "claim_path_reader",
        strategy,
        |(segments, leaf, noise, path)| {
            // a value nested along the path's segments is found at the dotted path
            let mut v = leaf.clone();
            for s in segments.iter().rev() {
                let mut m = serde_json::Map::new();
                m.insert(s.clone(), v);
                v = Value::Object(m);
            }
            let dotted = segments.join(".");
            prop_assert_eq!(jwks::claim_at(&v, &dotted), Some(&leaf));
            // and the whole dotted path as one key is found first (namespaced claims)
            let mut m = serde_json::Map::new();
            m.insert(dotted.clone(), leaf.clone());
            m.insert("noise".into(), noise.clone());
            let flat = Value::Object(m);
            prop_assert_eq!(jwks::claim_at(&flat, &dotted), Some(&leaf));
            // any value, any path: an answer or none, never a panic
            let _ = jwks::claim_at(&noise, &path);
            let mut out = Vec::new();
            jwks::claims_at(&noise, &path, &mut out);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// the server log's redaction

fn log_ctx<'a>(names: &'a [(String, String)], message: &'a str, unknown: bool) -> log::Ctx<'a> {
    log::Ctx {
        sqlstate: "23505",
        schema: Some("public"),
        table: Some("users"),
        message,
        statement: message,
        registered: if unknown {
            log::Registered::Unknown
        } else {
            log::Registered::Known(names)
        },
    }
}

#[test]
fn log_redaction_scanner() {
    let jwt_part = "[A-Za-z0-9_-]{8,60}";
    let strategy = (
        any::<String>(),
        any::<String>(),
        (jwt_part, jwt_part, prop::option::of(jwt_part)),
        random_key_bytes(),
        prop::sample::select(vec![
            log::Field::Message,
            log::Field::Detail,
            log::Field::Hint,
            log::Field::Context,
            log::Field::InternalQuery,
            log::Field::Statement,
        ]),
        any::<bool>(),
        any::<String>(),
        prop::sample::select(vec![
            "",
            " ",
            "eyJ",
            "eyJabc",
            "eyJ.x",
            "wdn_",
            "wdn_abc",
            "x",
            "'",
            "=",
            "eyJhbGciOiJIUzI1NiJ9.",
        ]),
    );
    let names = vec![("public".to_owned(), "users".to_owned())];
    run(
        "log_redaction_scanner",
        strategy,
        |(before, after, (p1, p2, p3), random, field, unknown, junk, glue)| {
            // glued to what comes before: another token's beginning, a key's, a letter
            let before = format!("{before}{glue}");
            let token = match &p3 {
                Some(s) => format!("eyJ{p1}.{p2}.{s}"),
                None => format!("eyJ{p1}.{p2}"),
            };
            let key = keyfmt::mint(&random).plaintext;
            for text in [
                format!("{before}{token}{after}"),
                format!("{before}{key}{after}"),
                format!("{before} {token} and {key}{after}"),
            ] {
                let ctx = log_ctx(&names, &text, unknown);
                let out = log::redact(&text, field, &ctx).unwrap_or_else(|| text.clone());
                prop_assert!(!out.contains(&token), "the token survived: {}", out);
                prop_assert!(!out.contains(&key), "the key survived: {}", out);
            }
            let ctx = log_ctx(&names, &junk, unknown);
            let _ = log::redact(&junk, field, &ctx);
            Ok(())
        },
    );
}
