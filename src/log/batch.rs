//! Record-batch (magic v2) header parsing, validation of produced bytes, and
//! the in-place patches the log applies (base offset, partition leader
//! epoch, LogAppendTime).
//! It never decodes individual records and never touches files.

/// Bytes before the batch-length-covered part of a batch: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 record-batch header.
pub const BATCH_HEADER_LEN: usize = 61;

/// Smallest legal `batchLength` field: the header minus [`LOG_OVERHEAD`].
pub(crate) const MIN_BATCH_LENGTH: i32 = (BATCH_HEADER_LEN - LOG_OVERHEAD) as i32;

const BASE_OFFSET_POS: usize = 0;
const BATCH_LENGTH_POS: usize = 8;
const LEADER_EPOCH_POS: usize = 12;
pub(crate) const MAGIC_POS: usize = 16;
const CRC_POS: usize = 17;
/// The CRC covers everything from the attributes field to the end of the batch.
pub(crate) const ATTRIBUTES_POS: usize = 21;
const LAST_OFFSET_DELTA_POS: usize = 23;
const BASE_TIMESTAMP_POS: usize = 27;
const MAX_TIMESTAMP_POS: usize = 35;
const PRODUCER_ID_POS: usize = 43;
const PRODUCER_EPOCH_POS: usize = 51;
const BASE_SEQUENCE_POS: usize = 53;
const RECORDS_COUNT_POS: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a batch was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// Kafka error CORRUPT_MESSAGE: bad length, torn bytes, CRC mismatch.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// Kafka error INVALID_RECORD: well-formed but not acceptable (old magic, bad counts).
    #[error("invalid record batch: {0}")]
    Invalid(String),
    /// Kafka error MESSAGE_TOO_LARGE.
    #[error("record batch of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// Records the log refuses (KIP-467): the whole batch is refused and each
    /// bad record is named by its index; INVALID_TIMESTAMP if any timestamp
    /// was out of range, else INVALID_RECORD.
    #[error("{0}")]
    Records(super::validate::RecordErrors),
}

/// The fixed 61-byte header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(buf: &[u8], pos: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[pos..pos + 8]);
    i64::from_be_bytes(b)
}

fn be_i32(buf: &[u8], pos: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[pos..pos + 4]);
    i32::from_be_bytes(b)
}

fn be_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes([buf[pos], buf[pos + 1]])
}

impl BatchHeader {
    /// Parses the header fields; does not check magic, lengths or the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_LEN {
            return Err(BatchError::Corrupt(format!(
                "{} bytes is shorter than the {BATCH_HEADER_LEN}-byte batch header",
                buf.len()
            )));
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_POS),
            batch_length: be_i32(buf, BATCH_LENGTH_POS),
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_POS),
            magic: buf[MAGIC_POS] as i8,
            crc: be_i32(buf, CRC_POS) as u32,
            attributes: be_i16(buf, ATTRIBUTES_POS),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_POS),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_POS),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_POS),
            producer_id: be_i64(buf, PRODUCER_ID_POS),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_POS),
            base_sequence: be_i32(buf, BASE_SEQUENCE_POS),
            records_count: be_i32(buf, RECORDS_COUNT_POS),
        })
    }

    /// Offset of the last record in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Whole size of the batch on the wire / on disk.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn compression_codec(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Structural checks that need only the header: magic, length, counts.
    /// Used both for produced bytes and for recovery of bytes read from disk.
    pub(crate) fn check_structure(&self) -> Result<(), BatchError> {
        if self.magic != 2 {
            return Err(BatchError::Invalid(format!(
                "magic {} is not supported, only magic 2",
                self.magic
            )));
        }
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::Corrupt(format!(
                "batch length {} is smaller than the minimum {MIN_BATCH_LENGTH}",
                self.batch_length
            )));
        }
        if self.last_offset_delta < 0 {
            return Err(BatchError::Invalid(format!(
                "negative last offset delta {}",
                self.last_offset_delta
            )));
        }
        if self.records_count < 1 {
            return Err(BatchError::Invalid(format!(
                "record count {} is less than 1",
                self.records_count
            )));
        }
        Ok(())
    }
}

