//! A clean server log: what `emit_log_hook` (in `hooks.c`) removes from a message before it reaches
//! the server log (stderr, csvlog, jsonlog, syslog); what the client receives is unchanged.
//!
//! Removed, with a marker that says what was there: JWT-shaped strings (warden's context carrier
//! included) and `wdn_` API keys anywhere; every string literal of a text that may hold a password
//! (`CREATE/ALTER ROLE|USER ... PASSWORD '...'`, or anything mentioning `password`, as
//! `audit::redact` decides for the trail); the values of bind parameters (`parameters: $1 = '...'`)
//! of statements that name a table with registered personal data, and those statements' string
//! literals (`INSERT INTO users VALUES (1, 'alice@...')`); the values in a constraint
//! violation's detail (`Key (email)=(...) already exists.`, `Failing row contains (...)`) of such a
//! table or of one of its partitions. When the backend does not know the registry (not loaded yet, or
//! changed since), those last two are removed too: when in doubt, redact.
//!
//! The functions here are pure and never panic on any input (the FFI entry points catch one
//! anyway): `cargo test --features pg15 --lib postgres::log`. Setting: `warden.log_redaction`.

use std::ffi::{c_char, CStr, CString};

use crate::audit::redact;

pub const TOKEN_MARKER: &str = "<redacted: token>";
pub const KEY_MARKER: &str = "<redacted: API key>";
pub const VALUE_MARKER: &str = "<redacted: personal data>";

/// What the backend knows of the personal-data registry: the tables (and partitions) it covers, as
/// (schema, table), or nothing.
pub enum Registered<'a> {
    Unknown,
    Known(&'a [(String, String)]),
}

impl Registered<'_> {
    fn covers(&self, schema: Option<&str>, table: &str) -> bool {
        match self {
            Registered::Unknown => true,
            Registered::Known(names) => names
                .iter()
                .any(|(s, t)| t == table && schema.is_none_or(|x| x == s)),
        }
    }

    /// Whether `sql` may name one of the tables (a whole-word, case-insensitive match: errs on
    /// the side of redacting).
    fn named_in(&self, sql: &str) -> bool {
        match self {
            Registered::Unknown => true,
            Registered::Known(names) => {
                let lower = sql.to_lowercase();
                names
                    .iter()
                    .any(|(_, t)| contains_word(&lower, &t.to_lowercase()))
            }
        }
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn contains_word(hay: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let h = hay.as_bytes();
    let mut from = 0;
    while let Some(p) = hay[from..].find(word) {
        let start = from + p;
        let end = start + word.len();
        let before = start == 0 || !is_ident_byte(h[start - 1]);
        let after = end >= h.len() || !is_ident_byte(h[end]);
        if before && after {
            return true;
        }
        from = start + 1;
        while from < hay.len() && !hay.is_char_boundary(from) {
            from += 1;
        }
        if from >= hay.len() {
            break;
        }
    }
    false
}

/// Which part of a message a text is (PostgreSQL's ErrorData fields, and the statement).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Field {
    Message,
    Detail,
    Hint,
    Context,
    InternalQuery,
    Statement,
}

impl Field {
    pub fn from_code(c: i32) -> Field {
        match c {
            1 => Field::Detail,
            2 => Field::Hint,
            3 => Field::Context,
            4 => Field::InternalQuery,
            5 => Field::Statement,
            _ => Field::Message,
        }
    }
}

/// What the redaction of one field may look at.
pub struct Ctx<'a> {
    pub sqlstate: &'a str,
    pub schema: Option<&'a str>,
    pub table: Option<&'a str>,
    /// The message and the statement: which statement bind parameters belong to.
    pub message: &'a str,
    pub statement: &'a str,
    pub registered: Registered<'a>,
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `text` with JWT-shaped strings and API keys replaced.
fn redact_credentials(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    // the end of a base64url run found not to be a token: an eyJ inside it is none either (its
    // run ends at the same place, with fewer parts)
    let mut no_token_before = 0;
    while i + 4 <= b.len() {
        // anywhere, even glued to other text (a URL-encoded header, a concatenation): a JWT's
        // header always begins with eyJ ('{"'), and two long base64url parts must follow
        if i >= no_token_before && b[i..].starts_with(b"eyJ") {
            // base64url parts separated by dots: at least header.payload.signature-ish
            let mut j = i;
            let mut parts = 0;
            let mut part_len = 0;
            let mut long_parts = 0;
            while j < b.len() && (is_b64url(b[j]) || b[j] == b'.') {
                if b[j] == b'.' {
                    parts += 1;
                    if part_len >= 8 {
                        long_parts += 1;
                    }
                    part_len = 0;
                } else {
                    part_len += 1;
                }
                j += 1;
            }
            if part_len >= 8 {
                long_parts += 1;
            }
            if parts >= 1 && long_parts >= 2 {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..i]);
                o.push_str(TOKEN_MARKER);
                copied = j;
                i = j;
                continue;
            }
            // not a token; an API key may still be glued inside the run (eyJwdn_...), so the
            // scan goes on from the next byte (found by the fuzzer, src/fuzz.rs)
            no_token_before = j;
            i += 1;
            continue;
        }
        if b[i..].starts_with(b"wdn_") {
            let mut j = i + 4;
            while j < b.len() && is_b64url(b[j]) {
                j += 1;
            }
            if j - i >= 4 + 8 {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..i]);
                o.push_str(KEY_MARKER);
                copied = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

