//! Log compaction, Kafka's `Cleaner`: keeps the latest record per key in the
//! cleanable part of a log (every segment below the active one and below
//! `min.compaction.lag.ms`), preserving offsets, dropping tombstones once
//! `delete.retention.ms` has passed and aborted transactional batches.
//!
//! The work happens outside the partition's lock on immutable (inactive)
//! segments; only [`Log::install_cleaned`] takes the lock, to swap files.
//! On-disk protocol, crash-safe at every step:
//! 1. write `<base>.log.cleaned` with its `.index.cleaned` and
//!    `.timeindex.cleaned`, fsync them;
//! 2. rename the three to `.swap` (indexes first, log last), fsync the directory:
//!    a `<base>.log.swap` now means "this cleaned segment is complete";
//! 3. rename the three over the live files (indexes first, log last), fsync the directory.
//!
//! At open ([`complete_swaps`]) `.cleaned` files are deleted, a `.log.swap`
//! finishes step 3, and `.swap` indexes without a `.log.swap` are deleted.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{self, BatchHeader, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};
use super::checkpoint::sync_dir;
use super::error::{IoContext, LogError};
use super::partition_log::{Log, LogConfig};
use super::segment::{segment_file_name, AppendFailure, LogSegment};

const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";
/// Rough bytes of offset-map memory per key beyond the key itself.
const MAP_ENTRY_OVERHEAD: usize = 48;
/// Cleaned batches are written in chunks of about this size.
const WRITE_CHUNK: usize = 1 << 20;

/// One inactive segment, as the cleaner sees it when planning.
#[derive(Debug, Clone)]
struct SegmentRef {
    base: i64,
    file: Arc<File>,
    size: u64,
    /// Whether it holds offsets at or past the first dirty offset.
    dirty: bool,
}

/// What a cleaning pass will work on, taken under the log's lock.
#[derive(Debug)]
pub struct CleanPlan {
    dir: PathBuf,
    config: LogConfig,
    segments: Vec<SegmentRef>,
    first_uncleanable: i64,
    now_ms: i64,
}

