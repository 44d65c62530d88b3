//! The node's identity files: `meta.properties` (Kafka's file: cluster id,
//! node id), and the topic registry a Vltava before the metadata log kept
//! (`vltava-topics.toml`: name, topic id, partition count, config
//! overrides), read once to import it into the metadata log and then
//! renamed to `vltava-topics.toml.imported`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One topic as persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    #[serde(default)]
    topic: Vec<TopicRecord>,
}

/// The metadata files of one data directory.
pub struct MetadataStore {
    dir: PathBuf,
}

impl MetadataStore {
    pub fn new(dir: &Path) -> MetadataStore {
        MetadataStore {
            dir: dir.to_path_buf(),
        }
    }

    fn topics_path(&self) -> PathBuf {
        self.dir.join("vltava-topics.toml")
    }

    /// The cluster id in `meta.properties`, if the file exists. A node id
    /// that differs from the configured one is refused.
    pub fn load_cluster(&self, node_id: i32) -> anyhow::Result<Option<String>> {
        let path = self.dir.join("meta.properties");
        if !path.exists() {
            return Ok(None);
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let props: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let Some(cluster_id) = props.get("cluster.id") else {
            bail!("{} has no cluster.id", path.display());
        };
        if let Some(stored) = props.get("node.id") {
            if stored.parse::<i32>().ok() != Some(node_id) {
                bail!(
                    "{} belongs to node.id={stored}, but this broker is node.id={node_id}",
                    path.display()
                );
            }
        }
        Ok(Some(cluster_id.to_string()))
    }

    /// Writes `meta.properties` (Kafka's format).
    pub fn save_cluster(&self, cluster_id: &str, node_id: i32) -> anyhow::Result<()> {
        let text = format!(
            "#\n#Written by vltava\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
        );
        write_atomic(&self.dir.join("meta.properties"), text.as_bytes())
    }

    /// All topics, as last written.
    pub fn load_topics(&self) -> anyhow::Result<Vec<TopicRecord>> {
        let path = self.topics_path();
        if !path.exists() {
            return Ok(Vec::new());
        }
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: TopicsFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(file.topic)
    }

    /// Renames an imported topic registry out of the way (kept for a
    /// downgrade by hand), once its records are committed to the metadata log.
    pub fn retire_topics_file(&self) -> anyhow::Result<()> {
        let path = self.topics_path();
        if path.exists() {
            let imported = self.dir.join("vltava-topics.toml.imported");
            fs::rename(&path, &imported).with_context(|| format!("renaming {}", path.display()))?;
            fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Replaces the topic registry on disk.
    pub fn save_topics(&self, topics: Vec<TopicRecord>) -> anyhow::Result<()> {
        let text = toml::to_string(&TopicsFile { topic: topics })?;
        write_atomic(&self.topics_path(), text.as_bytes())
    }
}

/// Kafka prints UUIDs as URL-safe base64 without padding (22 characters).
pub fn kafka_uuid_string(id: Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = id.as_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_prints_as_kafka_base64() {
        let id = Uuid::from_bytes([0xff; 16]);
        assert_eq!(kafka_uuid_string(id), "_____________________w");
        assert_eq!(kafka_uuid_string(Uuid::nil()), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn topics_and_cluster_id_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::new(dir.path());
        assert_eq!(store.load_cluster(1).unwrap(), None);
        let cluster = kafka_uuid_string(Uuid::new_v4());
        store.save_cluster(&cluster, 1).unwrap();
        let t = TopicRecord {
            name: "orders".into(),
            id: Uuid::new_v4(),
            partitions: 3,
            configs: [("segment.bytes".to_string(), "1024".to_string())].into(),
        };
        store.save_topics(vec![t.clone()]).unwrap();
        let again = MetadataStore::new(dir.path());
        assert_eq!(again.load_cluster(1).unwrap(), Some(cluster));
        assert_eq!(again.load_topics().unwrap(), vec![t]);
        assert!(again.load_cluster(2).is_err());
    }
}
