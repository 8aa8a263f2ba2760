//! Statement text for the audit trail with the literals that could hold secrets removed: the
//! password of `CREATE ROLE ... PASSWORD '...'`, `ALTER ROLE ... PASSWORD '...'` (and `USER`
//! synonyms). For those statements every string literal is replaced by `'<redacted>'`: quoted
//! (`'...'`, with doubled quotes), escape strings (`E'...'`, with backslashes), Unicode strings
//! (`U&'...'`) and dollar-quoted ones (`$tag$...$tag$`). Identifiers in double quotes and comments
//! are kept. The lexer errs on the side of redacting: an unterminated literal is redacted to the
//! end of the text.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib audit`.

pub const MARKER: &str = "'<redacted>'";

/// Whether `sql` may hold a password in a literal: a CREATE/ALTER ROLE or USER statement (after any
/// leading comments), or any text that mentions `password` at all (a multi-statement string, a
/// comment placed first to hide the command). Errs on the side of redacting.
pub fn may_hold_secrets(sql: &str) -> bool {
    if sql.to_ascii_lowercase().contains("password") {
        return true;
    }
    let words: Vec<String> = strip_leading_comments(sql)
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .filter(|w| !w.is_empty())
        .take(2)
        .map(str::to_ascii_lowercase)
        .collect();
    matches!(
        words.as_slice(),
        [a, b] if (a == "create" || a == "alter") && (b == "role" || b == "user")
    )
}

fn strip_leading_comments(mut sql: &str) -> &str {
    loop {
        sql = sql.trim_start();
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if sql.starts_with("/*") {
            sql = &sql[end_of_block_comment(sql.as_bytes(), 0)..];
        } else {
            return sql;
        }
    }
}

/// `sql` with every string literal replaced by [`MARKER`].
pub fn redact_literals(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            // -- comment to end of line
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => i = end_of_block_comment(b, i),
            // "quoted identifier"
            b'"' => {
                i += 1;
                while i < b.len() {
                    if b[i] == b'"' {
                        if b.get(i + 1) == Some(&b'"') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(b[i - 1], b'e' | b'E')
                    && (i < 2 || !(b[i - 2].is_ascii_alphanumeric() || b[i - 2] == b'_'));
                let start = if escapes { i - 1 } else { i };
                let end = end_of_quoted(b, i + 1, escapes);
                out.push_str(&sql[copied..start]);
                out.push_str(MARKER);
                copied = end;
                i = end;
            }
            b'$' if i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') => {
                if let Some(tag_len) = dollar_tag(&b[i..]) {
                    let tag = &b[i..i + tag_len];
                    let body = i + tag_len;
                    let end = b[body..]
                        .windows(tag_len)
                        .position(|w| w == tag)
                        .map_or(b.len(), |p| body + p + tag_len);
                    out.push_str(&sql[copied..i]);
                    out.push_str(MARKER);
                    copied = end;
                    i = end;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    out
}

/// The end (one past the closing `*/`) of the block comment opening at `i`; PostgreSQL nests them.
/// The end of the text when it is not closed.
fn end_of_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end (one past the closing quote) of a quoted literal whose body starts at `i`.
fn end_of_quoted(b: &[u8], mut i: usize, escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The length of a dollar-quote tag (`$$` or `$name$`) at the start of `b`, if there is one.
fn dollar_tag(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        if j == 1 && b[j].is_ascii_digit() {
            return None; // $1 is a parameter
        }
        j += 1;
    }
    (b.get(j) == Some(&b'$')).then_some(j + 1)
}

/// The statement text to record: literals redacted when the statement may hold a secret.
pub fn for_audit(sql: &str) -> String {
    if may_hold_secrets(sql) {
        redact_literals(sql)
    } else {
        sql.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_passwords_never_survive() {
        for sql in [
            "CREATE ROLE app LOGIN PASSWORD 's3cret'",
            "create user app with password 's3cret' valid until '2030-01-01'",
            "ALTER ROLE app PASSWORD E's3\\'cret'",
            "ALTER USER app PASSWORD 's3''cret'",
            "ALTER ROLE app PASSWORD $$s3cret$$",
            "ALTER ROLE app PASSWORD $pw$s3cret$pw$",
            "ALTER ROLE app PASSWORD U&'s3cret'",
            "  alter\\nrole app password 's3cret",
            "CREATE ROLE app /* note */ PASSWORD 's3cret' -- trailing",
        ] {
            let sql = sql.replace("\\n", "\n");
            let out = for_audit(&sql);
            assert!(!out.contains("s3"), "{sql:?} -> {out:?}");
            assert!(out.contains(MARKER), "{sql:?} -> {out:?}");
        }
    }

    #[test]
    fn the_rest_of_the_statement_is_kept() {
        assert_eq!(
            for_audit("CREATE ROLE \"It's\" LOGIN PASSWORD 'x' CONNECTION LIMIT 3"),
            "CREATE ROLE \"It's\" LOGIN PASSWORD '<redacted>' CONNECTION LIMIT 3"
        );
        assert_eq!(
            for_audit("ALTER ROLE app SET search_path = 'a', $1"),
            "ALTER ROLE app SET search_path = '<redacted>', $1"
        );
        assert_eq!(
            for_audit("ALTER ROLE app PASSWORD 'x' -- don't"),
            "ALTER ROLE app PASSWORD '<redacted>' -- don't"
        );
    }

    #[test]
    fn other_statements_are_kept_whole() {
        for sql in [
            "GRANT SELECT ON docs TO app",
            "CREATE POLICY p ON docs USING (tenant_id = 'x')",
            "ALTER TABLE docs DISABLE TRIGGER ALL",
        ] {
            assert_eq!(for_audit(sql), sql);
        }
        assert!(!may_hold_secrets("GRANT role_admin TO app"));
        assert!(may_hold_secrets("alter USER x"));
    }

    #[test]
    fn hiding_the_command_does_not_keep_the_password() {
        for sql in [
            "/* hi */ CREATE ROLE a PASSWORD 'p4ss'",
            "-- hi\n alter role a with encrypted password 'p4ss'",
            "/* a /* nested */ one */ ALTER USER a PASSWORD 'p4ss'",
            "SELECT 1; ALTER ROLE a PASSWORD 'p4ss'",
        ] {
            let sql = sql.replace("\\n", "\n");
            assert!(!for_audit(&sql).contains("p4ss"), "{sql:?}");
        }
        assert!(may_hold_secrets("/* x */ create role a"));
    }

    #[test]
    fn identifiers_ending_in_e_are_not_escape_strings() {
        assert_eq!(
            redact_literals("ALTER ROLE some_role PASSWORD 'a\\' x"),
            "ALTER ROLE some_role PASSWORD '<redacted>' x"
        );
        assert_eq!(
            redact_literals("ALTER ROLE r PASSWORD e'a\\'b' x"),
            "ALTER ROLE r PASSWORD '<redacted>' x"
        );
    }
}
