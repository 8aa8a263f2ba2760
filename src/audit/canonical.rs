//! The canonical serialization of an audit event: the bytes the hash chain covers.
//!
//! It must give the same bytes for the same event whatever the session that writes, seals or
//! verifies it has set (TimeZone, DateStyle, IntervalStyle, extra_float_digits, lc_*), and whatever
//! key order a JSON document arrived in. So nothing here is formatted by PostgreSQL at verification
//! time: every value is reduced to a form defined below, and a verifier outside the database (see
//! README) can reproduce it from an export.
//!
//! Format, version 2 (`warden.audit.v2`, events sealed by 0.6.0 and later), and version 1
//! (`warden.audit.v1`, before), the same but for the tenant and actor: each event's `serialization`
//! column says which one its hash covers.
//!
//! ```text
//! event  = "warden.audit.v2" field{10}      (version 1: "warden.audit.v1" field{10})
//! field  = tag:u8 length:u32 (big-endian) bytes[length]
//! fields, in this order: id, occurred_at, tenant, actor, action, resource_type, resource_id,
//!                        changes, status, context
//! tags   = 'N' NULL (length 0)          'I' bigint, decimal ASCII ("-12")
//!          'T' text, its UTF-8 bytes     'U' uuid, 36 lower-case hex and hyphens
//!          'S' timestamptz, UTC ISO 8601 with microseconds ("2026-11-23T18:35:37.000000Z")
//!          'J' json, canonical JSON (below)
//! tenant, actor: version 2 'T' (the identifier's text: a uuid in lower case, a number in
//!                decimal, a provider's id as it is) or 'N'; version 1 'U' or 'N' (tenants and
//!                actors were uuids)
//! ```
//!
//! Canonical JSON: no insignificant whitespace; object members sorted by the UTF-8 bytes of their
//! keys, a repeated key keeping its last value (as jsonb does); strings escape `"` and `\` with a
//! backslash, U+0008/0009/000A/000C/000D as `\b \t \n \f \r`, the other controls below U+0020 as
//! `\u00xx` (lower-case hex), and everything else as raw UTF-8; numbers in plain decimal notation
//! (exponents expanded, the sign of zero and leading zeros dropped, the digits after the point kept:
//! `1.50` stays `1.50`, as numeric keeps its scale); `true`, `false`, `null`.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib audit`.

/// Prefix of every version-1 serialization.
pub const MAGIC_V1: &[u8] = b"warden.audit.v1";
/// Prefix of every version-2 serialization.
pub const MAGIC_V2: &[u8] = b"warden.audit.v2";
/// The version events are sealed with.
pub const CURRENT_VERSION: i16 = 2;

