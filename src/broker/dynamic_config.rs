//! Dynamic configs: the broker's (per broker and the cluster-wide default)
//! and each group's, as set at runtime with AlterConfigs and
//! IncrementalAlterConfigs. They are `Config` records of the metadata log,
//! so they survive restarts and every node of a cluster sees the same ones;
//! this file reads them out of an image, turns a change into records, and
//! imports the `vltava-dynamic-configs.toml` of a Vltava before the metadata
//! log once.
//!
//! Validation is `config.rs`'s, applying a change to logs and groups is
//! `Broker`'s.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::config::{validate_dynamic, DynamicBrokerConfig, GROUP_CONFIGS};
use crate::metadata::records::{ConfigRecord, ConfigResource};
use crate::metadata::{MetadataImage, MetadataQuorum, MetadataRecord};

const LEGACY_FILE: &str = "vltava-dynamic-configs.toml";

/// A group's dynamic configs by Kafka name (`consumer.session.timeout.ms`).
pub type GroupConfigs = BTreeMap<String, String>;

/// The broker's dynamic layers in `image`: node `node_id`'s own, and the
/// cluster default (resource name "").
pub fn broker_layers(image: &MetadataImage, node_id: i32) -> DynamicBrokerConfig {
    let layer = |name: &str| {
        image
            .configs(ConfigResource::Broker, name)
            .cloned()
            .unwrap_or_default()
    };
    DynamicBrokerConfig {
        per_broker: layer(&node_id.to_string()),
        cluster_default: layer(""),
    }
}

/// One group's configs (empty when none is set).
pub fn group(image: &MetadataImage, group: &str) -> GroupConfigs {
    image
        .configs(ConfigResource::Group, group)
        .cloned()
        .unwrap_or_default()
}

/// Every group with a config set.
pub fn groups(image: &MetadataImage) -> BTreeMap<String, GroupConfigs> {
    image
        .configs_of(ConfigResource::Group)
        .map(|(name, configs)| (name.to_string(), configs.clone()))
        .collect()
}

/// The records that turn `old` into `new` for one resource: a deletion for
/// each key gone, a value for each key new or changed.
pub fn change_records(
    resource: ConfigResource,
    resource_name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |name: &str, value: Option<&String>| {
        MetadataRecord::Config(ConfigRecord {
            resource,
            resource_name: resource_name.to_string(),
            name: name.to_string(),
            value: value.cloned(),
        })
    };
    let mut records: Vec<MetadataRecord> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|k| record(k, None))
        .collect();
    records.extend(
        new.iter()
            .filter(|(k, v)| old.get(*k) != Some(v))
            .map(|(k, v)| record(k, Some(v))),
    );
    records
}

#[derive(Debug, Default, Deserialize)]
struct LegacyFile {
    #[serde(default)]
    broker: DynamicBrokerConfig,
    #[serde(default)]
    group: BTreeMap<String, GroupConfigs>,
}

/// Imports `vltava-dynamic-configs.toml` (a Vltava before the metadata log
/// kept the dynamic configs there): checked as a change would be, written as
/// records, then renamed `vltava-dynamic-configs.toml.imported`.
pub async fn import_legacy_file(
    data_dir: &Path,
    node_id: i32,
    metadata: &MetadataQuorum,
) -> anyhow::Result<()> {
    let path = data_dir.join(LEGACY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: LegacyFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    validate(&file).with_context(|| format!("checking {}", path.display()))?;
    let none = BTreeMap::new();
    let mut records = change_records(
        ConfigResource::Broker,
        &node_id.to_string(),
        &none,
        &file.broker.per_broker,
    );
    records.extend(change_records(
        ConfigResource::Broker,
        "",
        &none,
        &file.broker.cluster_default,
    ));
    for (group, configs) in &file.group {
        records.extend(change_records(ConfigResource::Group, group, &none, configs));
    }
    if !records.is_empty() {
        metadata
            .propose(records, super::METADATA_TIMEOUT)
            .await
            .with_context(|| format!("importing {}", path.display()))?;
    }
    let imported = data_dir.join(format!("{LEGACY_FILE}.imported"));
    fs::rename(&path, &imported).with_context(|| format!("renaming {}", path.display()))?;
    fs::File::open(data_dir)?.sync_all()?;
    Ok(())
}

/// The broker's keys known, dynamic and valid; each group's keys known,
/// numbers.
fn validate(file: &LegacyFile) -> anyhow::Result<()> {
    for layer in [&file.broker.per_broker, &file.broker.cluster_default] {
        validate_dynamic(layer.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    }
    for (group, configs) in &file.group {
        for (name, value) in configs {
            let known = GROUP_CONFIGS.iter().any(|g| g.0 == name);
            if !known || value.trim().parse::<i32>().is_err() {
                anyhow::bail!("group {group:?}: bad config {name}={value}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metadata::QuorumConfig;

    async fn quorum(dir: &Path) -> Arc<MetadataQuorum> {
        let config = QuorumConfig::new(1, [(1, "127.0.0.1:0".to_string())].into(), dir.join("m"));
        Arc::new(MetadataQuorum::start(config, None).await.unwrap())
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_change_is_the_keys_removed_and_the_values_set() {
        let old = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let new = map(&[("b", "2"), ("c", "4"), ("d", "5")]);
        let records = change_records(ConfigResource::Broker, "1", &old, &new);
        let mut image = MetadataImage::default();
        image
            .apply_batch(&change_records(
                ConfigResource::Broker,
                "1",
                &BTreeMap::new(),
                &old,
            ))
            .unwrap();
        image.apply_batch(&records).unwrap();
        assert_eq!(records.len(), 3, "{records:?}");
        assert_eq!(broker_layers(&image, 1).per_broker, new);
        assert_eq!(broker_layers(&image, 2).per_broker, BTreeMap::new());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_file_of_a_vltava_before_the_metadata_log_is_imported_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(LEGACY_FILE),
            "[broker.per_broker]\n\"log.retention.ms\" = \"1000\"\n\
             [broker.cluster_default]\n\"log.segment.bytes\" = \"4096\"\n\
             [group.\"orders \\\"app\\\"\"]\n\"consumer.session.timeout.ms\" = \"50000\"\n",
        )
        .unwrap();
        let q = quorum(dir.path()).await;
        import_legacy_file(dir.path(), 1, &q).await.unwrap();
        let image = q.image();
        assert_eq!(
            broker_layers(&image, 1),
            DynamicBrokerConfig {
                per_broker: map(&[("log.retention.ms", "1000")]),
                cluster_default: map(&[("log.segment.bytes", "4096")]),
            }
        );
        assert_eq!(
            groups(&image),
            BTreeMap::from([(
                "orders \"app\"".to_string(),
                map(&[("consumer.session.timeout.ms", "50000")])
            )])
        );
        assert!(!dir.path().join(LEGACY_FILE).exists());
        assert!(dir
            .path()
            .join("vltava-dynamic-configs.toml.imported")
            .exists());
        q.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hand_edited_file_with_a_read_only_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(LEGACY_FILE),
            "[broker.per_broker]\n\"node.id\" = \"2\"\n",
        )
        .unwrap();
        let q = quorum(dir.path()).await;
        let e = import_legacy_file(dir.path(), 1, &q).await.unwrap_err();
        assert_eq!(
            format!("{:#}", e.root_cause()),
            "Cannot update these configs dynamically: [node.id]"
        );
        assert!(dir.path().join(LEGACY_FILE).exists());
        q.shutdown().await;
    }
}
