//! Offline verification of a data directory or one partition directory: every
//! segment's batches (length, magic, offset order, CRC-32C) and its offset and
//! time indexes. Files are opened read-only and never changed; it is for a
//! stopped broker's data (`vltava log verify`), and never opens a `Log`.
//! Other files in a partition directory (producer snapshots, the
//! leader-epoch checkpoint) are not its business and are passed over.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, ATTRIBUTES_POS, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};
use super::error::{IoContext, LogError};
use super::segment::segment_file_name;

/// Bytes read at a time while computing a CRC.
const CHUNK: usize = 1 << 20;
/// Index files larger than this are reported, not read (the broker rebuilds them too).
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// One thing found wrong, at a byte position of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub position: u64,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: position {}: {}",
            self.file.display(),
            self.position,
            self.what
        )
    }
}

/// What a scrub looked at and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScrubReport {
    pub partitions: usize,
    pub segments: usize,
    pub batches: u64,
    pub problems: Vec<Problem>,
}

/// Scrubs `dir`: a partition directory (it holds `.log` files) or a data
/// directory (each subdirectory holding `.log` files is a partition), in name order.
pub fn scrub(dir: &Path) -> Result<ScrubReport, LogError> {
    let mut report = ScrubReport::default();
    if segment_bases(dir)?.is_empty() {
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            if entry.file_type().at(&entry.path())?.is_dir() {
                subdirs.push(entry.path());
            }
        }
        subdirs.sort();
        for sub in subdirs {
            scrub_partition(&sub, &mut report)?;
        }
    } else {
        scrub_partition(dir, &mut report)?;
    }
    Ok(report)
}

