//! CRC-32C verification of batches on their way out of a segment: each segment
//! keeps a verified range, "bytes in `[low, high)` hold batches whose CRC was
//! checked", that only grows. Appends and recovery grow it for free; the
//! first read of other bytes checks them, and grows the range over them when
//! they touch it (or when it is empty), so a consumer reading on pays once
//! and steady-state reads pay one atomic load. It never touches files:
//! callers hand it bytes already read.
//!
//! A range rather than a prefix because recovery may check only a segment's
//! tail (from the recovery point): the bytes below it were fsynced before the
//! crash and are trusted at open, but still checked on their first read; and
//! a consumer resuming in the middle of an older segment after a restart
//! starts a range where it reads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::batch::{compute_crc, BatchHeader, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};

/// Which bytes of one segment file are known to hold intact batches: `[low,
/// high)`, both in one atomic word (a segment is at most `segment.bytes`, an
/// `int`, plus one batch, so positions fit in 32 bits), so a reader always
/// sees a range that was verified as a whole.
#[derive(Debug)]
pub struct VerifiedMark {
    path: PathBuf,
    range: AtomicU64,
}

fn pack(low: u32, high: u32) -> u64 {
    (u64::from(low) << 32) | u64::from(high)
}

fn unpack(word: u64) -> (u64, u64) {
    (word >> 32, word & u64::from(u32::MAX))
}

/// The first batch of a slice that failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBatch {
    /// Byte position of the batch in the segment file.
    pub position: u64,
    /// The batch's base offset as stored (not covered by the CRC).
    pub offset: i64,
    pub reason: String,
}

impl VerifiedMark {
    /// Bytes `[0, verified)` are verified.
    pub fn new(path: &Path, verified: u64) -> Arc<VerifiedMark> {
        VerifiedMark::range(path, 0, verified)
    }

