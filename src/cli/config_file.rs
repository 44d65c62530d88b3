//! The `vltava server --config FILE` file: Vltava's TOML, or Apache Kafka's
//! `server.properties`.
//!
//! Both are read into one [`ConfigFile`]: Vltava's own settings (listen,
//! data-dir, advertised-listener, durability), further listeners, and
//! Kafka-named keys. A `server.properties` key is acted on, or refused with an
//! error naming it when it asks for what Vltava does not do (TLS, SASL, an
//! authorizer, replication, timed flushes), or — only when it changes neither
//! security nor durability — listed in `ignored` with the reason, to be warned
//! about once. This module never logs and never starts anything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

use crate::config::broker_def;

/// What a config file sets. `origin` of each value is the file key it came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub listen: Option<Sourced>,
    /// The listener name of `listen` (`PLAINTEXT`, `INTERNAL`, …).
    pub listen_name: Option<String>,
    pub data_dir: Option<Sourced>,
    pub advertised_listener: Option<Sourced>,
    pub durability: Option<Sourced>,
    /// Kafka-named broker settings (`num.partitions`, `log.retention.ms`, …).
    pub kafka: BTreeMap<String, Sourced>,
    /// The listeners of `listeners` besides the one in `listen`; each serves
    /// Kafka on its own port.
    pub more_listeners: Vec<FileListener>,
    /// `server.properties` keys Vltava does not act on, with the reason;
    /// none of them changes security or durability.
    pub ignored: Vec<(String, &'static str)>,
}

/// One listener of `listeners` (besides the first), as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileListener {
    /// Its listener name (`CONTROLLER`, `INTERNAL`, …).
    pub name: String,
    /// `host:port` to bind.
    pub address: String,
    /// `host:port` from `advertised.listeners` under the same name, if any.
    pub advertised: Option<String>,
    /// Named in `controller.listener.names`.
    pub controller: bool,
}

/// A value and the file key it came from (`log.dirs` for the data dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    pub value: String,
    pub key: String,
}

fn sourced(value: impl Into<String>, key: &str) -> Sourced {
    Sourced {
        value: value.into(),
        key: key.to_string(),
    }
}

/// The two formats `--config` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Properties,
}

/// `.properties` and `.toml` by extension; otherwise a file that parses as
/// TOML without tables is TOML (Kafka's dotted keys make TOML tables).
pub fn detect(path: &Path, text: &str) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("properties") => Format::Properties,
        Some("toml") => Format::Toml,
        _ => match toml::from_str::<BTreeMap<String, toml::Value>>(text) {
            Ok(map) if !map.values().any(|v| v.is_table()) => Format::Toml,
            _ => Format::Properties,
        },
    }
}

/// Reads and parses `path` in its detected format.
pub fn load(path: &Path) -> anyhow::Result<(ConfigFile, Format)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let format = detect(path, &text);
    let file = match format {
        Format::Toml => from_toml(&text),
        Format::Properties => from_properties(&text),
    }
    .with_context(|| format!("parsing {}", path.display()))?;
    Ok((file, format))
}

/// Vltava's TOML: `listen`, `data-dir`, `advertised-listener`, `durability`
/// and Kafka names as keys (`"num.partitions" = 3`).
pub fn from_toml(text: &str) -> anyhow::Result<ConfigFile> {
    let map: BTreeMap<String, toml::Value> = toml::from_str(text)?;
    let mut file = ConfigFile::default();
    for (key, value) in map {
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Table(_) => bail!(
                "{key}: expected a value, not a table (quote dotted Kafka names: \"{key}.…\" = …)"
            ),
            other => other.to_string(),
        };
        let v = sourced(value, &key);
        match key.as_str() {
            "listen" => file.listen = Some(v),
            "data-dir" => file.data_dir = Some(v),
            "advertised-listener" => file.advertised_listener = Some(v),
            "durability" => file.durability = Some(v),
            _ => {
                file.kafka.insert(key, v);
            }
        }
    }
    Ok(file)
}

/// Java properties lines: `key=value`, `key: value` or `key value`; `#` and
/// `!` comments; a trailing backslash continues the line.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry
            .find(['=', ':'])
            .or_else(|| entry.find(char::is_whitespace));
        let (k, v) = match split {
            Some(i) => (&entry[..i], &entry[i + 1..]),
            None => (entry.as_str(), ""),
        };
        out.push((k.trim().to_string(), v.trim().to_string()));
    }
    out
}

