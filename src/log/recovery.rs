//! Batch-by-batch validation of segment files at open (length, magic, offsets,
//! CRC-32C) and truncation at the first torn or corrupt batch, deleting the
//! segments after it. It reads files through bounded windows and never trusts a length.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::batch::{BatchHeader, ATTRIBUTES_POS, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};
use super::error::{IoContext, LogError};
use super::segment::LogSegment;

/// Bytes read from disk at a time while scanning.
const WINDOW: usize = 1 << 20;

/// A bounded read-ahead window over a file, read with `pread`.
struct Window<'a> {
    file: &'a File,
    file_len: u64,
    start: u64,
    buf: Vec<u8>,
}

impl<'a> Window<'a> {
    fn new(file: &'a File, file_len: u64) -> Self {
        Window {
            file,
            file_len,
            start: 0,
            buf: Vec::new(),
        }
    }

    /// The bytes `[pos, pos + len)`; the caller guarantees `len <= WINDOW` and
    /// `pos + len <= file_len`.
    fn slice(&mut self, pos: u64, len: usize) -> std::io::Result<&[u8]> {
        debug_assert!(len <= WINDOW && pos + len as u64 <= self.file_len);
        let end = pos + len as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let n = (self.file_len - pos).min(WINDOW as u64) as usize;
            self.buf.resize(n.max(len), 0);
            self.file.read_exact_at(&mut self.buf, pos)?;
            self.start = pos;
        }
        let off = (pos - self.start) as usize;
        Ok(&self.buf[off..off + len])
    }
}

/// What a scan of one segment file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanOutcome {
    /// Bytes from the start of the file covered by valid batches.
    pub valid_bytes: u64,
    /// One past the last offset of the last valid batch (the base offset if none).
    pub next_offset: i64,
    /// Why the scan stopped before the end of the file, if it did.
    pub problem: Option<String>,
    /// Size of the file when scanned.
    pub file_len: u64,
    /// Where the scan began (0, or the recovery point's position).
    pub start: u64,
    /// Valid batches found.
    pub batches: u64,
}

/// Walks the batches of a segment file from position 0, calling `on_batch`
/// with each valid batch's header and position. Stops at the first batch that
/// is torn, structurally invalid, out of offset order or (with `verify_crc`)
/// fails its CRC-32C.
pub(crate) fn scan_segment(
    file: &File,
    path: &Path,
    base_offset: i64,
    verify_crc: bool,
    on_batch: impl FnMut(&BatchHeader, u64) -> Result<(), LogError>,
) -> Result<ScanOutcome, LogError> {
    scan_segment_from(
        file,
        path,
        base_offset,
        (0, base_offset),
        verify_crc,
        on_batch,
    )
}

/// [`scan_segment`] from a batch boundary `(position, next offset)` known to
/// be preceded by valid batches (the recovery point's position).
pub(crate) fn scan_segment_from(
    file: &File,
    path: &Path,
    base_offset: i64,
    (start, start_offset): (u64, i64),
    verify_crc: bool,
    mut on_batch: impl FnMut(&BatchHeader, u64) -> Result<(), LogError>,
) -> Result<ScanOutcome, LogError> {
    let file_len = file.metadata().at(path)?.len();
    let mut window = Window::new(file, file_len);
    let mut pos = start.min(file_len);
    let mut next_offset = start_offset;
    let mut batches = 0u64;
    let problem = loop {
        let remaining = file_len - pos;
        if remaining == 0 {
            break None;
        }
        if remaining < BATCH_HEADER_LEN as u64 {
            break Some(format!(
                "{remaining} trailing bytes are shorter than a batch header"
            ));
        }
        let header_bytes = window.slice(pos, BATCH_HEADER_LEN).at(path)?;
        let h = match BatchHeader::parse(header_bytes) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        if let Some(why) = structural_problem(&h, base_offset, next_offset) {
            break Some(why);
        }
        let size = h.total_size() as u64;
        if size > remaining {
            break Some(format!(
                "batch declares {size} bytes but only {remaining} remain (torn write)"
            ));
        }
        if verify_crc {
            let mut crc = 0u32;
            let mut p = pos + ATTRIBUTES_POS as u64;
            let end = pos + size;
            while p < end {
                let n = (end - p).min(WINDOW as u64) as usize;
                crc = crc32c::crc32c_append(crc, window.slice(p, n).at(path)?);
                p += n as u64;
            }
            if crc != h.crc {
                break Some(format!(
                    "CRC mismatch: stored {:#010x}, computed {crc:#010x}",
                    h.crc
                ));
            }
        }
        on_batch(&h, pos)?;
        pos += size;
        batches += 1;
        next_offset = h.last_offset().saturating_add(1);
    };
    Ok(ScanOutcome {
        valid_bytes: pos,
        next_offset,
        problem,
        file_len,
        start: start.min(file_len),
        batches,
    })
}

/// Header checks for a batch read from disk. Unlike produce validation this
/// accepts empty batches (compaction leaves them) and offset gaps.
fn structural_problem(h: &BatchHeader, base_offset: i64, next_offset: i64) -> Option<String> {
    if h.magic != 2 {
        return Some(format!("magic {} is not 2", h.magic));
    }
    if h.batch_length < MIN_BATCH_LENGTH {
        return Some(format!("batch length {} is too small", h.batch_length));
    }
    if h.last_offset_delta < 0 || h.records_count < 0 {
        return Some(format!(
            "negative last offset delta {} or record count {}",
            h.last_offset_delta, h.records_count
        ));
    }
    if h.base_offset < next_offset {
        return Some(format!(
            "base offset {} is below the expected next offset {next_offset}",
            h.base_offset
        ));
    }
    if h.last_offset() - base_offset > i64::from(i32::MAX) {
        return Some(format!(
            "last offset {} does not fit a segment based at {base_offset}",
            h.last_offset()
        ));
    }
    None
}