/// One field value of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Uuid([u8; 16]),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    Timestamp(i64),
    /// A JSON document, in any formatting; serialized canonically.
    Json(&'a str),
    /// A JSON document already in canonical form (a verifier that serialized jsonb's binary form
    /// itself): written as it is, under the same tag as [`Field::Json`].
    CanonicalJson(&'a [u8]),
}

/// The fields of an event, in chain order.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The serialization version (1 or 2).
    pub version: i16,
    pub id: i64,
    pub occurred_at: i64,
    pub tenant: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub changes: Option<&'a str>,
    pub status: &'a str,
    pub context: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    #[error("invalid JSON at byte {at}: {what}")]
    Json { at: usize, what: &'static str },
    #[error("a field of {0} bytes is longer than a canonical field may be")]
    TooLong(usize),
    #[error("a version-1 event's {0} is not a uuid")]
    NotUuid(&'static str),
    #[error("serialization version {0} is unknown")]
    Version(i16),
}

impl Event<'_> {
    /// The version-1 canonical bytes of this event.
    pub fn canonical(&self) -> Result<Vec<u8>, CanonicalError> {
        let mut out = Vec::with_capacity(256);
        self.canonical_into(&mut out)?;
        Ok(out)
    }

    /// The canonical bytes, written into `out` (cleared first): a verifier reuses one buffer.
    pub fn canonical_into(&self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.canonical_into_with(
            self.changes.map_or(Field::Null, Field::Json),
            self.context.map_or(Field::Null, Field::Json),
            out,
        )
    }

    /// [`Event::canonical_into`] with the two JSON fields given as fields (`changes` and `context`
    /// of `self` are not read): the verifier passes jsonb it serialized canonically itself.
    pub fn canonical_into_with(
        &self,
        changes: Field<'_>,
        context: Field<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CanonicalError> {
        fn ident<'b>(
            version: i16,
            v: Option<&'b str>,
            what: &'static str,
        ) -> Result<Field<'b>, CanonicalError> {
            Ok(match (version, v) {
                (_, None) => Field::Null,
                (1, Some(t)) => Field::Uuid(
                    *uuid::Uuid::try_parse(t)
                        .map_err(|_| CanonicalError::NotUuid(what))?
                        .as_bytes(),
                ),
                (2, Some(t)) => Field::Text(t),
                (v, _) => return Err(CanonicalError::Version(v)),
            })
        }
        fn opt_text(t: Option<&str>) -> Field<'_> {
            t.map_or(Field::Null, Field::Text)
        }
        let fields = [
            Field::Int(self.id),
            Field::Timestamp(self.occurred_at),
            ident(self.version, self.tenant, "tenant")?,
            ident(self.version, self.actor, "actor")?,
            Field::Text(self.action),
            opt_text(self.resource_type),
            opt_text(self.resource_id),
            changes,
            Field::Text(self.status),
            context,
        ];
        out.clear();
        out.extend_from_slice(if self.version == 1 {
            MAGIC_V1
        } else {
            MAGIC_V2
        });
        for f in &fields {
            encode_field(f, out)?;
        }
        Ok(())
    }
}

/// Appends one field (tag, length, bytes), writing the bytes in place.
pub fn encode_field(f: &Field<'_>, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let tag = match f {
        Field::Null => b'N',
        Field::Int(_) => b'I',
        Field::Text(_) => b'T',
        Field::Uuid(_) => b'U',
        Field::Timestamp(_) => b'S',
        Field::Json(_) | Field::CanonicalJson(_) => b'J',
    };
    out.push(tag);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    match f {
        Field::Null => {}
        Field::Int(i) => push_int(*i, out),
        Field::Text(t) => out.extend_from_slice(t.as_bytes()),
        Field::Uuid(u) => push_uuid(u, out),
        Field::Timestamp(us) => push_timestamp(*us, out),
        Field::Json(j) => canonical_json_into(j, out)?,
        Field::CanonicalJson(j) => out.extend_from_slice(j),
    }
    let n = out.len() - at - 4;
    let len = u32::try_from(n).map_err(|_| CanonicalError::TooLong(n))?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn push_int(i: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut n = i.unsigned_abs();
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[k..]);
}

/// `n` as exactly `width` decimal digits (n < 10^width).
fn push_digits(n: u64, width: usize, out: &mut Vec<u8>) {
    let mut buf = [b'0'; 20];
    let mut n = n;
    for k in (0..width).rev() {
        buf[k] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

fn push_uuid(u: &[u8; 16], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
}

fn push_timestamp(us: i64, out: &mut Vec<u8>) {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000) as u64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u64;
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_digits(y as u64, 4, out);
    } else {
        out.extend_from_slice(format!("{y:+05}").as_bytes());
    }
    out.push(b'-');
    push_digits(u64::from(m), 2, out);
    out.push(b'-');
    push_digits(u64::from(d), 2, out);
    out.push(b'T');
    push_digits(sod / 3600, 2, out);
    out.push(b':');
    push_digits(sod / 60 % 60, 2, out);
    out.push(b':');
    push_digits(sod % 60, 2, out);
    out.push(b'.');
    push_digits(micros, 6, out);
    out.push(b'Z');
}

