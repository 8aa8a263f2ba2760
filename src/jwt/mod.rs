//! HS256 JSON Web Tokens (RFC 7519 over RFC 7515 compact serialization): verification and minting.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib jwt`. The order of the checks is a
//! security property: the header's algorithm is checked before anything else is trusted, the
//! signature before the payload is parsed, and the payload's times before its claims are used.
//!
//! Floor 2, authentication: uses the ground and `scope`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::Sha256;

use crate::scope::{self, Scope};
use crate::types::level::Level;
pub mod jwks;

use crate::types::ident::Ident;

type HmacSha256 = Hmac<Sha256>;

/// RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
pub const MIN_SECRET_LEN: usize = 32;
/// Longer tokens are refused before any decoding work is done.
pub const MAX_TOKEN_LEN: usize = 8192;

/// The scopes of a context that came from an API key (shared, never copied per read).
pub type Scopes = std::rc::Rc<[Scope]>;

/// The claims warden acts on, after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// `tenant_id`: a string or an integer (see `ident`).
    pub tenant: Ident,
    /// `sub`: a string or an integer.
    pub actor: Ident,
    pub level: Level,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Not-before, seconds since the Unix epoch.
    pub nbf: Option<i64>,
    /// Issued-at, seconds since the Unix epoch (what `warden.delete_account` and the deleted-account
    /// check compare against).
    pub iat: Option<i64>,
    /// `warden_scopes`: the scopes of an API key context (`warden.authenticate_key`), which
    /// restrict the tables protected with a namespace and resource type. None: no restriction
    /// beyond the level.
    pub scopes: Option<Scopes>,
}

/// The claim that carries an API key's scopes (not `scope`, which OAuth servers fill with their
/// own vocabulary).
pub const SCOPES_CLAIM: &str = "warden_scopes";

/// What the verifier checks a token against.
#[derive(Clone, Copy)]
pub struct Expectations<'a> {
    pub key: &'a Key,
    /// When set, `aud` must be this string or an array containing it.
    pub audience: Option<&'a str>,
    /// When set, `iss` must equal it.
    pub issuer: Option<&'a str>,
    /// Seconds of clock skew tolerated on `exp` and `nbf`.
    pub leeway: i64,
    /// The current time, seconds since the Unix epoch.
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("warden.jwt_secret is not set")]
    NoSecret,
    #[error("warden.jwt_secret is {0} bytes long; HS256 needs at least {MIN_SECRET_LEN}")]
    WeakSecret(usize),
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token algorithm \"{0}\" is not accepted; only HS256 is")]
    Algorithm(String),
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token expired at {0} (Unix time)")]
    Expired(i64),
    #[error("token is not valid before {0} (Unix time)")]
    NotYetValid(i64),
    #[error("token has no \"{0}\" claim")]
    MissingClaim(&'static str),
    #[error("token claim \"{claim}\" is invalid: {reason}")]
    InvalidClaim { claim: &'static str, reason: String },
    #[error("token audience does not include \"{0}\"")]
    Audience(String),
    #[error("token issuer is not \"{0}\"")]
    Issuer(String),
    #[error("token is no longer accepted: {0}")]
    Revoked(String),
    #[error("token issuer \"{0}\" is not registered (warden.register_issuer)")]
    UnknownIssuer(String),
    #[error("token is signed with {0} but names no issuer (iss)")]
    NoIssuer(String),
    #[error("issuer \"{issuer}\" does not sign with {alg}")]
    IssuerAlgorithm { issuer: String, alg: String },
    #[error("issuer \"{issuer}\" has no key \"{kid}\"")]
    UnknownKid { issuer: String, kid: String },
    #[error("token has no claim at \"{0}\"")]
    MissingPath(String),
    #[error("token claim at \"{path}\" is invalid: {reason}")]
    InvalidPath { path: String, reason: String },
    #[error("token role \"{role}\" maps to no warden level for issuer \"{issuer}\"")]
    Role { issuer: String, role: String },
    #[error("tokens of issuer \"{0}\" name several organizations: the tenant must be chosen")]
    NoTenant(String),
    #[error("token does not grant tenant \"{0}\"")]
    NotInToken(String),
    #[error("issuer \"{0}\" requires MFA for the admin level and this token does not prove a second factor")]
    Mfa(String),
}

impl JwtError {
    /// True when the server, not the token, is at fault (no usable secret).
    pub fn is_configuration(&self) -> bool {
        matches!(self, JwtError::NoSecret | JwtError::WeakSecret(_))
    }
}

/// An HS256 key: the HMAC state with the secret already absorbed, so each token costs only the
/// hashing of its own bytes.
#[derive(Clone)]
pub struct Key(HmacSha256);

impl Key {
    pub fn new(secret: &[u8]) -> Result<Key, JwtError> {
        check_secret(secret)?;
        // HMAC accepts keys of any length; this cannot fail.
        Ok(Key(
            HmacSha256::new_from_slice(secret).expect("HMAC accepts any key length")
        ))
    }

    fn mac(&self, h64: &str, p64: &str) -> HmacSha256 {
        let mut m = self.0.clone();
        m.update(h64.as_bytes());
        m.update(b".");
        m.update(p64.as_bytes());
        m
    }
}

/// Headers that standard libraries emit for HS256 (ours and jsonwebtoken's default): recognised
/// without decoding. Any other header takes the general path.
const KNOWN_HS256_HEADERS: [&str; 2] = [
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", // {"alg":"HS256","typ":"JWT"}
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9", // {"typ":"JWT","alg":"HS256"}
];

fn check_secret(secret: &[u8]) -> Result<(), JwtError> {
    match secret.len() {
        0 => Err(JwtError::NoSecret),
        n if n < MIN_SECRET_LEN => Err(JwtError::WeakSecret(n)),
        _ => Ok(()),
    }
}

fn decode_part(part: &str, what: &'static str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(what))
}

/// The JOSE header fields warden looks at; everything else is ignored.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<&'a RawValue>,
    crit: Option<&'a RawValue>,
}

