//! The hash chain over sealed audit events, and its verification.
//!
//! Sealed events carry consecutive ids (1, 2, 3, ... with no gap: the sealer assigns them) and
//! `hash = SHA-256(prev_hash || canonical(event))`, where `prev_hash` is the previous event's hash
//! (32 zero bytes before the first event, or the hash a purge checkpoint kept). What a verifier can
//! prove from the events alone: that every event still hashes to what the next one links to, and
//! that no id is missing in between. What it cannot prove alone: that nothing was appended with
//! recomputed hashes, nothing rewritten from some point on with recomputed hashes, or nothing cut
//! from the end; for those it compares with a digest (an id and its hash) kept outside the database.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib audit`.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The `prev_hash` of the first event ever sealed.
pub const GENESIS: Hash = [0; 32];

/// `SHA-256(prev || canonical)`.
pub fn link(prev: &Hash, canonical: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// Why the chain is broken at an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// The event's id is not the one after the previous event's.
    Gap { expected: i64 },
    /// Its `prev_hash` is not the previous event's hash (an event before it was changed, removed
    /// or reordered).
    Link,
    /// Its `hash` does not match its own content (the event was changed).
    Content,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Gap { expected } => write!(f, "id {expected} is missing"),
            Break::Link => f.write_str("prev_hash does not match the previous event's hash"),
            Break::Content => f.write_str("hash does not match the event's content"),
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checked: u64,
    /// The last event that verified, with its hash.
    pub head: Option<(i64, Hash)>,
    /// The first event that did not, and why.
    pub first_bad: Option<(i64, Break)>,
}

impl Report {
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Checks events fed in id order. Verification stops at the first break.
pub struct Verifier {
    prev: Option<(i64, Hash)>,
    checked: u64,
    first_bad: Option<(i64, Break)>,
}

impl Verifier {
    /// Starting from the beginning of the chain (`None`), or after a known event: the previous
    /// event of a range, or a purge checkpoint (`Some((id, hash))`).
    pub fn new(after: Option<(i64, Hash)>) -> Verifier {
        Verifier {
            prev: after,
            checked: 0,
            first_bad: None,
        }
    }

    /// Checks the next event; false once the chain is broken (further events are ignored).
    pub fn push(&mut self, id: i64, prev_hash: &Hash, hash: &Hash, canonical: &[u8]) -> bool {
        let content_ok = self.first_bad.is_none() && link(prev_hash, canonical) == *hash;
        self.push_checked(id, prev_hash, hash, content_ok)
    }

    /// Whether nothing is broken so far.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }

    /// As [`Verifier::push`], with the event's own check (`hash` over `prev_hash` and its
    /// content) already done by the caller: `content_ok`.
    pub fn push_checked(
        &mut self,
        id: i64,
        prev_hash: &Hash,
        hash: &Hash,
        content_ok: bool,
    ) -> bool {
        if self.first_bad.is_some() {
            return false;
        }
        let bad = match self.prev {
            Some((pid, _)) if id != pid + 1 => Some(Break::Gap { expected: pid + 1 }),
            Some((_, ph)) if *prev_hash != ph => Some(Break::Link),
            // from the beginning of the chain: it starts at id 1, linked to GENESIS (a purge leaves
            // a checkpoint to start from instead)
            None if id != 1 => Some(Break::Gap { expected: 1 }),
            None if *prev_hash != GENESIS => Some(Break::Link),
            _ if !content_ok => Some(Break::Content),
            _ => None,
        };
        if let Some(b) = bad {
            let at = match b {
                Break::Gap { expected } => expected,
                _ => id,
            };
            self.first_bad = Some((at, b));
            return false;
        }
        self.prev = Some((id, *hash));
        self.checked += 1;
        true
    }

    pub fn finish(self) -> Report {
        Report {
            checked: self.checked,
            head: if self.first_bad.is_none() {
                self.prev
            } else {
                None
            },
            first_bad: self.first_bad,
        }
    }
}

/// Whether a digest kept outside the database (`id`, `hash`) still holds, given the verified head of
/// the chain up to and including `id`: false when the event was changed or when the chain no longer
/// reaches `id` (its tail was cut).
pub fn digest_holds(report: &Report, id: i64, hash: &Hash) -> bool {
    report.intact()
        && report
            .head
            .is_some_and(|(hid, hh)| hid == id && hh == *hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sealed chain of `n` events whose canonical content is "event <id>".
    fn chain(n: i64) -> Vec<(i64, Hash, Hash, Vec<u8>)> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|id| {
                let body = format!("event {id}").into_bytes();
                let hash = link(&prev, &body);
                let row = (id, prev, hash, body);
                prev = hash;
                row
            })
            .collect()
    }