/// Kafka's `server.properties`, mapped onto what Vltava knows.
pub fn from_properties(text: &str) -> anyhow::Result<ConfigFile> {
    let pairs = parse_properties(text);
    // Nothing is applied before every key is known to be safe to run with.
    for (key, value) in &pairs {
        if let Some(reason) = refused(key, value) {
            bail!("{key}={value}: {reason}");
        }
    }
    let props: BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let bootstrap = "controller.quorum.bootstrap.servers";
    if let Some(servers) = props.get(bootstrap) {
        let several = servers.split(',').filter(|s| !s.trim().is_empty()).count() > 1;
        if several && !props.contains_key("controller.quorum.voters") {
            bail!(
                "{bootstrap}={servers}: Vltava forms its quorum from a fixed set of voters; \
                 name them in controller.quorum.voters (ID@HOST:PORT for each)"
            );
        }
    }
    let mut file = ConfigFile::default();
    listeners(&props, &mut file)?;
    // Kafka's precedence: log.retention.ms > .minutes > .hours.
    let mut retention: [Option<Sourced>; 3] = [None, None, None];
    for (key, value) in pairs {
        match key.as_str() {
            "listeners"
            | "advertised.listeners"
            | "listener.security.protocol.map"
            | "controller.listener.names"
            | "inter.broker.listener.name"
            | "security.inter.broker.protocol" => {}
            "log.dirs" | "log.dir" => {
                let dirs: Vec<&str> = value.split(',').map(str::trim).collect();
                if dirs.len() > 1 {
                    bail!(
                        "{key}={value}: Vltava keeps its data in one directory; \
                         give one (several log directories are not supported)"
                    );
                }
                if file.data_dir.is_none() || key == "log.dirs" {
                    file.data_dir = Some(sourced(dirs[0], &key));
                }
            }
            "node.id" | "broker.id" => {
                file.kafka.insert("node.id".into(), sourced(value, &key));
            }
            "log.retention.ms" => retention[0] = Some(sourced(value, &key)),
            "log.retention.minutes" => {
                retention[1] = Some(sourced(scale(&value, 60_000, &key)?, &key))
            }
            "log.retention.hours" => {
                retention[2] = Some(sourced(scale(&value, 3_600_000, &key)?, &key))
            }
            "log.roll.hours" | "log.roll.jitter.hours" => {
                let ms = key.replace(".hours", ".ms");
                let v = sourced(scale(&value, 3_600_000, &key)?, &key);
                file.kafka.entry(ms).or_insert(v);
            }
            "log.roll.ms" | "log.roll.jitter.ms" => {
                file.kafka.insert(key.clone(), sourced(value, &key));
            }
            _ if broker_def(&key).is_some() => {
                file.kafka.insert(key.clone(), sourced(value, &key));
            }
            _ => {
                let reason = ignored_reason(&key);
                file.ignored.push((key, reason));
            }
        }
    }
    if let Some(r) = retention.into_iter().flatten().next() {
        file.kafka.insert("log.retention.ms".into(), r);
    }
    Ok(file)
}

/// Why `key=value` must stop the start, if it must: security Vltava does not
/// have yet (TLS, SASL, authorization), and durability it cannot give. Broker settings Vltava knows are checked the same
/// way by `config::not_honoured`, so `--override` is refused alike.
fn refused(key: &str, value: &str) -> Option<&'static str> {
    const NO_SECURITY: &str = "Vltava has no TLS, SASL or authorization yet, and will not \
         serve plaintext where security is configured; remove the key to run without it";
    let v = value.trim();
    let security = key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.ends_with("sasl.jaas.config")
        || (key.starts_with("listener.name.") && (key.contains(".ssl.") || key.contains(".sasl.")));
    if security || (key == "authorizer.class.name" && !v.is_empty()) {
        return Some(NO_SECURITY);
    }
    match key {
        "security.inter.broker.protocol" if !v.eq_ignore_ascii_case("PLAINTEXT") => {
            Some(NO_SECURITY)
        }
        "log.flush.scheduler.interval.ms" if v != i64::MAX.to_string() => Some(
            "Vltava does not fsync on a timer; under --durability fsync (the default) \
             every acks=all write is fsynced before it is acknowledged",
        ),
        "delete.topic.enable" if v.eq_ignore_ascii_case("false") => {
            Some("Vltava always allows deleting topics; remove the key to accept that")
        }
        _ => None,
    }
}

/// Why an unknown key can be ignored (it is not `refused`).
fn ignored_reason(key: &str) -> &'static str {
    match key {
        "controller.quorum.bootstrap.servers" => {
            "the quorum is formed from controller.quorum.voters (or this node alone)"
        }
        _ => "not known to vltava",
    }
}

