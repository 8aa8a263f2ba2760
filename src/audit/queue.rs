//! A bounded queue of byte records, laid out in one fixed buffer: what the audit trail will keep in
//! shared memory for events that must be recorded even though the transaction that produced them is
//! about to fail (a denied authentication, a refused destruction). A backend pushes under an
//! exclusive lock and never waits for room: when the queue is full the push fails, the overflow is
//! counted, and the caller's own error still stands. The worker that commits the events pops them
//! in batches.
//!
//! This module is only the data structure, so that it can be tested without a server; the lock, the
//! shared memory and the worker are the server side's.
//!
//! Layout: a ring of `CAPACITY` bytes; each record is a 4-byte big-endian length and its bytes, and
//! may wrap around the end of the ring. `head` and `tail` count bytes ever read and written (they
//! never wrap), so `tail - head` is the bytes in use.
//!
//! Pure logic, no database: `cargo test --features pg15 --lib audit`.

/// Bytes of the ring (one ring per database the sealing worker serves): room for a few thousand
/// events between two passes of the worker (the PHI read log queues one per statement).
pub const CAPACITY: usize = 1 << 20;

/// A record longer than this is refused outright (an event is a few hundred bytes).
pub const MAX_RECORD: usize = 1 << 14;

/// The queue: counters and the ring. `#[repr(C)]` and free of pointers, so it can live in shared
/// memory as it is.
#[repr(C)]
pub struct Ring {
    head: u64,
    tail: u64,
    /// Records pushed since the server started.
    pub pushed: u64,
    /// Records refused because the ring was full or they were too long.
    pub overflowed: u64,
    bytes: [u8; CAPACITY],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is full")]
    Full,
    #[error("a record of {0} bytes is longer than the queue accepts ({MAX_RECORD})")]
    TooLong(usize),
}

impl Ring {
    /// An empty ring on the heap (all zero bytes is the empty state), without building the 64 KiB
    /// value on the stack first.
    pub fn boxed() -> Box<Ring> {
        // SAFETY: every field is an integer or an array of bytes, for which zero is valid.
        unsafe { Box::<Ring>::new_zeroed().assume_init() }
    }

    /// Bytes in use (records and their length prefixes).
    pub fn used(&self) -> usize {
        (self.tail - self.head) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.tail
    }

    fn write_at(&mut self, pos: u64, data: &[u8]) {
        let start = (pos % CAPACITY as u64) as usize;
        let first = data.len().min(CAPACITY - start);
        self.bytes[start..start + first].copy_from_slice(&data[..first]);
        self.bytes[..data.len() - first].copy_from_slice(&data[first..]);
    }

    fn read_at(&self, pos: u64, out: &mut [u8]) {
        let start = (pos % CAPACITY as u64) as usize;
        let first = out.len().min(CAPACITY - start);
        out[..first].copy_from_slice(&self.bytes[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.bytes[..rest]);
    }

    /// Appends a record, or refuses it (and counts the overflow) when it does not fit.
    pub fn push(&mut self, record: &[u8]) -> Result<(), QueueError> {
        if record.len() > MAX_RECORD {
            self.overflowed += 1;
            return Err(QueueError::TooLong(record.len()));
        }
        let need = 4 + record.len();
        if CAPACITY - self.used() < need {
            self.overflowed += 1;
            return Err(QueueError::Full);
        }
        let len = (record.len() as u32).to_be_bytes();
        self.write_at(self.tail, &len);
        self.write_at(self.tail + 4, record);
        self.tail += need as u64;
        self.pushed += 1;
        Ok(())
    }

    /// Removes and returns up to `max` records, oldest first.
    pub fn pop(&mut self, max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < max && !self.is_empty() {
            let mut len = [0u8; 4];
            self.read_at(self.head, &mut len);
            let len = u32::from_be_bytes(len) as usize;
            let mut record = vec![0u8; len];
            self.read_at(self.head + 4, &mut record);
            self.head += 4 + len as u64;
            out.push(record);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Box<Ring> {
        Ring::boxed()
    }

    #[test]
    fn records_come_out_in_order_and_intact() {
        let mut r = ring();
        for i in 0..100u32 {
            r.push(format!("event {i}").as_bytes()).unwrap();
        }
        let got = r.pop(1000);
        assert_eq!(got.len(), 100);
        assert_eq!(got[0], b"event 0");
        assert_eq!(got[99], b"event 99");
        assert!(r.is_empty());
        assert_eq!(r.pushed, 100);
    }

    #[test]
    fn pop_takes_at_most_the_batch_asked_for() {
        let mut r = ring();
        for i in 0..10u8 {
            r.push(&[i]).unwrap();
        }
        assert_eq!(r.pop(3), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(r.pop(100).len(), 7);
    }

    #[test]
    fn a_full_queue_refuses_and_counts_without_losing_what_it_holds() {
        let mut r = ring();
        let record = vec![7u8; 1000];
        let mut accepted = 0;
        while r.push(&record).is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, CAPACITY / 1004);
        assert_eq!(r.push(&record), Err(QueueError::Full));
        assert_eq!(r.overflowed, 2);
        let got = r.pop(usize::MAX);
        assert_eq!(got.len(), accepted);
        assert!(got.iter().all(|g| *g == record));
        // room again once drained
        assert!(r.push(&record).is_ok());
    }

    #[test]
    fn records_wrap_around_the_end_of_the_ring() {
        let mut r = ring();
        // fill and drain repeatedly with a size that does not divide the capacity
        let mut n: u64 = 0;
        for round in 0..50u64 {
            let mut pushed = Vec::new();
            for i in 0..100u64 {
                let rec = format!(
                    "{round}-{i}-{}",
                    "x".repeat(((round * 37 + i * 11) % 3000) as usize)
                );
                if r.push(rec.as_bytes()).is_ok() {
                    pushed.push(rec);
                }
            }
            let got = r.pop(usize::MAX);
            assert_eq!(got.len(), pushed.len());
            for (g, p) in got.iter().zip(&pushed) {
                assert_eq!(g, p.as_bytes());
            }
            n += pushed.len() as u64;
        }
        assert_eq!(r.pushed, n);
        assert!(r.tail > CAPACITY as u64 * 2, "the test must have wrapped");
    }

    #[test]
    fn an_overlong_record_is_refused_and_counted() {
        let mut r = ring();
        assert_eq!(
            r.push(&vec![0; MAX_RECORD + 1]),
            Err(QueueError::TooLong(MAX_RECORD + 1))
        );
        assert_eq!(r.overflowed, 1);
        assert!(r.push(&vec![0; MAX_RECORD]).is_ok());
    }

    #[test]
    fn empty_records_are_records() {
        let mut r = ring();
        r.push(b"").unwrap();
        r.push(b"x").unwrap();
        assert_eq!(r.pop(10), vec![Vec::<u8>::new(), b"x".to_vec()]);
    }
}
