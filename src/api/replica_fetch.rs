//! Fetch from a follower (Kafka's replica fetch: a replica id ≥ 0): the
//! leader reads past the high watermark up to its log end offset, takes the
//! fetch offset as the follower's log end offset (which moves the high
//! watermark and may bring the follower into the ISR), and answers a
//! follower whose last fetched epoch is not in its history with the
//! diverging epoch to truncate to (KIP-279).
//!
//! Long-polls on the partitions' log-end channels.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use futures::FutureExt;
use kafka_protocol::messages::fetch_response::{EpochEndOffset, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ResponseKind};
use tokio::time::Instant;

use super::errors::log_error_code;
use super::fetch::{leader_of, requested_topic, response_shell};
use crate::broker::{Broker, Partition};
use crate::clock::now_ms;

/// The longest a follower may ask us to hold a fetch.
const MAX_WAIT_CAP: Duration = Duration::from_secs(60);

/// One requested partition, checked.
struct Wanted {
    topic: usize,
    index: i32,
    /// The leader replica to read, or the error code to answer.
    partition: Result<Arc<Partition>, i16>,
    offset: i64,
    max_bytes: usize,
    /// Set when the follower's history diverged: (epoch, end offset).
    diverging: Option<(i32, i64)>,
}

pub async fn handle(
    broker: &Arc<Broker>,
    req: FetchRequest,
    version: i16,
    replica_id: i32,
) -> ResponseKind {
    let deadline = Instant::now()
        + Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(req.max_bytes)
        .unwrap_or(0)
        .min(broker.config.fetch_max_bytes());
    let now = now_ms();

    let mut shells = Vec::with_capacity(req.topics.len());
    let mut wanted = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = requested_topic(broker, &t, version);
        for p in &t.partitions {
            let mut w = Wanted {
                topic: ti,
                index: p.partition,
                partition: leader_of(&topic, p.partition, p.current_leader_epoch),
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                diverging: None,
            };
            if let Ok(leader) = &w.partition {
                w.diverging = leader.diverging_epoch(p.last_fetched_epoch, p.fetch_offset);
                if w.diverging.is_none() {
                    if let Some(change) =
                        leader.follower_fetched(replica_id, p.fetch_offset, p.log_start_offset, now)
                    {
                        broker.propose_isr_change(leader.clone(), change);
                    }
                }
            }
            wanted.push(w);
        }
        shells.push(response_shell(t, version));
    }

    let mut watchers: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.partition.as_ref().ok().map(|p| p.subscribe_log_end()))
        .collect();
    let partitions = loop {
        let (partitions, bytes, done) = read_all(&wanted, max_bytes, version);
        if bytes >= min_bytes || done || watchers.is_empty() || Instant::now() >= deadline {
            break partitions;
        }
        let changed = select_all(watchers.iter_mut().map(|rx| rx.changed().boxed()));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            break read_all(&wanted, max_bytes, version).0;
        }
    };
    for (w, data) in wanted.iter().zip(partitions) {
        shells[w.topic].partitions.push(data);
    }
    ResponseKind::Fetch(FetchResponse::default().with_responses(shells))
}

/// Reads every wanted partition once: the answers, the record bytes, and
/// whether the fetch must be answered now (an error or a divergence).
fn read_all(
    wanted: &[Wanted],
    max_bytes: usize,
    version: i16,
) -> (Vec<PartitionData>, usize, bool) {
    let mut total = 0usize;
    let mut done = false;
    let answers = wanted
        .iter()
        .map(|w| {
            let mut data = PartitionData::default().with_partition_index(w.index);
            let partition = match &w.partition {
                Ok(p) => p,
                Err(code) => {
                    done = true;
                    return data.with_error_code(*code).with_high_watermark(-1);
                }
            };
            let (log_start, _) = partition.log_bounds();
            data.high_watermark = partition.high_watermark();
            data.last_stable_offset = data.high_watermark;
            if version >= 5 {
                data.log_start_offset = log_start;
            }
            if let Some((epoch, end_offset)) = w.diverging {
                done = true;
                data.diverging_epoch = EpochEndOffset::default()
                    .with_epoch(epoch)
                    .with_end_offset(end_offset);
                data.records = Some(Bytes::new());
                return data;
            }
            let limit = w.max_bytes.min(max_bytes.saturating_sub(total));
            let records = if limit == 0 && total > 0 {
                Ok(Bytes::new())
            } else {
                partition.read_for_follower(w.offset, limit.max(1))
            };
            match records {
                Ok(records) => {
                    total += records.len();
                    data.records = Some(records);
                }
                Err(e) => {
                    done = true;
                    data.error_code = log_error_code(&e, &partition.topic, partition.index);
                }
            }
            data
        })
        .collect();
    (answers, total, done)
}