/// CRC-32C of a whole batch's CRC-covered part; `batch` must be at least a header long.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS.min(batch.len())..])
}

/// Splits a produce request's `records` into whole v2 batches and validates each.
///
/// Checks, per batch: enough bytes for the header and the declared length
/// (trailing partial bytes are `Corrupt`), magic 2 (`Invalid`), the size limit
/// (`TooLarge`), the CRC-32C (`Corrupt`), and record count / offset delta
/// consistency (`Invalid`). Empty input is `Invalid`.
pub fn validate_batches(
    records: &[u8],
    max_batch_bytes: usize,
) -> Result<Vec<BatchHeader>, BatchError> {
    split_batches(records, |rest, pos| {
        if rest.len() <= MAGIC_POS {
            return Err(BatchError::Corrupt(format!(
                "{} trailing bytes at position {pos} are not a whole batch",
                rest.len()
            )));
        }
        // Magic before the header is whole: a short old-format message set is `Invalid`.
        check_magic(rest[MAGIC_POS] as i8, pos)?;
        let (header, size) = frame_batch(rest, pos)?;
        if size > max_batch_bytes {
            return Err(BatchError::TooLarge {
                size,
                limit: max_batch_bytes,
            });
        }
        check_crc(&rest[..size], &header, pos)?;
        header.check_structure()?;
        if i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
            return Err(BatchError::Invalid(format!(
                "batch at position {pos} has last offset delta {} but {} records",
                header.last_offset_delta, header.records_count
            )));
        }
        Ok((header, size))
    })
}

/// Splits a follower's fetched `records` (the leader's batches, offsets
/// assigned) into whole v2 batches, checking each as written by a leader:
/// enough bytes (`Corrupt`), magic 2 (`Invalid`), the CRC-32C (`Corrupt`), a
/// non-negative last offset delta and record count. Unlike
/// [`validate_batches`] it has no size limit and accepts what compaction
/// leaves (empty batches, offset gaps inside a batch): the leader accepted
/// these bytes and the follower must hold the same. Empty input is `Invalid`.
pub fn validate_replicated_batches(records: &[u8]) -> Result<Vec<BatchHeader>, BatchError> {
    split_batches(records, |rest, pos| {
        let (header, size) = frame_batch(rest, pos)?;
        check_crc(&rest[..size], &header, pos)?;
        if header.last_offset_delta < 0 || header.records_count < 0 {
            return Err(BatchError::Invalid(format!(
                "batch at position {pos} has last offset delta {} and {} records",
                header.last_offset_delta, header.records_count
            )));
        }
        Ok((header, size))
    })
}

/// Splits `records` into batches: `check` gets the bytes from each batch's
/// start to the end of the input and its position, and returns its header
/// and size, or the first error. Empty input is `Invalid`.
fn split_batches(
    records: &[u8],
    mut check: impl FnMut(&[u8], usize) -> Result<(BatchHeader, usize), BatchError>,
) -> Result<Vec<BatchHeader>, BatchError> {
    if records.is_empty() {
        return Err(BatchError::Invalid("no record batch in the records".into()));
    }
    let mut headers = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let (header, size) = check(&records[pos..], pos)?;
        headers.push(header);
        pos += size;
    }
    Ok(headers)
}

