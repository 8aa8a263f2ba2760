//! Access levels and their implication order: read < write < delete < admin.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib level`.

use std::fmt;
use std::str::FromStr;

/// A permission level. Each level implies every level below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Read = 1,
    Write = 2,
    Delete = 3,
    Admin = 4,
}

/// The text was not one of `read`, `write`, `delete`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a warden level")]
pub struct UnknownLevel(pub String);

impl Level {
    pub const ALL: [Level; 4] = [Level::Read, Level::Write, Level::Delete, Level::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::Write => "write",
            Level::Delete => "delete",
            Level::Admin => "admin",
        }
    }

    /// Does holding `self` grant `required`?
    pub fn implies(self, required: Level) -> bool {
        self >= required
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    /// Exact, lower-case names only: a level is a security decision, so `READ` or ` read` are
    /// refused rather than guessed at.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == s)
            .ok_or_else(|| UnknownLevel(s.to_string()))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_level_implies_itself_and_those_below() {
        for (i, held) in Level::ALL.iter().enumerate() {
            for (j, required) in Level::ALL.iter().enumerate() {
                assert_eq!(
                    held.implies(*required),
                    i >= j,
                    "{held} implies {required}?"
                );
            }
        }
    }

    #[test]
    fn parse_round_trips_every_level() {
        for l in Level::ALL {
            assert_eq!(l.as_str().parse::<Level>(), Ok(l));
        }
    }

    #[test]
    fn parse_refuses_unknown_case_and_padding() {
        for bad in ["", "READ", " read", "read ", "owner", "superuser", "Admin"] {
            assert_eq!(bad.parse::<Level>(), Err(UnknownLevel(bad.to_string())));
        }
    }
}
