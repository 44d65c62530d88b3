//! The `vltava` command line: the client commands (topic, produce, consume,
//! group, cluster, bench), the offline `log verify`, and the server's
//! configuration merge.
//!
//! Client commands speak to any Kafka-compatible cluster through librdkafka
//! (`rdkafka`), or with single requests of their own (`wire.rs`) for the admin APIs
//! librdkafka lacks; they never reach into the broker's own modules. Shared here:
//! the connection flags, output formats and table rendering.

pub mod bench;
pub mod cluster;
pub mod config_file;
pub mod consume;
pub mod group;
pub mod log;
pub mod produce;
pub mod reassign;
pub mod server;
pub mod topic;
pub mod wire;

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use rdkafka::config::ClientConfig;
use rdkafka::metadata::Metadata;

/// Kafka's fixed set of internal topics (one list for the broker and the
/// CLI); rdkafka's metadata does not carry Metadata's `is_internal`.
pub use crate::broker::topic::is_internal;

/// How to reach the cluster; flattened into every client command.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT...]
    #[arg(
        short = 'b',
        long,
        env = "VLTAVA_BROKERS",
        default_value = "localhost:9092"
    )]
    pub brokers: String,
    /// A librdkafka client property, KEY=VALUE (repeatable), e.g. -X security.protocol=ssl
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// How long to wait for the cluster, in milliseconds (also how long to
    /// try to reach a bootstrap broker before giving up)
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub timeout_ms: u64,
}

impl ClientArgs {
    /// A librdkafka config with the bootstrap servers and `-X` properties,
    /// once a bootstrap broker accepts a connection: every client command
    /// starts here, so with none listening each fails the same way, with one
    /// line, instead of librdkafka retrying and logging until the timeout.
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        self.reach_a_bootstrap_broker()?;
        // librdkafka's own messages only when they would be shown (-v, RUST_LOG).
        let log_level = if tracing::enabled!(target: "librdkafka", tracing::Level::INFO) {
            "6"
        } else {
            "3"
        };
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "vltava-cli")
            .set("log_level", log_level);
        for p in &self.properties {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("-X {p:?} is not KEY=VALUE"))?;
            c.set(k.trim(), v.trim());
        }
        Ok(c)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// Connects (TCP) to the bootstrap brokers in turn until one accepts,
    /// within `--timeout-ms` in all; else fails naming the addresses and
    /// the last reason, e.g. `no broker answers at localhost:9092:
    /// connection refused`.
    fn reach_a_bootstrap_broker(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.timeout();
        let mut reason = String::from("no address given");
        for server in self.brokers.split(',').map(str::trim) {
            // librdkafka also takes `PROTOCOL://host:port`.
            let address = server.rsplit_once("://").map_or(server, |(_, a)| a);
            if address.is_empty() {
                continue;
            }
            let resolved = match address.to_socket_addrs() {
                Ok(resolved) => resolved,
                Err(e) => {
                    reason = e.to_string();
                    continue;
                }
            };
            for addr in resolved {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    reason = format!("no answer within {} ms", self.timeout_ms);
                    break;
                }
                match TcpStream::connect_timeout(&addr, left) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::TimedOut => {
                        reason = format!("no answer within {} ms", self.timeout_ms);
                    }
                    Err(e) => reason = connect_failure(&e),
                }
            }
        }
        anyhow::bail!("no broker answers at {}: {reason}", self.brokers)
    }
}

/// Why a connection failed, in a few words ("connection refused").
fn connect_failure(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionRefused
        | ErrorKind::ConnectionReset
        | ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable
        | ErrorKind::PermissionDenied => e.kind().to_string(),
        _ => e.to_string(),
    }
}

/// Human tables, or JSON for scripts.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// Output format flag shared by the commands that print reports.
#[derive(Args, Debug, Clone, Copy)]
pub struct FormatArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

/// Left-aligned columns separated by two spaces, header first.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count() + 2;
                l.push_str(cell);
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Prints a serde value as one line of pretty JSON.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Topic partition counts from metadata, for one topic.
pub fn partition_count(metadata: &Metadata, topic: &str) -> anyhow::Result<i32> {
    let t = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .with_context(|| format!("topic {topic} not found"))?;
    if let Some(e) = t.error() {
        anyhow::bail!(
            "topic {topic}: {}",
            rdkafka::types::RDKafkaErrorCode::from(e)
        );
    }
    Ok(t.partitions().len() as i32)
}

/// A current-thread runtime for the rdkafka admin futures.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Parses repeated `KEY=VALUE` flags.
pub fn key_values(items: &[String], flag: &str) -> anyhow::Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .with_context(|| format!("{flag} {s:?} is not KEY=VALUE"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let t = table(
            &["TOPIC", "PARTITIONS"],
            &[
                vec!["a-long-name".into(), "3".into()],
                vec!["b".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "TOPIC        PARTITIONS\na-long-name  3\nb            12\n"
        );
    }
}
