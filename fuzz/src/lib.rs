//! What the fuzz targets share: the broker's handling of one request frame up
//! to where it needs broker state (header, version check, body decode, and
//! the validation that needs no running broker), and the checks of record
//! batches against the log's settings.
//!
//! Every function here calls the library's own code; the assertions are the
//! invariants that code promises, checked independently where cheap.

use bytes::Bytes;

/// The broker's allocator (`src/main.rs` installs the same): a forged array
/// count reserves address space instead of aborting, as in production.
#[global_allocator]
static GLOBAL: vltava::alloc::GuardedAlloc = vltava::alloc::GuardedAlloc;
use kafka_protocol::messages::RequestKind;
use vltava::api::{decode_request, supported_versions};
use vltava::broker::validate_topic_name;
use vltava::config::TopicConfig;
use vltava::group::assignment::subscribed_topics;
use vltava::log::batch::{
    control_marker_type, set_base_offset, set_log_append_time, validate_batches, BatchError,
    BatchHeader,
};
use vltava::log::partition_log::{LogConfig, TimestampType};
use vltava::log::validate::{check_records, Codec};
use vltava::net::header::decode_request_header;

/// Handles one request frame (without its size prefix) as the broker does
/// before it touches broker state. `false` when the broker would close the
/// connection (a header or body it cannot decode, an unsupported version).
pub fn serve_offline(mut frame: Bytes) -> bool {
    let Ok((api, header)) = decode_request_header(&mut frame) else {
        return false;
    };
    assert_eq!(header.request_api_key, api as i16);
    let version = header.request_api_version;
    let supported =
        supported_versions(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        return false;
    }
    match decode_request(api, version, &mut frame) {
        Ok(request) => {
            validate_request(&request);
            true
        }
        Err(_) => false,
    }
}

/// The request checks that need no broker: topic names, config values,
/// produced record batches, consumer subscriptions.
pub fn validate_request(request: &RequestKind) {
    match request {
        RequestKind::Produce(req) => {
            for topic in &req.topic_data {
                let _ = validate_topic_name(&topic.name);
                for partition in &topic.partition_data {
                    if let Some(records) = &partition.records {
                        check_batches(records, &LogConfig::default(), 1_700_000_000_000);
                    }
                }
            }
        }
        RequestKind::CreateTopics(req) => {
            for topic in &req.topics {
                let _ = validate_topic_name(&topic.name);
                let pairs = topic
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?)));
                resolve_topic_config(pairs);
            }
        }
        RequestKind::AlterConfigs(req) => {
            for resource in &req.resources {
                let _ = validate_topic_name(&resource.resource_name);
                let pairs = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?)));
                resolve_topic_config(pairs);
            }
        }
        RequestKind::IncrementalAlterConfigs(req) => {
            for resource in &req.resources {
                let _ = validate_topic_name(&resource.resource_name);
                let pairs = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.as_str(), c.value.as_deref()?)));
                resolve_topic_config(pairs);
            }
        }
        RequestKind::Metadata(req) => {
            for topic in req.topics.iter().flatten() {
                if let Some(name) = &topic.name {
                    let _ = validate_topic_name(name);
                }
            }
        }
        RequestKind::DeleteTopics(req) => {
            for name in &req.topic_names {
                let _ = validate_topic_name(name);
            }
        }
        RequestKind::JoinGroup(req) => {
            for protocol in &req.protocols {
                let _ = subscribed_topics(&protocol.metadata);
            }
        }
        _ => {}
    }
}

/// Topic config overrides as CreateTopics / AlterConfigs validate them.
fn resolve_topic_config<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let _ = TopicConfig::from_pairs(pairs);
}

