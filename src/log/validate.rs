//! Record-level checks on append that need the records, not just the batch
//! header: keys on a compacted log, CreateTime timestamps against
//! `message.timestamp.{before,after}.max.ms`, and recompression to the topic's
//! `compression.type`. Batches are decoded only when one of these applies.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{BatchError, BatchHeader};
use super::partition_log::{LogConfig, TimestampType};

/// `compression.type`: keep the producer's codec, or store in this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Producer,
    Uncompressed,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    /// Parses Kafka's `compression.type` values; unknown values mean `producer`
    /// (they are rejected earlier, by config validation).
    pub fn parse(s: &str) -> Codec {
        match s.trim() {
            "uncompressed" => Codec::Uncompressed,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => Codec::Producer,
        }
    }

    /// The codec batches must be stored in, if not the producer's.
    pub fn target(self) -> Option<Compression> {
        match self {
            Codec::Producer => None,
            Codec::Uncompressed => Some(Compression::None),
            Codec::Gzip => Some(Compression::Gzip),
            Codec::Snappy => Some(Compression::Snappy),
            Codec::Lz4 => Some(Compression::Lz4),
            Codec::Zstd => Some(Compression::Zstd),
        }
    }
}

/// One refused record (Kafka's `ProduceResponse.RecordError`): its index
/// among the records of the partition's batches, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub batch_index: i32,
    pub message: String,
}

impl std::fmt::Display for RecordError {
    /// As Kafka prints it inside the partition's error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecordError(batchIndex={}, message='{}')",
            self.batch_index, self.message
        )
    }
}

/// Every refused record of a produce (KIP-467). The whole batch is refused;
/// the client fails these records and may resend the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordErrors {
    pub errors: Vec<RecordError>,
    /// Some record's timestamp was out of range (the partition's error is then
    /// INVALID_TIMESTAMP rather than INVALID_RECORD).
    pub invalid_timestamp: bool,
}

impl std::fmt::Display for RecordErrors {
    /// Kafka's partition-level message for these errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.invalid_timestamp {
            return f.write_str("One or more records have been rejected due to invalid timestamp");
        }
        let shown: Vec<String> = self.errors.iter().take(3).map(|e| e.to_string()).collect();
        write!(
            f,
            "One or more records have been rejected due to {} record errors in total, \
             and only showing the first three errors at most: [{}]",
            self.errors.len(),
            shown.join(", ")
        )
    }
}

/// Checks the records of already structurally validated `batches` (with
/// `headers`) of `topic_partition` against `config`. Every refused record is
/// reported (a missing key on a compacted log before a timestamp out of
/// range, as Kafka's `LogValidator`). Returns replacement bytes when the
/// batches had to be recompressed.
pub fn check_records(
    batches: &[u8],
    headers: &[BatchHeader],
    topic_partition: &str,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, BatchError> {
    let create_time = config.timestamp_type == TimestampType::CreateTime;
    let earliest = now_ms.saturating_sub(config.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(config.timestamp_after_max_ms);
    let target = config.compression.target();
    let needs_decode = |h: &BatchHeader| {
        !h.is_control()
            && (config.compact
                || (create_time
                    && (config.timestamp_before_max_ms != i64::MAX || h.max_timestamp > latest))
                || target.is_some_and(|c| c as u8 != h.compression_codec()))
    };
    let mut out: Option<Vec<u8>> = None;
    let mut refused = RecordErrors {
        errors: Vec::new(),
        invalid_timestamp: false,
    };
    let mut pos = 0usize;
    let mut index = 0i32;
    for h in headers {
        let raw = &batches[pos..pos + h.total_size()];
        pos += h.total_size();
        if !needs_decode(h) {
            index = index.saturating_add(h.records_count.max(0));
            if let Some(o) = out.as_mut() {
                o.extend_from_slice(raw);
            }
            continue;
        }
        let mut bytes = Bytes::copy_from_slice(raw);
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| BatchError::Corrupt(format!("cannot decode records: {e}")))?;
        // Kafka's inner-record check: the header's count, offsets 0..count
        // (anything else would be re-encoded into a batch that lies).
        let sequential = set
            .records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset.checked_sub(h.base_offset) == Some(i as i64));
        if set.records.len() != usize::try_from(h.records_count).unwrap_or(0) || !sequential {
            return Err(BatchError::Invalid(format!(
                "batch at position {} declares {} records but holds {} with offset deltas {:?}",
                pos - raw.len(),
                h.records_count,
                set.records.len(),
                set.records
                    .iter()
                    .map(|r| r.offset.wrapping_sub(h.base_offset))
                    .collect::<Vec<_>>()
            )));
        }
        for r in &set.records {
            if config.compact && r.key.is_none() {
                refused.errors.push(RecordError {
                    batch_index: index,
                    message: format!(
                        "Compacted topic cannot accept message without key in topic partition \
                         {topic_partition}."
                    ),
                });
            } else if create_time && !(earliest..=latest).contains(&r.timestamp) {
                refused.invalid_timestamp = true;
                refused.errors.push(RecordError {
                    batch_index: index,
                    message: out_of_range(r.timestamp, r.offset, earliest, latest),
                });
            }
            index = index.saturating_add(1);
        }
        if !refused.errors.is_empty() {
            continue;
        }
        match target {
            Some(codec) if codec as u8 != h.compression_codec() => {
                let o = out.get_or_insert_with(|| batches[..pos - raw.len()].to_vec());
                let mut buf = BytesMut::new();
                RecordBatchEncoder::encode(
                    &mut buf,
                    &set.records,
                    &RecordEncodeOptions {
                        version: 2,
                        compression: codec,
                    },
                )
                .map_err(|e| BatchError::Invalid(format!("cannot recompress records: {e}")))?;
                o.extend_from_slice(&buf);
            }
            _ => {
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(raw);
                }
            }
        }
    }
    if !refused.errors.is_empty() {
        return Err(BatchError::Records(refused));
    }
    Ok(out)
}