/// Splits a sequence of encoded fields back into `(tag, bytes)` pairs: how a record queued for the
/// worker is read back, and how a verifier outside the database can inspect an event.
pub fn decode_fields(mut b: &[u8]) -> Result<Vec<(u8, &[u8])>, CanonicalError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 5 || !matches!(b[0], b'N' | b'I' | b'T' | b'U' | b'S' | b'J') {
            return Err(CanonicalError::Json {
                at: 0,
                what: "not an encoded field",
            });
        }
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let body = b.get(5..5 + len).ok_or(CanonicalError::Json {
            at: 0,
            what: "truncated field",
        })?;
        out.push((b[0], body));
        b = &b[5 + len..];
    }
    Ok(out)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Microseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC; years before 1 or after
/// 9999 keep their sign and all their digits).
pub fn format_timestamp(us: i64) -> String {
    let mut out = Vec::with_capacity(27);
    push_timestamp(us, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// `text` (any valid JSON) in canonical form.
pub fn canonical_json(text: &str) -> Result<String, CanonicalError> {
    let mut out = Vec::with_capacity(text.len());
    canonical_json_into(text, &mut out)?;
    // only valid UTF-8 is ever written: slices of the (UTF-8) input, escapes and ASCII
    Ok(String::from_utf8(out).unwrap_or_default())
}

/// [`canonical_json`], appended to `out`.
pub fn canonical_json_into(text: &str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
        depth: 0,
    };
    p.ws();
    p.value(out)?;
    p.ws();
    if p.at != p.s.len() {
        return Err(p.err("trailing characters"));
    }
    Ok(())
}

const MAX_DEPTH: usize = 512;

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, what: &'static str) -> CanonicalError {
        CanonicalError::Json { at: self.at, what }
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &'static str, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            out.extend_from_slice(word.as_bytes());
            Ok(())
        } else {
            Err(self.err("unknown literal"))
        }
    }

    fn value(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        match self.s.get(self.at) {
            Some(b'{') => self.object(out),
            Some(b'[') => self.array(out),
            Some(b'"') => {
                let s = self.string()?;
                quote_string(&s, out);
                Ok(())
            }
            Some(b't') => self.literal("true", out),
            Some(b'f') => self.literal("false", out),
            Some(b'n') => self.literal("null", out),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(_) => Err(self.err("unexpected character")),
            None => Err(self.err("unexpected end")),
        }
    }

    fn enter(&mut self) -> Result<(), CanonicalError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.at += 1;
        self.ws();
        Ok(())
    }

    fn object(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.enter()?;
        // every member's canonical value goes into one buffer; members are (key, range) pairs
        let mut values: Vec<u8> = Vec::new();
        let mut members: Vec<(std::borrow::Cow<'_, str>, usize, usize)> = Vec::new();
        if self.s.get(self.at) == Some(&b'}') {
            self.at += 1;
        } else {
            loop {
                if self.s.get(self.at) != Some(&b'"') {
                    return Err(self.err("expected a key"));
                }
                let key = self.string()?;
                self.ws();
                if self.s.get(self.at) != Some(&b':') {
                    return Err(self.err("expected ':'"));
                }
                self.at += 1;
                self.ws();
                let start = values.len();
                self.value(&mut values)?;
                members.push((key, start, values.len()));
                self.ws();
                match self.s.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        self.ws();
                    }
                    Some(b'}') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or '}'")),
                }
            }
        }
        // a stable sort: of equal keys the last one written is kept, as jsonb does
        members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out.push(b'{');
        let mut first = true;
        for (i, (k, start, end)) in members.iter().enumerate() {
            if members.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            quote_string(k, out);
            out.push(b':');
            out.extend_from_slice(&values[*start..*end]);
        }
        out.push(b'}');
        self.depth -= 1;
        Ok(())
    }

    fn array(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        self.enter()?;
        out.push(b'[');
        if self.s.get(self.at) == Some(&b']') {
            self.at += 1;
        } else {
            loop {
                self.value(out)?;
                self.ws();
                match self.s.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        self.ws();
                        out.push(b',');
                    }
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ']'")),
                }
            }
        }
        out.push(b']');
        self.depth -= 1;
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, CanonicalError> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.err("short \\u escape"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(h, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(v)
    }

    /// A string literal at `at` (on its opening quote), decoded.
    fn string(&mut self) -> Result<std::borrow::Cow<'a, str>, CanonicalError> {
        self.at += 1;
        // fast path: no escape before the closing quote, so the string is the input's bytes
        let start = self.at;
        let mut end = start;
        while self
            .s
            .get(end)
            .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
        {
            end += 1;
        }
        if self.s.get(end) == Some(&b'"') {
            self.at = end + 1;
            let s: &'a [u8] = self.s;
            // SAFETY: the input is a &str, and both ends of the slice are next to ASCII quotes,
            // so the slice is whole UTF-8 characters
            return Ok(std::borrow::Cow::Borrowed(unsafe {
                std::str::from_utf8_unchecked(&s[start..end])
            }));
        }
        let mut s = String::new();
        loop {
            let start = self.at;
            while self
                .s
                .get(self.at)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            s.push_str(
                std::str::from_utf8(&self.s[start..self.at])
                    .map_err(|_| self.err("invalid UTF-8"))?,
            );
            match self.s.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(std::borrow::Cow::Owned(s));
                }
                Some(b'\\') => {
                    self.at += 1;
                    let e = *self
                        .s
                        .get(self.at)
                        .ok_or_else(|| self.err("unexpected end"))?;
                    self.at += 1;
                    match e {
                        b'"' => s.push('"'),
                        b'\\' => s.push('\\'),
                        b'/' => s.push('/'),
                        b'b' => s.push('\u{8}'),
                        b'f' => s.push('\u{c}'),
                        b'n' => s.push('\n'),
                        b'r' => s.push('\r'),
                        b't' => s.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.at..self.at + 2) != Some(b"\\u") {
                                    return Err(self.err("lone surrogate"));
                                }
                                self.at += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("lone surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            s.push(char::from_u32(c).ok_or_else(|| self.err("lone surrogate"))?);
                        }
                        _ => return Err(self.err("unknown escape")),
                    }
                }
                Some(_) => return Err(self.err("control character in string")),
                None => return Err(self.err("unterminated string")),
            }
        }
    }

    fn digits(&mut self) -> &'a str {
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        // SAFETY of from_utf8: ASCII digits only
        let s: &'a [u8] = self.s;
        std::str::from_utf8(&s[start..self.at]).unwrap_or("")
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        let negative = self.s.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let int = self.digits();
        if int.is_empty() || (int.len() > 1 && int.starts_with('0')) {
            return Err(self.err("bad number"));
        }
        let mut frac = "";
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            frac = self.digits();
            if frac.is_empty() {
                return Err(self.err("bad number"));
            }
        }
        let mut exp: i64 = 0;
        if matches!(self.s.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            let neg = match self.s.get(self.at) {
                Some(b'-') => {
                    self.at += 1;
                    true
                }
                Some(b'+') => {
                    self.at += 1;
                    false
                }
                _ => false,
            };
            let e = self.digits();
            if e.is_empty() || e.len() > 6 {
                return Err(self.err("bad exponent"));
            }
            exp = e.parse::<i64>().map_err(|_| self.err("bad exponent"))?;
            if neg {
                exp = -exp;
            }
        }
        if exp == 0 {
            // already plain (no leading zeros: checked above); only a negative zero changes
            let zero = int == "0" && frac.bytes().all(|b| b == b'0');
            if negative && !zero {
                out.push(b'-');
            }
            out.extend_from_slice(int.as_bytes());
            if !frac.is_empty() {
                out.push(b'.');
                out.extend_from_slice(frac.as_bytes());
            }
        } else {
            out.extend_from_slice(plain_decimal(negative, int, frac, exp).as_bytes());
        }
        Ok(())
    }
}

