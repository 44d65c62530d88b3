//! CRC-32C verification of batches on their way out of a segment: each segment
//! keeps a mark, "bytes below this position hold batches whose CRC was
//! checked", that only moves forward. Appends and recovery move it for free;
//! the first read of older bytes checks them once, so steady-state reads pay
//! one atomic load. It never touches files: callers hand it bytes already read.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::batch::{compute_crc, BatchHeader, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};

/// How far one segment file's batches are known to be intact.
#[derive(Debug)]
pub struct VerifiedMark {
    path: PathBuf,
    position: AtomicU64,
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
    pub fn new(path: &Path, verified: u64) -> Arc<VerifiedMark> {
        Arc::new(VerifiedMark {
            path: path.to_path_buf(),
            position: AtomicU64::new(verified),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes from the start of the file whose batches are verified.
    pub fn position(&self) -> u64 {
        self.position.load(Ordering::Acquire)
    }

    /// Bytes `[from, to)` were appended (validated on the way in) or checked:
    /// the mark moves to `to` if it had reached `from`. A gap never counts.
    pub(crate) fn extend(&self, from: u64, to: u64) {
        let mut current = self.position.load(Ordering::Acquire);
        while current >= from && current < to {
            match self.position.compare_exchange_weak(
                current,
                to,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => current = now,
            }
        }
    }

    /// Checks the batches of `bytes`, read from `position` of the file and
    /// starting at a batch boundary, that lie past the mark (length, magic,
    /// CRC-32C), and moves the mark over what it checked when that joins it.
    /// Returns how many leading bytes are whole, intact batches (all of them
    /// unless one is bad), or the bad batch when it is the first one.
    pub fn check(&self, bytes: &[u8], position: u64) -> Result<usize, BadBatch> {
        let end = position + bytes.len() as u64;
        let verified = self.position();
        if end <= verified {
            return Ok(bytes.len());
        }
        let mut at = 0usize;
        let intact = loop {
            if at == bytes.len() {
                break None;
            }
            let file_pos = position + at as u64;
            match check_batch(&bytes[at..], file_pos < verified) {
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
        assert_eq!(mark.position(), bytes.len() as u64);
    }

    #[test]
    fn a_flipped_record_byte_cuts_the_slice_before_its_batch() {
        let (mut bytes, sizes) = three_batches();
        let second = sizes[0];
        bytes[second + sizes[1] - 1] ^= 0xff;
        let mark = VerifiedMark::new(Path::new("x.log"), 0);
        assert_eq!(mark.check(&bytes, 0), Ok(second));
        assert_eq!(mark.position(), second as u64);
        let bad = mark.check(&bytes[second..], second as u64).unwrap_err();
        assert_eq!(bad.position, second as u64);
        assert_eq!(bad.offset, 2);
        assert!(bad.reason.starts_with("CRC mismatch"), "{}", bad.reason);
        assert_eq!(
            mark.position(),
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
    fn a_read_past_the_mark_is_checked_but_leaves_the_mark() {
        let (mut bytes, sizes) = three_batches();
        let third = sizes[0] + sizes[1];
        let mark = VerifiedMark::new(Path::new("x.log"), 0);
        assert_eq!(mark.check(&bytes[third..], third as u64), Ok(sizes[2]));
        assert_eq!(mark.position(), 0);
        bytes[third + 30] ^= 1;
        assert!(mark.check(&bytes[third..], third as u64).is_err());
    }

    #[test]
    fn extend_only_joins_the_mark() {
        let mark = VerifiedMark::new(Path::new("x.log"), 10);
        mark.extend(20, 30);
        assert_eq!(mark.position(), 10);
        mark.extend(5, 30);
        assert_eq!(mark.position(), 30);
        mark.extend(0, 20);
        assert_eq!(mark.position(), 30);
    }
}