/// The registered and warden claims, borrowed from the decoded payload and typed one by one, so
/// that a wrong type names its claim. Unknown claims are skipped; a duplicated claim is refused.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    exp: Option<&'a RawValue>,
    nbf: Option<&'a RawValue>,
    iat: Option<&'a RawValue>,
    aud: Option<&'a RawValue>,
    iss: Option<&'a RawValue>,
    tenant_id: Option<&'a RawValue>,
    sub: Option<&'a RawValue>,
    role: Option<&'a RawValue>,
    warden_scopes: Option<&'a RawValue>,
}

/// What an unverified token claims to be: its `tenant_id` and `sub`, when its payload parses (for
/// the audit event of a failed authentication; nothing else may trust them). Each at most 64
/// characters.
pub fn claimed_identity(token: &str) -> (Option<String>, Option<String>) {
    if token.len() > MAX_TOKEN_LEN {
        return (None, None);
    }
    let mut parts = token.split('.');
    // (a fourth part is the carrier's chosen tenant)
    let (Some(_), Some(p64), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
        return (None, None);
    };
    let Ok(json) = decode_part(p64, "") else {
        return (None, None);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return (None, None);
    };
    let get = |k: &str| {
        v.get(k)
            .and_then(|x| match x {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                _ => None,
            })
            .map(|s| {
                s.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
    };
    (get("tenant_id"), get("sub"))
}

/// Verifies an HS256 token and returns its warden claims.
pub fn verify(token: &str, expect: &Expectations<'_>) -> Result<Claims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("longer than 8192 bytes"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };

    // 1. The header decides whether we even try: only HS256, no extensions we do not understand.
    if !KNOWN_HS256_HEADERS.contains(&h64) {
        check_header(h64)?;
    }

    // 2. The signature, compared in constant time (`verify_slice`), over the exact bytes received.
    let mut signature = [0u8; 32];
    let len = URL_SAFE_NO_PAD
        .decode_slice(s64, &mut signature)
        .map_err(|e| match e {
            base64::DecodeSliceError::OutputSliceTooSmall => JwtError::BadSignature,
            base64::DecodeSliceError::DecodeError(_) => {
                JwtError::Malformed("signature is not base64url")
            }
        })?;
    expect
        .key
        .mac(h64, p64)
        .verify_slice(&signature[..len])
        .map_err(|_| JwtError::BadSignature)?;

    // 3. Only now is the payload trusted enough to parse.
    let payload_json = decode_part(p64, "payload is not base64url")?;
    let payload: Payload<'_> = serde_json::from_slice(&payload_json)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;

    let exp = numeric_date(payload.exp, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    let nbf = numeric_date(payload.nbf, "nbf")?;
    let iat = numeric_date(payload.iat, "iat")?;
    check_time(exp, nbf, expect.now, expect.leeway)?;
    if let Some(want) = expect.audience {
        let ok =
            payload.aud.is_some_and(
                |aud| match serde_json::from_str::<Audience<'_>>(aud.get()) {
                    Ok(Audience::One(a)) => a == want,
                    Ok(Audience::Many(list)) => list.iter().any(|a| a == want),
                    Err(_) => false,
                },
            );
        if !ok {
            return Err(JwtError::Audience(want.to_string()));
        }
    }
    if let Some(want) = expect.issuer {
        let iss = payload
            .iss
            .and_then(|i| serde_json::from_str::<Cow<'_, str>>(i.get()).ok());
        if iss.as_deref() != Some(want) {
            return Err(JwtError::Issuer(want.to_string()));
        }
    }

    let tenant = ident_claim(payload.tenant_id, "tenant_id")?;
    let actor = ident_claim(payload.sub, "sub")?;
    let role = string_claim(payload.role, "role")?;
    let level = role.parse::<Level>().map_err(|e| JwtError::InvalidClaim {
        claim: "role",
        reason: format!("{e}; expected read, write, delete or admin"),
    })?;
    let scopes = match payload.warden_scopes {
        None => None,
        Some(raw) => {
            let list: Vec<Cow<'_, str>> = serde_json::from_str(raw.get())
                .map_err(|_| invalid(SCOPES_CLAIM, "not an array of strings"))?;
            let parsed = scope::parse_all(&list).map_err(|e| JwtError::InvalidClaim {
                claim: SCOPES_CLAIM,
                reason: e.to_string(),
            })?;
            Some(Scopes::from(parsed))
        }
    };
    Ok(Claims {
        tenant,
        actor,
        level,
        exp,
        nbf,
        iat,
        scopes,
    })
}

/// `exp` and `nbf` against `now`, with `leeway` seconds of tolerance.
fn check_time(exp: i64, nbf: Option<i64>, now: i64, leeway: i64) -> Result<(), JwtError> {
    if now >= exp.saturating_add(leeway) {
        return Err(JwtError::Expired(exp));
    }
    match nbf {
        Some(nbf) if now.saturating_add(leeway) < nbf => Err(JwtError::NotYetValid(nbf)),
        _ => Ok(()),
    }
}

impl Claims {
    /// Whether verified claims are still within their validity window at `now`.
    pub fn valid_at(&self, now: i64, leeway: i64) -> bool {
        check_time(self.exp, self.nbf, now, leeway).is_ok()
    }
}

fn check_header(h64: &str) -> Result<(), JwtError> {
    let header_json = decode_part(h64, "header is not base64url")?;
    let header: Header<'_> = serde_json::from_slice(&header_json)
        .map_err(|_| JwtError::Malformed("header is not a JSON object"))?;
    let alg = header
        .alg
        .ok_or(JwtError::Malformed("header has no \"alg\""))?;
    match serde_json::from_str::<Cow<'_, str>>(alg.get()) {
        Ok(alg) if alg == "HS256" => {}
        Ok(alg) => return Err(JwtError::Algorithm(alg.into_owned())),
        Err(_) => return Err(JwtError::Malformed("header \"alg\" is not a string")),
    }
    if header.crit.is_some() {
        return Err(JwtError::Malformed(
            "header \"crit\" extensions are not supported",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience<'a> {
    #[serde(borrow)]
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

fn invalid(claim: &'static str, reason: &str) -> JwtError {
    JwtError::InvalidClaim {
        claim,
        reason: reason.to_string(),
    }
}

/// RFC 7519 NumericDate: seconds since the epoch, possibly fractional.
fn numeric_date(raw: Option<&RawValue>, claim: &'static str) -> Result<Option<i64>, JwtError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(n) = serde_json::from_str::<i64>(raw.get()) {
        return Ok(Some(n));
    }
    match serde_json::from_str::<f64>(raw.get()) {
        Ok(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
        Ok(_) => Err(invalid(claim, "not a NumericDate")),
        Err(_) => Err(invalid(claim, "not a number")),
    }
}

fn string_claim<'a>(
    raw: Option<&'a RawValue>,
    claim: &'static str,
) -> Result<Cow<'a, str>, JwtError> {
    let raw = raw.ok_or(JwtError::MissingClaim(claim))?;
    serde_json::from_str::<Cow<'a, str>>(raw.get()).map_err(|_| invalid(claim, "not a string"))
}

/// An identifier claim: a JSON string or integer, validated (see `ident`).
fn ident_claim(raw: Option<&RawValue>, claim: &'static str) -> Result<Ident, JwtError> {
    let raw = raw.ok_or(JwtError::MissingClaim(claim))?;
    let v: Value = serde_json::from_str(raw.get()).map_err(|_| invalid(claim, "not JSON"))?;
    Ident::from_json(&v).map_err(|e| invalid(claim, &format!("the identifier {e}")))
}

/// What an unverified token says about itself: the header's `alg` and `kid`, the payload's
/// `iss`. Only to choose how to verify it; nothing here is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peek {
    pub alg: String,
    pub kid: Option<String>,
    pub iss: Option<String>,
}

/// Whether `alg` is one of the asymmetric algorithms registered issuers sign with.
pub fn is_asymmetric(alg: &str) -> bool {
    matches!(
        alg,
        "RS256" | "RS384" | "RS512" | "PS256" | "ES256" | "EdDSA"
    )
}

/// The header and issuer of a token, before any verification.
pub fn peek(token: &str) -> Result<Peek, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed("longer than 8192 bytes"));
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    if KNOWN_HS256_HEADERS.contains(&h64) {
        // warden's own and jsonwebtoken's HS256 header; the issuer matters only to refuse an
        // HS256 token that claims an asymmetric issuer
        let iss = decode_part(p64, "payload is not base64url")
            .ok()
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .and_then(|v| v.get("iss").and_then(Value::as_str).map(str::to_owned));
        return Ok(Peek {
            alg: "HS256".into(),
            kid: None,
            iss,
        });
    }
    let header: Value = serde_json::from_slice(&decode_part(h64, "header is not base64url")?)
        .map_err(|_| JwtError::Malformed("header is not a JSON object"))?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed("header has no \"alg\""))?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    let iss = decode_part(p64, "payload is not base64url")
        .ok()
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .and_then(|v| v.get("iss").and_then(Value::as_str).map(str::to_owned));
    Ok(Peek { alg, kid, iss })
}

