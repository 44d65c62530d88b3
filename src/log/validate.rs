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

/// Checks the records of already structurally validated `batches` (with
/// `headers`) against `config`. Returns replacement bytes when the batches
/// had to be recompressed.
pub fn check_records(
    batches: &[u8],
    headers: &[BatchHeader],
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
                || (create_time && config.timestamp_before_max_ms != i64::MAX)
                || target.is_some_and(|c| c as u8 != h.compression_codec()))
    };
    let mut out: Option<Vec<u8>> = None;
    let mut pos = 0usize;
    for h in headers {
        let raw = &batches[pos..pos + h.total_size()];
        pos += h.total_size();
        if create_time && !h.is_control() && h.max_timestamp > latest {
            return Err(out_of_range(
                h.max_timestamp,
                h.base_offset,
                earliest,
                latest,
            ));
        }
        if !needs_decode(h) {
            if let Some(o) = out.as_mut() {
                o.extend_from_slice(raw);
            }
            continue;
        }
        let mut bytes = Bytes::copy_from_slice(raw);
        let set = RecordBatchDecoder::decode(&mut bytes)
            .map_err(|e| BatchError::Corrupt(format!("cannot decode records: {e}")))?;
        for r in &set.records {
            if config.compact && r.key.is_none() {
                return Err(BatchError::Invalid(
                    "Compacted topic cannot accept message without key in topic partition"
                        .to_string(),
                ));
            }
            if create_time && !(earliest..=latest).contains(&r.timestamp) {
                return Err(out_of_range(r.timestamp, r.offset, earliest, latest));
            }
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
    Ok(out)
}

fn out_of_range(ts: i64, offset: i64, earliest: i64, latest: i64) -> BatchError {
    BatchError::InvalidTimestamp(format!(
        "Timestamp {ts} of message with offset {offset} is out of range. \
         The timestamp should be within [{earliest}, {latest}]"
    ))
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
        let out = check_records(&b, &headers, &config, 100).unwrap().unwrap();
        let h = validate_batches(&out, usize::MAX).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].compression_codec(), Compression::Gzip as u8);
        assert_eq!((h[0].records_count, h[0].last_offset_delta), (3, 2));
        let before = RecordBatchDecoder::decode(&mut Bytes::from(b.clone())).unwrap();
        let after = RecordBatchDecoder::decode(&mut Bytes::from(out)).unwrap();
        assert_eq!(before.records, after.records);
        // Already in the right codec, or `producer`: untouched.
        assert!(check_records(&b, &headers, &LogConfig::default(), 100)
            .unwrap()
            .is_none());
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let b = batch_with(&[1_000, 5_000], 1, Compression::None);
        let headers = validate_batches(&b, usize::MAX).unwrap();
        let config = LogConfig {
            timestamp_before_max_ms: 2_000,
            timestamp_after_max_ms: 0,
            ..config()
        };
        let err = check_records(&b, &headers, &config, 5_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Timestamp 1000 of message with offset 0 is out of range. \
             The timestamp should be within [3000, 5000]"
        );
        assert!(matches!(
            check_records(&b, &headers, &config, 4_000),
            Err(BatchError::InvalidTimestamp(_))
        ));
    }
}