/// Validates `records` as a produce's records under `config`, then checks
/// what validation promises: whole batches covering every byte, magic 2,
/// matching CRCs; the record checks and recompression; offsets and
/// LogAppendTime patched in place keep a batch valid.
pub fn check_batches(records: &[u8], config: &LogConfig, now_ms: i64) {
    let Ok(headers) = validate_batches(records, config.max_message_bytes) else {
        return;
    };
    assert!(!headers.is_empty());
    let mut pos = 0;
    for h in &headers {
        let size = h.total_size();
        let batch = &records[pos..pos + size];
        assert_eq!(BatchHeader::parse(batch).as_ref(), Ok(h));
        assert_eq!(h.magic, 2);
        assert!(size <= config.max_message_bytes);
        assert_eq!(crc32c::crc32c(&batch[21..]), h.crc);
        assert_eq!(
            i64::from(h.last_offset_delta) + 1,
            i64::from(h.records_count)
        );
        let _ = control_marker_type(batch);

        let mut patched = batch.to_vec();
        set_base_offset(&mut patched, 1 << 40);
        set_log_append_time(&mut patched, now_ms);
        let again = validate_batches(&patched, usize::MAX).expect("a patched batch stays valid");
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].base_offset, 1 << 40);
        assert_eq!(again[0].max_timestamp, now_ms);
        assert!(again[0].is_log_append_time());
        pos += size;
    }
    assert_eq!(pos, records.len());

    let replaced = match check_records(records, &headers, "fuzz-0", config, now_ms) {
        Ok(replaced) => replaced,
        Err(BatchError::Records(refused)) => {
            // KIP-467: every refused record is named by its index in the
            // partition's records, in order.
            assert!(!refused.errors.is_empty());
            assert!(refused.errors[0].batch_index >= 0);
            for pair in refused.errors.windows(2) {
                assert!(pair[0].batch_index <= pair[1].batch_index);
            }
            return;
        }
        Err(_) => return,
    };
    if let Some(out) = replaced {
        // Recompressed into the topic's codec: still valid, same records.
        let after = validate_batches(&out, usize::MAX).expect("recompressed batches are valid");
        let count = |hs: &[BatchHeader]| hs.iter().map(|h| i64::from(h.records_count)).sum::<i64>();
        assert_eq!(count(&after), count(&headers));
        let target = config.compression.target().map(|c| c as u8);
        for (h, before) in after.iter().zip(&headers) {
            if !before.is_control() {
                assert_eq!(Some(h.compression_codec()), target);
            }
        }
    }
}

/// A log configuration chosen by one input byte: compaction, the timestamp
/// type and bounds, the codec batches are stored in, the batch size limit.
pub fn log_config_from(selector: u8) -> LogConfig {
    let d = LogConfig::default();
    LogConfig {
        compact: selector & 1 != 0,
        timestamp_type: if selector & 2 != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        },
        timestamp_before_max_ms: if selector & 4 != 0 {
            3_600_000
        } else {
            d.timestamp_before_max_ms
        },
        compression: match (selector >> 3) % 6 {
            0 => Codec::Producer,
            1 => Codec::Uncompressed,
            2 => Codec::Gzip,
            3 => Codec::Snappy,
            4 => Codec::Lz4,
            _ => Codec::Zstd,
        },
        max_message_bytes: if selector & 0x80 != 0 {
            200
        } else {
            d.max_message_bytes
        },
        ..d
    }
}

/// One segment of a `log_recovery` input: its base offset and the bytes of
/// its three files (an index absent when its length field is 0xffff).
pub struct SegmentFiles<'a> {
    pub base: i64,
    pub log: &'a [u8],
    pub index: Option<&'a [u8]>,
    pub time_index: Option<&'a [u8]>,
}

/// The next `n` bytes of `rest` (fewer at its end).
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *rest = tail;
    head
}

