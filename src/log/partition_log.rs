//! One partition's log: the ordered segments of a partition directory, offset
//! assignment on append, rolling, reads for fetch, timestamp lookups, flush
//! bookkeeping. It takes no locks and never fsyncs on the append path.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::collections::BTreeMap;

use super::batch::{self, validate_batches, BatchError, BatchHeader, ControlMarker};
use super::checkpoint::sync_dir;
use super::cleaner::complete_swaps;
use super::error::{IoContext, LogError};
use super::leader_epoch::LeaderEpochFileCache;
use super::producer_state::{ProducerError, ProducerStateManager, SequenceCheck};
use super::recovery::{recover_segments, RecoveryStats};
use super::segment::{AppendFailure, LogSegment};
use super::txn_index::{AbortedTxn, TxnIndex};
use super::validate::{check_records, Codec};
use super::verified::VerifiedMark;

/// Which timestamp the log stores for appended batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Per-log settings (Kafka topic configs of the same names).
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would exceed this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment's first append is this old.
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes of log between offset-index entries.
    pub index_interval_bytes: u32,
    /// `segment.index.bytes`: roll when an index would exceed this size.
    pub segment_index_bytes: u32,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.before.max.ms` / `after.max.ms`: how far a CreateTime
    /// timestamp may lie behind / ahead of the broker's clock.
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// `retention.ms` (-1: no limit), by each segment's largest timestamp.
    pub retention_ms: i64,
    /// `retention.bytes` (-1: no limit).
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete` / `compact`.
    pub delete: bool,
    pub compact: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms` / `max.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones stay readable.
    pub delete_retention_ms: i64,
    /// `compression.type`: the codec batches are stored in.
    pub compression: Codec,
}

impl LogConfig {
    /// Kafka's `maxSegmentMs`: a compacted log also rolls by `max.compaction.lag.ms`,
    /// so no record waits in the active segment longer than that.
    pub fn roll_ms(&self) -> i64 {
        if self.compact {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 * 1024 * 1024,
            timestamp_type: TimestampType::CreateTime,
            max_message_bytes: 1_048_588,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            delete: true,
            compact: false,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            compression: Codec::Producer,
        }
    }
}

/// Who is appending: a producer's request (sequence numbers checked) or a
/// coordinator writing its own records (no sequence checks, as in Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOrigin {
    Client,
    Coordinator,
}

/// What an append assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into the batches, -1 with CreateTime.
    pub log_append_time: i64,
    pub max_timestamp: i64,
    /// The batch was a producer's resend of one already in the log; nothing
    /// was written and the offsets are the original ones.
    pub duplicate: bool,
}

/// A byte range of a segment file holding whole batches, to be read (or sent) later.
#[derive(Debug, Clone)]
pub struct FetchSlice {
    pub file: Option<Arc<File>>,
    pub position: u64,
    pub len: usize,
    /// The segment's verified mark: bytes past it are CRC-checked when read.
    pub verified: Option<Arc<VerifiedMark>>,
    /// Whether [`FetchSlice::read`] may memory-map the bytes. True from
    /// [`Log::read`]; a caller whose slice reaches above the high watermark
    /// sets it false, since truncation may cut those bytes (see `read_unchecked`).
    pub may_map: bool,
}

/// Slices at least this long are memory-mapped rather than copied out.
const MAP_MIN: usize = 64 * 1024;

impl FetchSlice {
    fn empty() -> FetchSlice {
        FetchSlice {
            file: None,
            position: 0,
            len: 0,
            verified: None,
            may_map: true,
        }
    }

    /// The slice's bytes, each batch checked against its CRC-32C the first
    /// time it is read in the broker's lifetime (see `verified.rs`). A bad
    /// batch cuts the slice before it, or is [`LogError::CorruptBatch`] when
    /// it is the first.
    pub fn read(&self) -> Result<bytes::Bytes, LogError> {
        let mut bytes = self.read_unchecked()?;
        if let Some(mark) = &self.verified {
            match mark.check(&bytes, self.position) {
                Ok(intact) => bytes.truncate(intact),
                Err(bad) => {
                    return Err(LogError::CorruptBatch {
                        offset: bad.offset,
                        path: mark.path().to_path_buf(),
                        position: bad.position,
                        reason: bad.reason,
                    })
                }
            }
        }
        Ok(bytes)
    }

    /// The slice's bytes: a memory map of the file for a large slice that may
    /// be mapped (no copy; the pages are the page cache's), else a copy.
    fn read_unchecked(&self) -> std::io::Result<bytes::Bytes> {
        if self.len == 0 {
            return Ok(bytes::Bytes::new());
        }
        let file = self.file.as_ref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "fetch slice has no file")
        })?;
        if self.may_map && self.len >= MAP_MIN {
            let mut options = memmap2::MmapOptions::new();
            options.offset(self.position).len(self.len).populate();
            // SAFETY: a slice covers whole batches that were in the segment
            // file under the log lock, and one that may be mapped lies below
            // the high watermark at read time (`Log::read` slices are mapped
            // only when the caller's bound kept them there; a caller reading
            // above it sets `may_map` false and gets a copy). Bytes below the
            // high watermark are never rewritten and the file is never cut
            // below them while the broker runs: appends only go past the end
            // (a failed one cuts back to where it began), recovery truncates
            // before anything is served, `Log::truncate_to` cuts only above
            // the high watermark (a follower's divergent tail, KIP-101/279),
            // and retention and compaction unlink or replace whole files,
            // whose pages a mapping keeps. So the mapped bytes neither change
            // nor vanish.
            match unsafe { options.map(&**file) } {
                Ok(map) => return Ok(bytes::Bytes::from_owner(map)),
                // Out of mappings (vm.max_map_count) or address space: copy instead.
                Err(e) => tracing::debug!(error = %e, "mmap failed, reading with pread"),
            }
        }
        let mut buf = vec![0u8; self.len];
        file.read_exact_at(&mut buf, self.position)?;
        Ok(bytes::Bytes::from(buf))
    }
}

/// The log of one partition. Not internally synchronized: callers wrap it in a lock.
#[derive(Debug)]
pub struct Log {
    pub(super) dir: PathBuf,
    pub(super) config: LogConfig,
    /// Ordered by base offset; never empty; the last one is the active segment.
    pub(super) segments: Vec<LogSegment>,
    pub(super) log_start_offset: i64,
    /// The cleaner's position: offsets below it are clean (deduplicated).
    pub(super) first_dirty_offset: i64,
    /// When the earliest tombstone the cleaner kept may be removed.
    pub(super) tombstone_expiry: Option<i64>,
    pub(super) recovery_point: i64,
    /// Set when a failed write could not be undone; appends are refused after that.
    offline: Option<String>,
    /// Producer ids, sequences and open transactions (idempotence, LSO).
    pub(super) producers: ProducerStateManager,
    /// Aborted-transaction indexes by segment base offset (only segments
    /// that hold an abort marker have one).
    pub(super) txn_indexes: BTreeMap<i64, TxnIndex>,
    /// What open validated past the recovery point and replayed.
    pub(super) recovery: RecoveryStats,
    /// Bytes appended since the last producer-state snapshot.
    pub(super) bytes_since_snapshot: u64,
    /// Where each leader epoch starts (`leader-epoch-checkpoint`).
    pub(super) leader_epochs: LeaderEpochFileCache,
    /// The epoch stamped into batches this replica appends as leader.
    pub(super) leader_epoch: i32,
}

