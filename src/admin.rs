//! The admin HTTP listener: Prometheus `/metrics` and `/health` (`ok`, or
//! 503 `degraded: …` while writes to the data directory fail).
//!
//! It only renders: counters are recorded where events happen (see
//! `metrics.rs`); here the broker's partitions and groups are walked for the
//! gauges (offsets, sizes, lag) at scrape time. It never writes broker state.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kafka_protocol::messages::ApiKey;
use tokio::net::TcpListener;

use crate::broker::Broker;
use crate::metrics::{self, Exposition};
use crate::shutdown::Stopping;

/// The Prometheus text format's content type.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A bound admin listener, not yet serving.
pub struct AdminListener {
    listener: TcpListener,
}

impl AdminListener {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<AdminListener> {
        Ok(AdminListener {
            listener: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves HTTP/1.1 until shutdown.
    pub async fn run(self, broker: Arc<Broker>, mut stopping: Stopping) {
        loop {
            let accepted = tokio::select! {
                a = self.listener.accept() => a,
                _ = stopping.wait() => return,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "admin accept failed");
                    continue;
                }
            };
            let broker = broker.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let broker = broker.clone();
                    async move { Ok::<_, Infallible>(respond(&broker, &req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "admin connection failed");
                }
            });
        }
    }
}

fn respond<B>(broker: &Broker, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, METRICS_CONTENT_TYPE, render(broker)),
        (&Method::GET, "/health") => match crate::health::global().degraded() {
            None => (StatusCode::OK, "text/plain", "ok\n".to_string()),
            Some(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("degraded: writes to the data directory fail: {why}\n"),
            ),
        },
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

/// The whole `/metrics` document.
pub fn render(broker: &Broker) -> String {
    let mut out = Exposition::new();
    metrics::global().render(&mut out, api_name);
    render_health(&mut out);
    render_topics(broker, &mut out);
    render_replication(broker, &mut out);
    render_groups(broker, &mut out);
    out.finish()
}

/// `/health`'s state as a gauge, and the failed writes behind it.
fn render_health(out: &mut Exposition) {
    let health = crate::health::global();
    let name = "vltava_storage_writable";
    out.header(
        name,
        "gauge",
        "1 while the latest write to the data directory succeeded; 0 (and /health answers 503) while it failed.",
    );
    out.sample(name, &[], u64::from(health.degraded().is_none()));
    let name = "vltava_storage_write_errors_total";
    out.header(
        name,
        "counter",
        "Appends and fsyncs that failed with an I/O error.",
    );
    out.sample(name, &[], health.failures());
}

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(api) => format!("{api:?}"),
        Err(_) => key.to_string(),
    }
}

fn render_topics(broker: &Broker, out: &mut Exposition) {
    let mut topics = broker.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    type Read = fn(&metrics::PartitionStats) -> &std::sync::atomic::AtomicU64;
    let counters: [(&str, &str, Read); 4] = [
        (
            "vltava_topic_bytes_in_total",
            "Bytes of record batches produced to the topic.",
            |s| &s.bytes_in,
        ),
        (
            "vltava_topic_messages_in_total",
            "Records produced to the topic.",
            |s| &s.messages_in,
        ),
        (
            "vltava_topic_bytes_out_total",
            "Bytes of record batches sent to fetchers of the topic.",
            |s| &s.bytes_out,
        ),
        (
            "vltava_topic_messages_out_total",
            "Records sent to fetchers of the topic (whole batches).",
            |s| &s.messages_out,
        ),
    ];
    for (name, help, field) in counters {
        out.header(name, "counter", help);
        for t in &topics {
            let total: u64 = t
                .partitions()
                .iter()
                .map(|p| field(&p.stats).load(Ordering::Relaxed))
                .sum();
            out.sample(name, &[("topic", &t.name)], total);
        }
    }
    let mut rows = Vec::new();
    for t in &topics {
        for p in t.partitions() {
            let (start, end, size) = p.with_log(|l| {
                (
                    l.log_start_offset(),
                    l.log_end_offset(),
                    i64::try_from(l.size_bytes()).unwrap_or(i64::MAX),
                )
            });
            rows.push((t.name.clone(), p.index.to_string(), start, end, size));
        }
    }
    type Pick = fn(&(String, String, i64, i64, i64)) -> i64;
    let gauges: [(&str, &str, Pick); 3] = [
        (
            "vltava_partition_log_start_offset",
            "The partition's log start offset.",
            |r| r.2,
        ),
        (
            "vltava_partition_log_end_offset",
            "The partition's log end offset.",
            |r| r.3,
        ),
        (
            "vltava_partition_size_bytes",
            "Bytes of the partition's log segments.",
            |r| r.4,
        ),
    ];
    for (name, help, pick) in gauges {
        out.header(name, "gauge", help);
        for r in &rows {
            out.sample_i64(name, &[("topic", &r.0), ("partition", &r.1)], pick(r));
        }
    }
}