/// Base offsets of the `<20 digits>.log` files in `dir`, ascending.
fn segment_bases(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = stem.parse() {
                bases.push(base);
            }
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

fn scrub_partition(dir: &Path, report: &mut ScrubReport) -> Result<(), LogError> {
    let bases = segment_bases(dir)?;
    if bases.is_empty() {
        return Ok(());
    }
    report.partitions += 1;
    let mut next_offset = i64::MIN;
    for base in bases {
        let path = dir.join(segment_file_name(base, "log"));
        if base < next_offset {
            report.problems.push(Problem {
                file: path.clone(),
                position: 0,
                what: format!(
                    "segment base offset {base} overlaps the previous segment ending at {next_offset}"
                ),
            });
        }
        report.segments += 1;
        let segment = scrub_log(&path, base, report)?;
        scrub_offset_index(dir, base, &segment, report)?;
        scrub_time_index(dir, base, &segment, report)?;
        next_offset = segment.next_offset;
    }
    Ok(())
}

/// The batches a segment scan could read: (position, base offset, last offset).
struct SegmentMap {
    batches: Vec<(u64, i64, i64)>,
    next_offset: i64,
    /// Where an unreadable batch ended the walk: index entries past it cannot be checked.
    unreadable_from: Option<u64>,
}

/// Walks the segment's batches. A CRC mismatch or an out-of-order offset is
/// reported and the walk goes on; a bad length or magic ends it (the next
/// batch cannot be found).
fn scrub_log(path: &Path, base: i64, report: &mut ScrubReport) -> Result<SegmentMap, LogError> {
    let file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let mut map = SegmentMap {
        batches: Vec::new(),
        next_offset: base,
        unreadable_from: None,
    };
    let mut problem = |position: u64, what: String| {
        report.problems.push(Problem {
            file: path.to_path_buf(),
            position,
            what,
        })
    };
    let mut pos = 0u64;
    while pos < len {
        let remaining = len - pos;
        if remaining < BATCH_HEADER_LEN as u64 {
            problem(
                pos,
                format!("{remaining} trailing bytes are shorter than a batch header"),
            );
            map.unreadable_from = Some(pos);
            break;
        }
        let mut header = [0u8; BATCH_HEADER_LEN];
        file.read_exact_at(&mut header, pos).at(path)?;
        let Ok(h) = BatchHeader::parse(&header) else {
            break; // unreachable: the buffer is a whole header
        };
        if h.magic != 2 {
            problem(pos, format!("magic {} is not 2", h.magic));
            map.unreadable_from = Some(pos);
            break;
        }
        let size = h.total_size() as u64;
        if h.batch_length < MIN_BATCH_LENGTH || size > remaining {
            problem(
                pos,
                format!(
                    "batch length {} is out of bounds ({remaining} bytes remain in the file)",
                    h.batch_length
                ),
            );
            map.unreadable_from = Some(pos);
            break;
        }
        if h.last_offset_delta < 0 || h.base_offset < map.next_offset {
            problem(
                pos,
                format!(
                    "batch offsets {}..={} do not follow the previous batch (next offset {})",
                    h.base_offset,
                    h.last_offset(),
                    map.next_offset
                ),
            );
        }
        let crc = crc_of(&file, path, pos + ATTRIBUTES_POS as u64, pos + size)?;
        if crc != h.crc {
            problem(
                pos,
                format!(
                    "CRC mismatch in the batch at offset {}: stored {:#010x}, computed {crc:#010x}",
                    h.base_offset, h.crc
                ),
            );
        }
        report.batches += 1;
        map.batches.push((pos, h.base_offset, h.last_offset()));
        map.next_offset = map.next_offset.max(h.last_offset().saturating_add(1));
        pos += size;
    }
    Ok(map)
}

/// CRC-32C of the file's bytes `[from, to)`, read in bounded chunks.
fn crc_of(file: &File, path: &Path, from: u64, to: u64) -> Result<u32, LogError> {
    let mut buf = vec![0u8; ((to - from) as usize).min(CHUNK)];
    let mut crc = 0u32;
    let mut p = from;
    while p < to {
        let n = ((to - p) as usize).min(CHUNK);
        file.read_exact_at(&mut buf[..n], p).at(path)?;
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        p += n as u64;
    }
    Ok(crc)
}

/// The index file's bytes, or None (with a problem reported) if it cannot be
/// read as whole entries of `entry_size`. A missing file is reported too.
fn read_index(
    path: &Path,
    entry_size: usize,
    report: &mut ScrubReport,
) -> Result<Option<Vec<u8>>, LogError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.problems.push(Problem {
                file: path.to_path_buf(),
                position: 0,
                what: "index file is missing".to_string(),
            });
            return Ok(None);
        }
        Err(e) => return Err(LogError::io_at(path, e)),
    };
    let len = file.metadata().at(path)?.len();
    if len % entry_size as u64 != 0 || len > MAX_INDEX_BYTES {
        report.problems.push(Problem {
            file: path.to_path_buf(),
            position: len - len % entry_size as u64,
            what: format!("size {len} is not a whole number of {entry_size}-byte entries"),
        });
        return Ok(None);
    }
    // Bounded by MAX_INDEX_BYTES above.
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0).at(path)?;
    Ok(Some(buf))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Each `.index` entry (relative offset, position) must point at the start
/// of a batch whose last offset is that offset, in increasing order.
fn scrub_offset_index(
    dir: &Path,
    base: i64,
    segment: &SegmentMap,
    report: &mut ScrubReport,
) -> Result<(), LogError> {
    let path = dir.join(segment_file_name(base, "index"));
    let Some(bytes) = read_index(&path, 8, report)? else {
        return Ok(());
    };
    let mut previous: Option<(i64, u64)> = None;
    for (i, entry) in bytes.chunks_exact(8).enumerate() {
        let offset = base + i64::from(be_u32(entry));
        let position = u64::from(be_u32(&entry[4..]));
        let what = if previous.is_some_and(|(o, p)| offset <= o || position <= p) {
            Some(format!(
                "entry ({offset}, {position}) is out of order after {previous:?}"
            ))
        } else if segment.unreadable_from.is_some_and(|u| position >= u) {
            None
        } else {
            match segment.batches.binary_search_by_key(&position, |b| b.0) {
                Ok(k) if segment.batches[k].2 == offset => None,
                Ok(k) => Some(format!(
                    "entry ({offset}, {position}) points at the batch of offsets {}..={}",
                    segment.batches[k].1, segment.batches[k].2
                )),
                Err(_) => Some(format!(
                    "entry ({offset}, {position}) does not point at a readable batch"
                )),
            }
        };
        if let Some(what) = what {
            report.problems.push(Problem {
                file: path.clone(),
                position: (i * 8) as u64,
                what,
            });
        }
        previous = Some((offset, position));
    }
    Ok(())
}