/// Parses `<20 digits>.<ext>` into (base offset, ext).
fn parse_segment_file_name(name: &str) -> Option<(i64, &str)> {
    let (stem, ext) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, ext))
}

impl Log {
    /// Opens or creates the log in `dir`; see the module docs for the recovery rules.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        recovery_point: i64,
        log_start_offset: i64,
    ) -> Result<Log, LogError> {
        fs::create_dir_all(dir).at(dir)?;
        complete_swaps(dir)?;
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name();
            let Some((base, ext)) = name.to_str().and_then(parse_segment_file_name) else {
                continue;
            };
            match ext {
                "log" => bases.push(base),
                "index" | "timeindex" | "txnindex" => index_files.push((base, entry.path())),
                _ => {}
            }
        }
        bases.sort_unstable();
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                tracing::info!(path = %path.display(), "deleting index file without a log file");
                fs::remove_file(&path).at(&path)?;
            }
        }

        // Segments from the one holding the recovery point on are validated.
        let start = bases
            .iter()
            .rposition(|&b| b <= recovery_point)
            .unwrap_or(0);
        let mut segments = Vec::with_capacity(bases.len());
        let mut loads = Vec::with_capacity(bases.len());
        for &base in &bases {
            let (seg, off_load, time_load) = LogSegment::open(dir, base, &config)?;
            segments.push(seg);
            loads.push((off_load, time_load));
        }
        for (i, (off_load, time_load)) in loads.into_iter().enumerate().take(start) {
            let next_base = bases[i + 1];
            if let Some(reason) = segments[i].check_indexes(next_base, off_load, time_load)? {
                tracing::info!(
                    dir = %dir.display(),
                    segment = %segments[i].log_path().display(),
                    reason = %reason,
                    "rebuilt segment indexes"
                );
            }
        }
        let recovery = recover_segments(dir, &mut segments, start, recovery_point)?;

        let mut log_start_offset = log_start_offset.max(0);
        if let Some(first) = segments.first() {
            log_start_offset = log_start_offset.max(first.base_offset());
        }
        let leo = segments.last().map(|s| s.next_offset());
        if leo.is_some_and(|leo| leo < log_start_offset) {
            tracing::warn!(
                dir = %dir.display(),
                log_end_offset = leo,
                log_start_offset,
                "log ends before its start offset; deleting all segments"
            );
            for seg in segments.drain(..) {
                seg.delete()?;
            }
        }
        if segments.is_empty() {
            segments.push(LogSegment::create(dir, log_start_offset, &config)?);
            sync_dir(dir)?;
        }
        let leo = segments
            .last()
            .map_or(log_start_offset, |s| s.next_offset());
        let (leader_epochs, epochs_load) = LeaderEpochFileCache::open(dir)?;
        let mut txn_indexes = BTreeMap::new();
        for seg in &segments {
            let index = TxnIndex::open(dir, seg.base_offset())?;
            if !index.is_empty() {
                txn_indexes.insert(seg.base_offset(), index);
            }
        }
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            first_dirty_offset: log_start_offset,
            tombstone_expiry: None,
            recovery_point: recovery_point.clamp(0, leo),
            offline: None,
            producers: ProducerStateManager::new(),
            txn_indexes,
            recovery,
            bytes_since_snapshot: 0,
            leader_epochs,
            leader_epoch: 0,
        };
        log.load_producer_state()?;
        log.load_leader_epochs(epochs_load, recovery_point)?;
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Applies new settings; they take effect from the next append.
    pub fn set_config(&mut self, config: LogConfig) {
        for seg in &mut self.segments {
            seg.set_config(&config);
        }
        self.config = config;
    }

    fn active(&self) -> &LogSegment {
        debug_assert!(!self.segments.is_empty());
        &self.segments[self.segments.len() - 1]
    }

    /// Validates, assigns offsets (and LogAppendTime), rolls if needed, and
    /// writes `records` to the active segment with one write (no fsync).
    pub fn append(&mut self, records: &mut [u8], now_ms: i64) -> Result<AppendInfo, LogError> {
        self.append_from(records, AppendOrigin::Client, now_ms)
    }

    /// [`Log::append`] on behalf of `origin`.
    pub fn append_from(
        &mut self,
        records: &mut [u8],
        origin: AppendOrigin,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let mut headers = validate_batches(records, self.config.max_message_bytes)?;
        let mut replaced;
        let topic_partition = self.dir.file_name().unwrap_or_default().to_string_lossy();
        let checked = check_records(records, &headers, &topic_partition, &self.config, now_ms)?;
        let records: &mut [u8] = match checked {
            Some(recompressed) => {
                replaced = recompressed;
                headers = validate_batches(&replaced, self.config.max_message_bytes)?;
                &mut replaced
            }
            None => records,
        };
        if let Some(duplicate) = self.check_producers(&headers, origin)? {
            return Ok(duplicate);
        }
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let base_offset = self.log_end_offset();
        let mut next = base_offset;
        let mut pos = 0usize;
        let mut patched = Vec::with_capacity(headers.len());
        let mut max_timestamp = -1i64;
        for h in &headers {
            let b = &mut records[pos..pos + h.total_size()];
            batch::set_base_offset(b, next);
            batch::set_partition_leader_epoch(b, self.leader_epoch);
            if log_append {
                batch::set_log_append_time(b, now_ms);
            }
            let h = BatchHeader::parse(b)?;
            debug_assert_eq!(h.base_offset, next, "offsets must be contiguous");
            max_timestamp = max_timestamp.max(h.max_timestamp);
            next = h.last_offset() + 1;
            pos += h.total_size();
            patched.push(h);
        }
        let last_offset = next - 1;
        self.write_batches(records, &patched, now_ms)?;
        if let Some(h) = patched.first().filter(|h| h.producer_id >= 0) {
            tracing::debug!(dir = %self.dir.display(), base_offset, last_offset,
                producer_id = h.producer_id, epoch = h.producer_epoch,
                first_seq = h.base_sequence, "appended");
        }
        let mut pos = 0usize;
        for h in &patched {
            let marker = if h.is_control() {
                batch::control_marker_type(&records[pos..pos + h.total_size()])
            } else {
                None
            };
            pos += h.total_size();
            self.apply_producer_batch(h, marker)?;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time: if log_append { now_ms } else { -1 },
            max_timestamp,
            duplicate: false,
        })
    }

    /// Refuses writes once a failed write could not be undone.
    pub(super) fn check_online(&self) -> Result<(), LogError> {
        match &self.offline {
            Some(why) => Err(LogError::Io(std::io::Error::other(format!(
                "log {} is offline after a failed write: {why}",
                self.dir.display()
            )))),
            None => Ok(()),
        }
    }

    /// Writes batches whose offsets (and epochs) are final: records the new
    /// leader epochs they start (before the write, as Kafka does, so the
    /// checkpoint never lags the data), rolls if needed, and appends them to
    /// the active segment with one write.
    pub(super) fn write_batches(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<(), LogError> {
        let Some(last) = headers.last() else {
            return Ok(());
        };
        let leo_before = self.log_end_offset();
        for h in headers {
            if let Err(e) = self.assign_batch_epoch(h) {
                self.undo_epochs_past(leo_before);
                return Err(e);
            }
        }
        if let Err(e) = self.maybe_roll(records.len(), last.last_offset(), headers.len(), now_ms) {
            self.undo_epochs_past(leo_before);
            return Err(e);
        }
        let active = self.segments.len() - 1;
        match self.segments[active].append(records, headers, now_ms) {
            Ok(()) => {}
            Err(AppendFailure::NothingWritten(e)) => {
                self.undo_epochs_past(leo_before);
                return Err(e);
            }
            Err(AppendFailure::Poisoned(e, why)) => {
                tracing::error!(dir = %self.dir.display(), error = %e, truncate_error = %why,
                    "failed write could not be undone; log is offline");
                self.offline = Some(format!("{e}; cutting back failed: {why}"));
                return Err(e);
            }
        }
        debug_assert!(self.log_end_offset() > leo_before, "LEO only grows");
        self.bytes_since_snapshot += records.len() as u64;
        Ok(())
    }

    /// Checks each producer's batches against its state. Returns the original
    /// append of a resent batch (Kafka answers a duplicate with its offsets).
    fn check_producers(
        &self,
        headers: &[BatchHeader],
        origin: AppendOrigin,
    ) -> Result<Option<AppendInfo>, LogError> {
        let mut pending: Vec<(i64, i16, i32)> = Vec::new();
        for h in headers {
            if h.is_control() && origin == AppendOrigin::Client {
                return Err(BatchError::Invalid(
                    "clients may not write control batches".to_string(),
                )
                .into());
            }
            if h.producer_id < 0 {
                if h.is_transactional() {
                    return Err(BatchError::Invalid(
                        "a transactional batch needs a producer id".to_string(),
                    )
                    .into());
                }
                continue;
            }
            if origin == AppendOrigin::Coordinator {
                continue;
            }
            let earlier = pending
                .iter()
                .rev()
                .find(|p| p.0 == h.producer_id)
                .map(|&(_, epoch, seq)| (epoch, seq));
            match self.producers.check(h, earlier)? {
                SequenceCheck::Duplicate(m) if headers.len() == 1 => {
                    tracing::debug!(dir = %self.dir.display(), producer_id = h.producer_id,
                        first_seq = h.base_sequence, offset = m.first_offset, "duplicate batch");
                    return Ok(Some(AppendInfo {
                        base_offset: m.first_offset,
                        last_offset: m.last_offset,
                        log_append_time: -1,
                        max_timestamp: m.timestamp,
                        duplicate: true,
                    }));
                }
                SequenceCheck::Duplicate(_) => {
                    return Err(ProducerError::OutOfOrderSequence(format!(
                        "producer {} resent one batch of a multi-batch request",
                        h.producer_id
                    ))
                    .into());
                }
                SequenceCheck::Append => {
                    let last = h.base_sequence.wrapping_add(h.last_offset_delta);
                    pending.push((h.producer_id, h.producer_epoch, last));
                }
            }
        }
        Ok(None)
    }

    /// Updates producer state with a batch now in the log; an aborted
    /// transaction goes into the active segment's transaction index.
    pub(super) fn apply_producer_batch(
        &mut self,
        h: &BatchHeader,
        marker: Option<bool>,
    ) -> Result<(), LogError> {
        let Some(done) = self.producers.apply(h, marker) else {
            return Ok(());
        };
        if done.aborted {
            let lso = self
                .producers
                .first_unstable_offset()
                .unwrap_or(done.last_offset + 1);
            let base = self.active().base_offset();
            let dir = self.dir.clone();
            let index = match self.txn_indexes.entry(base) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(TxnIndex::open(&dir, base)?)
                }
            };
            index.append(AbortedTxn {
                producer_id: done.producer_id,
                first_offset: done.first_offset,
                last_offset: done.last_offset,
                last_stable_offset: lso,
            })?;
        }
        Ok(())
    }

    /// Appends the control batch ending `marker`'s transaction in this partition.
    pub fn append_marker(
        &mut self,
        marker: &ControlMarker,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.producers.check_marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.coordinator_epoch,
        )?;
        let mut records = batch::control_batch(marker, now_ms)?;
        let info = self.append_from(&mut records, AppendOrigin::Coordinator, now_ms)?;
        self.producers
            .set_coordinator_epoch(marker.producer_id, marker.coordinator_epoch);
        Ok(info)
    }

    /// Rolls a new active segment if the current one is non-empty and full by
    /// size, age, index capacity or relative-offset range.
    pub(super) fn maybe_roll(
        &mut self,
        incoming_bytes: usize,
        last_offset: i64,
        incoming_batches: usize,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let active = self.active();
        if active.is_empty() {
            return Ok(());
        }
        let segment_bytes = self.config.segment_bytes.min(i32::MAX as u64);
        let by_size = active.size() + incoming_bytes as u64 > segment_bytes;
        let by_time = active
            .first_append_ms()
            .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.roll_ms());
        let by_index = active.offset_index().is_full(incoming_batches)
            || active.time_index().is_full(incoming_batches + 1);
        let by_offset = last_offset - active.base_offset() > i64::from(i32::MAX);
        if !(by_size || by_time || by_index || by_offset) {
            return Ok(());
        }
        tracing::debug!(dir = %self.dir.display(), by_size, by_time, by_index, by_offset, "rolling segment");
        self.roll()
    }

    /// Seals the active segment and starts a new one at the log end offset.
    pub(super) fn roll(&mut self) -> Result<(), LogError> {
        let new_base = self.log_end_offset();
        let last = self.segments.len() - 1;
        self.segments[last].seal()?;
        if let Some(index) = self.txn_indexes.get(&self.segments[last].base_offset()) {
            index.sync()?;
        }
        let seg = LogSegment::create(&self.dir, new_base, &self.config)?;
        self.segments.push(seg);
        self.take_producer_snapshot()?;
        sync_dir(&self.dir)?;
        Ok(())
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }

    /// Whole batches from the one holding `offset`, below `max_offset`, within
    /// `max_bytes` (the first batch whole regardless with `min_one`), from one segment.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<FetchSlice, LogError> {
        let leo = self.log_end_offset();
        if offset < self.log_start_offset || offset > leo {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: leo,
            });
        }
        if offset >= leo || offset >= max_offset {
            return Ok(FetchSlice::empty());
        }
        let first = self
            .segments
            .partition_point(|s| s.base_offset() <= offset)
            .saturating_sub(1);
        for seg in &self.segments[first..] {
            if let Some(slice) = seg.read(offset, max_bytes, max_offset, min_one)? {
                return Ok(slice);
            }
        }
        Ok(FetchSlice::empty())
    }

    /// The first record (by offset) with timestamp >= `ts`, as (offset, timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        for seg in &self.segments {
            if seg.is_empty()
                || seg.max_timestamp() < ts
                || seg.next_offset() <= self.log_start_offset
            {
                continue;
            }
            if let Some(found) = seg.find_offset_by_timestamp(ts, self.log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// (offset, timestamp) of the first record holding the largest timestamp.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let max = self
            .segments
            .iter()
            .filter(|s| !s.is_empty() && s.next_offset() > self.log_start_offset)
            .map(|s| s.max_timestamp())
            .max();
        match max {
            Some(ts) => self.offset_for_timestamp(ts),
            None => Ok(None),
        }
    }

    /// Segment files holding data past the recovery point, and the offset they
    /// cover. fsync them outside any lock, then call [`Log::mark_flushed`].
    pub fn unflushed(&self) -> (Vec<Arc<File>>, i64) {
        let files = self
            .segments
            .iter()
            .filter(|s| !s.is_empty() && s.next_offset() > self.recovery_point)
            .map(|s| s.log_file().clone())
            .collect();
        (files, self.log_end_offset())
    }

    /// Records that everything below `offset` is durable.
    pub fn mark_flushed(&mut self, offset: i64) {
        debug_assert!(offset <= self.log_end_offset());
        self.recovery_point = self.recovery_point.max(offset.min(self.log_end_offset()));
    }

    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }

    /// What recovery at open validated past the checkpointed recovery point.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery
    }

    /// fsyncs every segment holding unflushed data plus the active segment's
    /// indexes and the directory; the recovery point becomes the log end offset.
    /// (Inactive segments' indexes were fsynced when they were rolled.)
    pub fn flush(&mut self) -> Result<(), LogError> {
        let rp = self.recovery_point;
        let last = self.segments.len() - 1;
        for (i, seg) in self.segments.iter_mut().enumerate() {
            if i == last || seg.next_offset() > rp {
                seg.sync_all()?;
            }
        }
        sync_dir(&self.dir)?;
        self.recovery_point = self.log_end_offset();
        Ok(())
    }

    /// Bytes of record batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base_offset()).collect()
    }

    /// Removes the partition directory and everything in it.
    pub fn delete(self) -> Result<(), LogError> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).at(&dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::{batch, batch_with};
    use crate::log::segment::segment_file_name;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 20,
            index_interval_bytes: 128,
            ..LogConfig::default()
        }
    }

    /// Parses every batch header in `bytes`.
    fn headers(bytes: &[u8]) -> Vec<BatchHeader> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let h = BatchHeader::parse(&bytes[pos..]).unwrap();
            pos += h.total_size();
            out.push(h);
        }
        assert_eq!(pos, bytes.len(), "slice must hold whole batches");
        out
    }

    /// Appends `count` batches of `n` records each; returns the stored bytes of each.
    fn append_batches(log: &mut Log, count: usize, n: usize, ts: i64) -> Vec<Vec<u8>> {
        (0..count)
            .map(|i| {
                let mut b = batch(n, ts + i as i64);
                log.append(&mut b, 1_000).unwrap();
                b
            })
            .collect()
    }

    fn read_all(log: &Log, offset: i64) -> Vec<u8> {
        let slice = log
            .read(offset, usize::MAX, log.log_end_offset(), true)
            .unwrap();
        slice.read().unwrap().to_vec()
    }

    fn log_path(dir: &Path, base: i64) -> PathBuf {
        dir.join(segment_file_name(base, "log"))
    }

    #[test]
    fn empty_dir_opens_an_empty_log_at_the_start_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(&dir.path().join("t-0"), small_config(), 0, 0).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert_eq!(log.segment_base_offsets(), vec![0]);
        assert!(log.dir().join(segment_file_name(0, "log")).exists());
        assert_eq!(log.max_timestamp_offset().unwrap(), None);
        let log = Log::open(&dir.path().join("t-1"), small_config(), 0, 42).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (42, 42));
        assert_eq!(log.segment_base_offsets(), vec![42]);
    }

    #[test]
    fn large_read_is_mapped_and_outlives_later_appends_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored: Vec<u8> = append_batches(&mut log, 100, 50, 1_000).concat();
        assert!(
            stored.len() >= MAP_MIN,
            "{} bytes is too few to map",
            stored.len()
        );
        let slice = log.read(0, usize::MAX, log.log_end_offset(), true).unwrap();
        let mapped = slice.read().unwrap();
        assert_eq!(mapped.len(), stored.len());
        assert_eq!(&mapped[..], &stored[..]);
        // Appends go past the mapped range; an unlinked file keeps its pages.
        append_batches(&mut log, 10, 50, 2_000);
        fs::remove_file(log_path(dir.path(), 0)).unwrap();
        assert_eq!(&mapped[..], &stored[..]);
        // A read from the middle maps from an unaligned file position.
        let h = headers(&stored);
        let (skip, from) = (
            h[..7].iter().map(|h| h.total_size()).sum::<usize>(),
            h[7].base_offset,
        );
        let tail = FetchSlice {
            verified: None,
            may_map: true,
            file: slice.file.clone(),
            position: skip as u64,
            len: stored.len() - skip,
        };
        assert!(tail.len >= MAP_MIN);
        assert_eq!(&tail.read().unwrap()[..], &stored[skip..]);
        assert_eq!(headers(&tail.read().unwrap())[0].base_offset, from);
    }

    #[test]
    fn a_slice_that_may_not_be_mapped_is_copied_and_a_cut_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored: Vec<u8> = append_batches(&mut log, 100, 50, 1_000).concat();
        let mut slice = log.read(0, usize::MAX, log.log_end_offset(), true).unwrap();
        assert!(slice.may_map, "Log::read slices may be mapped");
        assert!(slice.len >= MAP_MIN);
        slice.may_map = false;
        let copied = slice.read().unwrap();
        assert_eq!(&copied[..], &stored[..]);
        // Above the high watermark a follower's truncation may cut the file:
        // a copy then fails cleanly (a mapping would fault on access).
        log.truncate_to(2).unwrap();
        assert!(slice.read().is_err());
        assert_eq!(&copied[..], &stored[..]);
    }

    #[test]
    fn append_then_read_returns_exact_bytes_and_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let mut a = batch(3, 100);
        let info = log.append(&mut a, 5).unwrap();
        assert_eq!(
            info,
            AppendInfo {
                base_offset: 0,
                last_offset: 2,
                log_append_time: -1,
                max_timestamp: 100,
                duplicate: false
            }
        );
        let mut b = batch_with(&[200, 201], 50, Compression::Gzip);
        let info = log.append(&mut b, 5).unwrap();
        assert_eq!((info.base_offset, info.last_offset), (3, 4));
        assert_eq!(log.log_end_offset(), 5);

        let mut expected = a.clone();
        expected.extend_from_slice(&b);
        assert_eq!(read_all(&log, 0), expected);
        // An offset inside a batch returns that whole batch.
        assert_eq!(read_all(&log, 1), expected);
        assert_eq!(read_all(&log, 4), b);
        let hs = headers(&expected);
        assert_eq!(
            hs.iter()
                .map(|h| (h.base_offset, h.last_offset()))
                .collect::<Vec<_>>(),
            vec![(0, 2), (3, 4)]
        );
        assert_eq!(log.size_bytes(), expected.len() as u64);
    }

    #[test]
    fn read_at_log_end_is_empty_and_outside_the_log_is_out_of_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        append_batches(&mut log, 2, 2, 10);
        let s = log.read(4, 1000, 4, true).unwrap();
        assert_eq!(s.len, 0);
        assert!(s.read().unwrap().is_empty());
        assert!(matches!(
            log.read(5, 1000, 5, true),
            Err(LogError::OffsetOutOfRange {
                offset: 5,
                log_start_offset: 0,
                log_end_offset: 4
            })
        ));
        let mut log = Log::open(&dir.path().join("other"), small_config(), 0, 10).unwrap();
        assert!(matches!(
            log.read(3, 1000, 10, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        append_batches(&mut log, 1, 1, 1);
        assert_eq!(headers(&read_all(&log, 10))[0].base_offset, 10);
    }

    #[test]
    fn read_smaller_than_one_batch_returns_it_whole_only_with_min_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 3, 4, 10);
        let with = log.read(0, 10, 100, true).unwrap();
        assert_eq!(with.read().unwrap().to_vec(), stored[0]);
        let without = log.read(0, 10, 100, false).unwrap();
        assert_eq!(without.len, 0);
        // Two batches fit exactly; the third does not.
        let two = stored[0].len() + stored[1].len();
        let s = log.read(0, two + stored[2].len() - 1, 100, false).unwrap();
        assert_eq!(s.len, two);
        let s = log.read(5, two, 100, false).unwrap();
        assert_eq!(
            s.read().unwrap().to_vec(),
            [stored[1].clone(), stored[2].clone()].concat()
        );
    }

    #[test]
    fn read_stops_before_batches_reaching_max_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 3, 2, 10); // offsets 0-1, 2-3, 4-5
        assert_eq!(
            log.read(0, 1 << 20, 4, true)
                .unwrap()
                .read()
                .unwrap()
                .to_vec(),
            [stored[0].clone(), stored[1].clone()].concat()
        );
        // A batch straddling the bound is left out, even with min_one.
        assert_eq!(
            log.read(0, 1 << 20, 3, true)
                .unwrap()
                .read()
                .unwrap()
                .to_vec(),
            stored[0]
        );
        assert_eq!(log.read(2, 1 << 20, 3, true).unwrap().len, 0);
        assert_eq!(log.read(2, 1 << 20, 2, true).unwrap().len, 0);
        assert_eq!(log.read(2, 1 << 20, 1, true).unwrap().len, 0);
    }

    #[test]
    fn segment_rolls_by_size_and_reads_cross_into_the_next_segment() {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(2, 1).len() as u64;
        let config = LogConfig {
            segment_bytes: one * 2,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        let stored = append_batches(&mut log, 5, 2, 10);
        assert_eq!(log.segment_base_offsets(), vec![0, 4, 8]);
        assert_eq!(log.segment_count(), 3);
        for base in [0, 4, 8] {
            assert!(log_path(dir.path(), base).exists());
        }
        // One read comes from one segment only.
        assert_eq!(
            read_all(&log, 0),
            [stored[0].clone(), stored[1].clone()].concat()
        );
        assert_eq!(
            read_all(&log, 5),
            [stored[2].clone(), stored[3].clone()].concat()
        );
        assert_eq!(read_all(&log, 9), stored[4]);
        // A batch larger than segment_bytes still goes in (alone).
        let mut big = batch_with(&[1; 20], 100, Compression::None);
        let info = log.append(&mut big, 1_000).unwrap();
        assert_eq!(info.base_offset, 10);
        assert_eq!(log.segment_base_offsets(), vec![0, 4, 8, 10]);
    }

    #[test]
    fn segment_rolls_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_ms: 1000,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        log.append(&mut batch(1, 1), 10_000).unwrap();
        log.append(&mut batch(1, 1), 10_999).unwrap();
        assert_eq!(log.segment_count(), 1);
        log.append(&mut batch(1, 1), 11_000).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![0, 2]);
        log.append(&mut batch(1, 1), 11_500).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![0, 2]);
        log.append(&mut batch(1, 1), 12_000).unwrap();
        assert_eq!(log.segment_base_offsets(), vec![0, 2, 4]);
    }

    #[test]
    fn segment_rolls_when_the_index_would_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            index_interval_bytes: 0,
            segment_index_bytes: 24, // 3 offset entries, 2 time entries
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        for i in 0..10 {
            log.append(&mut batch(1, i), 1).unwrap();
        }
        assert!(log.segment_count() > 2);
        for s in &log.segments {
            assert!(s.offset_index().len() <= 3);
            assert!(s.time_index().len() <= 2);
        }
    }

    #[test]
    fn log_append_time_restamps_batches() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            timestamp_type: TimestampType::LogAppendTime,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        let info = log.append(&mut batch(2, 5), 77_000).unwrap();
        assert_eq!(info.log_append_time, 77_000);
        assert_eq!(info.max_timestamp, 77_000);
        let bytes = read_all(&log, 0);
        let h = validate_batches(&bytes, usize::MAX).unwrap()[0];
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 77_000);
        assert_eq!(log.offset_for_timestamp(100).unwrap(), Some((0, 77_000)));
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((0, 77_000)));
    }

    #[test]
    fn invalid_append_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let mut good = batch(1, 1);
        let mut bad = batch(1, 1);
        let n = bad.len();
        bad[n - 1] ^= 0x55;
        let mut both = [good.clone(), bad].concat();
        assert!(matches!(
            log.append(&mut both, 1),
            Err(LogError::Batch(BatchError::Corrupt(_)))
        ));
        let mut big = batch_with(&[1; 4], 2000, Compression::None);
        log.set_config(LogConfig {
            max_message_bytes: 1000,
            ..small_config()
        });
        assert!(matches!(
            log.append(&mut big, 1),
            Err(LogError::Batch(BatchError::TooLarge { .. }))
        ));
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(log.size_bytes(), 0);
        assert_eq!(fs::metadata(log_path(dir.path(), 0)).unwrap().len(), 0);
        log.append(&mut good, 1).unwrap();
        assert_eq!(log.log_end_offset(), 1);
    }

    use crate::log::batch::BatchError;

    #[test]
    fn reopen_gives_same_log_end_offset_and_readable_data() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 600,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 12, 3, 1000);
        let bases = log.segment_base_offsets();
        assert!(bases.len() > 2);
        let leo = log.log_end_offset();
        log.flush().unwrap();
        assert_eq!(log.recovery_point(), leo);
        drop(log);
        for rp in [0, leo] {
            let log = Log::open(dir.path(), config.clone(), rp, 0).unwrap();
            assert_eq!(log.log_end_offset(), leo);
            assert_eq!(log.segment_base_offsets(), bases);
            for (i, b) in stored.iter().enumerate() {
                let s = log.read(i as i64 * 3 + 1, 1, leo, true).unwrap();
                assert_eq!(&s.read().unwrap().to_vec(), b);
            }
        }
        // Appends continue from the recovered end.
        let mut log = Log::open(dir.path(), config, leo, 0).unwrap();
        assert_eq!(log.append(&mut batch(1, 1), 1).unwrap().base_offset, leo);
    }

    /// Captures what `f` logs through `tracing`, formatted without colour.
    fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
        #[derive(Clone, Default)]
        struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let out = tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        (out, text)
    }

    #[test]
    fn recovery_truncates_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 3, 2, 10);
        drop(log);
        let path = log_path(dir.path(), 0);
        let full = fs::metadata(&path).unwrap().len();
        let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 7).unwrap();
        let (log, logs) = capture_logs(|| Log::open(dir.path(), small_config(), 0, 0));
        let mut log = log.unwrap();
        assert_eq!(log.log_end_offset(), 4);
        let kept = (stored[0].len() + stored[1].len()) as u64;
        let warns: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warns.len(), 1, "{logs}");
        let w = warns[0];
        assert!(w.contains(&format!("dir={}", dir.path().display())), "{w}");
        assert!(w.contains("00000000000000000000.log"), "{w}");
        assert!(w.contains(&format!("position={kept}")), "{w}");
        assert!(w.contains("offset=4"), "{w}");
        assert!(w.contains(&format!("bytes_cut={}", full - 7 - kept)), "{w}");
        assert_eq!(fs::metadata(&path).unwrap().len(), kept);
        assert_eq!(
            read_all(&log, 0),
            [stored[0].clone(), stored[1].clone()].concat()
        );
        assert_eq!(log.append(&mut batch(1, 1), 1).unwrap().base_offset, 4);
    }

    #[test]
    fn recovery_truncates_garbage_after_the_last_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 2, 2, 10);
        drop(log);
        let path = log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let good_len = bytes.len();
        bytes.extend(std::iter::repeat_n(0xAB, 300));
        fs::write(&path, &bytes).unwrap();
        let log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 4);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len as u64);
        assert_eq!(read_all(&log, 0), stored.concat());
        drop(log);
        // Zero fill (preallocated or lost blocks) is cut too.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend([0u8; 100]);
        fs::write(&path, &bytes).unwrap();
        let log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 4);
    }

    #[test]
    fn a_crc_flipped_mid_segment_truncates_from_that_batch_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 5, 2, 10);
        drop(log);
        let path = log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let third = stored[0].len() + stored[1].len();
        bytes[third + 70] ^= 0x01; // inside batch 3's records
        fs::write(&path, &bytes).unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 4);
        assert_eq!(log.size_bytes(), third as u64);
        assert_eq!(read_all(&log, 0), stored[..2].concat());
        assert_eq!(log.append(&mut batch(1, 1), 1).unwrap().base_offset, 4);
    }

    #[test]
    fn corruption_in_an_earlier_segment_deletes_the_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 250,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 6, 2, 10);
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        drop(log);
        let path = log_path(dir.path(), bases[1]);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff; // last batch of the second segment
        fs::write(&path, &bytes).unwrap();
        let log = Log::open(dir.path(), config, 0, 0).unwrap();
        assert_eq!(log.segment_base_offsets(), bases[..2].to_vec());
        for base in &bases[2..] {
            assert!(!log_path(dir.path(), *base).exists());
            assert!(!dir.path().join(segment_file_name(*base, "index")).exists());
        }
        let kept_batches = (log.log_end_offset() / 2) as usize;
        assert!(kept_batches < 6);
        let mut all = Vec::new();
        let mut off = 0;
        while off < log.log_end_offset() {
            let b = read_all(&log, off);
            off = headers(&b).last().unwrap().last_offset() + 1;
            all.extend(b);
        }
        assert_eq!(all, stored[..kept_batches].concat());
    }

    /// Twelve two-record batches in segments of a few batches each, closed
    /// cleanly; returns the stored batches, the segment bases and the log end offset.
    fn old_segments(dir: &Path, config: &LogConfig) -> (Vec<Vec<u8>>, Vec<i64>, i64) {
        let mut log = Log::open(dir, config.clone(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 12, 2, 10);
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3, "{bases:?}");
        let leo = log.log_end_offset();
        log.flush().unwrap();
        (stored, bases, leo)
    }

    fn corrupt_at(log: &Log, offset: i64) -> (i64, PathBuf, u64, String) {
        match log
            .read(offset, usize::MAX, log.log_end_offset(), true)
            .and_then(|s| s.read())
        {
            Err(LogError::CorruptBatch {
                offset,
                path,
                position,
                reason,
            }) => (offset, path, position, reason),
            other => panic!("expected a corrupt batch at {offset}, got {other:?}"),
        }
    }

    #[test]
    fn a_flipped_byte_below_the_recovery_point_of_the_active_segment_is_found_at_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 5, 2, 10);
        log.flush().unwrap();
        drop(log);
        let path = log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let second = stored[0].len();
        bytes[second + stored[1].len() - 1] ^= 0x01; // batch 2's last record
        fs::write(&path, &bytes).unwrap();
        // Recovery trusts bytes below the recovery point (offset 8) and scans
        // only the last batch, so the log keeps all ten records...
        let log = Log::open(dir.path(), small_config(), 8, 0).unwrap();
        assert_eq!(log.log_end_offset(), 10);
        // ...and the read serves the batch before the flipped one, then names it.
        assert_eq!(read_all(&log, 0), stored[0]);
        let (offset, at, position, reason) = corrupt_at(&log, 2);
        assert_eq!((offset, at, position), (2, path, second as u64));
        assert!(reason.starts_with("CRC mismatch"), "{reason}");
        // The tail, scanned at open, is served without a second check.
        assert_eq!(read_all(&log, 8), stored[4]);
    }

    #[test]
    fn a_bad_batch_length_in_an_old_segment_serves_the_batches_before_it_then_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 400,
            index_interval_bytes: 4096,
            ..small_config()
        };
        let (stored, bases, leo) = old_segments(dir.path(), &config);
        let path = log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let second = stored[0].len();
        bytes[second + 8..second + 12].copy_from_slice(&0x7fff_0000i32.to_be_bytes());
        fs::write(&path, &bytes).unwrap();

        // Below the recovery point: opened without a scan, nothing cut.
        let log = Log::open(dir.path(), config, leo, 0).unwrap();
        assert_eq!(log.segment_base_offsets(), bases);
        assert_eq!(read_all(&log, 0), stored[0]);
        let (offset, file, position, reason) = corrupt_at(&log, 2);
        assert_eq!((offset, file, position), (2, path.clone(), second as u64));
        assert!(reason.starts_with("batch length 2147418112"), "{reason}");
        // An offset inside the bad batch names the same batch.
        assert_eq!(corrupt_at(&log, 3).2, second as u64);
        // The later segments are intact and readable.
        let first_of_next = (bases[1] / 2) as usize;
        let first_of_third = (bases[2] / 2) as usize;
        assert_eq!(
            read_all(&log, bases[1]),
            stored[first_of_next..first_of_third].concat()
        );
    }

    #[test]
    fn flipped_record_bytes_in_an_old_segment_are_caught_by_the_crc_on_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 400,
            ..small_config()
        };
        let (stored, bases, leo) = old_segments(dir.path(), &config);
        let path = log_path(dir.path(), 0);
        let mut bytes = fs::read(&path).unwrap();
        let second = stored[0].len();
        bytes[second + stored[1].len() - 3] ^= 0x20; // inside the second batch's last record
        fs::write(&path, &bytes).unwrap();

        let log = Log::open(dir.path(), config, leo, 0).unwrap();
        assert_eq!(log.segment_base_offsets(), bases);
        assert_eq!(read_all(&log, 0), stored[0]);
        let (offset, file, position, reason) = corrupt_at(&log, 2);
        assert_eq!((offset, file, position), (2, path, second as u64));
        assert!(reason.starts_with("CRC mismatch"), "{reason}");
        // Asked again, the answer is the same (the mark never passes it).
        assert_eq!(corrupt_at(&log, 2).2, second as u64);
        assert_eq!(read_all(&log, 0), stored[0]);
        let first_of_next = (bases[1] / 2) as usize;
        let first_of_third = (bases[2] / 2) as usize;
        assert_eq!(
            read_all(&log, bases[1]),
            stored[first_of_next..first_of_third].concat()
        );
    }

    #[test]
    fn batches_appended_by_this_log_are_not_checked_again_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        let stored = append_batches(&mut log, 3, 2, 10);
        // Changed behind the log's back: the appends' own validation counts,
        // so the read does not look at the CRC again.
        let file = log.segments[0].log_file().clone();
        file.write_all_at(&[0xee], (stored[0].len() - 1) as u64)
            .unwrap();
        let read = read_all(&log, 0);
        assert_eq!(read.len(), stored.concat().len());
        assert_eq!(read[stored[0].len() - 1], 0xee);
    }

    /// Every offset in the log reads back as the batch holding it, bytes exact.
    fn assert_every_offset_reads_exactly(log: &Log, stored: &[Vec<u8>]) {
        let mut offset = 0i64;
        for b in stored {
            let h = BatchHeader::parse(b).unwrap();
            assert_eq!(h.base_offset, offset);
            for o in h.base_offset..=h.last_offset() {
                let s = log.read(o, 0, i64::MAX, true).unwrap();
                assert_eq!(&s.read().unwrap().to_vec(), b, "offset {o}");
            }
            offset = h.last_offset() + 1;
        }
        assert_eq!(log.log_end_offset(), offset);
    }

    #[test]
    fn deleted_or_wrong_size_indexes_are_rebuilt_and_lookups_stay_exact() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 2000,
            index_interval_bytes: 100,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        let stored: Vec<Vec<u8>> = (0..30)
            .map(|i| {
                let mut b = batch_with(&[i * 10, i * 10 + 5], 20, Compression::None);
                log.append(&mut b, 1).unwrap();
                b
            })
            .collect();
        let bases = log.segment_base_offsets();
        assert!(bases.len() >= 3);
        let leo = log.log_end_offset();
        log.flush().unwrap();
        let index = |b: i64, ext: &str| dir.path().join(segment_file_name(b, ext));
        let before: Vec<Vec<u8>> = bases
            .iter()
            .flat_map(|&b| {
                [
                    fs::read(index(b, "index")).unwrap(),
                    fs::read(index(b, "timeindex")).unwrap(),
                ]
            })
            .collect();
        assert!(!before[0].is_empty() && !before[1].is_empty());
        drop(log);

        fs::remove_file(index(bases[0], "index")).unwrap();
        fs::remove_file(index(bases[0], "timeindex")).unwrap();
        let mut wrong = fs::read(index(bases[1], "index")).unwrap();
        wrong.extend([1, 2, 3]);
        fs::write(index(bases[1], "index"), wrong).unwrap();
        let mut wrong = fs::read(index(bases[1], "timeindex")).unwrap();
        wrong.truncate(wrong.len() - 5);
        fs::write(index(bases[1], "timeindex"), wrong).unwrap();
        // The active segment's index disagrees with its log.
        let last = *bases.last().unwrap();
        fs::write(index(last, "index"), [0u8, 0, 0, 9, 0, 0, 0, 1]).unwrap();

        let log = Log::open(dir.path(), config, leo, 0).unwrap();
        let after: Vec<Vec<u8>> = bases
            .iter()
            .flat_map(|&b| {
                [
                    fs::read(index(b, "index")).unwrap(),
                    fs::read(index(b, "timeindex")).unwrap(),
                ]
            })
            .collect();
        assert_eq!(after, before);
        assert_every_offset_reads_exactly(&log, &stored);
        assert_eq!(log.offset_for_timestamp(51).unwrap(), Some((11, 55)));
    }

    #[test]
    fn offset_for_timestamp_is_exact_across_segments_and_inside_batches() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 700,
            index_interval_bytes: 50,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
        // Batches of 3 records; timestamps not monotonic, inside and across batches.
        let batches: Vec<[i64; 3]> = vec![
            [1000, 1300, 1100],
            [1200, 1250, 1400],
            [900, 950, 990],
            [2000, 1500, 2500],
            [2400, 2600, 2450],
            [3000, 3000, 3001],
        ];
        for ts in &batches {
            log.append(&mut batch_with(ts, 60, Compression::None), 1)
                .unwrap();
        }
        log.append(
            &mut batch_with(&[4000, 5000, 4500], 60, Compression::Lz4),
            1,
        )
        .unwrap();
        assert!(log.segment_count() >= 3, "{:?}", log.segment_base_offsets());
        let check = |log: &Log| {
            assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
            assert_eq!(log.offset_for_timestamp(1000).unwrap(), Some((0, 1000)));
            assert_eq!(log.offset_for_timestamp(1001).unwrap(), Some((1, 1300)));
            assert_eq!(log.offset_for_timestamp(1301).unwrap(), Some((5, 1400)));
            assert_eq!(log.offset_for_timestamp(1450).unwrap(), Some((9, 2000)));
            assert_eq!(log.offset_for_timestamp(2001).unwrap(), Some((11, 2500)));
            assert_eq!(log.offset_for_timestamp(2501).unwrap(), Some((13, 2600)));
            assert_eq!(log.offset_for_timestamp(3000).unwrap(), Some((15, 3000)));
            assert_eq!(log.offset_for_timestamp(3001).unwrap(), Some((17, 3001)));
            assert_eq!(log.offset_for_timestamp(4001).unwrap(), Some((19, 5000)));
            assert_eq!(log.offset_for_timestamp(5001).unwrap(), None);
            assert_eq!(log.max_timestamp_offset().unwrap(), Some((19, 5000)));
        };
        check(&log);
        log.flush().unwrap();
        let leo = log.log_end_offset();
        drop(log);
        check(&Log::open(dir.path(), config.clone(), leo, 0).unwrap());
        check(&Log::open(dir.path(), config, 0, 0).unwrap());
    }

    #[test]
    fn max_timestamp_offset_finds_the_first_record_with_the_largest_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        log.append(&mut batch_with(&[10, 90, 20], 5, Compression::None), 1)
            .unwrap();
        log.append(&mut batch_with(&[30, 90], 5, Compression::None), 1)
            .unwrap();
        log.append(&mut batch_with(&[50, 60], 5, Compression::Zstd), 1)
            .unwrap();
        assert!(log.segment_count() >= 2);
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((1, 90)));
        log.append(&mut batch_with(&[91], 5, Compression::None), 1)
            .unwrap();
        assert_eq!(log.max_timestamp_offset().unwrap(), Some((7, 91)));
    }

    #[test]
    fn unflushed_reports_dirty_segments_until_marked_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 200,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), config, 0, 0).unwrap();
        let (files, upto) = log.unflushed();
        assert!(files.is_empty());
        assert_eq!(upto, 0);
        append_batches(&mut log, 4, 2, 10);
        let (files, upto) = log.unflushed();
        assert_eq!(files.len(), log.segment_count());
        assert_eq!(upto, 8);
        for f in &files {
            f.sync_data().unwrap();
        }
        log.mark_flushed(upto);
        assert_eq!(log.recovery_point(), 8);
        assert!(log.unflushed().0.is_empty());
        append_batches(&mut log, 1, 1, 10);

        assert_eq!(log.unflushed().0.len(), 1);
        log.flush().unwrap();
        assert_eq!(log.recovery_point(), 9);
    }

    #[test]
    fn delete_removes_the_partition_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("topic-3");
        let mut log = Log::open(&path, small_config(), 0, 0).unwrap();
        append_batches(&mut log, 2, 1, 1);
        log.delete().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn log_start_offset_beyond_the_data_starts_a_fresh_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), 0, 0).unwrap();
        append_batches(&mut log, 2, 1, 1);
        drop(log);
        let log = Log::open(dir.path(), small_config(), 0, 1).unwrap();
        assert_eq!(log.log_start_offset(), 1);
        assert!(log.read(0, 100, 10, true).is_err());
        drop(log);
        let log = Log::open(dir.path(), small_config(), 0, 50).unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
        assert_eq!(log.segment_base_offsets(), vec![50]);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn random_appends_survive_reopen_with_every_offset_and_byte(
            batches in proptest::collection::vec((1usize..6, 0usize..200, 0i64..10_000, 0u8..3), 1..40),
            segment_bytes in 200u64..3000,
            index_interval in 0u32..500,
            flushed in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig { segment_bytes, index_interval_bytes: index_interval, ..LogConfig::default() };
            let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
            let mut stored = Vec::new();
            for (n, value_len, ts, codec) in batches {
                let compression = [Compression::None, Compression::Gzip, Compression::Snappy][codec as usize];
                let timestamps: Vec<i64> = (0..n as i64).map(|i| ts + (i * 7) % 5).collect();
                let mut b = batch_with(&timestamps, value_len, compression);
                log.append(&mut b, 1).unwrap();
                stored.push(b);
            }
            assert_every_offset_reads_exactly(&log, &stored);
            let leo = log.log_end_offset();
            let bases = log.segment_base_offsets();
            let max = log.max_timestamp_offset().unwrap();
            let rp = if flushed { log.flush().unwrap(); leo } else { 0 };
            drop(log);
            let log = Log::open(dir.path(), config, rp, 0).unwrap();
            prop_assert_eq!(log.log_end_offset(), leo);
            prop_assert_eq!(log.segment_base_offsets(), bases);
            prop_assert_eq!(log.max_timestamp_offset().unwrap(), max);
            assert_every_offset_reads_exactly(&log, &stored);
        }

        #[test]
        fn recovery_from_a_recovery_point_inside_a_segment_matches_a_full_scan(
            batches in proptest::collection::vec((1usize..6, 0usize..200, 0i64..10_000), 1..40),
            segment_bytes in 200u64..3000,
            index_interval in 0u32..500,
            cut in any::<proptest::sample::Index>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig { segment_bytes, index_interval_bytes: index_interval, ..LogConfig::default() };
            let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
            let mut stored = Vec::new();
            let mut boundaries = vec![(0i64, 0u64)];
            for (n, value_len, ts) in batches {
                let timestamps: Vec<i64> = (0..n as i64).map(|i| ts + (i * 7) % 5).collect();
                let mut b = batch_with(&timestamps, value_len, Compression::None);
                let info = log.append(&mut b, 1).unwrap();
                let bytes_after = boundaries.last().unwrap().1 + b.len() as u64;
                boundaries.push((info.last_offset + 1, bytes_after));
                stored.push(b);
            }
            drop(log);
            // The recovery point is a batch boundary; everything past it is validated.
            let (rp, bytes_before) = boundaries[cut.index(boundaries.len())];
            let total = boundaries.last().unwrap().1;
            let full_dir = tempfile::tempdir().unwrap();
            for entry in fs::read_dir(dir.path()).unwrap() {
                let entry = entry.unwrap();
                fs::copy(entry.path(), full_dir.path().join(entry.file_name())).unwrap();
            }
            let full = Log::open(full_dir.path(), config.clone(), 0, 0).unwrap();
            let log = Log::open(dir.path(), config, rp, 0).unwrap();
            prop_assert_eq!(log.recovery_stats().bytes_validated, total - bytes_before);
            prop_assert_eq!(full.recovery_stats().bytes_validated, total);
            prop_assert_eq!(log.log_end_offset(), full.log_end_offset());
            prop_assert_eq!(log.segment_base_offsets(), full.segment_base_offsets());
            prop_assert_eq!(log.max_timestamp_offset().unwrap(), full.max_timestamp_offset().unwrap());
            for (a, b) in log.segments.iter().zip(&full.segments) {
                prop_assert_eq!(a.offset_index().entries(), b.offset_index().entries());
                prop_assert_eq!(a.time_index().entries(), b.time_index().entries());
                prop_assert_eq!(a.size(), b.size());
            }
            assert_every_offset_reads_exactly(&log, &stored);
        }

        #[test]
        fn a_random_cut_of_the_active_segment_keeps_exactly_the_whole_batches_before_it(
            sizes in proptest::collection::vec((1usize..4, 0usize..150), 2..20),
            cut_fraction in 0.0f64..1.0,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let config = LogConfig { segment_bytes: 1500, index_interval_bytes: 60, ..LogConfig::default() };
            let mut log = Log::open(dir.path(), config.clone(), 0, 0).unwrap();
            let mut stored = Vec::new();
            for (n, value_len) in sizes {
                let mut b = batch_with(&vec![7; n], value_len, Compression::None);
                log.append(&mut b, 1).unwrap();
                stored.push(b);
            }
            let active_base = *log.segment_base_offsets().last().unwrap();
            let active_size = log.active().size();
            drop(log);
            let cut = (active_size as f64 * cut_fraction) as u64;
            let path = log_path(dir.path(), active_base);
            fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
            // Batches wholly before the cut survive; the rest is gone.
            let mut kept = Vec::new();
            let mut pos_in_active = 0u64;
            for b in &stored {
                let h = BatchHeader::parse(b).unwrap();
                if h.base_offset < active_base {
                    kept.push(b.clone());
                } else if pos_in_active + b.len() as u64 <= cut {
                    pos_in_active += b.len() as u64;
                    kept.push(b.clone());
                } else {
                    break;
                }
            }
            let log = Log::open(dir.path(), config, 0, 0).unwrap();
            prop_assert_eq!(fs::metadata(&path).unwrap().len(), pos_in_active);
            assert_every_offset_reads_exactly(&log, &kept);
        }
    }
}