/// Splits a `log_recovery` input: `flags` (bits 0-1: segments − 1, at most
/// 3; bit 2: recovery point at the last segment instead of 0; bits 3-4:
/// index interval; bit 5: tiny index size), then per segment a u16
/// base-offset gap from the previous base (the first: the base itself) and
/// u32 / u16 / u16 lengths of `.log`, `.index`, `.timeindex`, each cut to
/// what remains, then those bytes. Big-endian.
pub fn segments_from(data: &[u8]) -> Option<(u8, Vec<SegmentFiles<'_>>)> {
    let (&flags, mut rest) = data.split_first()?;
    let count = usize::from(flags & 3).clamp(1, 3);
    let mut segments = Vec::new();
    let mut base = 0i64;
    for i in 0..count {
        let header = take(&mut rest, 10);
        if header.len() < 10 {
            break;
        }
        let gap = i64::from(u16::from_be_bytes([header[0], header[1]]));
        base = if i == 0 { gap } else { base + gap.max(1) };
        let log_len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
        let index_len = u16::from_be_bytes([header[6], header[7]]);
        let time_len = u16::from_be_bytes([header[8], header[9]]);
        let log = take(&mut rest, log_len);
        let index = (index_len != u16::MAX).then(|| take(&mut rest, usize::from(index_len)));
        let time_index = (time_len != u16::MAX).then(|| take(&mut rest, usize::from(time_len)));
        segments.push(SegmentFiles {
            base,
            log,
            index,
            time_index,
        });
    }
    (!segments.is_empty()).then_some((flags, segments))
}

/// The length of the longest prefix of `log` that recovery must keep for a
/// segment based at `base`, and the offset after it: whole v2 batches with
/// a CRC-32C that matches, offsets not going backwards, every offset within
/// the segment's 32-bit relative range. Written from Kafka's rules, not from
/// the code under test.
pub fn valid_prefix(log: &[u8], base: i64) -> (usize, i64) {
    let walk = walk_batches_from(log, base, base);
    (walk.consumed, walk.next_offset)
}

/// What a walk over batches found.
pub struct Walk {
    /// Bytes of whole valid batches from the start.
    pub consumed: usize,
    /// One past the last offset of the last valid batch.
    pub next_offset: i64,
    /// The last offset of the last valid batch (-1 if none).
    pub last_offset: i64,
}

/// Walks valid batches in bytes returned by a read (offsets from the first batch's).
pub fn walk_batches(bytes: &[u8]) -> Walk {
    walk_batches_from(bytes, i64::MIN, i64::MIN)
}

fn walk_batches_from(bytes: &[u8], segment_base: i64, mut next_offset: i64) -> Walk {
    let be_i32 = |b: &[u8], at: usize| i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let be_i64 = |b: &[u8], at: usize| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[at..at + 8]);
        i64::from_be_bytes(x)
    };
    let mut pos = 0;
    let mut last_offset = -1;
    while bytes.len() - pos >= 61 {
        let b = &bytes[pos..];
        let base_offset = be_i64(b, 0);
        let batch_length = be_i32(b, 8);
        let magic = b[16] as i8;
        let crc = be_i32(b, 17) as u32;
        let last_offset_delta = be_i32(b, 23);
        let records = be_i32(b, 57);
        if magic != 2 || batch_length < 49 || last_offset_delta < 0 || records < 0 {
            break;
        }
        let size = 12 + batch_length as usize;
        if size > b.len() || base_offset < next_offset {
            break;
        }
        let last = base_offset.saturating_add(i64::from(last_offset_delta));
        if segment_base != i64::MIN && last - segment_base > i64::from(i32::MAX) {
            break;
        }
        if crc32c::crc32c(&b[21..size]) != crc {
            break;
        }
        pos += size;
        last_offset = last;
        next_offset = last.saturating_add(1);
    }
    Walk {
        consumed: pos,
        next_offset,
        last_offset,
    }
}

/// A directory for one input's files, in memory where the machine has
/// `/dev/shm` (recovery fsyncs; a disk would make every run slow).
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    let builder = tempfile::Builder::new().prefix("vltava-fuzz-").to_owned();
    if shm.is_dir() {
        if let Ok(dir) = builder.tempdir_in(shm) {
            return dir;
        }
    }
    builder.tempdir().expect("a temporary directory")
}

/// A valid two-record uncompressed batch, as a producer would send it.
pub fn sample_batch() -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let record = |i: i64| Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, [record(0), record(1)].iter(), &options)
        .expect("a literal batch encodes");
    buf.to_vec()
}