fn num(v: &Value, claim: &'static str) -> Result<Option<i64>, JwtError> {
    match v.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
            _ => Err(invalid(claim, "not a NumericDate")),
        },
        Some(_) => Err(invalid(claim, "not a number")),
    }
}

fn ident_at(v: &Value, path: &str) -> Result<Ident, JwtError> {
    let x = crate::jwt::jwks::claim_at(v, path)
        .ok_or_else(|| JwtError::MissingPath(path.to_owned()))?;
    Ident::from_json(x).map_err(|e| JwtError::InvalidPath {
        path: path.to_owned(),
        reason: format!("the identifier {e}"),
    })
}

/// Verifies a token of a registered issuer (asymmetric keys): the signature by the issuer's key
/// (the algorithm is the key's), then the validity window with the issuer's leeway, the audience,
/// and the claims at the issuer's paths.
pub fn verify_issued(
    token: &str,
    issuer: &str,
    keys: &[crate::jwt::jwks::Key],
    o: &crate::jwt::jwks::Options,
    now: i64,
    chosen: Option<&str>,
) -> Result<Claims, JwtError> {
    use crate::jwt::jwks::SignatureError;
    let peek = peek(token)?;
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("expected three dot-separated parts"));
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| JwtError::Malformed("signature is not base64url"))?;
    let message = format!("{h64}.{p64}");
    crate::jwt::jwks::verify_signature(
        keys,
        &peek.alg,
        peek.kid.as_deref(),
        message.as_bytes(),
        &sig,
    )
    .map_err(|e| match e {
        SignatureError::Algorithm(alg) => JwtError::IssuerAlgorithm {
            issuer: issuer.to_owned(),
            alg,
        },
        SignatureError::UnknownKid(kid) => JwtError::UnknownKid {
            issuer: issuer.to_owned(),
            kid,
        },
        SignatureError::BadSignature => JwtError::BadSignature,
    })?;
    let payload: Value = serde_json::from_slice(&decode_part(p64, "payload is not base64url")?)
        .map_err(|_| JwtError::Malformed("payload is not a JSON object"))?;
    if !payload.is_object() {
        return Err(JwtError::Malformed("payload is not a JSON object"));
    }
    let exp = num(&payload, "exp")?.ok_or(JwtError::MissingClaim("exp"))?;
    let nbf = num(&payload, "nbf")?;
    let iat = num(&payload, "iat")?;
    check_time(exp, nbf, now, o.leeway)?;
    if let Some(i) = iat {
        if i > now.saturating_add(o.leeway) {
            return Err(JwtError::NotYetValid(i));
        }
    }
    if !o.audience.is_empty() {
        let ok = match payload.get("aud") {
            Some(Value::String(a)) => o.audience.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| o.audience.iter().any(|w| w == a)),
            // a token without `aud` (Cognito's access tokens) is for the application its
            // `client_id` names; without either it is for nobody in particular: refused
            None => payload
                .get("client_id")
                .and_then(Value::as_str)
                .is_some_and(|c| o.audience.iter().any(|w| w == c)),
            _ => false,
        };
        if !ok {
            return Err(JwtError::Audience(o.audience.join("\" or \"")));
        }
    }
    let (tenant, entry) = match &o.orgs {
        Some(orgs) => {
            let chosen = chosen.ok_or_else(|| JwtError::NoTenant(issuer.to_owned()))?;
            let map = crate::jwt::jwks::claim_at(&payload, orgs)
                .ok_or_else(|| JwtError::MissingPath(orgs.clone()))?
                .as_object()
                .ok_or_else(|| JwtError::InvalidPath {
                    path: orgs.clone(),
                    reason: "not an object keyed by tenant".into(),
                })?;
            let entry = map
                .get(chosen)
                .ok_or_else(|| JwtError::NotInToken(chosen.chars().take(255).collect()))?;
            let tenant = Ident::parse(chosen).map_err(|e| JwtError::InvalidPath {
                path: orgs.clone(),
                reason: format!("the tenant {e}"),
            })?;
            (tenant, entry)
        }
        None => {
            let tenant = ident_at(&payload, &o.tenant)?;
            if let Some(c) = chosen {
                if c != tenant.as_str() {
                    return Err(JwtError::NotInToken(c.chars().take(255).collect()));
                }
            }
            (tenant, &payload)
        }
    };
    let actor = ident_at(&payload, &o.actor)?;
    let role = crate::jwt::jwks::claim_at(entry, &o.level)
        .ok_or_else(|| JwtError::MissingPath(o.level.clone()))?;
    if !(role.is_string() || role.is_array()) {
        return Err(JwtError::InvalidPath {
            path: o.level.clone(),
            reason: "not a string or an array of strings".into(),
        });
    }
    let level = crate::jwt::jwks::level_of_claim(o, role)
        .ok_or_else(|| JwtError::Role {
            issuer: issuer.to_owned(),
            role: match role {
                Value::String(r) => r.chars().take(64).collect(),
                other => other.to_string().chars().take(64).collect(),
            },
        })?
        .parse::<Level>()
        .map_err(|e| invalid("role", &e.to_string()))?;
    if level == Level::Admin && o.admin_requires_mfa && !crate::jwt::jwks::mfa_proven(o, &payload) {
        return Err(JwtError::Mfa(issuer.to_owned()));
    }
    Ok(Claims {
        tenant,
        actor,
        level,
        exp,
        nbf,
        iat,
        scopes: None,
    })
}

