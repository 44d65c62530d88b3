//! `vltava server`: merges flags > `VLTAVA_*` environment > config file
//! (TOML or Kafka's `server.properties`) > defaults into a [`BrokerConfig`],
//! remembering where each value came from for `--print-config`.
//!
//! It only builds configuration; running the broker is `server.rs`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use super::config_file::{self, ConfigFile, Format};
use crate::config::{BrokerConfig, Durability, CONFIG_DEFS};
use crate::server::{AdminListen, ExtraListener};

/// The admin listener's default address (Redpanda's admin port).
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9644";

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to listen on for Kafka clients [default: 127.0.0.1:9092]
    #[arg(long, env = "VLTAVA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory holding the logs and metadata [default: ./vltava-data]
    #[arg(long, env = "VLTAVA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HOST:PORT that clients are told to connect to [default: the bound address]
    #[arg(long, env = "VLTAVA_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// This broker's node id (Kafka's node.id) [default: 1]
    #[arg(long, env = "VLTAVA_NODE_ID")]
    pub node_id: Option<i32>,
    /// When an acks=all produce is acknowledged: after fsync (group commit),
    /// or once in the page cache as Kafka does by default [default: fsync]
    #[arg(long, env = "VLTAVA_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    /// Settings file: Vltava's TOML (listen, data-dir, advertised-listener,
    /// durability, "num.partitions" = 3, …) or a Kafka server.properties
    /// (detected by the .properties extension or by its content)
    #[arg(long, env = "VLTAVA_CONFIG")]
    pub config: Option<PathBuf>,
    /// A Kafka-named setting, KEY=VALUE (repeatable), e.g. num.partitions=3
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// HTTP address for /metrics (Prometheus) and /health; port 0 picks one,
    /// "off" disables it [default: 127.0.0.1:9644]
    #[arg(long, env = "VLTAVA_ADMIN_LISTEN", value_name = "HOST:PORT")]
    pub admin_listen: Option<String>,
    /// Print the effective configuration with the source of each value, and exit
    #[arg(long)]
    pub print_config: bool,
}

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File(String),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env => f.write_str("env"),
            Source::File(key) => write!(f, "file ({key})"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The merged settings of `vltava server`.
pub struct ServerSettings {
    pub config: BrokerConfig,
    pub admin: Option<AdminListen>,
    /// Every setting as (name, value, source), for `--print-config`.
    pub sources: Vec<(String, String, Source)>,
    /// The listener name of `config.listen` (`PLAINTEXT` unless the file names it).
    pub listen_name: String,
    /// Listeners besides `config.listen` (from `listeners` in server.properties).
    pub more_listeners: Vec<ExtraListener>,
    /// `server.properties` keys that are not applied, with the reason (warn once each).
    pub ignored: Vec<(String, &'static str)>,
}

/// Merges flags/env (told apart by `matches`), the file and the defaults.
pub fn settings(args: ServerArgs, matches: &ArgMatches) -> anyhow::Result<ServerSettings> {
    let flag_source = |id: &str| match matches.value_source(id) {
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Flag,
    };
    let (file, format) = match &args.config {
        Some(path) => {
            let (f, format) = config_file::load(path)?;
            (f, Some(format))
        }
        None => (ConfigFile::default(), None),
    };
    let from_file = |k: &str| match format {
        Some(Format::Properties) => Source::File(format!("server.properties {k}")),
        _ => Source::File(k.to_string()),
    };
    let mut sources = Vec::new();

    let (listen, src) = match (args.listen, &file.listen) {
        (Some(l), _) => (l, flag_source("listen")),
        (None, Some(s)) => (
            socket_addr(&s.value).with_context(|| format!("{} = {:?}", s.key, s.value))?,
            from_file(&s.key),
        ),
        (None, None) => ("127.0.0.1:9092".parse()?, Source::Default),
    };
    sources.push(("listen".into(), listen.to_string(), src));

    let (data_dir, src) = match (args.data_dir, &file.data_dir) {
        (Some(d), _) => (d, flag_source("data_dir")),
        (None, Some(s)) => (PathBuf::from(&s.value), from_file(&s.key)),
        (None, None) => (PathBuf::from("vltava-data"), Source::Default),
    };
    sources.push(("data-dir".into(), data_dir.display().to_string(), src));

    let (advertised, src) = match (args.advertised_listener, &file.advertised_listener) {
        (Some(a), _) => (Some(a), flag_source("advertised_listener")),
        (None, Some(s)) => (Some(s.value.clone()), from_file(&s.key)),
        (None, None) => (None, Source::Default),
    };
    sources.push((
        "advertised-listener".into(),
        advertised
            .clone()
            .unwrap_or_else(|| "(the bound address)".into()),
        src,
    ));
    let advertised = advertised.as_deref().map(host_and_port).transpose()?;

    let listen_name = match (&args.listen, &file.listen_name) {
        (None, Some(name)) => name.clone(),
        _ => "PLAINTEXT".to_string(),
    };
    // A --listen flag replaces the file's listeners with that one.
    let more_listeners = match args.listen {
        Some(_) => Vec::new(),
        None => file
            .more_listeners
            .iter()
            .map(|l| {
                let addr = socket_addr(&l.address)
                    .with_context(|| format!("listeners = {}://{}", l.name, l.address))?;
                let advertised = l.advertised.as_deref().map(host_and_port).transpose()?;
                let shown = advertised
                    .as_ref()
                    .map_or(String::new(), |(h, p)| format!(" (advertised {h}:{p})"));
                sources.push((
                    format!("listener {}", l.name),
                    format!("{addr}{shown}"),
                    from_file("listeners"),
                ));
                Ok(ExtraListener {
                    name: l.name.clone(),
                    addr,
                    advertised,
                    controller: l.controller,
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };

    let (durability, src) = match (args.durability, &file.durability) {
        (Some(d), _) => (d, flag_source("durability")),
        (None, Some(s)) => match s.value.as_str() {
            "fsync" => (Durability::Fsync, from_file(&s.key)),
            "page-cache" => (Durability::PageCache, from_file(&s.key)),
            v => bail!("durability = {v:?}: expected fsync or page-cache"),
        },
        (None, None) => (Durability::Fsync, Source::Default),
    };
    let name = match durability {
        Durability::Fsync => "fsync",
        Durability::PageCache => "page-cache",
    };
    sources.push(("durability".into(), name.into(), src));

    let (admin, src) = match args.admin_listen.as_deref() {
        Some("off") => (None, flag_source("admin_listen")),
        Some(a) => (
            Some(AdminListen {
                addr: a
                    .parse()
                    .with_context(|| format!("--admin-listen {a:?} is not HOST:PORT"))?,
                explicit: true,
            }),
            flag_source("admin_listen"),
        ),
        None => (
            Some(AdminListen {
                addr: DEFAULT_ADMIN_LISTEN.parse()?,
                explicit: false,
            }),
            Source::Default,
        ),
    };
    sources.push((
        "admin-listen".into(),
        admin.map_or("off".into(), |a| a.addr.to_string()),
        src,
    ));

    let mut overrides: BTreeMap<String, (String, Source)> = file
        .kafka
        .iter()
        .map(|(k, s)| (k.clone(), (s.value.clone(), from_file(&s.key))))
        .collect();
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o:?} is not KEY=VALUE"))?;
        overrides.insert(k.trim().to_string(), (v.trim().to_string(), Source::Flag));
    }
    if let Some(id) = args.node_id {
        overrides.insert("node.id".into(), (id.to_string(), flag_source("node_id")));
    }
    for def in CONFIG_DEFS.iter().filter(|d| d.broker_level) {
        let (value, src) = overrides
            .get(def.name)
            .cloned()
            .unwrap_or_else(|| (def.default.to_string(), Source::Default));
        sources.push((def.name.to_string(), value, src));
    }
    let config = BrokerConfig {
        listen,
        advertised,
        data_dir,
        durability,
        overrides: overrides.into_iter().map(|(k, (v, _))| (k, v)).collect(),
        dynamic: Default::default(),
    };
    config.validate()?;
    Ok(ServerSettings {
        config,
        admin,
        sources,
        listen_name,
        more_listeners,
        ignored: file.ignored,
    })
}

/// `host:port` (a name is resolved; the first address is used).
fn socket_addr(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .with_context(|| format!("resolving {s:?}"))?
        .next()
        .with_context(|| format!("{s:?} resolves to no address"))
}

/// An advertised `HOST:PORT`.
fn host_and_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("advertised listener {s:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("advertised listener {s:?}: bad port"))?;
    Ok((host.to_string(), port))
}

/// `--print-config`: one line per setting, `NAME = VALUE  # SOURCE`.
pub fn print_config(sources: &[(String, String, Source)]) -> String {
    let width = sources
        .iter()
        .map(|(k, v, _)| k.len() + v.len())
        .max()
        .unwrap_or(0)
        + 3;
    let mut out = String::new();
    for (k, v, s) in sources {
        let pad = width - k.len() - v.len();
        out.push_str(&format!("{k} = {v}{:pad$}# {s}\n", ""));
    }
    out
}
