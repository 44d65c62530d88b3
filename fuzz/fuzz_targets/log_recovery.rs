//! A partition directory of arbitrary segment and index files, opened and
//! recovered as at broker start (`log/recovery.rs`, `log/segment.rs`,
//! `log/index.rs`), then read from and appended to.
//!
//! Input layout (see `vltava_fuzz::segments_from`): one flags byte, then per
//! segment a base-offset gap, the lengths of its `.log`, `.index` and
//! `.timeindex`, and their bytes. With the recovery point at 0 every segment
//! is scanned, and what recovery keeps must be exactly the longest prefix of
//! valid batches, segment by segment, checked by an independent walk. With
//! the recovery point at the last segment the ones below it are trusted at
//! open, so a read there may find a corrupt batch (and must say so).

#![no_main]

use libfuzzer_sys::fuzz_target;
use vltava::log::error::LogError;
use vltava::log::partition_log::{Log, LogConfig};
use vltava::log::segment::segment_file_name;
use vltava_fuzz::{segments_from, valid_prefix, walk_batches};

fuzz_target!(|data: &[u8]| {
    let Some((flags, segments)) = segments_from(data) else {
        return;
    };
    let dir = vltava_fuzz::scratch_dir();
    for s in &segments {
        std::fs::write(dir.path().join(segment_file_name(s.base, "log")), s.log).unwrap();
        if let Some(index) = s.index {
            std::fs::write(dir.path().join(segment_file_name(s.base, "index")), index).unwrap();
        }
        if let Some(time_index) = s.time_index {
            std::fs::write(
                dir.path().join(segment_file_name(s.base, "timeindex")),
                time_index,
            )
            .unwrap();
        }
    }
    let scan_all = flags & 0x04 == 0;
    let recovery_point = if scan_all {
        0
    } else {
        segments.last().map_or(0, |s| s.base)
    };
    let config = LogConfig {
        index_interval_bytes: [0, 1, 100, 4096][usize::from(flags >> 3) & 3],
        segment_index_bytes: if flags & 0x20 != 0 {
            64
        } else {
            LogConfig::default().segment_index_bytes
        },
        ..LogConfig::default()
    };
    let opened = Log::open(dir.path(), config, recovery_point, 0);
    // Below the recovery point the broker trusts the files (they were
    // fsynced), so refusing them is allowed there; a panic never is.
    let mut log = match opened {
        Ok(log) => log,
        Err(e) if !scan_all => return drop(e),
        Err(e) => panic!("recovery of a scanned log failed: {e}"),
    };

    if scan_all {
        // The model: segments in base order, each cut at its first invalid
        // batch; a segment overlapping the end of the one before, and every
        // segment after a cut, is gone.
        let mut expected = Vec::new();
        let mut prev_end = i64::MIN;
        for s in &segments {
            if s.base < prev_end {
                break;
            }
            let (len, next) = valid_prefix(s.log, s.base);
            expected.push((s.base, &s.log[..len]));
            prev_end = next;
            if len < s.log.len() {
                break;
            }
        }
        assert_eq!(
            log.segment_base_offsets(),
            expected.iter().map(|(b, _)| *b).collect::<Vec<_>>()
        );
        for (base, kept) in &expected {
            let on_disk = std::fs::read(dir.path().join(segment_file_name(*base, "log"))).unwrap();
            assert_eq!(&on_disk[..], *kept, "segment {base}");
        }
        assert_eq!(log.log_end_offset(), prev_end);
    }

    // Reads at every batch boundary the log claims, and by timestamp.
    let start = log.log_start_offset();
    let end = log.log_end_offset();
    for offset in [start, start + (end - start) / 2, end.saturating_sub(1), end] {
        if let Ok(slice) = log.read(offset, 1 << 20, i64::MAX, true) {
            let bytes = match slice.read() {
                Ok(bytes) => bytes,
                // Trusted at open, checked when first read (`log/verified.rs`):
                // a bad batch below the recovery point is found here.
                Err(LogError::CorruptBatch { .. }) if !scan_all => continue,
                Err(e) => panic!("a slice the log handed out does not read back: {e}"),
            };
            if scan_all && !bytes.is_empty() {
                let batches = walk_batches(&bytes);
                assert_eq!(
                    batches.consumed,
                    bytes.len(),
                    "a read returns whole valid batches"
                );
                assert!(batches.last_offset >= offset, "the batches reach {offset}");
            }
        }
    }
    for ts in [i64::MIN, -1, 0, 1_700_000_000_000, i64::MAX] {
        let _ = log.offset_for_timestamp(ts);
    }
    let _ = log.max_timestamp_offset();

    // The recovered log takes an append at its end.
    if scan_all {
        let mut batch = vltava_fuzz::sample_batch();
        let info = log
            .append(&mut batch, 1_700_000_000_000)
            .expect("append after recovery");
        assert_eq!(info.base_offset, end);
        assert_eq!(log.log_end_offset(), end + 2);
        let slice = log.read(end, 1 << 20, i64::MAX, true).unwrap();
        assert_eq!(slice.read().unwrap().len(), batch.len());
    }
});