/// Under-replicated and offline partitions, each led partition's high
/// watermark, and how far each follower is behind its leader.
fn render_replication(broker: &Broker, out: &mut Exposition) {
    use crate::broker::partition::Role;
    let mut under = 0u64;
    let mut hws = Vec::new();
    let mut lags = Vec::new();
    let mut topics = broker.topics();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    for t in &topics {
        for p in t.partitions() {
            let Role::Leader(state) = p.role() else {
                continue;
            };
            // As Kafka counts it: replicas being added by a reassignment
            // do not count until it completes.
            let replication_factor = state
                .record
                .replicas
                .len()
                .saturating_sub(state.record.adding_replicas.len());
            if state.isr().len() < replication_factor {
                under += 1;
            }
            let leo = p.log_end_offset();
            hws.push((t.name.clone(), p.index.to_string(), p.high_watermark()));
            for (replica, f) in &state.followers {
                let lag = if f.log_end_offset < 0 {
                    leo
                } else {
                    leo - f.log_end_offset
                };
                lags.push((
                    t.name.clone(),
                    p.index.to_string(),
                    replica.to_string(),
                    lag,
                ));
            }
        }
    }
    let image = broker.image();
    let offline = image
        .topics()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader < 0)
        .count() as u64;
    let name = "vltava_under_replicated_partitions";
    out.header(
        name,
        "gauge",
        "Partitions this broker leads whose ISR is smaller than their replicas.",
    );
    out.sample(name, &[], under);
    let name = "vltava_offline_partitions";
    out.header(
        name,
        "gauge",
        "Partitions of the cluster without a leader, as this broker's metadata image has them.",
    );
    out.sample(name, &[], offline);
    let name = "vltava_partition_high_watermark";
    out.header(
        name,
        "gauge",
        "The high watermark of each partition this broker leads.",
    );
    for (topic, partition, hw) in &hws {
        out.sample_i64(name, &[("topic", topic), ("partition", partition)], *hw);
    }
    let name = "vltava_follower_lag_messages";
    out.header(name, "gauge", "How many offsets each follower is behind this leader's log end offset, as of its last fetch.");
    for (topic, partition, replica, lag) in &lags {
        out.sample_i64(
            name,
            &[
                ("topic", topic),
                ("partition", partition),
                ("replica", replica),
            ],
            *lag,
        );
    }
}

/// Committed offset and lag (log end offset − committed) per group partition.
fn render_groups(broker: &Broker, out: &mut Exposition) {
    let mut groups: Vec<String> = broker
        .groups
        .list()
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    groups.sort();
    let mut rows: BTreeMap<(String, String, i32), (i64, i64)> = BTreeMap::new();
    for group in groups {
        for (topic, partition, value) in broker.groups.committed(&group, None) {
            let Some(value) = value else { continue };
            let end = broker
                .topic(&topic)
                .and_then(|t| t.partition(partition))
                .map(|p| p.high_watermark());
            let lag = end.map_or(0, |end| (end - value.offset).max(0));
            rows.insert((group.clone(), topic, partition), (value.offset, lag));
        }
    }
    for (name, help, lag) in [
        (
            "vltava_group_committed_offset",
            "The group's committed offset for the partition.",
            false,
        ),
        (
            "vltava_group_lag",
            "Records between the group's committed offset and the log end offset.",
            true,
        ),
    ] {
        out.header(name, "gauge", help);
        for ((group, topic, partition), (offset, l)) in &rows {
            let p = partition.to_string();
            let labels = [
                ("group", group.as_str()),
                ("topic", topic),
                ("partition", &p),
            ];
            out.sample_i64(name, &labels, if lag { *l } else { *offset });
        }
    }
}