/// Mints an HS256 token carrying `claims`, issued at `iat` by `issuer`, for `audience` if any.
pub fn sign(claims: &Claims, iat: i64, issuer: &str, audience: Option<&str>, key: &Key) -> String {
    // Every value is a level name, a number or a JSON-escaped string: built directly.
    let issuer = Value::from(issuer);
    let aud = audience
        .map(|a| format!(r#","aud":{}"#, Value::from(a)))
        .unwrap_or_default();
    let nbf = claims
        .nbf
        .map(|n| format!(r#","nbf":{n}"#))
        .unwrap_or_default();
    let scopes = claims
        .scopes
        .as_ref()
        .map(|list| {
            let list: Vec<Value> = list.iter().map(|s| Value::from(s.to_string())).collect();
            format!(r#","{SCOPES_CLAIM}":{}"#, Value::from(list))
        })
        .unwrap_or_default();
    let payload = format!(
        r#"{{"iss":{issuer}{aud},"sub":{},"tenant_id":{},"role":"{}","iat":{iat},"exp":{}{nbf}{scopes}}}"#,
        Value::from(claims.actor.as_str()),
        Value::from(claims.tenant.as_str()),
        claims.level.as_str(),
        claims.exp
    );
    let h64 = KNOWN_HS256_HEADERS[0];
    let p64 = URL_SAFE_NO_PAD.encode(payload);
    let s64 = URL_SAFE_NO_PAD.encode(key.mac(h64, &p64).finalize().into_bytes());
    format!("{h64}.{p64}.{s64}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";
    const NOW: i64 = 1_800_000_000;

    static KEY: std::sync::LazyLock<Key> = std::sync::LazyLock::new(|| Key::new(SECRET).unwrap());

    fn expect() -> Expectations<'static> {
        Expectations {
            key: &KEY,
            audience: None,
            issuer: None,
            leeway: 0,
            now: NOW,
        }
    }

    fn claims() -> Claims {
        Claims {
            tenant: Ident::from_uuid(&Uuid::from_u128(0xA)),
            actor: Ident::from_uuid(&Uuid::from_u128(0x1)),
            level: Level::Write,
            exp: NOW + 60,
            nbf: None,
            iat: Some(NOW),
            scopes: None,
        }
    }

    /// Builds a token from raw header and payload JSON, signed with `secret`.
    fn raw(header: &str, payload: &str, secret: &[u8]) -> String {
        let h = URL_SAFE_NO_PAD.encode(header);
        let p = URL_SAFE_NO_PAD.encode(payload);
        let sig = Key::new(secret)
            .unwrap()
            .mac(&h, &p)
            .finalize()
            .into_bytes();
        format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn payload(extra: &str) -> String {
        format!(
            r#"{{"tenant_id":"{}","sub":"{}","role":"read","exp":{}{extra}}}"#,
            Uuid::from_u128(0xA),
            Uuid::from_u128(0x1),
            NOW + 60
        )
    }

    const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

    fn ids(tenant: &str, sub: &str) -> Result<(String, String), JwtError> {
        let p = format!(
            r#"{{"tenant_id":{tenant},"sub":{sub},"role":"read","exp":{}}}"#,
            NOW + 60
        );
        verify(&raw(HS256, &p, SECRET), &expect())
            .map(|c| (c.tenant.into_string(), c.actor.into_string()))
    }

    #[test]
    fn tenant_and_subject_are_identifiers_strings_or_integers() {
        assert_eq!(
            ids("42", r#""user_2NQ8xk1Lr3""#),
            Ok(("42".into(), "user_2NQ8xk1Lr3".into()))
        );
        assert_eq!(ids(r#""42""#, "7"), Ok(("42".into(), "7".into())));
        assert_eq!(
            ids(r#""org_2abcXYZ9kQ""#, r#""auth0|5f7c8ec7""#).unwrap().0,
            "org_2abcXYZ9kQ"
        );
        assert_eq!(
            ids(r#""A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11""#, "1")
                .unwrap()
                .0,
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a uuid in its canonical lower-case form"
        );
        assert_eq!(ids(r#"" 42""#, "1").unwrap().0, " 42", "no trimming");
        assert_eq!(ids(r#""042""#, "1").unwrap().0, "042", "no number folding");
        for (bad, why) in [
            (
                "4.2",
                "the identifier is a non-integer number, not a string or an integer",
            ),
            (
                "42.0",
                "the identifier is a non-integer number, not a string or an integer",
            ),
            (
                "true",
                "the identifier is a boolean, not a string or an integer",
            ),
            (
                r#"["42"]"#,
                "the identifier is an array, not a string or an integer",
            ),
            (r#""""#, "the identifier is empty"),
            (
                r#""a\u0000b""#,
                "the identifier contains a control character (U+0000)",
            ),
            (
                r#""line\nbreak""#,
                "the identifier contains a control character (U+000A)",
            ),
        ] {
            assert_eq!(
                ids(bad, "1"),
                Err(JwtError::InvalidClaim {
                    claim: "tenant_id",
                    reason: why.into()
                }),
                "{bad}"
            );
        }
        // a null claim is a missing one
        assert_eq!(ids("null", "1"), Err(JwtError::MissingClaim("tenant_id")));
        let long = format!(r#""{}""#, "x".repeat(256));
        assert_eq!(
            ids("1", &long),
            Err(JwtError::InvalidClaim {
                claim: "sub",
                reason: "the identifier is 256 bytes long; at most 255 are accepted".into()
            })
        );
        let huge = format!(r#""{}""#, "x".repeat(10 * 1024));
        assert_eq!(
            ids("1", &huge),
            Err(JwtError::Malformed("longer than 8192 bytes")),
            "a 10 KB identifier"
        );
    }

    #[test]
    fn minted_identifiers_round_trip_as_strings() {
        for (t, a) in [
            ("42", "7"),
            ("org_2abc", "user_2NQ"),
            ("auth0|x", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ] {
            let c = Claims {
                tenant: Ident::parse(t).unwrap(),
                actor: Ident::parse(a).unwrap(),
                ..claims()
            };
            let token = sign(&c, NOW, "warden", None, &KEY);
            let back = verify(&token, &expect()).unwrap();
            assert_eq!((back.tenant.as_str(), back.actor.as_str()), (t, a));
        }
    }

    #[test]
    fn minted_token_verifies_to_the_same_claims() {
        let t = sign(&claims(), NOW, "warden", None, &KEY);
        assert_eq!(verify(&t, &expect()), Ok(claims()));
    }

    #[test]
    fn minted_scopes_verify_to_the_same_scopes() {
        let scoped = Claims {
            scopes: Some(Scopes::from(
                scope::parse_all(&["docs:*:read", "billing:invoice:write"]).unwrap(),
            )),
            ..claims()
        };
        let t = sign(&scoped, NOW, "warden", None, &KEY);
        assert_eq!(verify(&t, &expect()), Ok(scoped));
    }

    #[test]
    fn scopes_must_parse_and_oauth_scope_is_not_ours() {
        for bad in [
            r#""docs:*:read""#,
            r#"["docs:*"]"#,
            r#"["Docs:*:read"]"#,
            "[1]",
        ] {
            let t = raw(
                HS256,
                &payload(&format!(r#","warden_scopes":{bad}"#)),
                SECRET,
            );
            assert!(
                matches!(
                    verify(&t, &expect()),
                    Err(JwtError::InvalidClaim {
                        claim: SCOPES_CLAIM,
                        ..
                    })
                ),
                "{bad}"
            );
        }
        // an OAuth server's own `scope` claim restricts nothing and breaks nothing
        let t = raw(HS256, &payload(r#","scope":"openid profile""#), SECRET);
        assert_eq!(verify(&t, &expect()).unwrap().scopes, None);
        // an empty list is a key that may do nothing on scoped tables, not an unscoped one
        let t = raw(HS256, &payload(r#","warden_scopes":[]"#), SECRET);
        assert_eq!(
            verify(&t, &expect()).unwrap().scopes.map(|s| s.len()),
            Some(0)
        );
    }

    #[test]
    fn minted_audience_is_checked_like_any_other() {
        let t = sign(&claims(), NOW, "auth", Some("api"), &KEY);
        let want = |aud| Expectations {
            audience: Some(aud),
            issuer: Some("auth"),
            ..expect()
        };
        assert_eq!(verify(&t, &want("api")), Ok(claims()));
        assert_eq!(
            verify(&t, &want("web")),
            Err(JwtError::Audience("web".into()))
        );
    }

    #[test]
    fn minted_issuer_is_json_escaped() {
        let t = sign(&claims(), NOW, "we\"ird\\issuer", None, &KEY);
        assert_eq!(
            verify(
                &t,
                &Expectations {
                    issuer: Some("we\"ird\\issuer"),
                    ..expect()
                }
            ),
            Ok(claims())
        );
    }

    #[test]
    fn alg_none_is_refused_even_without_signature() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(payload(""));
        assert_eq!(
            verify(&format!("{h}.{p}."), &expect()),
            Err(JwtError::Algorithm("none".into()))
        );
    }

    #[test]
    fn other_algorithms_are_refused() {
        for alg in ["HS384", "RS256", "hs256", "ES256"] {
            let t = raw(&format!(r#"{{"alg":"{alg}"}}"#), &payload(""), SECRET);
            assert_eq!(verify(&t, &expect()), Err(JwtError::Algorithm(alg.into())));
        }
    }

    #[test]
    fn wrong_secret_is_a_bad_signature() {
        let t = raw(HS256, &payload(""), b"another-secret-another-secret-0123");
        assert_eq!(verify(&t, &expect()), Err(JwtError::BadSignature));
    }

    #[test]
    fn swapped_payload_keeps_old_signature_and_fails() {
        let good = raw(HS256, &payload(""), SECRET);
        let forged_payload = payload("").replace(
            &Uuid::from_u128(0xA).to_string(),
            &Uuid::from_u128(0xB).to_string(),
        );
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(forged_payload);
        assert_eq!(
            verify(&parts.join("."), &expect()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn empty_and_truncated_signatures_fail() {
        let good = raw(HS256, &payload(""), SECRET);
        let (body, sig) = good.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&format!("{body}."), &expect()),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            verify(&format!("{body}.{}", &sig[..8]), &expect()),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens_are_named() {
        for t in ["", "abc", "a.b", "a.b.c.d", "!!.e30.sig", "e30.!!.sig"] {
            assert!(
                matches!(verify(t, &expect()), Err(JwtError::Malformed(_))),
                "{t:?}"
            );
        }
        let padded = raw(HS256, &payload(""), SECRET) + "=";
        assert!(matches!(
            verify(&padded, &expect()),
            Err(JwtError::Malformed(_))
        ));
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            verify(&huge, &expect()),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn duplicated_claims_are_refused_not_resolved() {
        // a second tenant_id after the first is a classic smuggling attempt
        let p = payload(&format!(r#","tenant_id":"{}""#, Uuid::from_u128(0xB)));
        assert!(matches!(
            verify(&raw(HS256, &p, SECRET), &expect()),
            Err(JwtError::Malformed(_))
        ));
    }

    #[test]
    fn crit_header_is_refused() {
        let t = raw(r#"{"alg":"HS256","crit":["exp"]}"#, &payload(""), SECRET);
        assert!(matches!(verify(&t, &expect()), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn exp_is_required_and_enforced() {
        let no_exp = format!(
            r#"{{"tenant_id":"{}","sub":"{}","role":"read"}}"#,
            Uuid::from_u128(1),
            Uuid::from_u128(2)
        );
        assert_eq!(
            verify(&raw(HS256, &no_exp, SECRET), &expect()),
            Err(JwtError::MissingClaim("exp"))
        );
        let t = sign(
            &Claims {
                exp: NOW,
                ..claims()
            },
            NOW,
            "w",
            None,
            &KEY,
        );
        assert_eq!(verify(&t, &expect()), Err(JwtError::Expired(NOW)));
        let leeway = Expectations {
            leeway: 5,
            ..expect()
        };
        assert!(verify(&t, &leeway).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let t = sign(
            &Claims {
                nbf: Some(NOW + 10),
                ..claims()
            },
            NOW,
            "w",
            None,
            &KEY,
        );
        assert_eq!(verify(&t, &expect()), Err(JwtError::NotYetValid(NOW + 10)));
        let t = sign(
            &Claims {
                nbf: Some(NOW),
                ..claims()
            },
            NOW,
            "w",
            None,
            &KEY,
        );
        assert!(verify(&t, &expect()).is_ok());
    }

    #[test]
    fn audience_and_issuer_are_checked_when_configured() {
        let t = raw(
            HS256,
            &payload(r#","aud":["api","web"],"iss":"auth.example""#),
            SECRET,
        );
        let ok = Expectations {
            audience: Some("web"),
            issuer: Some("auth.example"),
            ..expect()
        };
        assert!(verify(&t, &ok).is_ok());
        let bad_aud = Expectations {
            audience: Some("admin"),
            ..expect()
        };
        assert_eq!(
            verify(&t, &bad_aud),
            Err(JwtError::Audience("admin".into()))
        );
        let bad_iss = Expectations {
            issuer: Some("evil"),
            ..expect()
        };
        assert_eq!(verify(&t, &bad_iss), Err(JwtError::Issuer("evil".into())));
        let no_aud = raw(HS256, &payload(""), SECRET);
        assert_eq!(verify(&no_aud, &ok), Err(JwtError::Audience("web".into())));
    }

    #[test]
    fn claims_must_have_the_right_shape() {
        let cases = [
            (
                r#"{"sub":"00000000-0000-0000-0000-000000000001","role":"read","exp":1900000000}"#,
                "tenant_id",
            ),
            (
                r#"{"tenant_id":4.2,"sub":"00000000-0000-0000-0000-000000000001","role":"read","exp":1900000000}"#,
                "tenant_id",
            ),
            (
                r#"{"tenant_id":"00000000-0000-0000-0000-000000000001","sub":true,"role":"read","exp":1900000000}"#,
                "sub",
            ),
            (
                r#"{"tenant_id":"00000000-0000-0000-0000-000000000001","sub":"00000000-0000-0000-0000-000000000001","role":"root","exp":1900000000}"#,
                "role",
            ),
            (
                r#"{"tenant_id":"00000000-0000-0000-0000-000000000001","sub":"00000000-0000-0000-0000-000000000001","role":"read","exp":"soon"}"#,
                "exp",
            ),
        ];
        for (p, claim) in cases {
            let err = verify(&raw(HS256, p, SECRET), &expect()).unwrap_err();
            let named = match &err {
                JwtError::MissingClaim(c) | JwtError::InvalidClaim { claim: c, .. } => *c,
                other => panic!("{p}: unexpected {other:?}"),
            };
            assert_eq!(named, claim, "{p}");
        }
    }

    #[test]
    fn missing_or_short_secret_is_a_configuration_error() {
        assert!(matches!(Key::new(b""), Err(JwtError::NoSecret)));
        assert!(matches!(Key::new(b"short"), Err(JwtError::WeakSecret(5))));
        assert!(Key::new(&[7u8; MIN_SECRET_LEN]).is_ok());
        assert!(JwtError::WeakSecret(5).is_configuration());
        assert!(!JwtError::BadSignature.is_configuration());
    }

    #[test]
    fn the_header_fast_path_and_the_general_path_agree() {
        // the same claims under an equivalent but unlisted header take the general path
        let general = raw(r#"{"typ":"JWT", "alg":"HS256"}"#, &payload(""), SECRET);
        let fast = raw(r#"{"typ":"JWT","alg":"HS256"}"#, &payload(""), SECRET);
        assert!(KNOWN_HS256_HEADERS.contains(&fast.split('.').next().unwrap()));
        assert!(!KNOWN_HS256_HEADERS.contains(&general.split('.').next().unwrap()));
        assert_eq!(verify(&general, &expect()), verify(&fast, &expect()));
        assert!(verify(&fast, &expect()).is_ok());
    }

    #[test]
    fn an_overlong_signature_is_a_bad_signature() {
        let good = raw(HS256, &payload(""), SECRET);
        let longer = format!("{good}{}", "A".repeat(40));
        assert_eq!(verify(&longer, &expect()), Err(JwtError::BadSignature));
    }

    /// Provider-shaped tokens of a registered (Ed25519) issuer: the options read each shape.
    mod providers {
        use super::*;
        use crate::jwt::jwks::{parse, parse_options, Options};
        use ring::signature::{Ed25519KeyPair, KeyPair};
        use serde_json::json;

        fn issuer() -> (Ed25519KeyPair, Vec<crate::jwt::jwks::Key>) {
            let rng = ring::rand::SystemRandom::new();
            let kp =
                Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
                    .unwrap();
            let jwk = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
                "x": URL_SAFE_NO_PAD.encode(kp.public_key().as_ref())}]});
            (kp, parse(&jwk).unwrap().keys)
        }

        fn token(kp: &Ed25519KeyPair, payload: Value) -> String {
            let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","kid":"k1"}"#);
            let p = URL_SAFE_NO_PAD.encode(payload.to_string());
            let sig = kp.sign(format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn opts(v: Value) -> Options {
            parse_options(&v).unwrap()
        }

        fn check(
            kp: &Ed25519KeyPair,
            keys: &[crate::jwt::jwks::Key],
            o: &Options,
            payload: Value,
            chosen: Option<&str>,
        ) -> Result<(String, String, Level), JwtError> {
            let mut p = payload;
            p["exp"] = json!(NOW + 60);
            verify_issued(&token(kp, p), "https://idp.test", keys, o, NOW, chosen)
                .map(|c| (c.tenant.into_string(), c.actor.into_string(), c.level))
        }

        #[test]
        fn audience_is_aud_or_without_aud_the_client_id() {
            let (kp, keys) = issuer();
            let o = opts(json!({"audience": ["app-client-1", "api"]}));
            let base = json!({"sub": "u", "tenant_id": "t", "role": "read"});
            let with = |k: &str, v: Value| {
                let mut p = base.clone();
                p[k] = v;
                p
            };
            let ok = Ok(("t".into(), "u".into(), Level::Read));
            assert_eq!(check(&kp, &keys, &o, with("aud", json!("api")), None), ok);
            assert_eq!(
                check(&kp, &keys, &o, with("aud", json!(["x", "api"])), None),
                ok
            );
            // Cognito's access token: no aud, the app client in client_id
            assert_eq!(
                check(
                    &kp,
                    &keys,
                    &o,
                    with("client_id", json!("app-client-1")),
                    None
                ),
                ok
            );
            let refused = Err(JwtError::Audience("app-client-1\" or \"api".into()));
            assert_eq!(
                check(&kp, &keys, &o, with("client_id", json!("other")), None),
                refused
            );
            assert_eq!(check(&kp, &keys, &o, base.clone(), None), refused);
            // an aud that does not match is not rescued by a matching client_id
            let mut p = with("aud", json!("x"));
            p["client_id"] = json!("app-client-1");
            assert_eq!(check(&kp, &keys, &o, p, None), refused);
        }

        #[test]
        fn propelauth_one_token_several_orgs_the_application_names_the_tenant() {
            let (kp, keys) = issuer();
            let o = opts(
                json!({"actor": "user_id", "orgs": "org_id_to_org_member_info",
                "level": "user_role", "levels": {"Owner": "admin", "Admin": "admin", "Member": "write"}}),
            );
            let p = json!({"user_id": "u-1", "org_id_to_org_member_info": {
                "org-a": {"org_id": "org-a", "user_role": "Owner"},
                "org-b": {"org_id": "org-b", "user_role": "Member"}}});
            assert_eq!(
                check(&kp, &keys, &o, p.clone(), Some("org-a")),
                Ok(("org-a".into(), "u-1".into(), Level::Admin))
            );
            assert_eq!(
                check(&kp, &keys, &o, p.clone(), Some("org-b")),
                Ok(("org-b".into(), "u-1".into(), Level::Write))
            );
            assert_eq!(
                check(&kp, &keys, &o, p.clone(), Some("org-c")),
                Err(JwtError::NotInToken("org-c".into()))
            );
            assert_eq!(
                check(&kp, &keys, &o, p, None),
                Err(JwtError::NoTenant("https://idp.test".into()))
            );
        }

        #[test]
        fn a_chosen_tenant_must_be_the_tokens_own_without_orgs() {
            let (kp, keys) = issuer();
            let o = opts(json!({"tenant": "o.id", "level": "o.rol"}));
            let p = json!({"sub": "user_1", "o": {"id": "org_1", "rol": "admin"}});
            assert!(check(&kp, &keys, &o, p.clone(), Some("org_1")).is_ok());
            assert_eq!(
                check(&kp, &keys, &o, p, Some("org_2")),
                Err(JwtError::NotInToken("org_2".into()))
            );
        }

        #[test]
        fn keycloak_and_cognito_role_arrays_grant_the_highest_mapped_level() {
            let (kp, keys) = issuer();
            let o = opts(
                json!({"tenant": "organization", "level": "realm_access.roles",
                "levels": {"app-reader": "read", "app-editor": "write"}}),
            );
            let p = json!({"sub": "kc-1", "organization": "acme",
                "realm_access": {"roles": ["offline_access", "app-reader", "app-editor"]}});
            assert_eq!(check(&kp, &keys, &o, p, None).unwrap().2, Level::Write);
            let p = json!({"sub": "kc-1", "organization": "acme",
                "realm_access": {"roles": ["offline_access", "uma_authorization"]}});
            assert!(matches!(
                check(&kp, &keys, &o, p, None),
                Err(JwtError::Role { .. })
            ));
            // Cognito: a key with a colon, no aud
            let o = opts(json!({"tenant": "custom:tenant", "level": "cognito:groups",
                "levels": {"admins": "admin", "staff": "write"}}));
            let p = json!({"sub": "c-1", "client_id": "abc", "custom:tenant": "t1",
                "cognito:groups": ["staff"]});
            assert_eq!(check(&kp, &keys, &o, p, None).unwrap().2, Level::Write);
        }

        #[test]
        fn admin_requires_mfa_refuses_an_admin_token_without_a_second_factor() {
            let (kp, keys) = issuer();
            // Supabase: amr is an array of objects; Auth0: an array of strings
            let supa = opts(
                json!({"tenant": "app_metadata.tenant_id", "level": "app_metadata.role",
                "audience": "authenticated", "mfa": {"path": "amr.method", "any_of": ["totp", "phone"]},
                "admin_requires_mfa": true}),
            );
            let p = |role: &str, amr: Value| {
                json!({"sub": "s-1", "aud": "authenticated",
                "app_metadata": {"tenant_id": "t1", "role": role}, "amr": amr})
            };
            let pwd = json!([{"method": "password", "timestamp": 1}]);
            let totp =
                json!([{"method": "password", "timestamp": 1}, {"method": "totp", "timestamp": 2}]);
            assert_eq!(
                check(&kp, &keys, &supa, p("admin", pwd.clone()), None),
                Err(JwtError::Mfa("https://idp.test".into()))
            );
            assert_eq!(
                check(&kp, &keys, &supa, p("admin", totp), None).unwrap().2,
                Level::Admin
            );
            // below admin, no MFA is needed
            assert_eq!(
                check(&kp, &keys, &supa, p("write", pwd), None).unwrap().2,
                Level::Write
            );
            let auth0 = opts(
                json!({"tenant": "org_id", "level": "https://example.test/role",
                "mfa": {"path": "amr", "any_of": ["mfa"]}, "admin_requires_mfa": true}),
            );
            let p = |amr: Value| {
                json!({"sub": "auth0|1", "org_id": "org_abc",
                "https://example.test/role": "admin", "amr": amr})
            };
            assert_eq!(
                check(&kp, &keys, &auth0, p(json!(["mfa"])), None)
                    .unwrap()
                    .2,
                Level::Admin
            );
            assert_eq!(
                check(&kp, &keys, &auth0, p(json!(["pwd"])), None),
                Err(JwtError::Mfa("https://idp.test".into()))
            );
            assert_eq!(
                check(
                    &kp,
                    &keys,
                    &auth0,
                    json!({"sub": "auth0|1", "org_id": "org_abc",
                    "https://example.test/role": "admin"}),
                    None
                ),
                Err(JwtError::Mfa("https://idp.test".into()))
            );
        }

        #[test]
        fn mfa_options_are_checked() {
            assert!(parse_options(&json!({"admin_requires_mfa": true})).is_err());
            assert!(parse_options(&json!({"mfa": {"path": "amr"}})).is_err());
            assert!(parse_options(&json!({"mfa": {"path": "amr", "any_of": []}})).is_err());
            assert!(
                parse_options(&json!({"mfa": {"path": "amr", "any_of": ["mfa"], "x": 1}})).is_err()
            );
            assert!(parse_options(&json!({"orgs": 3})).is_err());
            assert!(
                parse_options(&json!({"mfa": {"path": "aal", "any_of": ["aal2"]},
                "admin_requires_mfa": true, "orgs": "orgs"}))
                .is_ok()
            );
        }
    }
}