/// The security protocols Kafka knows, each also a default listener name.
const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// `listeners` and `advertised.listeners`: every listener must be PLAINTEXT
/// (its name, or its entry in `listener.security.protocol.map`); the first
/// PLAINTEXT-named (else first non-controller) one is `listen`, the others
/// are `more_listeners`.
fn listeners(props: &BTreeMap<&str, &str>, file: &mut ConfigFile) -> anyhow::Result<()> {
    let map_key = "listener.security.protocol.map";
    let map: BTreeMap<String, String> = match props.get(map_key) {
        Some(m) => split_list(m)
            .map(|e| {
                let (name, protocol) = e
                    .split_once(':')
                    .with_context(|| format!("{map_key}={m}: expected NAME:PROTOCOL"))?;
                Ok((name.trim().to_uppercase(), protocol.trim().to_uppercase()))
            })
            .collect::<anyhow::Result<_>>()?,
        None => BTreeMap::new(),
    };
    let controllers: Vec<String> = props
        .get("controller.listener.names")
        .map(|v| split_list(v).map(str::to_uppercase).collect())
        .unwrap_or_default();
    let protocol = |key: &str, name: &str| -> anyhow::Result<()> {
        let (protocol, source) = match map.get(name) {
            Some(p) => (p.as_str(), map_key),
            // Without the map Kafka takes a protocol's name as the listener's,
            // and a controller listener as PLAINTEXT.
            None if PROTOCOLS.contains(&name) => (name, key),
            None if props.get(map_key).is_none() && controllers.iter().any(|c| c == name) => {
                ("PLAINTEXT", key)
            }
            None => bail!(
                "{key}: listener {name} has no security protocol; \
                 map it in {map_key} (NAME:PLAINTEXT)"
            ),
        };
        if protocol != "PLAINTEXT" {
            bail!(
                "{source}: listener {name} uses security protocol {protocol}; Vltava serves only \
                 PLAINTEXT (no TLS or SASL yet) and will not serve plaintext where security is \
                 configured"
            );
        }
        Ok(())
    };
    let parse = |key: &str| -> anyhow::Result<Vec<(String, String)>> {
        let Some(value) = props.get(key) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, String)> = Vec::new();
        for l in split_list(value) {
            let (name, addr) = l.split_once("://").unwrap_or(("PLAINTEXT", l));
            let name = name.trim().to_uppercase();
            if out.iter().any(|(n, _)| *n == name) {
                bail!("{key}={value}: listener {name} appears twice");
            }
            protocol(key, &name)?;
            out.push((name, host_port(addr, key, value)?));
        }
        Ok(out)
    };
    let bound = parse("listeners")?;
    let advertised = parse("advertised.listeners")?;
    if let Some((name, _)) = advertised
        .iter()
        .find(|(n, _)| !bound.is_empty() && !bound.iter().any(|(b, _)| b == n))
    {
        bail!("advertised.listeners: listener {name} is not in listeners");
    }
    if props.contains_key("listeners") && bound.is_empty() {
        bail!("listeners: no listener");
    }
    let is_controller = |name: &str| controllers.iter().any(|c| c == name);
    let primary = |list: &[(String, String)]| {
        list.iter()
            .position(|(n, _)| n == "PLAINTEXT")
            .or_else(|| list.iter().position(|(n, _)| !is_controller(n)))
            .unwrap_or(0)
    };
    let advertised_for = |name: &str| {
        advertised
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
    };
    if bound.is_empty() {
        // Only advertised.listeners: it advertises the default listener.
        if !advertised.is_empty() {
            let (name, a) = &advertised[primary(&advertised)];
            file.advertised_listener = Some(sourced(a.clone(), "advertised.listeners"));
            file.listen_name = Some(name.clone());
        }
        return Ok(());
    }
    let first = primary(&bound);
    for (i, (name, address)) in bound.iter().enumerate() {
        if i == first {
            file.listen = Some(sourced(address.clone(), "listeners"));
            file.listen_name = Some(name.clone());
            file.advertised_listener =
                advertised_for(name).map(|a| sourced(a, "advertised.listeners"));
        } else {
            file.more_listeners.push(FileListener {
                name: name.clone(),
                address: address.clone(),
                advertised: advertised_for(name),
                controller: is_controller(name),
            });
        }
    }
    Ok(())
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|l| !l.is_empty())
}

fn scale(value: &str, factor: i64, key: &str) -> anyhow::Result<String> {
    let n: i64 = value
        .trim()
        .parse()
        .with_context(|| format!("{key}={value}: expected an integer"))?;
    Ok(n.saturating_mul(factor).to_string())
}

