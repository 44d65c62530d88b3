//! The `vltava` command: `vltava server` runs a broker.
//!
//! Settings come from flags, then `VLTAVA_*` environment variables, then a
//! TOML file (`--config`), then Kafka's defaults. Kafka-named settings
//! (`num.partitions`, `log.segment.bytes`, …) are given with `--override
//! key=value` or as keys of the TOML file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use vltava::config::{BrokerConfig, Durability};

#[global_allocator]
static GLOBAL: vltava::alloc::GuardedAlloc = vltava::alloc::GuardedAlloc;

#[derive(Parser)]
#[command(
    name = "vltava",
    version,
    about = "A Kafka-compatible event streaming broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    ///
    /// Examples:
    ///   vltava server
    ///   vltava server --listen 0.0.0.0:9092 --data-dir /var/lib/vltava
    ///   vltava server --override num.partitions=3 --override log.segment.bytes=104857600
    ///   vltava server --durability page-cache
    #[command(verbatim_doc_comment)]
    Server(ServerArgs),
}

#[derive(Args)]
struct ServerArgs {
    /// Address to listen on for Kafka clients [default: 127.0.0.1:9092]
    #[arg(long, env = "VLTAVA_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory holding the logs and metadata [default: ./vltava-data]
    #[arg(long, env = "VLTAVA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HOST:PORT that clients are told to connect to [default: the bound address]
    #[arg(long, env = "VLTAVA_ADVERTISED_LISTENER")]
    advertised_listener: Option<String>,
    /// This broker's node id (Kafka's node.id) [default: 1]
    #[arg(long, env = "VLTAVA_NODE_ID")]
    node_id: Option<i32>,
    /// When an acks=all produce is acknowledged: after fsync (group commit),
    /// or once in the page cache as Kafka does by default [default: fsync]
    #[arg(long, env = "VLTAVA_DURABILITY", value_enum)]
    durability: Option<Durability>,
    /// TOML file with settings: listen, data-dir, advertised-listener,
    /// durability, and any Kafka config name ("num.partitions" = 3)
    #[arg(long, env = "VLTAVA_CONFIG")]
    config: Option<PathBuf>,
    /// A Kafka-named setting, KEY=VALUE (repeatable), e.g. num.partitions=3
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Server(args) => {
            let config = broker_config(args)?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(vltava::server::run(config))
        }
    }
}

/// Merges flags/env, the TOML file and defaults into the broker config.
fn broker_config(args: ServerArgs) -> anyhow::Result<BrokerConfig> {
    let mut file: BTreeMap<String, toml::Value> = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => BTreeMap::new(),
    };
    let mut take = |key: &str| -> Option<String> {
        file.remove(key).map(|v| match v {
            toml::Value::String(s) => s,
            other => other.to_string(),
        })
    };
    let listen = match (args.listen, take("listen")) {
        (Some(l), _) => l,
        (None, Some(s)) => s.parse().with_context(|| format!("listen = {s:?}"))?,
        (None, None) => "127.0.0.1:9092".parse()?,
    };
    let data_dir = args
        .data_dir
        .or_else(|| take("data-dir").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("vltava-data"));
    let advertised = match args
        .advertised_listener
        .or_else(|| take("advertised-listener"))
    {
        Some(s) => {
            let (host, port) = s
                .rsplit_once(':')
                .with_context(|| format!("advertised listener {s:?} is not HOST:PORT"))?;
            Some((host.to_string(), port.parse().context("advertised port")?))
        }
        None => None,
    };
    let durability = match (args.durability, take("durability")) {
        (Some(d), _) => d,
        (None, Some(s)) => match s.as_str() {
            "fsync" => Durability::Fsync,
            "page-cache" => Durability::PageCache,
            _ => bail!("durability = {s:?}: expected fsync or page-cache"),
        },
        (None, None) => Durability::Fsync,
    };
    let node_id = args.node_id;
    let mut overrides: BTreeMap<String, String> = file
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o:?} is not KEY=VALUE"))?;
        overrides.insert(k.trim().to_string(), v.trim().to_string());
    }
    if let Some(id) = node_id {
        overrides.insert("node.id".into(), id.to_string());
    }
    let config = BrokerConfig {
        listen,
        advertised,
        data_dir,
        durability,
        overrides,
    };
    config.validate()?;
    Ok(config)
}