/// Plain decimal text of `[-]int.frac × 10^exp`: the point moved, leading zeros of the integer part
/// dropped, as many fraction digits as the value had scale (`frac.len() - exp`, at least 0), and no
/// sign on zero.
fn plain_decimal(negative: bool, int: &str, frac: &str, exp: i64) -> String {
    let digits: String = format!("{int}{frac}");
    let point = int.len() as i64 + exp; // position of the point within `digits`
    let (int_part, frac_part) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let is_zero = int_part == "0" && frac_part.bytes().all(|b| b == b'0');
    let mut s = String::new();
    if negative && !is_zero {
        s.push('-');
    }
    s.push_str(int_part);
    if !frac_part.is_empty() {
        s.push('.');
        s.push_str(&frac_part);
    }
    s
}

/// A parsed string as canonical JSON: one borrowed from the input had nothing to escape (no
/// quote, backslash or control character: the fast path of `Parser::string`), so it is copied.
#[allow(clippy::ptr_arg)] // whether it is borrowed is the point
fn quote_string(s: &std::borrow::Cow<'_, str>, out: &mut Vec<u8>) {
    match s {
        std::borrow::Cow::Borrowed(b) => {
            out.push(b'"');
            out.extend_from_slice(b.as_bytes());
            out.push(b'"');
        }
        std::borrow::Cow::Owned(o) => escape_bytes(o, out),
    }
}

