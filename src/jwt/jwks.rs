//! Identity providers' keys: a JWKS (RFC 7517) parsed into verification keys, and the signature
//! check of a token signed with one of them: RS256/RS384/RS512 and PS256 with RSA keys of at least
//! 2048 bits, ES256 (P-256, the raw 64-byte r||s signature of RFC 7518; a DER signature is refused),
//! EdDSA (Ed25519). The cryptography is ring's; nothing here computes a signature itself.
//!
//! The algorithm is the key's: its JWK `alg`, or the one its `kty`/`crv` implies (RSA keys without
//! `alg` are RS256). A token's header `alg` must be that algorithm; it never chooses one.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib jwt::jwks`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    ES256,
    EdDSA,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::ES256 => "ES256",
            Alg::EdDSA => "EdDSA",
        }
    }

    fn parse(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "ES256" => Alg::ES256,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    fn ring(self) -> &'static dyn VerificationAlgorithm {
        match self {
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Alg::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            Alg::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::EdDSA => &signature::ED25519,
        }
    }
}

/// One verification key.
#[derive(Debug, Clone)]
pub struct Key {
    pub kid: Option<String>,
    pub alg: Alg,
    /// The key in ring's form: an RSAPublicKey (DER), an uncompressed P-256 point, or 32 bytes.
    bytes: Vec<u8>,
}

impl Key {
    /// Whether `sig` is this key's signature over `message`.
    pub fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(self.alg.ring(), &self.bytes)
            .verify(message, sig)
            .is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS is not an object with a \"keys\" array")]
    NotAJwks,
    #[error("key {0}: {1}")]
    Malformed(String, String),
    #[error(
        "key {key}: an RSA key of {bits} bits is too weak; at least {MIN_RSA_BITS} are required"
    )]
    WeakRsa { key: String, bits: usize },
    #[error("the JWKS has no usable signing key (RSA, EC P-256 or Ed25519)")]
    NoUsableKey,
}

/// A parsed JWKS: its keys, and a note for each key it skipped.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    pub keys: Vec<Key>,
    /// The positions in the JWKS's `keys` of the keys kept (what warden stores).
    pub used: Vec<usize>,
    pub skipped: Vec<String>,
}

fn b64(v: Option<&Value>, what: &str, key: &str) -> Result<Vec<u8>, JwksError> {
    let s = v.and_then(Value::as_str).ok_or_else(|| {
        JwksError::Malformed(key.into(), format!("\"{what}\" is missing or not a string"))
    })?;
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| JwksError::Malformed(key.into(), format!("\"{what}\" is not base64url")))
}