fn has_literal(text: &str) -> bool {
    text.contains('\'') || text.contains('$')
}

fn mentions_password(text: &str) -> bool {
    text.as_bytes()
        .windows(8)
        .any(|w| w.eq_ignore_ascii_case(b"password"))
}

/// `$n = '...'` values of a bind-parameter list (PostgreSQL quotes each value, doubling quotes;
/// NULL stays NULL) replaced by the marker; everything else kept.
fn redact_parameters(text: &str) -> Option<String> {
    let start = text.find("parameters: $")? + "parameters: ".len();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..start]);
    let mut i = start;
    let mut copied = start;
    let mut changed = false;
    while i < b.len() {
        if b[i] == b'=' && b.get(i + 1) == Some(&b' ') && b.get(i + 2) == Some(&b'\'') {
            let body = i + 3;
            let mut j = body;
            let end = loop {
                if j >= b.len() {
                    break b.len();
                }
                if b[j] == b'\'' {
                    if b.get(j + 1) == Some(&b'\'') {
                        j += 2;
                        continue;
                    }
                    break j + 1;
                }
                j += 1;
            };
            out.push_str(&text[copied..i + 2]);
            out.push('\'');
            out.push_str(VALUE_MARKER);
            out.push('\'');
            copied = end;
            i = end;
            changed = true;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[copied.min(text.len())..]);
    changed.then_some(out)
}

