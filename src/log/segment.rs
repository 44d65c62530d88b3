//! One log segment: its `.log` file of record batches, its offset and time
//! indexes, base offset, size, first-append time and largest timestamp.
//! It never decides when to roll or which segment to use; `partition_log` does.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::batch::{BatchHeader, BATCH_HEADER_LEN, MIN_BATCH_LENGTH};
use super::error::{IoContext, LogError};
use super::index::{IndexLoad, OffsetIndex, TimeIndex};
use super::partition_log::{FetchSlice, LogConfig};
use super::recovery::{scan_segment, scan_segment_from, ScanOutcome};
use super::verified::VerifiedMark;

/// `<20-digit base offset>.<ext>`, Kafka's file naming.
pub fn segment_file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// Kafka's index-entry cadence: an offset-index entry (and possibly a
/// time-index entry) once more than `interval` bytes were written since the last one.
#[derive(Debug, Clone)]
struct IndexCursor {
    interval: u64,
    bytes_since_last_entry: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl IndexCursor {
    fn new(interval: u32, base_offset: i64) -> Self {
        IndexCursor {
            interval: u64::from(interval),
            bytes_since_last_entry: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
        }
    }

    /// Accounts for the batch at `position`; returns the offset-index entry to add, if any.
    fn step(&mut self, h: &BatchHeader, position: u64) -> Option<(i64, u64)> {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        let entry = if self.bytes_since_last_entry > self.interval {
            self.bytes_since_last_entry = 0;
            Some((h.last_offset(), position))
        } else {
            None
        };
        self.bytes_since_last_entry += h.total_size() as u64;
        entry
    }
}

/// Index contents computed from a scan of the log file.
struct IndexBuild {
    cursor: IndexCursor,
    offsets: Vec<(i64, u64)>,
    times: Vec<(i64, i64)>,
    first_batch_max_timestamp: Option<i64>,
}

impl IndexBuild {
    fn new(interval: u32, base_offset: i64) -> Self {
        IndexBuild {
            cursor: IndexCursor::new(interval, base_offset),
            offsets: Vec::new(),
            times: Vec::new(),
            first_batch_max_timestamp: None,
        }
    }

    fn add(&mut self, h: &BatchHeader, position: u64) {
        if self.first_batch_max_timestamp.is_none() {
            self.first_batch_max_timestamp = Some(h.max_timestamp);
        }
        if let Some(e) = self.cursor.step(h, position) {
            self.offsets.push(e);
            self.push_time(
                self.cursor.max_timestamp,
                self.cursor.offset_of_max_timestamp,
            );
        }
    }

    /// Same rule as [`TimeIndex::maybe_append`].
    fn push_time(&mut self, ts: i64, offset: i64) {
        let (last_ts, last_off) = self.times.last().copied().unwrap_or((-1, i64::MIN));
        if ts > last_ts && offset >= last_off {
            self.times.push((ts, offset));
        }
    }

    fn seal(&mut self) {
        self.push_time(
            self.cursor.max_timestamp,
            self.cursor.offset_of_max_timestamp,
        );
    }
}

/// Iterator over a segment's batch headers: [`LogSegment::headers_from`].
pub(crate) struct HeaderWalk<'a> {
    segment: &'a LogSegment,
    position: u64,
    error: Option<LogError>,
}

impl HeaderWalk<'_> {
    /// Why the walk stopped before the end of the segment, if it did.
    pub(crate) fn error(&self) -> Option<&LogError> {
        self.error.as_ref()
    }
}