/// DER of an RSAPublicKey (RFC 8017): SEQUENCE { INTEGER n, INTEGER e }.
fn rsa_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let b = n.to_be_bytes();
            let b: Vec<u8> = b.iter().copied().skip_while(|&x| x == 0).collect();
            out.push(0x80 | b.len() as u8);
            out.extend_from_slice(&b);
        }
    }
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        let v: Vec<u8> = v.iter().copied().skip_while(|&x| x == 0).collect();
        let pad = v.first().is_some_and(|&b| b & 0x80 != 0);
        out.push(0x02);
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(&v);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 16);
    int(&mut body, n);
    int(&mut body, e);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30);
    len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Parses a JWKS. Keys for encryption (`use: enc`) and of unsupported types are skipped (noted
/// in `skipped`); a malformed key, an RSA key under 2048 bits, or no usable key at all is an error.
pub fn parse(jwks: &Value) -> Result<Jwks, JwksError> {
    let list = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NotAJwks)?;
    let mut out = Jwks::default();
    for (i, k) in list.iter().enumerate() {
        let kid = k.get("kid").and_then(Value::as_str).map(str::to_owned);
        let name = kid
            .clone()
            .map_or_else(|| format!("#{i}"), |k| format!("\"{k}\""));
        if !k.is_object() {
            return Err(JwksError::Malformed(name, "not an object".into()));
        }
        if k.get("use").and_then(Value::as_str) == Some("enc") {
            out.skipped
                .push(format!("key {name}: for encryption (use: enc)"));
            continue;
        }
        let kty = k.get("kty").and_then(Value::as_str).unwrap_or("");
        let crv = k.get("crv").and_then(Value::as_str);
        let alg = match k.get("alg") {
            None => None,
            Some(a) => match a.as_str().and_then(Alg::parse) {
                Some(a) => Some(a),
                None => {
                    out.skipped
                        .push(format!("key {name}: algorithm {a} is not supported"));
                    continue;
                }
            },
        };
        let key = match (kty, crv) {
            ("RSA", _) => {
                let alg = alg.unwrap_or(Alg::RS256);
                if !matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256) {
                    return Err(JwksError::Malformed(
                        name,
                        format!("an RSA key cannot be {}", alg.as_str()),
                    ));
                }
                let n = b64(k.get("n"), "n", &name)?;
                let e = b64(k.get("e"), "e", &name)?;
                let n_bits = n.iter().skip_while(|&&b| b == 0).count() * 8;
                if n_bits < MIN_RSA_BITS {
                    return Err(JwksError::WeakRsa {
                        key: name,
                        bits: n_bits,
                    });
                }
                if e.is_empty() {
                    return Err(JwksError::Malformed(name, "\"e\" is empty".into()));
                }
                Key {
                    kid,
                    alg,
                    bytes: rsa_der(&n, &e),
                }
            }
            ("EC", Some("P-256")) => {
                if alg.is_some_and(|a| a != Alg::ES256) {
                    return Err(JwksError::Malformed(name, "a P-256 key is ES256".into()));
                }
                let x = b64(k.get("x"), "x", &name)?;
                let y = b64(k.get("y"), "y", &name)?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwksError::Malformed(
                        name,
                        "x and y of a P-256 key are 32 bytes each".into(),
                    ));
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Key {
                    kid,
                    alg: Alg::ES256,
                    bytes: point,
                }
            }
            ("OKP", Some("Ed25519")) => {
                if alg.is_some_and(|a| a != Alg::EdDSA) {
                    return Err(JwksError::Malformed(name, "an Ed25519 key is EdDSA".into()));
                }
                let x = b64(k.get("x"), "x", &name)?;
                if x.len() != 32 {
                    return Err(JwksError::Malformed(
                        name,
                        "x of an Ed25519 key is 32 bytes".into(),
                    ));
                }
                Key {
                    kid,
                    alg: Alg::EdDSA,
                    bytes: x,
                }
            }
            _ => {
                out.skipped.push(format!(
                    "key {name}: key type {kty}{} is not supported",
                    crv.map(|c| format!("/{c}")).unwrap_or_default()
                ));
                continue;
            }
        };
        out.keys.push(key);
        out.used.push(i);
    }
    if out.keys.is_empty() {
        return Err(JwksError::NoUsableKey);
    }
    Ok(out)
}

/// Why an asymmetric signature check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The header's `alg` is none of the issuer's keys' algorithms (HS256 and `none` included).
    Algorithm(String),
    /// No key with the header's `kid`.
    UnknownKid(String),
    /// No key verified the signature.
    BadSignature,
}

/// Checks a token's signature against the keys of its issuer: the key with the header's `kid`,
/// or, without `kid`, each key whose algorithm is the header's. The header's `alg` must be the
/// chosen key's algorithm.
pub fn verify_signature(
    keys: &[Key],
    header_alg: &str,
    kid: Option<&str>,
    message: &[u8],
    sig: &[u8],
) -> Result<Alg, SignatureError> {
    let alg = Alg::parse(header_alg)
        .filter(|a| keys.iter().any(|k| k.alg == *a))
        .ok_or_else(|| SignatureError::Algorithm(header_alg.to_owned()))?;
    match kid {
        Some(kid) => {
            let key = keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| SignatureError::UnknownKid(kid.to_owned()))?;
            if key.alg != alg {
                return Err(SignatureError::Algorithm(header_alg.to_owned()));
            }
            key.verifies(message, sig)
                .then_some(alg)
                .ok_or(SignatureError::BadSignature)
        }
        None => keys
            .iter()
            .filter(|k| k.alg == alg)
            .any(|k| k.verifies(message, sig))
            .then_some(alg)
            .ok_or(SignatureError::BadSignature),
    }
}

