//! The `vltava server --config FILE` file: Vltava's TOML, or Apache Kafka's
//! `server.properties`.
//!
//! Both are read into one [`ConfigFile`]: Vltava's own settings (listen,
//! data-dir, advertised-listener, durability) and Kafka-named keys. A
//! `server.properties` key Vltava does not know is listed in `ignored`, to be
//! warned about once; this module never logs and never starts anything.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};

use crate::config::broker_def;

/// What a config file sets. `origin` of each value is the file key it came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub listen: Option<Sourced>,
    pub data_dir: Option<Sourced>,
    pub advertised_listener: Option<Sourced>,
    pub durability: Option<Sourced>,
    /// Kafka-named broker settings (`num.partitions`, `log.retention.ms`, …).
    pub kafka: BTreeMap<String, Sourced>,
    /// `server.properties` keys Vltava does not act on.
    pub ignored: Vec<String>,
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
    let mut file = ConfigFile::default();
    // Kafka's precedence: log.retention.ms > .minutes > .hours.
    let mut retention: [Option<Sourced>; 3] = [None, None, None];
    for (key, value) in parse_properties(text) {
        match key.as_str() {
            "listeners" => {
                file.listen = Some(sourced(listener_address(&value, &key)?, &key));
            }
            "advertised.listeners" => {
                file.advertised_listener = Some(sourced(listener_address(&value, &key)?, &key));
            }
            "log.dirs" | "log.dir" => {
                // Several directories are not supported; the first is used.
                let first = value.split(',').next().unwrap_or_default().trim();
                if file.data_dir.is_none() || key == "log.dirs" {
                    file.data_dir = Some(sourced(first, &key));
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
            "log.roll.hours" => {
                let v = sourced(scale(&value, 3_600_000, &key)?, &key);
                file.kafka.entry("log.roll.ms".into()).or_insert(v);
            }
            "log.roll.ms" => {
                file.kafka.insert(key.clone(), sourced(value, &key));
            }
            _ if broker_def(&key).is_some() => {
                file.kafka.insert(key.clone(), sourced(value, &key));
            }
            _ => file.ignored.push(key),
        }
    }
    if let Some(r) = retention.into_iter().flatten().next() {
        if broker_def("log.retention.ms").is_some() {
            file.kafka.insert("log.retention.ms".into(), r);
        } else {
            file.ignored.push(r.key);
        }
    }
    Ok(file)
}

fn scale(value: &str, factor: i64, key: &str) -> anyhow::Result<String> {
    let n: i64 = value
        .trim()
        .parse()
        .with_context(|| format!("{key}={value}: expected an integer"))?;
    Ok(n.saturating_mul(factor).to_string())
}

/// `PLAINTEXT://host:port[,NAME://host:port…]` → `host:port` of the
/// PLAINTEXT listener (else the first); an empty host means every interface.
fn listener_address(value: &str, key: &str) -> anyhow::Result<String> {
    let listeners: Vec<(&str, &str)> = value
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.split_once("://").unwrap_or(("PLAINTEXT", l)))
        .collect();
    let Some((_, addr)) = listeners
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("PLAINTEXT"))
        .or_else(|| listeners.first())
    else {
        bail!("{key}={value}: no listener");
    };
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
advertised.listeners=PLAINTEXT://kafka.example.com:19092
log.dirs=/var/lib/kafka/data,/mnt/other
num.partitions = 4
log.retention.hours=48
log.segment.bytes: 1048576
controller.quorum.voters=1@localhost:9093
";

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
        assert_eq!(f.ignored, vec!["process.roles", "controller.quorum.voters"]);
    }

    #[test]
    fn retention_ms_wins_over_hours_as_in_kafka() {
        let f = from_properties("log.retention.hours=1\nlog.retention.ms=5\n").unwrap();
        assert_eq!(f.kafka["log.retention.ms"].value, "5");
    }

    #[test]
    fn empty_listener_host_means_every_interface() {
        assert_eq!(
            listener_address("PLAINTEXT://:9092", "listeners").unwrap(),
            "0.0.0.0:9092"
        );
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