    /// Bytes `[low, high)` are verified (an empty range when `low >= high`,
    /// or past what 32 bits hold, which no segment reaches).
    pub fn range(path: &Path, low: u64, high: u64) -> Arc<VerifiedMark> {
        let word = match (u32::try_from(low), u32::try_from(high)) {
            (Ok(low), Ok(high)) if low < high => pack(low, high),
            _ => 0,
        };
        Arc::new(VerifiedMark {
            path: path.to_path_buf(),
            range: AtomicU64::new(word),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The verified range `[low, high)`.
    pub fn range_now(&self) -> (u64, u64) {
        unpack(self.range.load(Ordering::Acquire))
    }

    /// Bytes `[from, to)` were appended (validated on the way in) or checked:
    /// the range grows over them if they touch it, or becomes them if it is
    /// empty. A gap never counts.
    pub(crate) fn extend(&self, from: u64, to: u64) {
        let (Ok(from), Ok(to)) = (u32::try_from(from), u32::try_from(to)) else {
            return;
        };
        if from >= to {
            return;
        }
        let mut word = self.range.load(Ordering::Acquire);
        loop {
            let (low, high) = unpack(word);
            let (low, high) = (low as u32, high as u32);
            let grown = if low >= high {
                pack(from, to)
            } else if from <= high && to >= low {
                pack(low.min(from), high.max(to))
            } else {
                return;
            };
            if grown == word {
                return;
            }
            match self
                .range
                .compare_exchange_weak(word, grown, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return,
                Err(now) => word = now,
            }
        }
    }

    /// Checks the batches of `bytes`, read from `position` of the file and
    /// starting at a batch boundary, that lie outside the verified range
    /// (length, magic, CRC-32C), and grows the range over what it checked
    /// when that touches it. Returns how many leading bytes are whole, intact
    /// batches (all of them unless one is bad), or the bad batch when it is
    /// the first one.
    pub fn check(&self, bytes: &[u8], position: u64) -> Result<usize, BadBatch> {
        let end = position + bytes.len() as u64;
        let (low, high) = self.range_now();
        if low <= position && end <= high {
            return Ok(bytes.len());
        }
        let mut at = 0usize;
        let intact = loop {
            if at == bytes.len() {
                break None;
            }
            let file_pos = position + at as u64;
            match check_batch(&bytes[at..], low <= file_pos && file_pos < high) {
                Ok(size) => at += size,
                Err((offset, reason)) => {
                    break Some(BadBatch {
                        position: file_pos,
                        offset,
                        reason,
                    })
                }
            }
        };
        self.extend(position, position + at as u64);
        match intact {
            Some(bad) if at == 0 => Err(bad),
            _ => Ok(at),
        }
    }
}

/// Checks the batch at the start of `bytes`; returns its size, or its stored
/// base offset (-1 if unreadable) and what is wrong. With `skip_crc` only its
/// structure is checked (the mark already covers it).
fn check_batch(bytes: &[u8], skip_crc: bool) -> Result<usize, (i64, String)> {
    let h = BatchHeader::parse(bytes).map_err(|e| (-1, e.to_string()))?;
    let bad = |reason: String| (h.base_offset, reason);
    if h.magic != 2 {
        return Err(bad(format!("magic {} is not 2", h.magic)));
    }
    if h.batch_length < MIN_BATCH_LENGTH {
        return Err(bad(format!("batch length {} is too small", h.batch_length)));
    }
    let size = h.total_size();
    if size > bytes.len() {
        return Err(bad(format!(
            "batch declares {size} bytes but only {} remain",
            bytes.len()
        )));
    }
    debug_assert!(size >= BATCH_HEADER_LEN);
    if !skip_crc {
        let crc = compute_crc(&bytes[..size]);
        if crc != h.crc {
            return Err(bad(format!(
                "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                h.crc
            )));
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;

    fn three_batches() -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut sizes = Vec::new();
        for i in 0..3 {
            let mut b = batch(2, 1000 + i);
            crate::log::batch::set_base_offset(&mut b, i * 2);
            sizes.push(b.len());
            bytes.extend_from_slice(&b);
        }
        (bytes, sizes)
    }

    #[test]
    fn intact_bytes_pass_and_move_the_mark() {
        let (bytes, _) = three_batches();
        let mark = VerifiedMark::new(Path::new("x.log"), 0);
        assert_eq!(mark.check(&bytes, 0), Ok(bytes.len()));
        assert_eq!(mark.range_now().1, bytes.len() as u64);
    }

    #[test]
    fn a_flipped_record_byte_cuts_the_slice_before_its_batch() {
        let (mut bytes, sizes) = three_batches();
        let second = sizes[0];
        bytes[second + sizes[1] - 1] ^= 0xff;
        let mark = VerifiedMark::new(Path::new("x.log"), 0);
        assert_eq!(mark.check(&bytes, 0), Ok(second));
        assert_eq!(mark.range_now().1, second as u64);
        let bad = mark.check(&bytes[second..], second as u64).unwrap_err();
        assert_eq!(bad.position, second as u64);
        assert_eq!(bad.offset, 2);
        assert!(bad.reason.starts_with("CRC mismatch"), "{}", bad.reason);
        assert_eq!(
            mark.range_now().1,
            second as u64,
            "the mark never passes a bad batch"
        );
    }

    #[test]
    fn bytes_below_the_mark_are_not_checked_again() {
        let (mut bytes, sizes) = three_batches();
        bytes[sizes[0] - 1] ^= 0xff;
        let mark = VerifiedMark::new(Path::new("x.log"), sizes[0] as u64);
        assert_eq!(mark.check(&bytes, 0), Ok(bytes.len()));
    }

    #[test]
    fn a_read_that_does_not_touch_the_range_is_checked_each_time() {
        let (mut bytes, sizes) = three_batches();
        let third = sizes[0] + sizes[1];
        let mark = VerifiedMark::new(Path::new("x.log"), sizes[0] as u64);
        assert_eq!(mark.check(&bytes[third..], third as u64), Ok(sizes[2]));
        assert_eq!(mark.range_now(), (0, sizes[0] as u64));
        bytes[third + 30] ^= 1;
        assert!(mark.check(&bytes[third..], third as u64).is_err());
    }

    #[test]
    fn a_first_read_into_an_empty_range_starts_it_where_it_reads() {
        let (mut bytes, sizes) = three_batches();
        let second = sizes[0];
        let third = second + sizes[1];
        let mark = VerifiedMark::new(Path::new("x.log"), 0);
        let middle = &bytes[second..third];
        assert_eq!(mark.check(middle, second as u64), Ok(sizes[1]));
        assert_eq!(mark.range_now(), (second as u64, third as u64));
        assert_eq!(mark.check(&bytes[third..], third as u64), Ok(sizes[2]));
        assert_eq!(mark.range_now(), (second as u64, bytes.len() as u64));
        bytes[sizes[0] - 1] ^= 1;
        assert!(mark.check(&bytes, 0).is_err(), "the first batch is outside");
        assert_eq!(mark.range_now(), (second as u64, bytes.len() as u64));
    }

    #[test]
    fn extend_only_joins_the_range() {
        let mark = VerifiedMark::new(Path::new("x.log"), 10);
        mark.extend(20, 30);
        assert_eq!(mark.range_now(), (0, 10));
        mark.extend(5, 30);
        assert_eq!(mark.range_now(), (0, 30));
        mark.extend(0, 20);
        assert_eq!(mark.range_now(), (0, 30));
        mark.extend(30, 1 << 33);
        assert_eq!(mark.range_now(), (0, 30), "past 32 bits: never recorded");
    }

    #[test]
    fn a_tail_range_checks_the_bytes_below_it_once_and_grows_down() {
        let (mut bytes, sizes) = three_batches();
        let second = sizes[0] as u64;
        let third = second + sizes[1] as u64;
        // Recovery checked the second batch only (from the recovery point).
        let mark = VerifiedMark::range(Path::new("x.log"), second, third);
        bytes[third as usize + 30] ^= 1;
        let third_bad = mark.check(&bytes[third as usize..], third).unwrap_err();
        assert_eq!(third_bad.offset, 4, "past the range: checked");
        bytes[third as usize + 30] ^= 1;
        assert_eq!(mark.check(&bytes[third as usize..], third), Ok(sizes[2]));
        assert_eq!(mark.range_now(), (second, bytes.len() as u64));
        bytes[sizes[0] - 1] ^= 1;
        assert!(
            mark.check(&bytes, 0).is_err(),
            "below the range: checked with its CRC"
        );
        bytes[sizes[0] - 1] ^= 1;
        assert_eq!(mark.check(&bytes, 0), Ok(bytes.len()));
        assert_eq!(mark.range_now(), (0, bytes.len() as u64));
        // Now inside the range: a flipped byte is no longer looked for.
        bytes[sizes[0] - 1] ^= 1;
        assert_eq!(mark.check(&bytes, 0), Ok(bytes.len()));
    }

    #[test]
    fn extend_never_bridges_a_gap_below_the_range() {
        let mark = VerifiedMark::range(Path::new("x.log"), 100, 200);
        mark.extend(10, 50);
        assert_eq!(mark.range_now(), (100, 200));
        mark.extend(50, 100);
        assert_eq!(mark.range_now(), (50, 200));
        mark.extend(50, 250);
        assert_eq!(mark.range_now(), (50, 250));
    }
}