/// What `warden.register_issuer` was told about an issuer's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The token's `aud` (a string or an array) must contain one of these; empty: not checked.
    pub audience: Vec<String>,
    /// Dotted paths to the claims (a key containing dots is matched whole before it is split).
    pub tenant: String,
    pub actor: String,
    pub level: String,
    /// The provider's role → a warden level; when given, a role it does not map is refused.
    pub levels: Option<Vec<(String, String)>>,
    /// Seconds of clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: i64,
    /// A path to an object keyed by tenant (PropelAuth's `org_id_to_org_member_info`): the
    /// application names the tenant, and `level` is read inside its entry.
    pub orgs: Option<String>,
    /// MFA is proven when a value at this path (each element of an array, a step into an array
    /// applying to each element) equals one of these.
    pub mfa: Option<Mfa>,
    /// No admin level without proven MFA: such a token is refused.
    pub admin_requires_mfa: bool,
}

/// How an issuer's tokens prove a second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mfa {
    pub path: String,
    pub any_of: Vec<Value>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            audience: Vec::new(),
            tenant: "tenant_id".into(),
            actor: "sub".into(),
            level: "role".into(),
            levels: None,
            leeway: 30,
            orgs: None,
            mfa: None,
            admin_requires_mfa: false,
        }
    }
}

/// Largest leeway accepted, in seconds.
pub const MAX_LEEWAY: i64 = 300;

const LEVELS: [&str; 4] = ["read", "write", "delete", "admin"];

/// Parses an issuer's options; an unknown option or a wrong type is an error naming it.
pub fn parse_options(v: &Value) -> Result<Options, String> {
    let obj = v.as_object().ok_or("options must be a JSON object")?;
    let mut o = Options::default();
    for (k, val) in obj {
        match k.as_str() {
            "audience" => {
                o.audience = match val {
                    Value::String(s) if !s.is_empty() => vec![s.clone()],
                    Value::Array(a) if !a.is_empty() => a
                        .iter()
                        .map(|x| x.as_str().filter(|s| !s.is_empty()).map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or("audience must be a string or an array of strings")?,
                    _ => return Err("audience must be a non-empty string or array of strings".into()),
                }
            }
            "tenant" | "actor" | "level" => {
                let p = val
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| format!("{k} must be a claim path (a non-empty string)"))?
                    .to_owned();
                match k.as_str() {
                    "tenant" => o.tenant = p,
                    "actor" => o.actor = p,
                    _ => o.level = p,
                }
            }
            "levels" => {
                let m = val.as_object().ok_or("levels must be an object of provider role to warden level")?;
                let mut out = Vec::new();
                for (role, level) in m {
                    let level = level
                        .as_str()
                        .filter(|l| LEVELS.contains(l))
                        .ok_or_else(|| format!("levels: \"{role}\" must map to read, write, delete or admin"))?;
                    out.push((role.clone(), level.to_owned()));
                }
                o.levels = Some(out);
            }
            "leeway_seconds" => {
                o.leeway = val
                    .as_i64()
                    .filter(|l| (0..=MAX_LEEWAY).contains(l))
                    .ok_or_else(|| format!("leeway_seconds must be an integer from 0 to {MAX_LEEWAY}"))?;
            }
            "orgs" => {
                o.orgs = Some(
                    val.as_str()
                        .filter(|s| !s.is_empty())
                        .ok_or("orgs must be a claim path (a non-empty string) to an object keyed by tenant")?
                        .to_owned(),
                );
            }
            "mfa" => {
                let m = val
                    .as_object()
                    .ok_or(r#"mfa must be an object: {"path": "amr", "any_of": ["mfa"]}"#)?;
                let path = m
                    .get("path")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .ok_or("mfa.path must be a claim path (a non-empty string)")?
                    .to_owned();
                let any_of = match m.get("any_of") {
                    Some(Value::Array(a))
                        if !a.is_empty() && a.iter().all(|x| x.is_string() || x.is_number() || x.is_boolean()) =>
                    {
                        a.clone()
                    }
                    _ => return Err("mfa.any_of must be a non-empty array of strings, numbers or booleans".into()),
                };
                if let Some(k) = m.keys().find(|k| *k != "path" && *k != "any_of") {
                    return Err(format!("unknown mfa option \"{k}\" (path, any_of)"));
                }
                o.mfa = Some(Mfa { path, any_of });
            }
            "admin_requires_mfa" => {
                o.admin_requires_mfa = val.as_bool().ok_or("admin_requires_mfa must be true or false")?;
            }
            other => return Err(format!("unknown option \"{other}\" (audience, tenant, actor, level, levels, orgs, mfa, admin_requires_mfa, leeway_seconds)")),
        }
    }
    if o.admin_requires_mfa && o.mfa.is_none() {
        return Err(r#"admin_requires_mfa needs mfa: how the tokens prove a second factor ({"path": "amr", "any_of": ["mfa"]})"#.into());
    }
    Ok(o)
}

/// The value at a dotted claim path: the whole remaining path is tried as a key first (`https://example.test/role`), then each split at a dot from the left
/// (`o.id`, `app_metadata.org_id`).
pub fn claim_at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(path) {
        return Some(x);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(inner) = obj.get(&path[..i]) {
            if let Some(x) = claim_at(inner, &path[i + 1..]) {
                return Some(x);
            }
        }
    }
    None
}

/// Every value at a dotted path, a step into an array applying to each element, and an array at
/// the end contributing its elements (`amr` → `["pwd", "mfa"]`; `amr.method` →
/// `[{"method": "totp"}]`'s `"totp"`).
pub fn claims_at<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(a) => {
            for x in a {
                claims_at(x, path, out);
            }
        }
        Value::Object(obj) => {
            if let Some(x) = obj.get(path) {
                match x {
                    Value::Array(a) => out.extend(a.iter()),
                    x => out.push(x),
                }
                return;
            }
            for (i, _) in path.match_indices('.') {
                if let Some(inner) = obj.get(&path[..i]) {
                    let before = out.len();
                    claims_at(inner, &path[i + 1..], out);
                    if out.len() > before {
                        return;
                    }
                }
            }
        }
        _ => {}
    }
}