/// The structural checks of the batch starting `rest` (at `pos` in the
/// input): a whole header (`Corrupt`), magic 2 (`Invalid`), a batch length
/// of at least [`MIN_BATCH_LENGTH`] and that many bytes present (`Corrupt`).
/// Returns the header and the batch's total size.
fn frame_batch(rest: &[u8], pos: usize) -> Result<(BatchHeader, usize), BatchError> {
    let header = BatchHeader::parse(rest).map_err(|_| {
        BatchError::Corrupt(format!(
            "{} trailing bytes at position {pos} are shorter than a batch header",
            rest.len()
        ))
    })?;
    check_magic(header.magic, pos)?;
    if header.batch_length < MIN_BATCH_LENGTH {
        return Err(BatchError::Corrupt(format!(
            "batch length {} at position {pos} is smaller than the minimum {MIN_BATCH_LENGTH}",
            header.batch_length
        )));
    }
    let size = header.total_size();
    if size > rest.len() {
        return Err(BatchError::Corrupt(format!(
            "batch at position {pos} declares {size} bytes but only {} remain",
            rest.len()
        )));
    }
    Ok((header, size))
}

/// `Invalid` unless `magic` (of the batch at `pos`) is 2.
fn check_magic(magic: i8, pos: usize) -> Result<(), BatchError> {
    if magic != 2 {
        return Err(BatchError::Invalid(format!(
            "magic {magic} at position {pos} is not supported, only magic 2"
        )));
    }
    Ok(())
}

/// `Corrupt` unless the CRC-32C of `batch` (the whole batch at `pos`) is `header.crc`.
fn check_crc(batch: &[u8], header: &BatchHeader, pos: usize) -> Result<(), BatchError> {
    let actual = compute_crc(batch);
    if actual != header.crc {
        return Err(BatchError::Corrupt(format!(
            "CRC mismatch in batch at position {pos}: stored {:#010x}, computed {actual:#010x}",
            header.crc
        )));
    }
    Ok(())
}