    fn verify(rows: &[(i64, Hash, Hash, Vec<u8>)]) -> Report {
        let mut v = Verifier::new(None);
        for (id, p, h, b) in rows {
            if !v.push(*id, p, h, b) {
                break;
            }
        }
        v.finish()
    }

    fn reseal(rows: &mut [(i64, Hash, Hash, Vec<u8>)], from: usize) {
        for i in from..rows.len() {
            let prev = if i == 0 { GENESIS } else { rows[i - 1].2 };
            rows[i].1 = prev;
            rows[i].2 = link(&prev, &rows[i].3);
        }
    }

    #[test]
    fn an_untouched_chain_verifies_and_its_digest_holds() {
        let rows = chain(5);
        let r = verify(&rows);
        assert_eq!(r.checked, 5);
        assert!(r.intact());
        assert!(digest_holds(&r, 5, &rows[4].2));
    }

    #[test]
    fn a_changed_value_breaks_its_own_hash() {
        let mut rows = chain(5);
        rows[2].3 = b"event 3, edited".to_vec();
        assert_eq!(verify(&rows).first_bad, Some((3, Break::Content)));
    }

    #[test]
    fn a_deleted_event_in_the_middle_is_a_gap() {
        let mut rows = chain(5);
        rows.remove(2);
        assert_eq!(
            verify(&rows).first_bad,
            Some((3, Break::Gap { expected: 3 }))
        );
    }

    #[test]
    fn a_reordered_pair_breaks_the_links() {
        // the contents of events 2 and 3 swapped, ids kept
        let mut rows = chain(5);
        let (a, b) = (rows[1].clone(), rows[2].clone());
        rows[1] = (2, b.1, b.2, b.3);
        rows[2] = (3, a.1, a.2, a.3);
        assert_eq!(verify(&rows).first_bad, Some((2, Break::Link)));
    }

    #[test]
    fn a_forged_event_with_recomputed_hashes_is_caught_only_by_the_digest() {
        let rows = chain(5);
        let digest = (5, rows[4].2);
        let mut forged = rows.clone();
        forged[2].3 = b"forged".to_vec();
        reseal(&mut forged, 2);
        let r = verify(&forged);
        assert!(r.intact(), "the chain alone cannot tell");
        assert!(!digest_holds(&r, digest.0, &digest.1));
    }

    #[test]
    fn a_truncated_tail_is_caught_only_by_the_digest() {
        let rows = chain(5);
        let digest = (5, rows[4].2);
        let r = verify(&rows[..3]);
        assert!(r.intact());
        assert!(!digest_holds(&r, digest.0, &digest.1));
    }

    #[test]
    fn verification_can_start_after_a_checkpoint() {
        let rows = chain(6);
        let mut v = Verifier::new(Some((3, rows[2].2)));
        for (id, p, h, b) in &rows[3..] {
            assert!(v.push(*id, p, h, b));
        }
        assert_eq!(v.finish().checked, 3);
        // a checkpoint that does not match the first remaining event's link
        let mut v = Verifier::new(Some((3, GENESIS)));
        let (id, p, h, b) = &rows[3];
        assert!(!v.push(*id, p, h, b));
        assert_eq!(v.finish().first_bad, Some((4, Break::Link)));
    }

    #[test]
    fn without_a_checkpoint_the_chain_must_start_at_id_1() {
        let rows = chain(4);
        assert_eq!(
            verify(&rows[2..]).first_bad,
            Some((1, Break::Gap { expected: 1 }))
        );
    }

    #[test]
    fn the_first_event_must_link_to_genesis() {
        let mut rows = chain(2);
        rows[0].1 = [1; 32];
        rows[0].2 = link(&rows[0].1, &rows[0].3);
        assert_eq!(verify(&rows).first_bad, Some((1, Break::Link)));
    }
}