/// Each `.timeindex` entry (timestamp, relative offset) must name an offset
/// of the segment, with timestamps increasing and offsets not decreasing.
fn scrub_time_index(
    dir: &Path,
    base: i64,
    segment: &SegmentMap,
    report: &mut ScrubReport,
) -> Result<(), LogError> {
    let path = dir.join(segment_file_name(base, "timeindex"));
    let Some(bytes) = read_index(&path, 12, report)? else {
        return Ok(());
    };
    let mut previous: Option<(i64, i64)> = None;
    for (i, entry) in bytes.chunks_exact(12).enumerate() {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&entry[..8]);
        let timestamp = i64::from_be_bytes(ts);
        let offset = base + i64::from(be_u32(&entry[8..]));
        let what = if previous.is_some_and(|(t, o)| timestamp <= t || offset < o) {
            Some(format!(
                "entry ({timestamp}, {offset}) is out of order after {previous:?}"
            ))
        } else if segment.unreadable_from.is_none() && offset >= segment.next_offset.max(base + 1) {
            Some(format!(
                "entry ({timestamp}, {offset}) is past the segment's last offset {}",
                segment.next_offset - 1
            ))
        } else {
            None
        };
        if let Some(what) = what {
            report.problems.push(Problem {
                file: path.clone(),
                position: (i * 12) as u64,
                what,
            });
        }
        previous = Some((timestamp, offset));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;
    use crate::log::{Log, LogConfig};

    /// A partition of twelve two-record batches in several segments, closed.
    fn partition(dir: &Path) -> Vec<usize> {
        let config = LogConfig {
            segment_bytes: 400,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir, config, 0, 0).unwrap();
        let mut sizes = Vec::new();
        for i in 0..12 {
            let mut b = batch(2, 1_000 + i);
            sizes.push(b.len());
            log.append(&mut b, 1).unwrap();
        }
        assert!(log.segment_count() >= 3);
        log.flush().unwrap();
        sizes
    }

    #[test]
    fn an_intact_partition_has_no_problems() {
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("t-0");
        partition(&part);
        // Files other than segments and their indexes are not looked at.
        let epochs = part.join(crate::log::leader_epoch::LEADER_EPOCH_CHECKPOINT);
        assert_eq!(std::fs::read_to_string(&epochs).unwrap(), "0\n1\n0 0\n");
        let before = std::fs::read(part.join(segment_file_name(0, "log"))).unwrap();
        let report = scrub(dir.path()).unwrap();
        assert_eq!(report.problems, vec![]);
        assert_eq!((report.partitions, report.batches), (1, 12));
        assert_eq!(report, scrub(&part).unwrap());
        let after = std::fs::read(part.join(segment_file_name(0, "log"))).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn a_crc_mismatch_and_a_bad_length_are_named_with_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let sizes = partition(dir.path());
        let path = dir.path().join(segment_file_name(0, "log"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[sizes[0] - 1] ^= 0x01;
        let third = sizes[0] + sizes[1];
        bytes[third + 8..third + 12].copy_from_slice(&1_000_000i32.to_be_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let report = scrub(dir.path()).unwrap();
        let lines: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        let stored = BatchHeader::parse(&bytes).unwrap().crc;
        let computed = crate::log::batch::compute_crc(&bytes[..sizes[0]]);
        assert_eq!(
            lines,
            vec![
                format!(
                    "{}: position 0: CRC mismatch in the batch at offset 0: stored {stored:#010x}, computed {computed:#010x}",
                    path.display()
                ),
                format!(
                    "{}: position {third}: batch length 1000000 is out of bounds ({} bytes remain in the file)",
                    path.display(),
                    bytes.len() - third
                ),
            ]
        );
    }

    #[test]
    fn an_index_entry_pointing_between_batches_is_named() {
        let dir = tempfile::tempdir().unwrap();
        partition(dir.path());
        let path = dir.path().join(segment_file_name(0, "index"));
        let mut bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.is_empty());
        bytes[7] = bytes[7].wrapping_add(1);
        std::fs::write(&path, &bytes).unwrap();
        let report = scrub(dir.path()).unwrap();
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(
            (&report.problems[0].file, report.problems[0].position),
            (&path, 0)
        );
        assert!(
            report.problems[0]
                .what
                .ends_with("does not point at a readable batch"),
            "{}",
            report.problems[0].what
        );
    }
}
