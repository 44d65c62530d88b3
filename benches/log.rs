//! Micro-benchmarks of the partition log (no network, no fsync):
//! append of 1 KiB-record batches, read of a range (verified, and its first
//! read with the CRC-32C check), and the recovery scan at open.
//!
//!   cargo bench --bench log
//!
//! Every measurement writes into a fresh temporary directory under $TMPDIR.
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use vltava::log::partition_log::{Log, LogConfig};
use vltava::log::verified::VerifiedMark;

const VALUE: usize = 1024;
/// The broker clock for appends: the records' own time, so their timestamps are in range.
const NOW_MS: i64 = 1_700_000_000_000;

/// One v2 batch of `n` records with 1 KiB values, as a producer sends it.
fn batch(n: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(vec![b'v'; VALUE])),
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
    .expect("encode batch");
    buf.to_vec()
}

fn open(dir: &Path) -> Log {
    Log::open(dir, LogConfig::default(), 0, 0).expect("open log")
}

/// A log in `dir` holding `count` batches of `per_batch` records.
fn fill(dir: &Path, count: usize, per_batch: usize) -> Log {
    let mut log = open(dir);
    let mut b = batch(per_batch);
    for _ in 0..count {
        log.append(&mut b, NOW_MS).expect("append");
    }
    log.flush().expect("flush");
    log
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for per_batch in [1usize, 16] {
        let template = batch(per_batch);
        g.throughput(Throughput::Bytes(template.len() as u64));
        g.bench_function(format!("{per_batch}x1KiB"), |b| {
            // A fresh log per sample keeps the disk use bounded.
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut log = open(dir.path());
                let mut buf = template.clone();
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(log.append(&mut buf, NOW_MS).expect("append"));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn read(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = 4096; // 64 MiB of 16 x 1 KiB batches
    let log = fill(dir.path(), batches, 16);
    let leo = log.log_end_offset();
    let max_bytes = 1 << 20;
    let mut g = c.benchmark_group("read");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(max_bytes as u64));
    let mut next = 0i64;
    g.bench_function("1MiB_range", |b| {
        b.iter(|| {
            // Walk the log in a fixed stride so reads start mid-batch and across index entries.
            next = (next + 7919) % (leo - 1024);
            let slice = log.read(next, max_bytes, leo, true).expect("read");
            black_box(slice.read().expect("pread"))
        })
    });
    // The first read of bytes nobody has checked yet (after a restart, below
    // the recovery point) also checks each batch's CRC-32C: the same read,
    // then the check against a fresh, empty verified range. This is what a
    // fetch pays once per byte per broker lifetime; later reads of those
    // bytes pay one atomic load, as above.
    let mut next = 0i64;
    g.bench_function("1MiB_range_first_read", |b| {
        b.iter_batched(
            || VerifiedMark::new(Path::new("cold.log"), 0),
            |mark| {
                next = (next + 7919) % (leo - 1024);
                let slice = log.read(next, max_bytes, leo, true).expect("read");
                let bytes = slice.read().expect("pread");
                black_box(mark.check(&bytes, 1 << 20).expect("intact"))
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let batches = 4096;
    let size = {
        let log = fill(dir.path(), batches, 16);
        log.size_bytes()
    };
    let mut g = c.benchmark_group("recovery");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Bytes(size));
    // Open with recovery point 0: every batch of the 64 MiB segment is validated (CRC-32C).
    g.bench_function("scan_64MiB", |b| {
        b.iter_batched(
            || (),
            |_| black_box(open(dir.path())),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, append, read, recovery);
criterion_main!(benches);