impl CleanPlan {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Limits the cleaner works within.
#[derive(Debug, Clone, Copy)]
pub struct CleanerLimits {
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset map.
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second`.
    pub io_bytes_per_second: f64,
}

/// How one segment is to change.
#[derive(Debug)]
enum Outcome {
    /// Replace it with this cleaned segment (files named `.cleaned`).
    Replace(Box<LogSegment>),
    /// Nothing is left in it: delete it.
    Delete,
}

#[derive(Debug)]
struct Replacement {
    base: i64,
    old_file: Arc<File>,
    outcome: Outcome,
}

/// The result of [`clean`], to be installed with [`Log::install_cleaned`].
#[derive(Debug)]
pub struct Cleaned {
    replacements: Vec<Replacement>,
    /// Offsets below this are clean after the swap.
    first_dirty: i64,
    /// When the earliest kept tombstone may be removed.
    tombstone_expiry: Option<i64>,
    pub stats: CleanStats,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub segments_rewritten: usize,
}

impl Log {
    /// The cleaning due now, if any: with `cleanup.policy` containing
    /// `compact`, when the dirty ratio reaches `min.cleanable.dirty.ratio`,
    /// when the oldest dirty record is older than `max.compaction.lag.ms`, or
    /// when a kept tombstone has outlived `delete.retention.ms`.
    pub fn cleaner_plan(&self, now_ms: i64) -> Result<Option<CleanPlan>, LogError> {
        if !self.config.compact || self.segments.len() < 2 {
            return Ok(None);
        }
        let inactive = &self.segments[..self.segments.len() - 1];
        let lag_bound = now_ms.saturating_sub(self.config.min_compaction_lag_ms);
        let mut refs = Vec::new();
        for s in inactive {
            let dirty = s.next_offset() > self.first_dirty_offset;
            if dirty && self.config.min_compaction_lag_ms > 0 && s.max_timestamp() > lag_bound {
                break;
            }
            refs.push(SegmentRef {
                base: s.base_offset(),
                file: s.log_file().clone(),
                size: s.size(),
                dirty,
            });
        }
        // The segment after the last cleanable one: the lag-bound or the active one.
        let first_uncleanable = self.segments[refs.len()].base_offset();
        let total: u64 = refs.iter().map(|s| s.size).sum();
        let dirty: u64 = refs.iter().filter(|s| s.dirty).map(|s| s.size).sum();
        if total == 0 {
            return Ok(None);
        }
        let by_ratio = dirty > 0 && dirty as f64 / total as f64 >= self.config.min_cleanable_ratio;
        let by_lag = match refs.iter().find(|s| s.dirty) {
            Some(first) => {
                let seg = inactive.iter().find(|s| s.base_offset() == first.base);
                let first_ts = match seg {
                    Some(seg) => seg.read_header(0)?.map(|h| h.base_timestamp),
                    None => None,
                };
                first_ts
                    .is_some_and(|ts| now_ms.saturating_sub(ts) > self.config.max_compaction_lag_ms)
            }
            None => false,
        };
        let by_tombstones = self.tombstone_expiry.is_some_and(|t| now_ms >= t);
        if !(by_ratio || by_lag || by_tombstones) {
            return Ok(None);
        }
        Ok(Some(CleanPlan {
            dir: self.dir.clone(),
            config: self.config.clone(),
            segments: refs,
            first_uncleanable,
            now_ms,
        }))
    }

    /// Swaps cleaned segments in (under the log's lock). A segment deleted or
    /// replaced meanwhile keeps its fate; its cleaned files are discarded.
    pub fn install_cleaned(&mut self, cleaned: Cleaned) -> Result<(), LogError> {
        let dir = self.dir.clone();
        for rep in cleaned.replacements {
            let last = self.segments.len() - 1;
            let found = self.segments[..last].iter().position(|s| {
                s.base_offset() == rep.base && Arc::ptr_eq(s.log_file(), &rep.old_file)
            });
            let Some(i) = found else {
                if let Outcome::Replace(seg) = rep.outcome {
                    seg.delete()?;
                }
                continue;
            };
            match rep.outcome {
                Outcome::Replace(seg) => {
                    drop(seg);
                    swap_in(&dir, rep.base)?;
                    let next_base = self.segments[i + 1].base_offset();
                    let (mut seg, off_load, time_load) =
                        LogSegment::open(&dir, rep.base, &self.config)?;
                    seg.check_indexes(next_base, off_load, time_load)?;
                    self.segments[i] = seg;
                }
                Outcome::Delete => {
                    let old = self.segments.remove(i);
                    old.delete()?;
                }
            }
        }
        self.prune_txn_indexes();
        if let Some(first) = self.segments.first() {
            self.log_start_offset = self.log_start_offset.max(first.base_offset());
        }
        self.leader_epochs_follow_log_start();
        self.first_dirty_offset = self.first_dirty_offset.max(cleaned.first_dirty);
        self.tombstone_expiry = cleaned.tombstone_expiry;
        Ok(())
    }
}

/// Renames `<base>.*.cleaned` to `.swap`, then over the live files.
fn swap_in(dir: &Path, base: i64) -> Result<(), LogError> {
    let name = |ext: &str, suffix: &str| dir.join(segment_file_name(base, ext) + suffix);
    for ext in ["index", "timeindex", "log"] {
        fs::rename(name(ext, CLEANED), name(ext, SWAP)).at(&name(ext, CLEANED))?;
    }
    sync_dir(dir)?;
    for ext in ["index", "timeindex", "log"] {
        fs::rename(name(ext, SWAP), name(ext, "")).at(&name(ext, SWAP))?;
    }
    sync_dir(dir)
}

/// Finishes or discards cleaning interrupted by a crash; see the module docs.
pub(crate) fn complete_swaps(dir: &Path) -> Result<(), LogError> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut swapped_logs = Vec::new();
    let mut swapped_indexes = Vec::new();
    for entry in entries {
        let entry = entry.at(dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(CLEANED) {
            tracing::info!(file = %entry.path().display(), "deleting an unfinished cleaned segment file");
            fs::remove_file(entry.path()).at(&entry.path())?;
        } else if let Some(stem) = name.strip_suffix(".log.swap") {
            swapped_logs.push(stem.to_string());
        } else if name.ends_with(SWAP) {
            swapped_indexes.push(entry.path());
        }
    }
    let changed = !swapped_logs.is_empty() || !swapped_indexes.is_empty();
    for path in swapped_indexes {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = name.split('.').next().unwrap_or_default();
        if swapped_logs.iter().any(|s| s == stem) {
            let target = path.with_extension("");
            fs::rename(&path, &target).at(&path)?;
        } else {
            fs::remove_file(&path).at(&path)?;
        }
    }
    for stem in swapped_logs {
        let from = dir.join(format!("{stem}.log.swap"));
        tracing::info!(file = %from.display(), "completing an interrupted segment swap");
        fs::rename(&from, dir.join(format!("{stem}.log"))).at(&from)?;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads the batches of one segment file in order, each whole.
struct BatchReader {
    reader: BufReader<File>,
    remaining: u64,
    path: PathBuf,
}

impl BatchReader {
    fn new(seg: &SegmentRef, dir: &Path) -> Result<BatchReader, LogError> {
        let path = dir.join(segment_file_name(seg.base, "log"));
        let file = seg.file.try_clone().at(&path)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        // A clone shares the file position: read from the start explicitly.
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0)).at(&path)?;
        Ok(BatchReader {
            reader,
            remaining: seg.size,
            path,
        })
    }

    fn next(&mut self) -> Result<Option<(BatchHeader, Vec<u8>)>, LogError> {
        if self.remaining < BATCH_HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut head = [0u8; BATCH_HEADER_LEN];
        self.reader.read_exact(&mut head).at(&self.path)?;
        let h = BatchHeader::parse(&head)?;
        let size = h.total_size() as u64;
        if h.magic != 2 || h.batch_length < MIN_BATCH_LENGTH || size > self.remaining {
            return Err(LogError::Corrupt(format!(
                "{}: bad batch at offset {} while cleaning",
                self.path.display(),
                h.base_offset
            )));
        }
        let mut buf = vec![0u8; size as usize];
        buf[..BATCH_HEADER_LEN].copy_from_slice(&head);
        self.reader
            .read_exact(&mut buf[BATCH_HEADER_LEN..])
            .at(&self.path)?;
        self.remaining -= size;
        Ok(Some((h, buf)))
    }
}

fn decode(h: &BatchHeader, raw: &[u8]) -> Result<Vec<Record>, LogError> {
    let mut bytes = Bytes::copy_from_slice(raw);
    RecordBatchDecoder::decode(&mut bytes)
        .map(|set| set.records)
        .map_err(|e| {
            LogError::Corrupt(format!(
                "cannot decode batch at offset {}: {e}",
                h.base_offset
            ))
        })
}

/// Spreads the cleaner's reads to at most `rate` bytes per second.
struct Throttle {
    start: Instant,
    bytes: u64,
    rate: f64,
}

impl Throttle {
    fn account(&mut self, n: usize) {
        self.bytes += n as u64;
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return;
        }
        let ahead = self.bytes as f64 / self.rate - self.start.elapsed().as_secs_f64();
        if ahead > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(ahead.min(1.0)));
        }
    }
}

/// Transactional batches whose fate is known from the markers in the plan:
/// aborted ones are dropped, undecided ones kept whole and left out of the map.
#[derive(Default)]
struct Transactions {
    aborted: HashSet<i64>,
    undecided: HashSet<i64>,
}

fn scan_transactions(plan: &CleanPlan, throttle: &mut Throttle) -> Result<Transactions, LogError> {
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut tx = Transactions::default();
    for seg in &plan.segments {
        let mut reader = BatchReader::new(seg, &plan.dir)?;
        while let Some((h, raw)) = reader.next()? {
            throttle.account(raw.len());
            if !h.is_transactional() {
                continue;
            }
            if !h.is_control() {
                pending
                    .entry(h.producer_id)
                    .or_default()
                    .push(h.base_offset);
                continue;
            }
            let aborted = decode(&h, &raw)?
                .first()
                .and_then(|r| r.key.as_ref())
                .is_some_and(|k| k.len() >= 4 && i16::from_be_bytes([k[2], k[3]]) == 0);
            if let Some(batches) = pending.remove(&h.producer_id) {
                if aborted {
                    tx.aborted.extend(batches);
                }
            }
        }
    }
    tx.undecided = pending.into_values().flatten().collect();
    Ok(tx)
}

/// The offset map: the latest offset of each key in the dirty range.
struct OffsetMap {
    map: HashMap<Bytes, i64>,
    bytes: usize,
}

/// Builds the map over the dirty segments, stopping at a segment boundary
/// when the memory budget would be exceeded. Returns the map and the first
/// offset it does not cover.
fn build_offset_map(
    plan: &CleanPlan,
    tx: &Transactions,
    budget: usize,
    throttle: &mut Throttle,
) -> Result<(OffsetMap, i64), LogError> {
    let mut map = OffsetMap {
        map: HashMap::new(),
        bytes: 0,
    };
    for seg in plan.segments.iter().filter(|s| s.dirty) {
        let mut keys: Vec<(Bytes, i64)> = Vec::new();
        let mut reader = BatchReader::new(seg, &plan.dir)?;
        while let Some((h, raw)) = reader.next()? {
            throttle.account(raw.len());
            if h.is_control()
                || tx.aborted.contains(&h.base_offset)
                || tx.undecided.contains(&h.base_offset)
            {
                continue;
            }
            for r in decode(&h, &raw)? {
                if let Some(k) = r.key {
                    keys.push((k, r.offset));
                }
            }
        }
        let added: usize = keys
            .iter()
            .filter(|(k, _)| !map.map.contains_key(k))
            .map(|(k, _)| k.len() + MAP_ENTRY_OVERHEAD)
            .sum();
        if map.bytes + added > budget {
            tracing::warn!(dir = %plan.dir.display(), segment = seg.base,
                "offset map full; cleaning stops before this segment");
            return Ok((map, seg.base));
        }
        map.bytes += added;
        for (k, o) in keys {
            map.map.insert(k, o);
        }
    }
    Ok((map, plan.first_uncleanable))
}

/// Cleans the plan's segments into `.cleaned` files, outside any lock.
/// `stop` is polled between segments; when it returns true the partial work
/// is discarded and `Ok(None)` returned.
pub fn clean(
    plan: &CleanPlan,
    limits: CleanerLimits,
    stop: &dyn Fn() -> bool,
) -> Result<Option<Cleaned>, LogError> {
    let mut throttle = Throttle {
        start: Instant::now(),
        bytes: 0,
        rate: limits.io_bytes_per_second,
    };
    let tx = scan_transactions(plan, &mut throttle)?;
    let (map, map_end) = build_offset_map(plan, &tx, limits.dedupe_buffer_bytes, &mut throttle)?;
    let horizon = plan.now_ms.saturating_sub(plan.config.delete_retention_ms);
    let mut stats = CleanStats::default();
    let mut replacements = Vec::new();
    let mut tombstone_expiry: Option<i64> = None;
    for seg in plan.segments.iter().filter(|s| s.base < map_end) {
        if stop() {
            for r in replacements {
                if let Replacement {
                    outcome: Outcome::Replace(s),
                    ..
                } = r
                {
                    s.delete()?;
                }
            }
            return Ok(None);
        }
        let mut out = LogSegment::create_named(&plan.dir, seg.base, CLEANED, &plan.config)?;
        let mut writer = ChunkWriter::default();
        let mut changed = false;
        let mut reader = BatchReader::new(seg, &plan.dir)?;
        while let Some((h, raw)) = reader.next()? {
            throttle.account(raw.len());
            stats.bytes_read += raw.len() as u64;
            if h.is_control() || tx.undecided.contains(&h.base_offset) {
                writer.push(&mut out, h, raw, plan.now_ms)?;
                continue;
            }
            if tx.aborted.contains(&h.base_offset) {
                stats.records_removed += h.records_count.max(0) as u64;
                changed = true;
                continue;
            }
            let records = decode(&h, &raw)?;
            let total = records.len();
            let kept: Vec<Record> = records
                .into_iter()
                .filter(|r| {
                    let latest = r
                        .key
                        .as_ref()
                        .and_then(|k| map.map.get(k))
                        .is_none_or(|&o| o <= r.offset);
                    let expired_tombstone = r.value.is_none() && h.max_timestamp < horizon;
                    latest && !expired_tombstone
                })
                .collect();
            if kept.iter().any(|r| r.value.is_none()) {
                let expiry = h
                    .max_timestamp
                    .saturating_add(plan.config.delete_retention_ms);
                tombstone_expiry = Some(tombstone_expiry.map_or(expiry, |t| t.min(expiry)));
            }
            stats.records_removed += (total - kept.len()) as u64;
            if kept.len() == total {
                writer.push(&mut out, h, raw, plan.now_ms)?;
            } else if !kept.is_empty() {
                changed = true;
                let rebuilt = reencode(&h, &kept)?;
                let nh = BatchHeader::parse(&rebuilt)?;
                writer.push(&mut out, nh, rebuilt, plan.now_ms)?;
            } else {
                changed = true;
            }
        }
        writer.flush(&mut out, plan.now_ms)?;
        if !changed {
            out.delete()?;
            continue;
        }
        stats.segments_rewritten += 1;
        stats.bytes_written += out.size();
        let outcome = if out.is_empty() {
            out.delete()?;
            Outcome::Delete
        } else {
            out.seal()?;
            out.sync_all()?;
            Outcome::Replace(Box::new(out))
        };
        replacements.push(Replacement {
            base: seg.base,
            old_file: seg.file.clone(),
            outcome,
        });
    }
    Ok(Some(Cleaned {
        replacements,
        first_dirty: map_end,
        tombstone_expiry,
        stats,
    }))
}

/// A batch of the kept records of `h`, in its codec, attributes and epoch.
fn reencode(h: &BatchHeader, kept: &[Record]) -> Result<Vec<u8>, LogError> {
    let compression = match h.compression_codec() {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        kept,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| {
        LogError::Corrupt(format!(
            "cannot re-encode batch at offset {}: {e}",
            h.base_offset
        ))
    })?;
    let mut out = buf.to_vec();
    if h.is_log_append_time() {
        batch::set_log_append_time(&mut out, h.max_timestamp);
    }
    Ok(out)
}

/// Buffers cleaned batches and appends them to the cleaned segment in chunks.
#[derive(Default)]
struct ChunkWriter {
    bytes: Vec<u8>,
    headers: Vec<BatchHeader>,
}

impl ChunkWriter {
    fn push(
        &mut self,
        out: &mut LogSegment,
        h: BatchHeader,
        raw: Vec<u8>,
        now: i64,
    ) -> Result<(), LogError> {
        self.bytes.extend_from_slice(&raw);
        self.headers.push(h);
        if self.bytes.len() >= WRITE_CHUNK {
            self.flush(out, now)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut LogSegment, now: i64) -> Result<(), LogError> {
        if self.headers.is_empty() {
            return Ok(());
        }
        out.append(&self.bytes, &self.headers, now)
            .map_err(|e| match e {
                AppendFailure::NothingWritten(e) | AppendFailure::Poisoned(e, _) => e,
            })?;
        self.bytes.clear();
        self.headers.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::replication::tests::all_batches;
    use kafka_protocol::records::TimestampType;

    fn keyed(records: &[(&str, Option<&str>)], ts: i64) -> Vec<u8> {
        let recs: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: ts,
                key: Some(Bytes::from(k.to_string())),
                value: v.map(|v| Bytes::from(v.to_string())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::Gzip,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    fn compact_config() -> LogConfig {
        LogConfig {
            compact: true,
            delete: false,
            segment_bytes: 50,
            min_cleanable_ratio: 0.0,
            delete_retention_ms: 1_000,
            ..LogConfig::default()
        }
    }

    const LIMITS: CleanerLimits = CleanerLimits {
        dedupe_buffer_bytes: 1 << 20,
        io_bytes_per_second: f64::MAX,
    };

    /// (offset, key, value) of every record from the log start.
    fn contents(log: &Log) -> Vec<(i64, String, Option<String>)> {
        let s = |b: &Bytes| String::from_utf8(b.to_vec()).unwrap();
        let mut out = Vec::new();
        for batch in all_batches(log) {
            for set in RecordBatchDecoder::decode_all(&mut Bytes::from(batch)).unwrap() {
                for r in set.records {
                    out.push((
                        r.offset,
                        r.key.as_ref().map(s).unwrap(),
                        r.value.as_ref().map(s),
                    ));
                }
            }
        }
        out
    }

    fn clean_once(log: &mut Log, now: i64) -> bool {
        let Some(plan) = log.cleaner_plan(now).unwrap() else {
            return false;
        };
        let cleaned = clean(&plan, LIMITS, &|| false).unwrap().unwrap();
        log.install_cleaned(cleaned).unwrap();
        true
    }

    #[test]
    fn cleaning_keeps_the_latest_record_per_key_with_offsets_and_drops_old_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), compact_config(), 0, 0).unwrap();
        log.append(
            &mut keyed(&[("a", Some("1")), ("b", Some("1")), ("c", Some("1"))], 100),
            1,
        )
        .unwrap();
        log.append(&mut keyed(&[("a", Some("2")), ("b", None)], 100), 1)
            .unwrap();
        log.append(&mut keyed(&[("c", Some("3")), ("d", Some("1"))], 5_000), 1)
            .unwrap();
        log.append(&mut keyed(&[("e", Some("active"))], 5_000), 1)
            .unwrap();
        assert!(log.segment_count() >= 3, "{:?}", log.segment_base_offsets());
        let leo = log.log_end_offset();

        // Within delete.retention.ms the tombstone stays.
        assert!(clean_once(&mut log, 1_000));
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            contents(&log),
            vec![
                (3, "a".into(), s("2")),
                (4, "b".into(), None),
                (5, "c".into(), s("3")),
                (6, "d".into(), s("1")),
                (7, "e".into(), s("active")),
            ]
        );
        assert_eq!(log.log_end_offset(), leo);
        // Nothing dirty, tombstone not yet expired: no work.
        assert!(!clean_once(&mut log, 1_050));
        // After the tombstone's horizon it goes.
        assert!(clean_once(&mut log, 1_101));
        assert_eq!(
            contents(&log).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![3, 5, 6, 7]
        );
        // Reopening gives the same log.
        let before = contents(&log);
        drop(log);
        let log = Log::open(dir.path(), compact_config(), 0, 0).unwrap();
        assert_eq!(contents(&log), before);
        assert_eq!(log.log_end_offset(), leo);
    }

    #[test]
    fn min_compaction_lag_keeps_young_segments_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            min_compaction_lag_ms: 10_000,
            ..compact_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        log.append(
            &mut keyed(
                &[("a", Some("1")), ("a", Some("2")), ("a", Some("3"))],
                1_000,
            ),
            1,
        )
        .unwrap();
        log.append(
            &mut keyed(
                &[("a", Some("4")), ("a", Some("5")), ("a", Some("6"))],
                1_000,
            ),
            1,
        )
        .unwrap();
        log.append(&mut keyed(&[("b", Some("1"))], 1_000), 1)
            .unwrap();
        assert!(!clean_once(&mut log, 5_000), "too young to clean");
        assert!(clean_once(&mut log, 20_000));
        assert_eq!(
            contents(&log).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn an_interrupted_swap_is_completed_and_an_unfinished_clean_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), compact_config(), 0, 0).unwrap();
        log.append(
            &mut keyed(&[("a", Some("1")), ("a", Some("2")), ("b", Some("1"))], 1),
            1,
        )
        .unwrap();
        log.append(
            &mut keyed(&[("c", Some("1")), ("c", Some("2")), ("c", Some("3"))], 1),
            1,
        )
        .unwrap();
        log.append(&mut keyed(&[("z", Some("1"))], 1), 1).unwrap();
        let original = contents(&log);
        let plan = log.cleaner_plan(10).unwrap().unwrap();
        let cleaned = clean(&plan, LIMITS, &|| false).unwrap().unwrap();
        drop(log);
        // Crash before the swap: the .cleaned files are dropped, the log is as it was.
        let names = || {
            let mut v: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert!(names().iter().any(|n| n.ends_with(".log.cleaned")));
        drop(cleaned);
        // Simulate a crash between steps 2 and 3 for segment 0: its cleaned
        // files were renamed to .swap, only the index made it to the final name.
        let base = plan.segments[0].base;
        let name = |ext: &str, sfx: &str| dir.path().join(segment_file_name(base, ext) + sfx);
        fs::rename(name("index", CLEANED), name("index", "")).unwrap();
        fs::rename(name("timeindex", CLEANED), name("timeindex", SWAP)).unwrap();
        fs::rename(name("log", CLEANED), name("log", SWAP)).unwrap();
        let log = Log::open(dir.path(), compact_config(), 0, 0).unwrap();
        assert!(
            names()
                .iter()
                .all(|n| !n.ends_with(CLEANED) && !n.ends_with(SWAP)),
            "{:?}",
            names()
        );
        let got = contents(&log);
        assert_eq!(
            got.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6],
            "segment 0 cleaned, the rest as written: {original:?}"
        );
    }
}