/// Whether the token proves a second factor by the issuer's `mfa` option (false without one).
pub fn mfa_proven(o: &Options, payload: &Value) -> bool {
    let Some(m) = &o.mfa else { return false };
    let mut found = Vec::new();
    claims_at(payload, &m.path, &mut found);
    found.iter().any(|v| m.any_of.contains(v))
}

/// The warden level of a role claim: a string is one role; an array (Keycloak's
/// `realm_access.roles`, Cognito's `cognito:groups`) grants the highest level any of its roles
/// maps to, roles that map to nothing being ignored. None: no role maps.
pub fn level_of_claim(o: &Options, v: &Value) -> Option<&'static str> {
    match v {
        Value::String(role) => level_of(o, role),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|r| level_of(o, r))
            .max_by_key(|l| LEVELS.iter().position(|x| x == l)),
        _ => None,
    }
}

/// The warden level of a provider's role, by the issuer's `levels` map (a role it does not map:
/// None) or, without one, the role itself when it names a level.
pub fn level_of(o: &Options, role: &str) -> Option<&'static str> {
    let mapped = match &o.levels {
        Some(m) => m.iter().find(|(r, _)| r == role).map(|(_, l)| l.as_str())?,
        None => role,
    };
    LEVELS.iter().copied().find(|l| *l == mapped)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    fn b(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn ec() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let p = kp.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b(&p[1..33]), "y": b(&p[33..65])});
        (kp, jwk)
    }

    fn ed() -> (Ed25519KeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let kp = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk =
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b(kp.public_key().as_ref())});
        (kp, jwk)
    }

    #[test]
    fn es256_and_eddsa_verify_and_nothing_else_does() {
        let (eck, ecj) = ec();
        let (edk, edj) = ed();
        let set = parse(&json!({"keys": [ecj, edj]})).unwrap();
        assert_eq!(set.keys.len(), 2);
        let rng = SystemRandom::new();
        let msg = b"header.payload";
        let sig = eck.sign(&rng, msg).unwrap();
        assert_eq!(sig.as_ref().len(), 64, "raw r||s");
        assert_eq!(
            verify_signature(&set.keys, "ES256", Some("ec1"), msg, sig.as_ref()),
            Ok(Alg::ES256)
        );
        assert_eq!(
            verify_signature(&set.keys, "ES256", None, msg, sig.as_ref()),
            Ok(Alg::ES256),
            "no kid: every ES256 key is tried"
        );
        assert_eq!(
            verify_signature(
                &set.keys,
                "ES256",
                Some("ec1"),
                b"header.other",
                sig.as_ref()
            ),
            Err(SignatureError::BadSignature)
        );
        // the key decides the algorithm: the EC key's kid with EdDSA in the header is refused
        assert_eq!(
            verify_signature(&set.keys, "EdDSA", Some("ec1"), msg, sig.as_ref()),
            Err(SignatureError::Algorithm("EdDSA".into()))
        );
        for alg in ["HS256", "none", "RS256", "ES384", ""] {
            assert_eq!(
                verify_signature(&set.keys, alg, None, msg, sig.as_ref()),
                Err(SignatureError::Algorithm(alg.into())),
                "{alg}"
            );
        }
        assert_eq!(
            verify_signature(&set.keys, "ES256", Some("nope"), msg, sig.as_ref()),
            Err(SignatureError::UnknownKid("nope".into()))
        );
        let esig = edk.sign(msg);
        assert_eq!(
            verify_signature(&set.keys, "EdDSA", Some("ed1"), msg, esig.as_ref()),
            Ok(Alg::EdDSA)
        );
        assert_eq!(
            verify_signature(&set.keys, "EdDSA", Some("ed1"), b"x", esig.as_ref()),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_der_es256_signature_is_refused() {
        let (eck, ecj) = ec();
        let set = parse(&json!({"keys": [ecj]})).unwrap();
        let rng = SystemRandom::new();
        let der_kp = {
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .unwrap();
            EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .unwrap()
        };
        let _ = eck;
        let sig = der_kp.sign(&rng, b"m").unwrap();
        assert_ne!(sig.as_ref().len(), 64);
        assert_eq!(
            verify_signature(&set.keys, "ES256", None, b"m", sig.as_ref()),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn registration_refuses_weak_malformed_and_empty_sets_and_skips_what_it_cannot_use() {
        let (_, ecj) = ec();
        // a 1024-bit modulus
        let weak = json!({"kty": "RSA", "kid": "w", "n": b(&[0xc3; 128]), "e": "AQAB"});
        assert_eq!(
            parse(&json!({"keys": [weak]})).unwrap_err(),
            JwksError::WeakRsa {
                key: "\"w\"".into(),
                bits: 1024
            }
        );
        let strong = json!({"kty": "RSA", "kid": "s", "n": b(&[0xc3; 256]), "e": "AQAB"});
        let set = parse(&json!({"keys": [strong.clone(), {"kty": "RSA", "use": "enc", "n": "x", "e": "AQAB"},
                                         {"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}, {"kty": "oct", "k": "c2VjcmV0"}]})).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(
            set.keys[0].alg,
            Alg::RS256,
            "an RSA key without alg is RS256"
        );
        assert_eq!(set.skipped.len(), 3, "{:?}", set.skipped);
        assert_eq!(
            parse(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).unwrap_err(),
            JwksError::NoUsableKey
        );
        assert_eq!(
            parse(&json!({"keys": []})).unwrap_err(),
            JwksError::NoUsableKey
        );
        assert_eq!(parse(&json!([ecj])).unwrap_err(), JwksError::NotAJwks);
        assert!(matches!(
            parse(&json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}]})),
            Err(JwksError::Malformed(..))
        ));
        assert!(matches!(
            parse(
                &json!({"keys": [{"kty": "RSA", "alg": "ES256", "n": b(&[1; 256]), "e": "AQAB"}]})
            ),
            Err(JwksError::Malformed(..))
        ));
    }

    #[test]
    fn the_rsa_der_encoding_is_what_ring_reads() {
        // DER lengths: a 2048-bit modulus with its top bit set needs a leading zero and a
        // two-byte length
        let der = rsa_der(&[0x80; 256], &[1, 0, 1]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..8], &[0x02, 0x82, 0x01, 0x01]);
        assert_eq!(der[8], 0);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 1, 0, 1]);
    }

    /// A 2048-bit RSA key made for these tests only (PKCS#8, base64), so that RS256 and PS256 are
    /// checked with real signatures (ring does not generate RSA keys).
    pub(crate) const TEST_RSA_PKCS8: &str = "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCTI5WZ/vvrXjrdosD1CacgiKh8uMCwYIAcpz+NZtN6ZC+wLzcQD8x9iKWT57CY4ytFvbGSokb4lf/uz8J+02+9Ed88cLVmEKasMSOxVOwyoNvnQ5A+Dw0Uw3wePZvCgZZVllbON4ZtFJbNupk3LonxmO9bAEZKe9NjGlhA40060zObLvNpJJ4F8GJALn4UfQJvGVVxAPH3biLeJv84TEDMuhaCh5W4pzUaIM0Jg9qP9abEItAwueIWazuG5kq0gNCof4c7b2at3jP8XU5fJWz9yoQYcpPB9paIz7ElNLfnkSldHIETegGkTk6NHPaxAV7U2+vBEJiVTV2GmnqmVKbLAgMBAAECggEAAPA/KgZIUQ3+zh8Vn/p5yGlWucTr5bQX3Rbr/tjjDGrLKxKCBWY0ZbCTbcgShkccpYs6MLc8QKWkRj+o++oZUllk1Rva7FW62mpN0fm6r+/6txTlPKAX80Pz7LVz4t+0t8MHtrT/9H4nIBTKmWGAm7vf+vKbgCoeBQnL+k341iE0PmJlfpk68V7ocCK0CO3T6NXG0ypPQ+OSKUJABDhGkXplHKLQczwPfNpAhyM96Knn9FIwmWmZhI5LCXQK6bqP31YVKRD/qCBzS/PnWXVdcdtX6DHplmCjInMPj9AI+r0XYz8B2p3Tx3v1R3PxylRgj6rXgnyGUVu495LA2dYCEQKBgQDMkW3URY+Uh33U2LnujHtBDoH3JKz0xZRzXvBHs6bLxi10zlI24mtrgaRmf5OGl3HWGXXdMrN9iDAYTpwQbOSvi3sVM7+MfgDyzY2ybUPazo7rT4fa5AkiY8J56nnBJ9LgMz5I6Nw3Wy+wZgWUYpoq7NDycQMWyMgoEZzFIJA0NwKBgQC4Idwkp2zlmrYJs+x+m7BmVIjgyJIxvjMSND6Cj33HPk3NKxEvCV2kSkDCx1LnA6b1RiWmEYBPoyt2qsR9ycTLbxyji+BnlXa3v9YpMly7FQcSVKnvzxdmAWkTLEdXCmrqpB09S+IkH6Jv98vnpn3uD5rJ9CppX3s142bJ/A4ADQKBgCVs/eD2EPylhTnppKql/O68Dr7+cL4fX7dzyRX1IjDpwus5zATKi8iRYVh3QrA/CM6Yvd2IJxpyTgpEZ30BzxzmsdABNawoaVgCj0fzgZSIcdFPLZW4XotyIORZJ4lVFdl6xoxkPdXK0wC8yYyKNZZg2SFh16TVevkJr9rIyFklAoGARe+2acWduue0VKMeJEiGC5f4FUiZHoObakKlq3lM0Kx9aHv/Htpz0r7RMin69vuQIoDuM9FZ5uWW0I+z6gME2C/vtL6gETfXy5r1gNg8GGK4OOInWYpS3M+UVU/wGMNAMLb81BdKYWYSkGyR6f52vkD3DdXLdhJp/eHNXNJ7jtECgYBLjri83oeaLzlTgVF/Er/dFiBZi0hZMCJ1ih6SiJs2ZQWdZGBhPjcmZ+/rG7Skmf1APUpOHVPvLTdoPBVeUMpQ9R0U94BCTMG4JCfU+JP2kUmwjVlP/hGUrqT434bZGojNxze8mbtn8sQ4H5RpPxemTcZOy/mCxLU1hpO0QjiExw==";

    /// The test RSA key pair and its JWK (kid r1); also the fuzz targets' RSA signer.
    pub(crate) fn rsa() -> (signature::RsaKeyPair, Value) {
        let der = base64::engine::general_purpose::STANDARD
            .decode(TEST_RSA_PKCS8)
            .unwrap();
        let kp = signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let c = signature::RsaPublicKeyComponents::<Vec<u8>>::from(kp.public());
        let jwk = json!({"kty": "RSA", "kid": "r1", "n": b(&c.n), "e": b(&c.e)});
        (kp, jwk)
    }

    #[test]
    fn rs256_and_ps256_verify_with_the_key_of_the_kid() {
        let rng = SystemRandom::new();
        let (kp, jwk) = rsa();
        let mut ps = jwk.clone();
        ps["kid"] = "r2".into();
        ps["alg"] = "PS256".into();
        let set = parse(&json!({"keys": [jwk, ps]})).unwrap();
        let msg = b"h.p";
        let mut sig = vec![0u8; kp.public().modulus_len()];
        kp.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
            .unwrap();
        assert_eq!(
            verify_signature(&set.keys, "RS256", Some("r1"), msg, &sig),
            Ok(Alg::RS256)
        );
        assert_eq!(
            verify_signature(&set.keys, "RS256", None, msg, &sig),
            Ok(Alg::RS256)
        );
        // the same key registered as PS256 does not take an RS256 token, nor the reverse
        assert_eq!(
            verify_signature(&set.keys, "RS256", Some("r2"), msg, &sig),
            Err(SignatureError::Algorithm("RS256".into()))
        );
        let mut pss = vec![0u8; kp.public().modulus_len()];
        kp.sign(&signature::RSA_PSS_SHA256, &rng, msg, &mut pss)
            .unwrap();
        assert_eq!(
            verify_signature(&set.keys, "PS256", Some("r2"), msg, &pss),
            Ok(Alg::PS256)
        );
        assert_eq!(
            verify_signature(&set.keys, "PS256", Some("r1"), msg, &pss),
            Err(SignatureError::Algorithm("PS256".into()))
        );
        let mut tampered = sig.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verify_signature(&set.keys, "RS256", Some("r1"), msg, &tampered),
            Err(SignatureError::BadSignature)
        );
        // HS256 with the public key's bytes as the secret: never an RSA issuer's algorithm
        assert_eq!(
            verify_signature(&set.keys, "HS256", Some("r1"), msg, &sig),
            Err(SignatureError::Algorithm("HS256".into()))
        );
    }

    #[test]
    fn claim_paths_match_whole_keys_before_splitting() {
        let v = json!({
            "o": {"id": "org_2abc", "rol": "admin"},
            "https://example.test/role": "member",
            "app_metadata": {"org_id": 42, "a.b": {"c": true}},
            "realm_access": {"roles": ["admin"]},
            "dotted.key": "whole"
        });
        assert_eq!(claim_at(&v, "o.id"), Some(&json!("org_2abc")));
        assert_eq!(
            claim_at(&v, "https://example.test/role"),
            Some(&json!("member"))
        );
        assert_eq!(claim_at(&v, "app_metadata.org_id"), Some(&json!(42)));
        assert_eq!(claim_at(&v, "app_metadata.a.b.c"), Some(&json!(true)));
        assert_eq!(claim_at(&v, "dotted.key"), Some(&json!("whole")));
        assert_eq!(claim_at(&v, "o.nope"), None);
        assert_eq!(claim_at(&v, "realm_access.roles"), Some(&json!(["admin"])));
    }

    #[test]
    fn options_are_checked_and_levels_map_provider_roles() {
        let o = parse_options(&json!({"audience": ["api", "web"], "tenant": "o.id", "level": "o.rol",
                                      "levels": {"admin": "admin", "member": "write"}, "leeway_seconds": 60})).unwrap();
        assert_eq!(o.audience, ["api", "web"]);
        assert_eq!(o.leeway, 60);
        assert_eq!(level_of(&o, "member"), Some("write"));
        assert_eq!(level_of(&o, "admin"), Some("admin"));
        assert_eq!(
            level_of(&o, "guest"),
            None,
            "a role the map does not name is refused"
        );
        assert_eq!(level_of(&Options::default(), "read"), Some("read"));
        assert_eq!(level_of(&Options::default(), "org:admin"), None);
        for bad in [
            json!([]),
            json!({"audience": 1}),
            json!({"audience": []}),
            json!({"tenant": ""}),
            json!({"levels": {"x": "root"}}),
            json!({"leeway_seconds": 301}),
            json!({"leeway_seconds": -1}),
            json!({"mystery": true}),
        ] {
            assert!(parse_options(&bad).is_err(), "{bad}");
        }
        assert_eq!(parse_options(&json!({})).unwrap(), Options::default());
    }
}
