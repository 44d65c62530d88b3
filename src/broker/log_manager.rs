//! The log manager's background work, Kafka's `LogManager` retention task and
//! `LogCleaner` thread: every partition's retention (whole old segments) each
//! `log.retention.check.interval.ms` (with producer-id expiration), and compaction of compacted partitions
//! each `log.cleaner.backoff.ms`. It runs on a blocking thread and holds a
//! partition's lock only to plan and to swap, never while cleaning.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Broker;
use crate::clock::now_ms;
use crate::shutdown::Stopping;

/// Runs until shutdown.
pub async fn run(broker: Arc<Broker>, mut stopping: Stopping) {
    let retention_every = Duration::from_millis(broker.config.retention_check_interval_ms().max(1));
    let clean_every = Duration::from_millis(broker.config.cleaner_backoff_ms().max(1));
    let mut tick = tokio::time::interval(retention_every.min(clean_every));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = Instant::now();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait() => return,
        }
        let retention = last_retention.elapsed() >= retention_every;
        if retention {
            last_retention = Instant::now();
        }
        let b = broker.clone();
        let s = stopping.clone();
        let pass = tokio::task::spawn_blocking(move || one_pass(&b, retention, &s));
        if let Err(e) = pass.await {
            tracing::error!(error = %e, "log manager pass failed");
        }
    }
}

/// Retention (if due) then cleaning, over every partition.
fn one_pass(broker: &Broker, retention: bool, stopping: &Stopping) {
    // The dynamic cleaner limits and producer-id expiration as of this pass.
    let config = broker.current_config();
    let mut moved = false;
    for topic in broker.topics() {
        for p in topic.partitions() {
            if stopping.is_stopping() {
                return;
            }
            if retention {
                p.expire_producers(now_ms(), config.producer_id_expiration_ms());
                match p.apply_retention(now_ms()) {
                    Ok(out) => moved |= out.segments_deleted > 0,
                    Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e,
                        "retention failed"),
                }
            }
            if config.cleaner_enabled() {
                let stopped = || stopping.is_stopping();
                match p.clean(now_ms(), config.cleaner_limits(), &stopped) {
                    Ok(Some(stats)) => {
                        moved = true;
                        tracing::info!(topic = %topic.name, partition = p.index,
                            bytes_read = stats.bytes_read, bytes_written = stats.bytes_written,
                            records_removed = stats.records_removed,
                            segments_rewritten = stats.segments_rewritten, "cleaned log");
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(topic = %topic.name, partition = p.index, error = %e,
                        "log cleaning failed; will retry"),
                }
            }
        }
    }
    if moved {
        if let Err(e) = broker.write_checkpoints() {
            tracing::warn!(error = %e, "writing checkpoints after retention failed");
        }
    }
}