impl Iterator for HeaderWalk<'_> {
    type Item = (BatchHeader, u64);

    fn next(&mut self) -> Option<Self::Item> {
        if self.error.is_some() {
            return None;
        }
        match self.segment.read_header(self.position) {
            Ok(Some(h)) => {
                let at = self.position;
                self.position += h.total_size() as u64;
                Some((h, at))
            }
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    log: Arc<File>,
    size: u64,
    next_offset: i64,
    first_append_ms: Option<i64>,
    cursor: IndexCursor,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// How far this file's batches are known to pass their CRC (see `verified.rs`).
    verified: Arc<VerifiedMark>,
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl LogSegment {
    /// Creates a new, empty segment (replacing any stale files of that name).
    pub fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Self, LogError> {
        Self::create_named(dir, base_offset, "", config)
    }

    /// Creates a new, empty segment whose three file names end in `suffix`
    /// (the cleaner writes `<base>.log.cleaned` and its indexes this way).
    pub(crate) fn create_named(
        dir: &Path,
        base_offset: i64,
        suffix: &str,
        config: &LogConfig,
    ) -> Result<Self, LogError> {
        let name = |ext: &str| dir.join(segment_file_name(base_offset, ext) + suffix);
        let log_path = name("log");
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .at(&log_path)?;
        let (mut offset_index, _) =
            OffsetIndex::open(&name("index"), base_offset, config.segment_index_bytes)?;
        let (mut time_index, _) =
            TimeIndex::open(&name("timeindex"), base_offset, config.segment_index_bytes)?;
        if !offset_index.is_empty() {
            offset_index.reset(&[])?;
        }
        if !time_index.is_empty() {
            time_index.reset(&[])?;
        }
        Ok(LogSegment {
            base_offset,
            verified: VerifiedMark::new(&log_path, 0),
            log_path,
            log: Arc::new(log),
            size: 0,
            next_offset: base_offset,
            first_append_ms: None,
            cursor: IndexCursor::new(config.index_interval_bytes, base_offset),
            offset_index,
            time_index,
        })
    }

    /// Opens an existing segment without reading its log; call [`Self::recover`]
    /// or [`Self::check_indexes`] next. Returns how each index file was found.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
    ) -> Result<(Self, IndexLoad, IndexLoad), LogError> {
        let log_path = dir.join(segment_file_name(base_offset, "log"));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&log_path)
            .at(&log_path)?;
        let size = log.metadata().at(&log_path)?.len();
        let (offset_index, off_load) = OffsetIndex::open(
            &dir.join(segment_file_name(base_offset, "index")),
            base_offset,
            config.segment_index_bytes,
        )?;
        let (time_index, time_load) = TimeIndex::open(
            &dir.join(segment_file_name(base_offset, "timeindex")),
            base_offset,
            config.segment_index_bytes,
        )?;
        let mut cursor = IndexCursor::new(config.index_interval_bytes, base_offset);
        if let Some((ts, off)) = time_index.last_entry() {
            cursor.max_timestamp = ts;
            cursor.offset_of_max_timestamp = off;
        }
        let seg = LogSegment {
            base_offset,
            verified: VerifiedMark::new(&log_path, 0),
            log_path,
            log: Arc::new(log),
            size,
            next_offset: base_offset,
            first_append_ms: None,
            cursor,
            offset_index,
            time_index,
        };
        Ok((seg, off_load, time_load))
    }

    /// Validates every batch (with CRC) from the one at `recovery_point` on
    /// (from the start if the recovery point is not inside this segment, or
    /// cannot be located in it), truncating the file at the first bad one,
    /// and rebuilds the indexes for what it scanned. Bytes below the recovery
    /// point were fsynced and are trusted like a segment below it: only their
    /// headers are walked, from the last offset-index entry before it. With
    /// `seal_if_clean` and no problem found, the segment is treated as
    /// inactive (time index sealed, indexes fsynced).
    pub(crate) fn recover(
        &mut self,
        recovery_point: i64,
        seal_if_clean: bool,
    ) -> Result<ScanOutcome, LogError> {
        let (build, outcome) = self.scan_from_offset(recovery_point, true)?;
        if outcome.problem.is_some() {
            self.log.set_len(outcome.valid_bytes).at(&self.log_path)?;
            self.log.sync_all().at(&self.log_path)?;
        }
        let seal = seal_if_clean && outcome.problem.is_none();
        self.install(build, &outcome, seal)?;
        // The scan checked every CRC from its start to here. Bytes below the
        // recovery point were trusted, not read: a fetch checks them once.
        self.verified = VerifiedMark::range(&self.log_path, outcome.start, outcome.valid_bytes);
        Ok(outcome)
    }

    /// Scans the batches from the one at `offset` (a batch boundary), or from
    /// the start when [`Self::locate_recovery_point`] cannot place it, and
    /// returns the index state for the whole segment with the scan's outcome.
    fn scan_from_offset(
        &self,
        offset: i64,
        verify_crc: bool,
    ) -> Result<(IndexBuild, ScanOutcome), LogError> {
        let (mut build, start) = self.locate_recovery_point(offset).unwrap_or_else(|| {
            (
                IndexBuild::new(self.cursor.interval as u32, self.base_offset),
                (0, self.base_offset),
            )
        });
        let outcome = scan_segment_from(
            &self.log,
            &self.log_path,
            self.base_offset,
            start,
            verify_crc,
            |h, p| {
                build.add(h, p);
                Ok(())
            },
        )?;
        Ok((build, outcome))
    }

    /// The position of the batch at `recovery_point` (a batch boundary: the log
    /// end offset when it was fsynced) and the index state that a scan from
    /// the start would have had there, from the loaded indexes and a header
    /// walk from the last offset-index entry below it. None if the recovery
    /// point is at or before this segment's start, or the indexes or headers
    /// do not agree with it (the caller then scans the whole segment).
    fn locate_recovery_point(&self, recovery_point: i64) -> Option<(IndexBuild, (u64, i64))> {
        if recovery_point <= self.base_offset {
            return None;
        }
        let interval = self.cursor.interval as u32;
        let (entry_offset, entry_position) = self.offset_index.lookup(recovery_point - 1);
        let from_entry = entry_position > 0 || entry_offset > self.base_offset;
        let mut build = IndexBuild::new(interval, self.base_offset);
        if from_entry {
            build.offsets = self
                .offset_index
                .entries()
                .into_iter()
                .take_while(|&(o, _)| o <= entry_offset)
                .collect();
            build.times = self
                .time_index
                .entries()
                .into_iter()
                .take_while(|&(_, o)| o <= entry_offset)
                .collect();
            if let Some(&(ts, offset)) = build.times.last() {
                build.cursor.max_timestamp = ts;
                build.cursor.offset_of_max_timestamp = offset;
            }
            build.first_batch_max_timestamp = Some(self.read_header(0).ok()??.max_timestamp);
        }
        let mut position = entry_position;
        let mut next_offset = self.base_offset;
        // Stops at the recovery point's batch, or at the end of a segment
        // that ends at or below it.
        while let Some(h) = self.read_header(position).ok()? {
            if h.base_offset >= recovery_point {
                break;
            }
            if h.last_offset() >= recovery_point || h.base_offset < next_offset {
                return None;
            }
            if from_entry && position == entry_position {
                // The index entry's own batch: counted when the entry was made.
                if !(h.base_offset..=h.last_offset()).contains(&entry_offset) {
                    return None;
                }
                if h.max_timestamp > build.cursor.max_timestamp {
                    build.cursor.max_timestamp = h.max_timestamp;
                    build.cursor.offset_of_max_timestamp = h.last_offset();
                }
                build.cursor.bytes_since_last_entry = h.total_size() as u64;
            } else {
                build.add(&h, position);
            }
            next_offset = h.last_offset() + 1;
            position += h.total_size() as u64;
        }
        Some((build, (position, next_offset)))
    }

    /// For a segment below the recovery point (not scanned): checks the loaded
    /// indexes against the log and rebuilds them from a header walk if they are
    /// missing, malformed or disagree. Returns the reason if it rebuilt.
    pub(crate) fn check_indexes(
        &mut self,
        next_base: i64,
        off_load: IndexLoad,
        time_load: IndexLoad,
    ) -> Result<Option<String>, LogError> {
        self.next_offset = next_base.max(self.base_offset);
        let reason = match (off_load, time_load) {
            (IndexLoad::Missing, _) => Some("offset index missing".to_string()),
            (_, IndexLoad::Missing) => Some("time index missing".to_string()),
            (IndexLoad::Invalid(why), _) => Some(format!("offset index invalid: {why}")),
            (_, IndexLoad::Invalid(why)) => Some(format!("time index invalid: {why}")),
            (IndexLoad::Loaded, IndexLoad::Loaded) => self.index_disagreement(next_base)?,
        };
        let Some(reason) = reason else {
            return Ok(None);
        };
        let mut build = IndexBuild::new(self.cursor.interval as u32, self.base_offset);
        let outcome = scan_segment(
            &self.log,
            &self.log_path,
            self.base_offset,
            false,
            |h, p| {
                build.add(h, p);
                Ok(())
            },
        )?;
        if let Some(problem) = &outcome.problem {
            tracing::warn!(
                segment = %self.log_path.display(),
                position = outcome.valid_bytes,
                problem = %problem,
                "segment below the recovery point has unreadable batches; indexing only what precedes them"
            );
        }
        self.install(build, &outcome, true)?;
        self.next_offset = next_base.max(outcome.next_offset);
        Ok(Some(reason))
    }

    fn index_disagreement(&self, next_base: i64) -> Result<Option<String>, LogError> {
        if self.size > 0 && self.time_index.is_empty() {
            return Ok(Some("time index empty for a non-empty segment".into()));
        }
        if let Some((off, pos)) = self.offset_index.last_entry() {
            if off >= next_base || pos >= self.size {
                return Ok(Some(format!(
                    "offset index entry ({off}, {pos}) is past the segment"
                )));
            }
            match self.read_header(pos) {
                Ok(Some(h)) if h.base_offset <= off && off <= h.last_offset() => {}
                _ => {
                    return Ok(Some(format!(
                        "offset index entry ({off}, {pos}) does not match the batch there"
                    )))
                }
            }
        }
        if let Some((ts, off)) = self.time_index.last_entry() {
            if off < self.base_offset || off >= next_base {
                return Ok(Some(format!(
                    "time index entry ({ts}, {off}) is outside the segment"
                )));
            }
        }
        Ok(None)
    }

    /// Installs indexes computed from a scan, rewriting the files only if they differ.
    fn install(
        &mut self,
        mut build: IndexBuild,
        outcome: &ScanOutcome,
        seal: bool,
    ) -> Result<(), LogError> {
        if seal {
            build.seal();
        }
        if self.offset_index.entries() != build.offsets {
            self.offset_index.reset(&build.offsets)?;
        }
        if self.time_index.entries() != build.times {
            self.time_index.reset(&build.times)?;
        }
        if seal {
            self.offset_index.sync()?;
            self.time_index.sync()?;
        }
        self.size = outcome.valid_bytes;
        self.next_offset = outcome.next_offset;
        self.first_append_ms = build.first_batch_max_timestamp.map(|ts| {
            let now = wall_clock_ms();
            if ts > 0 {
                ts.min(now)
            } else {
                now
            }
        });
        self.cursor = build.cursor;
        Ok(())
    }

    /// Cuts the segment before the batch holding `offset` (a batch is removed
    /// whole, as Kafka's `LogSegment.truncateTo` does), or before the first
    /// batch after it, and fsyncs the file. Its indexes, next offset and
    /// index cursor become what a scan of what remains would give, as for an
    /// active segment (it becomes the active one). Returns the bytes cut.
    pub(crate) fn truncate_to(&mut self, offset: i64) -> Result<u64, LogError> {
        let (_, mut cut) = self.offset_index.lookup(offset);
        let mut cut_offset = offset;
        while let Some(h) = self.read_header(cut)? {
            if h.last_offset() >= offset {
                cut_offset = h.base_offset;
                break;
            }
            cut += h.total_size() as u64;
        }
        let old_size = self.size;
        if cut < old_size {
            self.log.set_len(cut).at(&self.log_path)?;
            self.log.sync_all().at(&self.log_path)?;
        }
        self.size = cut;
        let (build, outcome) = self.scan_from_offset(cut_offset, false)?;
        if outcome.problem.is_some() || outcome.valid_bytes != cut {
            return Err(self.corrupt(
                outcome.valid_bytes,
                &format!(
                    "truncation to offset {offset} found unreadable batches: {}",
                    outcome.problem.as_deref().unwrap_or("short segment")
                ),
            ));
        }
        self.install(build, &outcome, false)?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        // Bytes past the cut are no longer this segment's, verified or not.
        let (low, high) = self.verified.range_now();
        self.verified = VerifiedMark::range(&self.log_path, low, high.min(cut));
        Ok(old_size - cut)
    }

    /// Called when the segment stops being the active one: records the largest
    /// timestamp in the time index and fsyncs both indexes.
    pub(crate) fn seal(&mut self) -> Result<(), LogError> {
        self.time_index.maybe_append(
            self.cursor.max_timestamp,
            self.cursor.offset_of_max_timestamp,
        )?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Appends already validated, offset-assigned batches with one write.
    pub(crate) fn append(
        &mut self,
        records: &[u8],
        headers: &[BatchHeader],
        now_ms: i64,
    ) -> Result<(), AppendFailure> {
        let position = self.size;
        if let Err(e) = self.log.write_all_at(records, position) {
            let err = LogError::io_at(&self.log_path, e);
            return match self.log.set_len(position) {
                Ok(()) => Err(AppendFailure::NothingWritten(err)),
                Err(e2) => Err(AppendFailure::Poisoned(err, e2.to_string())),
            };
        }
        if self.first_append_ms.is_none() {
            self.first_append_ms = Some(now_ms);
        }
        let mut pos = position;
        for h in headers {
            debug_assert!(h.base_offset >= self.next_offset, "offsets go backwards");
            if let Some((off, p)) = self.cursor.step(h, pos) {
                let r = self.offset_index.append(off, p).and_then(|()| {
                    self.time_index.maybe_append(
                        self.cursor.max_timestamp,
                        self.cursor.offset_of_max_timestamp,
                    )
                });
                if let Err(e) = r {
                    // The entry is kept in memory and written by a later append or flush.
                    tracing::warn!(segment = %self.log_path.display(), error = %e, "index write failed");
                }
            }
            pos += h.total_size() as u64;
            self.next_offset = h.last_offset() + 1;
        }
        self.size = pos;
        debug_assert_eq!(self.size, position + records.len() as u64);
        // Validated (CRC included) before they were written.
        self.verified.extend(position, pos);
        Ok(())
    }

    /// The header of the batch at `position`, or None at the end of the segment.
    pub(crate) fn read_header(&self, position: u64) -> Result<Option<BatchHeader>, LogError> {
        self.header_at(position)?
            .map_err(|why| self.corrupt(position, &why))
    }

    /// The batch headers from `position` (a batch boundary) to the end of the
    /// segment, each with its position. An unreadable header ends the walk;
    /// [`HeaderWalk::error`] then says why.
    pub(crate) fn headers_from(&self, position: u64) -> HeaderWalk<'_> {
        HeaderWalk {
            segment: self,
            position,
            error: None,
        }
    }

    /// [`Self::read_header`] with the two failures apart: the outer error is
    /// I/O, the inner one says why the bytes at `position` are not a batch.
    fn header_at(&self, position: u64) -> Result<Result<Option<BatchHeader>, String>, LogError> {
        if position >= self.size {
            return Ok(Ok(None));
        }
        if position + BATCH_HEADER_LEN as u64 > self.size {
            return Ok(Err("partial batch header".to_string()));
        }
        let mut buf = [0u8; BATCH_HEADER_LEN];
        self.log
            .read_exact_at(&mut buf, position)
            .at(&self.log_path)?;
        let h = match BatchHeader::parse(&buf) {
            Ok(h) => h,
            Err(e) => return Ok(Err(e.to_string())),
        };
        if h.magic != 2 {
            return Ok(Err(format!("magic {} is not 2", h.magic)));
        }
        if h.batch_length < MIN_BATCH_LENGTH || position + h.total_size() as u64 > self.size {
            return Ok(Err(format!(
                "batch length {} is out of bounds (segment size {})",
                h.batch_length, self.size
            )));
        }
        Ok(Ok(Some(h)))
    }

    fn corrupt(&self, position: u64, what: &str) -> LogError {
        LogError::Corrupt(format!(
            "{} at position {position}: {what}",
            self.log_path.display()
        ))
    }

    /// Whole batches from the one holding `offset`; None when the segment has no
    /// batch at or after `offset`. See `Log::read` for the bounds. The slice
    /// stops before an unreadable batch header; reaching one before any batch
    /// is [`LogError::CorruptBatch`] (its offset: the one after the last
    /// readable batch, else the fetch offset).
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        min_one: bool,
    ) -> Result<Option<FetchSlice>, LogError> {
        let (_, mut start) = self.offset_index.lookup(offset);
        // The first offset of the batch at `start`, as far as it is known.
        let mut expected = if start == 0 { self.base_offset } else { offset };
        let first = loop {
            match self.header_at(start)? {
                Ok(None) => return Ok(None),
                Ok(Some(h)) if h.last_offset() >= offset => break h,
                Ok(Some(h)) => {
                    start += h.total_size() as u64;
                    expected = h.last_offset().saturating_add(1);
                }
                Err(reason) => {
                    return Err(LogError::CorruptBatch {
                        offset: expected,
                        path: self.log_path.clone(),
                        position: start,
                        reason,
                    })
                }
            }
        };
        let mut end = start;
        let mut next = Some(first);
        while let Some(h) = next {
            if h.last_offset() >= max_offset {
                break;
            }
            let size = h.total_size() as u64;
            let taken = end - start;
            if taken + size > max_bytes as u64 && !(min_one && taken == 0) {
                break;
            }
            end += size;
            // An unreadable header ends the slice; a read starting there reports it.
            next = self.header_at(end)?.unwrap_or(None);
        }
        Ok(Some(FetchSlice {
            file: Some(self.log.clone()),
            position: start,
            len: (end - start) as usize,
            verified: Some(self.verified.clone()),
            may_map: true,
        }))
    }

    /// The first record at or after `start_offset` with timestamp >= `ts`, as
    /// (offset, timestamp), looking only in this segment.
    pub(crate) fn find_offset_by_timestamp(
        &self,
        ts: i64,
        start_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        let (_, ts_offset) = self.time_index.lookup(ts);
        let (_, mut position) = self.offset_index.lookup(ts_offset.max(start_offset));
        while let Some(h) = self.read_header(position)? {
            let size = h.total_size() as u64;
            if h.last_offset() >= start_offset && h.max_timestamp >= ts {
                if h.is_log_append_time() {
                    return Ok(Some((h.base_offset.max(start_offset), h.max_timestamp)));
                }
                if let Some(found) = self.search_batch(position, &h, ts, start_offset)? {
                    return Ok(Some(found));
                }
            }
            position += size;
        }
        Ok(None)
    }

    /// Decodes the batch at `position` and returns its first record at or after
    /// `start_offset` with timestamp >= `ts`.
    fn search_batch(
        &self,
        position: u64,
        h: &BatchHeader,
        ts: i64,
        start_offset: i64,
    ) -> Result<Option<(i64, i64)>, LogError> {
        // read_header checked that the batch lies within the segment's size.
        let mut buf = vec![0u8; h.total_size()];
        self.log
            .read_exact_at(&mut buf, position)
            .at(&self.log_path)?;
        let mut bytes = Bytes::from(buf);
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| self.corrupt(position, &format!("cannot decode batch: {e}")))?;
        Ok(set
            .records
            .iter()
            .find(|r| r.offset >= start_offset && r.timestamp >= ts)
            .map(|r| (r.offset, r.timestamp)))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// One past the last offset in this segment (the base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn log_file(&self) -> &Arc<File> {
        &self.log
    }

    pub fn first_append_ms(&self) -> Option<i64> {
        self.first_append_ms
    }

    /// Largest batch max-timestamp in the segment (-1 if none).
    pub fn max_timestamp(&self) -> i64 {
        self.cursor.max_timestamp
    }

    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }

    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }

    pub(crate) fn set_config(&mut self, config: &LogConfig) {
        self.cursor.interval = u64::from(config.index_interval_bytes);
        self.offset_index
            .set_max_index_bytes(config.segment_index_bytes);
        self.time_index
            .set_max_index_bytes(config.segment_index_bytes);
    }

    /// The current size of the `.log` file on disk.
    pub(crate) fn file_size(&self) -> Result<u64, LogError> {
        Ok(self.log.metadata().at(&self.log_path)?.len())
    }

    /// fsyncs the log file and both indexes.
    pub(crate) fn sync_all(&mut self) -> Result<(), LogError> {
        self.log.sync_all().at(&self.log_path)?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Removes the segment's files (with its transaction index, if any).
    pub(crate) fn delete(self) -> Result<(), LogError> {
        let txn_index = self
            .log_path
            .with_file_name(segment_file_name(self.base_offset, "txnindex"));
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
            txn_index,
        ];
        drop(self);
        for p in paths {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io_at(p, e)),
            }
        }
        Ok(())
    }
}

/// How a failed append left the segment.
#[derive(Debug)]
pub(crate) enum AppendFailure {
    /// The write failed and the file was cut back; the segment is unchanged.
    NothingWritten(LogError),
    /// The write failed and the file could not be cut back: the segment's file
    /// may hold a partial batch past its logical end, so no more appends.
    Poisoned(LogError, String),
}