/// The values of a constraint violation's detail replaced.
fn redact_key_values(text: &str) -> Option<String> {
    if let Some(p) = text.find("Failing row contains (") {
        let open = p + "Failing row contains ".len();
        let close = text.rfind(')').filter(|&c| c > open)?;
        return Some(format!(
            "{}({VALUE_MARKER}){}",
            &text[..open],
            &text[close + 1..]
        ));
    }
    if !text.contains(")=(") {
        return None;
    }
    // Key (cols)=(vals) already exists. / is not present in table "t". / is still referenced
    // from table "t". / conflicts with existing key (cols)=(vals).
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find(")=(") {
        out.push_str(&rest[..p + 3]);
        let after = &rest[p + 3..];
        let end = [
            ") already exists",
            ") is not present",
            ") is still referenced",
            ") conflicts with",
        ]
        .iter()
        .filter_map(|s| after.find(s))
        .min()
        .or_else(|| after.rfind(')'));
        match end {
            Some(e) => {
                out.push_str(VALUE_MARKER);
                rest = &after[e..];
            }
            None => {
                out.push_str(VALUE_MARKER);
                out.push(')');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The text the server log gets for `text`, or `None` when nothing needs to go.
pub fn redact(text: &str, field: Field, ctx: &Ctx<'_>) -> Option<String> {
    let mut cur: Option<String> = redact_credentials(text);
    let t = |c: &Option<String>| c.as_deref().unwrap_or(text).to_owned();
    if mentions_password(cur.as_deref().unwrap_or(text))
        && matches!(
            field,
            Field::Message
                | Field::Statement
                | Field::InternalQuery
                | Field::Context
                | Field::Detail
        )
        && redact::may_hold_secrets(cur.as_deref().unwrap_or(text))
    {
        let r = redact::redact_literals(&t(&cur));
        if r != cur.as_deref().unwrap_or(text) {
            cur = Some(r);
        }
    }
    if matches!(
        field,
        Field::Message | Field::Statement | Field::InternalQuery | Field::Context
    ) && has_literal(cur.as_deref().unwrap_or(text))
        && ctx.registered.named_in(cur.as_deref().unwrap_or(text))
    {
        // a statement naming a table with personal data: its literals may be the values
        let r = redact::redact_literals(&t(&cur));
        if r != cur.as_deref().unwrap_or(text) {
            cur = Some(r);
        }
    }
    if matches!(field, Field::Detail | Field::Context) {
        let now = t(&cur);
        if now.contains("parameters: $")
            && (ctx.registered.named_in(ctx.message) || ctx.registered.named_in(ctx.statement))
        {
            if let Some(r) = redact_parameters(&now) {
                cur = Some(r);
            }
        }
    }
    if field == Field::Detail && ctx.sqlstate.starts_with("23") {
        if let Some(table) = ctx.table {
            if ctx.registered.covers(ctx.schema, table) {
                if let Some(r) = redact_key_values(&t(&cur)) {
                    cur = Some(r);
                }
            }
        }
    }
    cur
}

// --- the hook's half in Rust ------------------------------------------------------------------

fn opt(p: *const c_char) -> Option<&'static str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the C side passes NUL-terminated strings that live for the call.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// Whether `warden.log_redaction` is on.
#[no_mangle]
extern "C" fn warden_log_redaction_enabled() -> bool {
    crate::gucs::LOG_REDACTION.get()
}

/// The redacted text of one field (a string the caller frees with [`warden_log_free`]), or NULL
/// when it is unchanged. Never raises, never panics out (a panic keeps the field: the message is
/// not lost, and the marker is not added).
#[no_mangle]
extern "C" fn warden_log_redact(
    field: i32,
    text: *const c_char,
    message: *const c_char,
    statement: *const c_char,
    sqlstate: *const c_char,
    schema: *const c_char,
    table: *const c_char,
) -> *mut c_char {
    let r = std::panic::catch_unwind(|| {
        // a field that is not UTF-8 (a server encoding other than UTF8) is checked as lossy
        // text: the replacement is then the lossy text, redacted
        let raw = if text.is_null() {
            return None;
        } else {
            // SAFETY: as in opt().
            unsafe { CStr::from_ptr(text) }.to_string_lossy()
        };
        let names = crate::catalog::subjects::snapshot_names();
        let registered = match &names {
            Some(n) => Registered::Known(n),
            None => Registered::Unknown,
        };
        let ctx = Ctx {
            sqlstate: opt(sqlstate).unwrap_or(""),
            schema: opt(schema),
            table: opt(table),
            message: opt(message).unwrap_or(""),
            statement: opt(statement).unwrap_or(""),
            registered,
        };
        redact(&raw, Field::from_code(field), &ctx)
    });
    match r {
        Ok(Some(s)) => CString::new(s.replace('\0', ""))
            .map(CString::into_raw)
            .unwrap_or(std::ptr::null_mut()),
        _ => std::ptr::null_mut(),
    }
}

/// Frees a string [`warden_log_redact`] returned.
#[no_mangle]
extern "C" fn warden_log_free(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: p came from CString::into_raw in warden_log_redact.
        drop(unsafe { CString::from_raw(p) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<(String, String)> {
        vec![
            ("public".into(), "users".into()),
            ("public".into(), "users_2026".into()),
        ]
    }

    fn ctx<'a>(
        n: &'a [(String, String)],
        sqlstate: &'a str,
        table: Option<&'a str>,
        message: &'a str,
    ) -> Ctx<'a> {
        Ctx {
            sqlstate,
            schema: Some("public"),
            table,
            message,
            statement: "",
            registered: Registered::Known(n),
        }
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJhIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

    /// Found by `fuzz::log_redaction_scanner`: an API key glued to "eyJ" (a base64url run that
    /// is not a token) was skipped with the run and reached the log.
    #[test]
    fn found_a_key_glued_to_a_token_beginning() {
        let key = "wdn_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        for text in [
            format!("eyJ{key}"),
            format!("x eyJabc{key} y"),
            format!("eyJeyJ{key}"),
        ] {
            let n: Vec<(String, String)> = Vec::new();
            let out = redact(&text, Field::Message, &ctx(&n, "42601", None, &text)).unwrap();
            assert!(!out.contains(key), "{out}");
            assert!(out.contains(KEY_MARKER), "{out}");
        }
    }

    #[test]
    fn tokens_and_keys_anywhere() {
        let n = names();
        let c = ctx(&n, "00000", None, "");
        let m = format!("statement: SELECT warden.authenticate('{JWT}')");
        assert_eq!(
            redact(&m, Field::Message, &c).unwrap(),
            "statement: SELECT warden.authenticate('<redacted: token>')"
        );
        // the carrier with its fourth part (a chosen tenant)
        let m = format!("SET LOCAL warden.context_token = '{JWT}.b3JnLWE'");
        assert_eq!(
            redact(&m, Field::Statement, &c).unwrap(),
            "SET LOCAL warden.context_token = '<redacted: token>'"
        );
        let k = "wdn_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let m = format!("parameters: $1 = '{k}'");
        assert_eq!(
            redact(&m, Field::Detail, &c).unwrap(),
            "parameters: $1 = '<redacted: API key>'"
        );
        // not credentials
        for s in [
            "eyJ",
            "eyJhbGciOiJIUzI1NiJ9",
            "wdn_short",
            "the key wdn_ prefix",
            "SELECT 1",
        ] {
            assert_eq!(redact(s, Field::Message, &c), None, "{s}");
        }
    }

    #[test]
    fn passwords() {
        let n = names();
        let c = ctx(&n, "00000", None, "");
        assert_eq!(
            redact(
                "statement: CREATE ROLE bob LOGIN PASSWORD 'hunter2'",
                Field::Message,
                &c
            )
            .unwrap(),
            "statement: CREATE ROLE bob LOGIN PASSWORD '<redacted>'"
        );
        assert_eq!(
            redact(
                "ALTER USER bob WITH PASSWORD $x$it's$x$",
                Field::Statement,
                &c
            )
            .unwrap(),
            "ALTER USER bob WITH PASSWORD '<redacted>'"
        );
        assert_eq!(
            redact(
                "password authentication failed for user \"bob\"",
                Field::Message,
                &c
            ),
            None
        );
    }

    #[test]
    fn parameters_of_statements_naming_registered_tables() {
        let n = names();
        let m = "execute <unnamed>: INSERT INTO users (id, email) VALUES ($1, $2)";
        let c = ctx(&n, "00000", None, m);
        assert_eq!(
            redact(
                "parameters: $1 = '7', $2 = 'alice@example.test'",
                Field::Detail,
                &c
            )
            .unwrap(),
            "parameters: $1 = '<redacted: personal data>', $2 = '<redacted: personal data>'"
        );
        assert_eq!(
            redact(
                "parameters: $1 = NULL, $2 = 'it''s, $3 = x'",
                Field::Detail,
                &c
            )
            .unwrap(),
            "parameters: $1 = NULL, $2 = '<redacted: personal data>'"
        );
        let other = ctx(
            &n,
            "00000",
            None,
            "execute <unnamed>: INSERT INTO orders VALUES ($1)",
        );
        assert_eq!(redact("parameters: $1 = 'x'", Field::Detail, &other), None);
        // a table whose name only contains a registered one
        let other = ctx(
            &n,
            "00000",
            None,
            "execute s1: SELECT * FROM users_archive WHERE id = $1",
        );
        assert_eq!(redact("parameters: $1 = 'x'", Field::Detail, &other), None);
        // literals of a statement naming a registered table
        assert_eq!(
            redact(
                "statement: INSERT INTO users VALUES (1, 'alice@example.test')",
                Field::Message,
                &c
            )
            .unwrap(),
            "statement: INSERT INTO users VALUES (1, '<redacted>')"
        );
        assert_eq!(
            redact(
                "statement: INSERT INTO orders VALUES (1, 'x')",
                Field::Message,
                &c
            ),
            None
        );
        // unknown registry: redacted
        let mut unknown = ctx(&n, "00000", None, "execute s1: SELECT $1");
        unknown.registered = Registered::Unknown;
        assert!(redact("parameters: $1 = 'x'", Field::Detail, &unknown).is_some());
    }

    #[test]
    fn constraint_details_of_registered_tables() {
        let n = names();
        let c = ctx(&n, "23505", Some("users"), "");
        assert_eq!(
            redact(
                "Key (email)=(alice@example.test) already exists.",
                Field::Detail,
                &c
            )
            .unwrap(),
            "Key (email)=(<redacted: personal data>) already exists."
        );
        let p = ctx(&n, "23503", Some("users_2026"), "");
        assert_eq!(
            redact(
                "Key (a, b)=(1, x)) is not present in table \"t\".",
                Field::Detail,
                &p
            )
            .unwrap(),
            "Key (a, b)=(<redacted: personal data>) is not present in table \"t\"."
        );
        assert_eq!(
            redact(
                "Failing row contains (1, null, (x)).",
                Field::Detail,
                &ctx(&n, "23502", Some("users"), "")
            )
            .unwrap(),
            "Failing row contains (<redacted: personal data>)."
        );
        assert_eq!(
            redact("Key (c)=(a) conflicts with existing key (c)=(b).", Field::Detail, &ctx(&n, "23P01", Some("users"), ""))
                .unwrap(),
            "Key (c)=(<redacted: personal data>) conflicts with existing key (c)=(<redacted: personal data>)."
        );
        // another table, another class
        assert_eq!(
            redact(
                "Key (email)=(a) already exists.",
                Field::Detail,
                &ctx(&n, "23505", Some("orders"), "")
            ),
            None
        );
        assert_eq!(
            redact(
                "Key (email)=(a) already exists.",
                Field::Detail,
                &ctx(&n, "42P01", Some("users"), "")
            ),
            None
        );
    }

    #[test]
    fn odd_input_never_panics() {
        let n = names();
        let c = ctx(&n, "23505", Some("users"), "execute: users $1");
        let long = "é'\"$$x$".repeat(10_000);
        for s in [
            "",
            "'",
            "$",
            "$$",
            "$a$",
            "E'\\",
            "eyJ.",
            "eyJ..",
            "eyJaaaaaaaaa.",
            "wdn_",
            "parameters: $",
            "parameters: $1 = '",
            "parameters: $1 = 'é",
            "Key (a)=(",
            ")=(",
            "Failing row contains (",
            "Failing row contains ()",
            "PASSWORD 'unterminated",
            "password E'\\'",
            "ключ (é)=(ü) already exists.",
            long.as_str(),
        ] {
            for f in [
                Field::Message,
                Field::Detail,
                Field::Context,
                Field::Statement,
                Field::Hint,
            ] {
                let _ = redact(s, f, &c);
            }
        }
    }

    /// A small deterministic generator (xorshift64*): no dependency, reproducible from its seed.
    struct Gen(u64);
    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    /// Structure-aware random messages: SQL and log fragments (quotes, doubled quotes, escape
    /// strings, dollar quotes, comments, parameters, key details, multibyte text) around tokens,
    /// keys and a registered value. Whatever the shape, the redaction never panics, and every token,
    /// key and password it was given is gone from its output.
    #[test]
    fn generated_messages_never_keep_a_credential_or_panic() {
        let n = names();
        let fragments = [
            "'",
            "''",
            "E'\\''",
            "$$",
            "$q$",
            "$q$ body $q$",
            "--c\n",
            "/* c */",
            "/* /* */",
            "\"id\"",
            " ",
            ", ",
            "(",
            ")",
            "=",
            ")=(",
            "parameters: $1 = '",
            "$2 = NULL",
            "Key (email)=(",
            "Failing row contains (",
            "é",
            "ключ",
            "日本",
            "\u{1F600}",
            "users",
            "orders",
            "INSERT INTO ",
            "CREATE ROLE r PASSWORD ",
            "ALTER USER u WITH password ",
            "statement: ",
            "SELECT ",
        ];
        let jwt = JWT;
        let key = "wdn_0123456789ab_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for case in 0u32..20_000 {
            let mut m = String::new();
            let mut secrets = Vec::new();
            for _ in 0..(g.next() % 12) {
                match g.next() % 6 {
                    0 => {
                        m.push_str(jwt);
                        secrets.push(jwt);
                    }
                    1 => {
                        m.push_str(key);
                        secrets.push(key);
                    }
                    _ => m.push_str(g.pick(&fragments)),
                }
                if g.next().is_multiple_of(3) {
                    m.push(' ');
                }
            }
            if case.is_multiple_of(97) {
                m = m.repeat(200);
            }
            let sqlstate = g.pick(&["00000", "23505", "23502", "42601"]);
            let table = g.pick(&["users", "orders", ""]);
            let c = Ctx {
                sqlstate,
                schema: Some("public"),
                table: (!table.is_empty()).then_some(table),
                message: &m,
                statement: &m,
                registered: if case.is_multiple_of(5) {
                    Registered::Unknown
                } else {
                    Registered::Known(&n)
                },
            };
            for f in [
                Field::Message,
                Field::Detail,
                Field::Hint,
                Field::Context,
                Field::InternalQuery,
                Field::Statement,
            ] {
                let out = redact(&m, f, &c);
                let text = out.as_deref().unwrap_or(&m);
                for s in &secrets {
                    assert!(
                        !text.contains(s),
                        "case {case}, {f:?}: {s} kept in {text:?}"
                    );
                }
            }
        }
    }
}