fn out_of_range(ts: i64, offset: i64, earliest: i64, latest: i64) -> String {
    format!(
        "Timestamp {ts} of message with offset {offset} is out of range. \
         The timestamp should be within [{earliest}, {latest}]"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch_with;
    use crate::log::batch::validate_batches;

    fn config() -> LogConfig {
        LogConfig::default()
    }

    #[test]
    fn recompresses_to_the_topic_codec_and_keeps_the_records() {
        let b = batch_with(&[100, 101, 102], 40, Compression::None);
        let headers = validate_batches(&b, usize::MAX).unwrap();
        let config = LogConfig {
            compression: Codec::Gzip,
            ..config()
        };
        let out = check_records(&b, &headers, "t-0", &config, 100)
            .unwrap()
            .unwrap();
        let h = validate_batches(&out, usize::MAX).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].compression_codec(), Compression::Gzip as u8);
        assert_eq!((h[0].records_count, h[0].last_offset_delta), (3, 2));
        let before = RecordBatchDecoder::decode(&mut Bytes::from(b.clone())).unwrap();
        let after = RecordBatchDecoder::decode(&mut Bytes::from(out)).unwrap();
        assert_eq!(before.records, after.records);
        // Already in the right codec, or `producer`: untouched.
        assert!(
            check_records(&b, &headers, "t-0", &LogConfig::default(), 100)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_batch_whose_records_do_not_match_its_header_is_refused_not_rewritten() {
        // Three records whose third claims offset delta 5 (its CRC made
        // valid): structurally whole, inconsistent inside.
        let mut b = batch_with(&[100, 101, 102], 1, Compression::None);
        let mut pos = 61;
        for _ in 0..2 {
            // One-byte zigzag varint lengths: small records.
            pos += 1 + usize::from(b[pos] >> 1);
        }
        // length, attributes, timestamp delta, then the offset delta.
        assert_eq!(b[pos + 3], 4, "zigzag of offset delta 2");
        b[pos + 3] = 10;
        let crc = crate::log::batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let headers = validate_batches(&b, usize::MAX).unwrap();
        let config = LogConfig {
            compression: Codec::Gzip,
            ..config()
        };
        let err = check_records(&b, &headers, "t-0", &config, 100).unwrap_err();
        assert_eq!(
            err,
            BatchError::Invalid(
                "batch at position 0 declares 3 records but holds 3 with offset deltas [0, 1, 5]"
                    .into()
            )
        );
    }

    #[test]
    fn timestamps_outside_the_window_are_refused_per_record() {
        let b = batch_with(&[1_000, 5_000, 900], 1, Compression::None);
        let headers = validate_batches(&b, usize::MAX).unwrap();
        let config = LogConfig {
            timestamp_before_max_ms: 2_000,
            timestamp_after_max_ms: 0,
            ..config()
        };
        let err = check_records(&b, &headers, "t-0", &config, 5_000).unwrap_err();
        let message = |ts: i64, offset: i64| {
            format!(
                "Timestamp {ts} of message with offset {offset} is out of range. \
                 The timestamp should be within [3000, 5000]"
            )
        };
        assert_eq!(
            err,
            BatchError::Records(RecordErrors {
                errors: vec![
                    RecordError {
                        batch_index: 0,
                        message: message(1_000, 0)
                    },
                    RecordError {
                        batch_index: 2,
                        message: message(900, 2)
                    },
                ],
                invalid_timestamp: true,
            })
        );
        assert_eq!(
            err.to_string(),
            "One or more records have been rejected due to invalid timestamp"
        );
        // A timestamp too far ahead is found from the header, then by record.
        let config = LogConfig {
            timestamp_after_max_ms: 0,
            ..LogConfig::default()
        };
        let Err(BatchError::Records(r)) = check_records(&b, &headers, "t-0", &config, 4_000) else {
            panic!("a timestamp ahead of the clock was accepted");
        };
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].batch_index, 1);
    }

    #[test]
    fn keyless_records_on_a_compacted_log_are_each_named() {
        let keyed = |k: Option<&str>| kafka_protocol::records::Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 100,
            key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let records: Vec<_> = [Some("a"), None, Some("c"), None, None]
            .into_iter()
            .enumerate()
            .map(|(i, k)| kafka_protocol::records::Record {
                offset: i as i64,
                ..keyed(k)
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
        .unwrap();
        let headers = validate_batches(&buf, usize::MAX).unwrap();
        let config = LogConfig {
            compact: true,
            ..config()
        };
        let err = check_records(&buf, &headers, "orders-3", &config, 100).unwrap_err();
        let message =
            "Compacted topic cannot accept message without key in topic partition orders-3.";
        let expected: Vec<RecordError> = [1, 3, 4]
            .into_iter()
            .map(|batch_index| RecordError {
                batch_index,
                message: message.to_string(),
            })
            .collect();
        assert_eq!(
            err,
            BatchError::Records(RecordErrors {
                errors: expected,
                invalid_timestamp: false
            })
        );
        assert_eq!(
            err.to_string(),
            format!(
                "One or more records have been rejected due to 3 record errors in total, and only \
                 showing the first three errors at most: [RecordError(batchIndex=1, message='{message}'), \
                 RecordError(batchIndex=3, message='{message}'), RecordError(batchIndex=4, message='{message}')]"
            )
        );
    }
}