/// A listener's `host:port` → a bindable `host:port`; an empty host means
/// every interface.
fn host_port(addr: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("{key}={value}: expected NAME://HOST:PORT"))?;
    let host = match host {
        "" | "0.0.0.0" => "0.0.0.0",
        h => h.trim_start_matches('[').trim_end_matches(']'),
    };
    Ok(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAFKA: &str = "\
# A KRaft broker's server.properties
process.roles=broker,controller
node.id=3
listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://:9093
controller.listener.names=CONTROLLER
advertised.listeners=PLAINTEXT://kafka.example.com:19092
log.dirs=/var/lib/kafka/data
num.partitions = 4
log.retention.hours=48
log.segment.bytes: 1048576
controller.quorum.voters=1@localhost:9093
";

    /// Apache Kafka 4.x's `config/server.properties` (KRaft quickstart).
    const QUICKSTART: &str = "\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
inter.broker.listener.name=PLAINTEXT
advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
log.dirs=/tmp/kraft-combined-logs
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
";

    fn error(text: &str) -> String {
        format!("{:#}", from_properties(text).unwrap_err())
    }

    #[test]
    fn server_properties_map_onto_vltava_settings() {
        let f = from_properties(KAFKA).unwrap();
        assert_eq!(f.listen.unwrap().value, "127.0.0.1:19092");
        assert_eq!(
            f.advertised_listener.unwrap().value,
            "kafka.example.com:19092"
        );
        let dir = f.data_dir.unwrap();
        assert_eq!(
            (dir.value.as_str(), dir.key.as_str()),
            ("/var/lib/kafka/data", "log.dirs")
        );
        assert_eq!(f.kafka["node.id"].value, "3");
        assert_eq!(f.kafka["num.partitions"].value, "4");
        assert_eq!(f.kafka["log.segment.bytes"].value, "1048576");
        assert_eq!(f.kafka["log.retention.ms"].value, "172800000");
        assert_eq!(f.kafka["log.retention.ms"].key, "log.retention.hours");
        assert_eq!(
            f.more_listeners,
            vec![FileListener {
                name: "CONTROLLER".into(),
                address: "0.0.0.0:9093".into(),
                advertised: None,
                controller: true,
            }]
        );
        assert_eq!(f.ignored, vec![]);
        assert_eq!(f.kafka["process.roles"].value, "broker,controller");
        assert_eq!(
            f.kafka["controller.quorum.voters"].value,
            "1@localhost:9093"
        );
        assert_eq!(f.listen_name.as_deref(), Some("PLAINTEXT"));
    }

    #[test]
    fn kafkas_kraft_quickstart_runs_unchanged() {
        let f = from_properties(QUICKSTART).unwrap();
        assert_eq!(f.listen.unwrap().value, "0.0.0.0:9092");
        assert_eq!(f.advertised_listener.unwrap().value, "localhost:9092");
        assert_eq!(
            f.more_listeners,
            vec![FileListener {
                name: "CONTROLLER".into(),
                address: "0.0.0.0:9093".into(),
                advertised: Some("localhost:9093".into()),
                controller: true,
            }]
        );
        let ignored: Vec<&str> = f.ignored.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            ignored,
            vec![
                "controller.quorum.bootstrap.servers",
                "num.network.threads",
                "num.io.threads",
                "socket.receive.buffer.bytes",
                "num.recovery.threads.per.data.dir",
                "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr",
            ]
        );
    }

    #[test]
    fn a_listener_with_a_security_protocol_stops_the_start() {
        for (listeners, named) in [
            (
                "SASL_SSL://:9094",
                "listener SASL_SSL uses security protocol SASL_SSL",
            ),
            (
                "PLAINTEXT://:9092,SSL://:9093",
                "listener SSL uses security protocol SSL",
            ),
            (
                "SASL_PLAINTEXT://:9095",
                "listener SASL_PLAINTEXT uses security protocol SASL_PLAINTEXT",
            ),
        ] {
            let e = error(&format!("listeners={listeners}\n"));
            assert!(e.starts_with("listeners: "), "{e}");
            assert!(e.contains(named), "{e}");
        }
        // Through the map: the listener's name says nothing.
        let e = error(
            "listeners=INTERNAL://:9092,EXTERNAL://:9093\n\
             listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL\n",
        );
        assert!(
            e.starts_with(
                "listener.security.protocol.map: listener EXTERNAL uses security protocol SASL_SSL"
            ),
            "{e}"
        );
        // A listener whose protocol is unknown is not guessed.
        let e = error("listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n");
        assert!(
            e.starts_with("listeners: listener CONTROLLER has no security protocol"),
            "{e}"
        );
        let e = error("advertised.listeners=SSL://h:9093\n");
        assert!(e.contains("listener SSL uses security protocol SSL"), "{e}");
    }

    #[test]
    fn security_keys_stop_the_start_naming_the_key() {
        for key in [
            "ssl.keystore.location=/etc/kafka/ks.jks",
            "sasl.enabled.mechanisms=PLAIN",
            "listener.name.sasl_ssl.ssl.keystore.password=secret",
            "listener.name.sasl_ssl.plain.sasl.jaas.config=x required;",
            "listener.name.internal.scram-sha-256.sasl.jaas.config=x required;",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "security.inter.broker.protocol=SSL",
        ] {
            let e = error(&format!("listeners=PLAINTEXT://:9092\n{key}\n"));
            assert!(e.starts_with(&format!("{key}: ")), "{key}: {e}");
            assert!(e.contains("no TLS, SASL or authorization"), "{e}");
        }
        // Empty is Kafka's default: no authorizer.
        assert!(from_properties("authorizer.class.name=\n").is_ok());
    }

    #[test]
    fn the_quorum_is_read_from_the_voters() {
        let f = from_properties(
            "process.roles=broker,controller\nnode.id=2\n\
             controller.quorum.voters=1@localhost:9093,2@localhost:9094,3@localhost:9095\n",
        )
        .unwrap();
        assert_eq!(
            f.kafka["controller.quorum.voters"].value,
            "1@localhost:9093,2@localhost:9094,3@localhost:9095"
        );
        assert_eq!(f.kafka["process.roles"].value, "broker,controller");
        assert!(f.ignored.is_empty(), "{:?}", f.ignored);
        // KIP-853's dynamic quorum names no node ids: Vltava cannot form it.
        let key = "controller.quorum.bootstrap.servers=localhost:9093,localhost:9094";
        let e = error(&format!("{key}\n"));
        assert!(
            e.starts_with(&format!(
                "{key}: Vltava forms its quorum from a fixed set of voters"
            )),
            "{e}"
        );
        // Beside the voters it is only what a client of the quorum would use.
        let f = from_properties(&format!(
            "{key}\ncontroller.quorum.voters=1@localhost:9093\n"
        ))
        .unwrap();
        assert_eq!(f.ignored.len(), 1);
    }

    #[test]
    fn durability_keys_are_refused_when_vltava_cannot_honour_them() {
        for key in [
            "log.flush.scheduler.interval.ms=1000",
            "delete.topic.enable=false",
            "log.dirs=/a,/b",
        ] {
            let e = error(&format!("{key}\n"));
            assert!(e.starts_with(&format!("{key}: ")), "{key}: {e}");
        }
        // The values that mean what Vltava does are accepted.
        let f = from_properties(
            "offsets.topic.replication.factor=1\ndelete.topic.enable=true\n\
             log.flush.scheduler.interval.ms=9223372036854775807\n\
             unclean.leader.election.enable=true\nlog.preallocate=true\n",
        )
        .unwrap();
        assert_eq!(f.kafka["unclean.leader.election.enable"].value, "true");
        assert_eq!(f.kafka["log.preallocate"].value, "true");
    }

    #[test]
    fn retention_ms_wins_over_hours_as_in_kafka() {
        let f = from_properties("log.retention.hours=1\nlog.retention.ms=5\n").unwrap();
        assert_eq!(f.kafka["log.retention.ms"].value, "5");
    }

    #[test]
    fn empty_listener_host_means_every_interface() {
        let f = from_properties("listeners=PLAINTEXT://:9092\n").unwrap();
        assert_eq!(f.listen.unwrap().value, "0.0.0.0:9092");
    }

    #[test]
    fn format_is_detected_by_extension_then_content() {
        let p = Path::new("x.conf");
        assert_eq!(detect(p, "num.partitions=3\n"), Format::Properties);
        assert_eq!(
            detect(p, "listen = \"127.0.0.1:1\"\n\"num.partitions\" = 3\n"),
            Format::Toml
        );
        assert_eq!(
            detect(Path::new("server.properties"), "a = 1"),
            Format::Properties
        );
    }

    #[test]
    fn properties_lines_continue_and_comment() {
        let kv = parse_properties("! c\na.b = x\\\n  y\nc: d\n");
        assert_eq!(
            kv,
            vec![("a.b".into(), "xy".into()), ("c".into(), "d".into())]
        );
    }
}