/// Writes the base offset (not covered by the CRC). A buffer shorter than the
/// header is left untouched.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN);
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    batch[BASE_OFFSET_POS..BASE_OFFSET_POS + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch (bytes 12..16, not covered by the CRC).
/// A buffer shorter than the header is left untouched.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN);
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    batch[LEADER_EPOCH_POS..LEADER_EPOCH_POS + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `timestamp` as its max timestamp and
/// recomputes the CRC. A buffer shorter than the header is left untouched.
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) {
    debug_assert!(batch.len() >= BATCH_HEADER_LEN);
    if batch.len() < BATCH_HEADER_LEN {
        return;
    }
    let attributes = be_i16(batch, ATTRIBUTES_POS) | TIMESTAMP_TYPE_BIT;
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&timestamp.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A transaction marker: the control record ending one producer's transaction
/// in a partition (Kafka's EndTransactionMarker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    /// Commit (control type 1) or abort (control type 0).
    pub commit: bool,
}

/// Control record types (the second int16 of a control record's key).
const CONTROL_TYPE_ABORT: i16 = 0;
const CONTROL_TYPE_COMMIT: i16 = 1;

/// Builds the one-record control batch carrying `marker`, stamped `timestamp`.
pub fn control_batch(marker: &ControlMarker, timestamp: i64) -> Result<Vec<u8>, BatchError> {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if marker.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(marker.coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: marker.producer_id,
        producer_epoch: marker.producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, std::iter::once(&record), &options)
        .map_err(|e| BatchError::Invalid(format!("encoding a control record: {e}")))?;
    Ok(buf.to_vec())
}

/// Reads the marker type of a control batch: `Some(true)` commit, `Some(false)`
/// abort, `None` when the batch is not a well-formed transaction marker.
pub fn control_marker_type(batch: &[u8]) -> Option<bool> {
    // An uncompressed control batch holds one record: length (varint),
    // attributes (one byte), timestamp and offset deltas, key length (varints), key.
    let rest = skip_varint(batch.get(BATCH_HEADER_LEN..)?)?;
    let rest = skip_varint(skip_varint(rest.get(1..)?)?)?;
    let rest = skip_varint(rest)?;
    let key = rest.get(..4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_COMMIT => Some(true),
        CONTROL_TYPE_ABORT => Some(false),
        _ => None,
    }
}

/// Reads a transaction marker's coordinator epoch (the int32 after the
/// version in the control record's value), `None` when the batch is not a
/// well-formed marker.
pub fn control_coordinator_epoch(batch: &[u8]) -> Option<i32> {
    let rest = skip_varint(batch.get(BATCH_HEADER_LEN..)?)?;
    let rest = skip_varint(skip_varint(rest.get(1..)?)?)?;
    let rest = skip_varint(rest)?;
    let rest = skip_varint(rest.get(4..)?)?;
    let value = rest.get(..6)?;
    Some(i32::from_be_bytes([value[2], value[3], value[4], value[5]]))
}

/// Skips one zig-zag varint.
fn skip_varint(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.iter().take(5).position(|b| b & 0x80 == 0)?;
    buf.get(end + 1..)
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Real batches built with kafka-protocol's encoder, for tests of the whole log module.
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// One v2 batch of `timestamps.len()` records (offsets 0..n), with keys, values and a header.
    pub fn batch_with(timestamps: &[i64], value_len: usize, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = timestamps
            .iter()
            .enumerate()
            .map(|(i, &ts)| {
                let mut headers = IndexMap::new();
                headers.insert(
                    StrBytes::from_static_str("h"),
                    Some(Bytes::from(format!("hv{i}"))),
                );
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    // The encoder keeps records in one batch while offset - sequence is constant;
                    // this also yields base sequence -1 (no idempotence).
                    sequence: i as i32 - 1,
                    timestamp: ts,
                    key: Some(Bytes::from(format!("key-{i}"))),
                    value: Some(Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
                    headers,
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode test batch");
        buf.to_vec()
    }

    /// A batch of `n` records from producer `pid` (epoch, first sequence),
    /// transactional or not, values `v{seq}`.
    pub fn producer_batch(
        pid: i64,
        epoch: i16,
        seq: i32,
        n: usize,
        transactional: bool,
    ) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: seq + i as i32,
                timestamp: 1_000,
                key: None,
                value: Some(Bytes::from(format!("v{}", seq + i as i32))),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode producer batch");
        buf.to_vec()
    }

    /// A batch of `n` uncompressed records all stamped `ts`.
    pub fn batch(n: usize, ts: i64) -> Vec<u8> {
        batch_with(&vec![ts; n], 10, Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;
    use kafka_protocol::records::Compression;

    #[test]
    fn parses_header_of_encoded_batch() {
        let b = batch_with(&[100, 300, 200], 5, Compression::None);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 0);
        assert_eq!(h.magic, 2);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 100);
        assert_eq!(h.max_timestamp, 300);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(h.compression_codec(), 0);
        assert!(!h.is_log_append_time() && !h.is_control() && !h.is_transactional());
    }

    #[test]
    fn parse_of_short_buffer_is_corrupt() {
        assert!(matches!(
            BatchHeader::parse(&[0u8; 60]),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn validate_accepts_several_batches_including_compressed() {
        let mut all = batch(2, 10);
        all.extend(batch_with(&[1, 2, 3], 100, Compression::Gzip));
        let hs = validate_batches(&all, 1 << 20).unwrap();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].compression_codec(), 1);
        assert_eq!(hs[1].records_count, 3);
    }

    #[test]
    fn validate_rejects_empty_input_as_invalid() {
        assert!(matches!(
            validate_batches(&[], 100),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn validate_rejects_flipped_crc_as_corrupt() {
        let mut b = batch(2, 10);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&b, 1 << 20),
            Err(BatchError::Corrupt(m)) if m.contains("CRC")
        ));
    }

    #[test]
    fn validate_rejects_old_magic_as_invalid() {
        let mut b = batch(1, 10);
        b[MAGIC_POS] = 1;
        assert!(matches!(
            validate_batches(&b, 1 << 20),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn validate_rejects_short_and_trailing_bytes_as_corrupt() {
        let b = batch(2, 10);
        assert!(matches!(
            validate_batches(&b[..40], 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
        assert!(matches!(
            validate_batches(&b[..b.len() - 1], 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
        let mut trailing = b.clone();
        trailing.extend_from_slice(&b[..30]);
        assert!(matches!(
            validate_batches(&trailing, 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
        let mut tiny = b.clone();
        tiny.extend_from_slice(&[0u8; 5]);
        assert!(matches!(
            validate_batches(&tiny, 1 << 20),
            Err(BatchError::Corrupt(_))
        ));
    }

    #[test]
    fn validate_rejects_oversize_batch_as_too_large() {
        let b = batch(3, 10);
        let size = b.len();
        assert_eq!(
            validate_batches(&b, size - 1),
            Err(BatchError::TooLarge {
                size,
                limit: size - 1
            })
        );
        assert!(validate_batches(&b, size).is_ok());
    }

    #[test]
    fn validate_rejects_inconsistent_record_count_as_invalid() {
        let mut b = batch(3, 10);
        b[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_batches(&b, 1 << 20),
            Err(BatchError::Invalid(_))
        ));
    }

    #[test]
    fn set_base_offset_leaves_crc_valid() {
        let mut b = batch(2, 10);
        set_base_offset(&mut b, 12345);
        let h = validate_batches(&b, 1 << 20).unwrap()[0];
        assert_eq!(h.base_offset, 12345);
        assert_eq!(h.last_offset(), 12346);
    }

    #[test]
    fn set_partition_leader_epoch_writes_bytes_12_to_16_and_keeps_crc_valid() {
        let mut b = batch(2, 10);
        let before = b.clone();
        set_partition_leader_epoch(&mut b, 0x0102_0304);
        assert_eq!(&b[12..16], &[1, 2, 3, 4]);
        assert_eq!(&b[..12], &before[..12]);
        assert_eq!(&b[16..], &before[16..]);
        let h = validate_batches(&b, 1 << 20).unwrap()[0];
        assert_eq!(h.partition_leader_epoch, 0x0102_0304);
    }

    #[test]
    fn replicated_batches_need_a_crc_but_no_size_limit_or_dense_offsets() {
        let mut two = batch(3, 10);
        two.extend(batch(1, 10));
        let hs = validate_replicated_batches(&two).unwrap();
        assert_eq!(hs.len(), 2);
        // What compaction leaves: fewer records than the offset delta spans.
        let mut sparse = batch(3, 10);
        sparse[RECORDS_COUNT_POS..RECORDS_COUNT_POS + 4].copy_from_slice(&1i32.to_be_bytes());
        let crc = compute_crc(&sparse);
        sparse[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(validate_batches(&sparse, 1 << 20).is_err());
        assert_eq!(
            validate_replicated_batches(&sparse).unwrap()[0].records_count,
            1
        );
        let mut bad = batch(2, 10);
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            validate_replicated_batches(&bad),
            Err(BatchError::Corrupt(m)) if m.contains("CRC")
        ));
        let b = batch(2, 10);
        assert!(matches!(
            validate_replicated_batches(&b[..b.len() - 1]),
            Err(BatchError::Corrupt(_))
        ));
        assert!(validate_replicated_batches(&[]).is_err());
    }

    #[test]
    fn control_batches_carry_their_type_and_coordinator_epoch() {
        for (commit, coordinator_epoch) in [(true, 7), (false, 123_456)] {
            let marker = ControlMarker {
                producer_id: 9,
                producer_epoch: 2,
                coordinator_epoch,
                commit,
            };
            let b = control_batch(&marker, 1_000).unwrap();
            assert_eq!(control_marker_type(&b), Some(commit));
            assert_eq!(control_coordinator_epoch(&b), Some(coordinator_epoch));
        }
        assert_eq!(control_coordinator_epoch(&[0u8; 40]), None);
    }

    #[test]
    fn set_log_append_time_keeps_crc_valid() {
        let mut b = batch_with(&[5, 6], 10, Compression::Snappy);
        set_log_append_time(&mut b, 999_000);
        let h = validate_batches(&b, 1 << 20).unwrap()[0];
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 999_000);
        assert_eq!(h.base_timestamp, 5);
        assert_eq!(h.compression_codec(), 2);
    }
}