/// What recovery at open validated: the bytes and batches past the recovery
/// point that were read and CRC-checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    pub bytes_validated: u64,
    pub batches_validated: u64,
    /// Batch headers read after the producer-state snapshot to rebuild it.
    pub headers_replayed: u64,
}

/// Validates `segments[start..]` batch by batch (rebuilding their indexes from
/// the scan), from `recovery_point` on: in `segments[start]`, the segment
/// holding it, only the batches from it are read. At the first problem,
/// truncates that segment there, deletes every later segment, and logs one
/// warning. Inactive segments that scan clean get their time index sealed
/// and their indexes fsynced.
pub(crate) fn recover_segments(
    dir: &Path,
    segments: &mut Vec<LogSegment>,
    start: usize,
    recovery_point: i64,
) -> Result<RecoveryStats, LogError> {
    let mut stats = RecoveryStats::default();
    let mut i = start;
    while i < segments.len() {
        let prev_end = i
            .checked_sub(1)
            .map(|p| segments[p].next_offset())
            .unwrap_or(i64::MIN);
        let base = segments[i].base_offset();
        let cut = if base < prev_end {
            // Overlaps the previous segment: drop it whole.
            Some((
                0u64,
                segments[i].file_size()?,
                prev_end,
                format!(
                    "segment base offset {base} overlaps the previous segment ending at {prev_end}"
                ),
                true,
            ))
        } else {
            let seal_if_clean = i + 1 < segments.len();
            let from = if i == start { recovery_point } else { base };
            let outcome = segments[i].recover(from, seal_if_clean)?;
            stats.bytes_validated += outcome.valid_bytes - outcome.start;
            stats.batches_validated += outcome.batches;
            outcome.problem.clone().map(|problem| {
                (
                    outcome.valid_bytes,
                    outcome.file_len - outcome.valid_bytes,
                    outcome.next_offset,
                    problem,
                    false,
                )
            })
        };
        if let Some((position, cut_here, offset, reason, drop_whole)) = cut {
            let segment_name = segments[i].log_path().display().to_string();
            let first_deleted = if drop_whole { i } else { i + 1 };
            let mut bytes_cut = if drop_whole { 0 } else { cut_here };
            for seg in segments.drain(first_deleted..) {
                bytes_cut += seg.file_size().unwrap_or(0);
                seg.delete()?;
            }
            super::checkpoint::sync_dir(dir)?;
            tracing::warn!(
                dir = %dir.display(),
                segment = %segment_name,
                position,
                offset,
                bytes_cut,
                reason = %reason,
                "log recovery truncated a torn or corrupt tail"
            );
            break;
        }
        i += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{set_base_offset, test_util::batch};

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        std::fs::write(&path, bytes).unwrap();
        let f = File::open(&path).unwrap();
        (dir, f, path)
    }

    fn three_batches() -> (Vec<u8>, Vec<usize>) {
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        for (i, n) in [2usize, 3, 1].into_iter().enumerate() {
            let mut b = batch(n, 1000 + i as i64);
            let base = [0i64, 2, 5][i];
            set_base_offset(&mut b, base);
            sizes.push(b.len());
            all.extend(b);
        }
        (all, sizes)
    }

    #[test]
    fn scan_accepts_well_formed_batches() {
        let (all, _) = three_batches();
        let (_d, f, p) = file_with(&all);
        let mut seen = Vec::new();
        let out = scan_segment(&f, &p, 0, true, |h, pos| {
            seen.push((h.base_offset, pos));
            Ok(())
        })
        .unwrap();
        assert_eq!(out.problem, None);
        assert_eq!(out.valid_bytes, all.len() as u64);
        assert_eq!(out.next_offset, 6);
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn scan_stops_at_torn_batch() {
        let (all, sizes) = three_batches();
        let (_d, f, p) = file_with(&all[..all.len() - 3]);
        let out = scan_segment(&f, &p, 0, true, |_, _| Ok(())).unwrap();
        assert!(out.problem.unwrap().contains("torn"));
        assert_eq!(out.valid_bytes, (sizes[0] + sizes[1]) as u64);
        assert_eq!(out.next_offset, 5);
    }

    #[test]
    fn scan_stops_at_crc_mismatch_only_when_verifying() {
        let (mut all, sizes) = three_batches();
        let flip = sizes[0] + sizes[1] - 2;
        all[flip] ^= 1;
        let (_d, f, p) = file_with(&all);
        let out = scan_segment(&f, &p, 0, true, |_, _| Ok(())).unwrap();
        assert!(out.problem.unwrap().contains("CRC"));
        assert_eq!(out.valid_bytes, sizes[0] as u64);
        let out = scan_segment(&f, &p, 0, false, |_, _| Ok(())).unwrap();
        assert_eq!(out.problem, None);
    }

    #[test]
    fn scan_rejects_offsets_going_backwards_and_huge_lengths() {
        let mut a = batch(2, 1);
        set_base_offset(&mut a, 10);
        let mut b = batch(1, 1);
        set_base_offset(&mut b, 5);
        let mut all = a.clone();
        all.extend(&b);
        let (_d, f, p) = file_with(&all);
        let out = scan_segment(&f, &p, 10, true, |_, _| Ok(())).unwrap();
        assert!(out.problem.unwrap().contains("below"));
        assert_eq!(out.valid_bytes, a.len() as u64);

        let mut huge = batch(1, 1);
        huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        let (_d, f, p) = file_with(&huge);
        let out = scan_segment(&f, &p, 0, true, |_, _| Ok(())).unwrap();
        assert!(out.problem.is_some());
        assert_eq!(out.valid_bytes, 0);
    }
}