/// Appends `s` as a canonical JSON string.
pub fn escape_into(s: &str, out: &mut String) {
    // SAFETY: escape_bytes appends the UTF-8 input's own runs and ASCII escapes: valid UTF-8.
    escape_bytes(s, unsafe { out.as_mut_vec() });
}

/// [`escape_into`] for a byte buffer.
/// Whether any byte of `w` needs escaping: below 0x20, `"` or `\\` (exact, for eight bytes at
/// once: the has-less and has-zero bit tricks).
fn word_needs_escape(w: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    let q = w ^ (LO * u64::from(b'"'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let s = w ^ (LO * u64::from(b'\\'));
    let backslash = s.wrapping_sub(LO) & !s & HI;
    (control | quote | backslash) != 0
}

pub fn escape_bytes(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    // the usual string has nothing to escape: skipped eight bytes at a time
    let mut clean = 0;
    while clean + 8 <= b.len() {
        let w = u64::from_le_bytes(b[clean..clean + 8].try_into().unwrap_or([0; 8]));
        if word_needs_escape(w) {
            break;
        }
        clean += 8;
    }
    let mut run = 0;
    for (i, &c) in b.iter().enumerate().skip(clean) {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            c if c < 0x20 => {
                out.extend_from_slice(&b[run..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
                run = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[run..i]);
        out.extend_from_slice(esc);
        run = i + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_check_finds_every_byte_to_escape_and_no_other() {
        for c in 0u8..=255 {
            for pos in 0..8 {
                let mut w = [b'a'; 8];
                w[pos] = c;
                let expect = c < 0x20 || c == b'"' || c == b'\\';
                assert_eq!(
                    word_needs_escape(u64::from_le_bytes(w)),
                    expect,
                    "byte {c:#x} at {pos}"
                );
            }
        }
        // next to bytes that borrow in the subtraction
        let w = [0x00, 0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff, 0x1f];
        assert!(word_needs_escape(u64::from_le_bytes(w)));
        let w = [0x21, 0x23, 0x5b, 0x5d, 0x80, 0xff, 0x20, 0x7f];
        assert!(!word_needs_escape(u64::from_le_bytes(w)));
    }

    fn event<'a>(changes: Option<&'a str>, occurred_at: i64) -> Event<'a> {
        Event {
            version: 1,
            id: 42,
            occurred_at,
            tenant: Some("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"),
            actor: None,
            action: "update",
            resource_type: Some("public.docs"),
            resource_id: Some("{\"id\": 7}"),
            changes,
            status: "success",
            context: Some(r#"{"pid": 123, "application_name": "app"}"#),
        }
    }

    #[test]
    fn version_1_keeps_uuid_tenants_and_version_2_writes_identifiers_as_text() {
        let v1 = event(None, 0);
        let b1 = v1.canonical().unwrap();
        assert!(b1.starts_with(MAGIC_V1));
        // id, occurred_at, then the tenant as a uuid field
        let mut uuid_field = Vec::new();
        encode_field(&Field::Uuid([0xaa; 16]), &mut uuid_field).unwrap();
        assert!(b1.windows(uuid_field.len()).any(|w| w == uuid_field));
        let v2 = Event {
            version: 2,
            ..event(None, 0)
        };
        let b2 = v2.canonical().unwrap();
        assert!(b2.starts_with(MAGIC_V2));
        let mut text_field = Vec::new();
        encode_field(
            &Field::Text("aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"),
            &mut text_field,
        )
        .unwrap();
        assert!(b2.windows(text_field.len()).any(|w| w == text_field));
        assert_ne!(b1, b2, "the version is part of what is hashed");
        for t in ["42", "org_2abcXYZ9kQ", "auth0|5f7c"] {
            let e = Event {
                version: 2,
                tenant: Some(t),
                actor: Some(t),
                ..event(None, 0)
            };
            assert!(e.canonical().is_ok());
            let old = Event {
                version: 1,
                tenant: Some(t),
                ..event(None, 0)
            };
            assert_eq!(
                old.canonical(),
                Err(CanonicalError::NotUuid("tenant")),
                "a v1 event had uuid tenants"
            );
        }
        let bigint = Event {
            version: 2,
            tenant: Some("42"),
            ..event(None, 0)
        };
        let text = Event {
            version: 2,
            tenant: Some("042"),
            ..event(None, 0)
        };
        assert_ne!(bigint.canonical().unwrap(), text.canonical().unwrap());
        assert_eq!(
            Event {
                version: 3,
                ..event(None, 0)
            }
            .canonical(),
            Err(CanonicalError::Version(3))
        );
    }

    #[test]
    fn text_with_unicode_is_its_utf8_bytes() {
        let mut out = Vec::new();
        encode_field(&Field::Text("Zoë 日本 😀"), &mut out).unwrap();
        let bytes = "Zoë 日本 😀".as_bytes();
        assert_eq!(out[0], b'T');
        assert_eq!(&out[1..5], &(bytes.len() as u32).to_be_bytes());
        assert_eq!(&out[5..], bytes);
    }

    #[test]
    fn null_and_empty_text_differ() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_field(&Field::Null, &mut a).unwrap();
        encode_field(&Field::Text(""), &mut b).unwrap();
        assert_eq!(a, b"N\0\0\0\0");
        assert_eq!(b, b"T\0\0\0\0");
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        // ("ab", "c") and ("a", "bc") must not serialize alike
        let e1 = Event {
            resource_type: Some("ab"),
            resource_id: Some("c"),
            ..event(None, 0)
        };
        let e2 = Event {
            resource_type: Some("a"),
            resource_id: Some("bc"),
            ..event(None, 0)
        };
        assert_ne!(e1.canonical().unwrap(), e2.canonical().unwrap());
    }

    #[test]
    fn numbers_are_plain_decimals_that_keep_their_scale() {
        for (input, want) in [
            ("0", "0"),
            ("-0", "0"),
            ("-0.00", "0.00"),
            ("12", "12"),
            ("-12.50", "-12.50"),
            ("1.5e2", "150"),
            ("1.50e1", "15.0"),
            ("1E+2", "100"),
            ("12e-3", "0.012"),
            ("0.001e-2", "0.00001"),
            (
                "123456789012345678901234567890.123456789",
                "123456789012345678901234567890.123456789",
            ),
        ] {
            assert_eq!(canonical_json(input).unwrap(), want, "{input}");
        }
        for bad in ["01", "1.", ".5", "+1", "1e", "--1", "1e1234567"] {
            assert!(canonical_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_utc_whatever_the_offset_they_were_written_with() {
        // 2026-11-23 19:35:37.5+01 and 2026-11-23 18:35:37.5Z are the same instant
        let utc = 1_795_458_937_500_000_i64;
        let plus_one = utc; // the offset only changes how it was written, not the instant
        assert_eq!(format_timestamp(utc), "2026-11-23T18:35:37.500000Z");
        assert_eq!(format_timestamp(plus_one), format_timestamp(utc));
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999999Z");
        // 2000-02-29, a leap day in a century year divisible by 400
        assert_eq!(
            format_timestamp(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        // PostgreSQL's range reaches beyond year 9999 and before year 1
        assert!(format_timestamp(i64::MAX / 2).starts_with('+'));
        assert!(format_timestamp(-62_200_000_000_000_000).starts_with('-'));
    }

    #[test]
    fn json_key_order_and_whitespace_do_not_matter() {
        let a = canonical_json(r#"{"b": 1, "a": {"y": [1, 2], "x": null}}"#).unwrap();
        let b = canonical_json("{\n  \"a\":{\"x\":null,\"y\":[1,2]},\"b\":1}").unwrap();
        assert_eq!(a, r#"{"a":{"x":null,"y":[1,2]},"b":1}"#);
        assert_eq!(a, b);
    }

    #[test]
    fn keys_sort_by_bytes_and_the_last_repeated_key_wins() {
        assert_eq!(
            canonical_json(r#"{"é": 1, "z": 2, "Z": 3, "z": 4}"#).unwrap(),
            r#"{"Z":3,"z":4,"é":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_one_way() {
        assert_eq!(
            canonical_json(r#""a\/b \u00e9 \ud83d\ude00 \u0001 \t \"q\" \\""#).unwrap(),
            "\"a/b é 😀 \\u0001 \\t \\\"q\\\" \\\\\""
        );
        for bad in [r#""\ud83d""#, r#""\x""#, "\"a\u{1}\"", r#""open"#] {
            assert!(canonical_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_and_too_deep_json_is_refused() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "[1] 2", "{1: 2}"] {
            assert!(canonical_json(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(canonical_json(&deep).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(canonical_json(&ok).is_ok());
    }

    #[test]
    fn an_event_serializes_the_same_from_equivalent_json() {
        let a = event(Some(r#"{"new": {"title": "x", "n": 1.50}}"#), 7);
        let b = event(Some(r#"{ "new" : { "n" : 15.0e-1, "title" : "x" } }"#), 7);
        assert_eq!(a.canonical().unwrap(), b.canonical().unwrap());
        let c = event(Some(r#"{"new": {"title": "y", "n": 1.50}}"#), 7);
        assert_ne!(a.canonical().unwrap(), c.canonical().unwrap());
    }

    #[test]
    fn encoded_fields_decode_back() {
        let e = event(Some(r#"{"a": 1}"#), 5);
        let c = e.canonical().unwrap();
        let fields = decode_fields(&c[MAGIC_V1.len()..]).unwrap();
        assert_eq!(fields.len(), 10);
        assert_eq!(fields[0], (b'I', &b"42"[..]));
        assert_eq!(fields[3], (b'N', &b""[..]));
        assert_eq!(fields[7], (b'J', &br#"{"a":1}"#[..]));
        assert!(decode_fields(&c[MAGIC_V1.len()..c.len() - 1]).is_err());
        assert!(decode_fields(b"X\0\0\0\0").is_err());
    }

    #[test]
    fn a_known_event_has_known_bytes() {
        let e = event(
            Some(r#"{"old": {"t": "a"}, "new": {"t": "b"}}"#),
            1_795_458_937_500_000,
        );
        let c = e.canonical().unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(b"warden.audit.v1");
        for (tag, val) in [
            (b'I', "42".as_bytes()),
            (b'S', b"2026-11-23T18:35:37.500000Z"),
            (b'U', b"aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"),
            (b'N', b""),
            (b'T', b"update"),
            (b'T', b"public.docs"),
            (b'T', b"{\"id\": 7}"),
            (b'J', br#"{"new":{"t":"b"},"old":{"t":"a"}}"#),
            (b'T', b"success"),
            (b'J', br#"{"application_name":"app","pid":123}"#),
        ] {
            want.push(tag);
            want.extend_from_slice(&(val.len() as u32).to_be_bytes());
            want.extend_from_slice(val);
        }
        assert_eq!(c, want);
    }
}
