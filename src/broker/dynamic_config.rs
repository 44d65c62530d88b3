//! Dynamic configs: the broker's (this node's and the cluster-wide default)
//! and each group's, as set at runtime with AlterConfigs and
//! IncrementalAlterConfigs, kept in `vltava-dynamic-configs.toml` (rewritten
//! atomically on every change) so they survive a restart.
//!
//! This file only stores and hands out copies; validation is `config.rs`'s,
//! applying a change to logs and groups is `Broker`'s.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::metadata::write_atomic;
use crate::config::{validate_dynamic, DynamicBrokerConfig, GROUP_CONFIGS};

const FILE: &str = "vltava-dynamic-configs.toml";

/// A group's dynamic configs by Kafka name (`consumer.session.timeout.ms`).
pub type GroupConfigs = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct DynamicConfigsFile {
    #[serde(default)]
    broker: DynamicBrokerConfig,
    #[serde(default)]
    group: BTreeMap<String, GroupConfigs>,
}

/// The dynamic configs of one data directory.
pub struct DynamicConfigs {
    path: PathBuf,
    /// The values as last written; the lock also serializes the writes.
    current: Mutex<DynamicConfigsFile>,
}

impl DynamicConfigs {
    /// Reads the file, or starts empty when there is none.
    pub fn open(dir: &Path) -> anyhow::Result<DynamicConfigs> {
        let path = dir.join(FILE);
        let current = if path.exists() {
            let text =
                fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        } else {
            DynamicConfigsFile::default()
        };
        Ok(DynamicConfigs {
            path,
            current: Mutex::new(current),
        })
    }

    /// Checks what was read as a change would be checked: the broker's keys
    /// known, dynamic and valid; each group's keys known, numbers.
    pub fn validate(&self) -> anyhow::Result<()> {
        let current = self.current.lock();
        let broker = &current.broker;
        for layer in [&broker.per_broker, &broker.cluster_default] {
            validate_dynamic(layer.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        }
        for (group, configs) in &current.group {
            for (name, value) in configs {
                let known = GROUP_CONFIGS.iter().any(|g| g.0 == name);
                if !known || value.trim().parse::<i32>().is_err() {
                    anyhow::bail!("group {group:?}: bad config {name}={value}");
                }
            }
        }
        Ok(())
    }

    /// The broker's dynamic layers.
    pub fn broker(&self) -> DynamicBrokerConfig {
        self.current.lock().broker.clone()
    }

    /// One group's configs (empty when none is set).
    pub fn group(&self, group: &str) -> GroupConfigs {
        self.current
            .lock()
            .group
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Every group with a config set.
    pub fn groups(&self) -> BTreeMap<String, GroupConfigs> {
        self.current.lock().group.clone()
    }

    /// Replaces the broker's dynamic layers, durably.
    pub fn set_broker(&self, broker: DynamicBrokerConfig) -> anyhow::Result<()> {
        self.update(|f| f.broker = broker)
    }

    /// Replaces a group's configs, durably (an empty set removes the group).
    pub fn set_group(&self, group: &str, configs: GroupConfigs) -> anyhow::Result<()> {
        self.update(|f| {
            if configs.is_empty() {
                f.group.remove(group);
            } else {
                f.group.insert(group.to_string(), configs);
            }
        })
    }

    /// Writes the changed copy first; memory changes only once it is on disk.
    fn update(&self, change: impl FnOnce(&mut DynamicConfigsFile)) -> anyhow::Result<()> {
        let mut current = self.current.lock();
        let mut next = current.clone();
        change(&mut next);
        let text = toml::to_string(&next)?;
        write_atomic(&self.path, text.as_bytes())?;
        *current = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_and_group_configs_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = DynamicConfigs::open(dir.path()).unwrap();
        assert_eq!(store.broker(), DynamicBrokerConfig::default());
        let broker = DynamicBrokerConfig {
            per_broker: [("log.retention.ms".to_string(), "1000".to_string())].into(),
            cluster_default: [("log.segment.bytes".to_string(), "4096".to_string())].into(),
        };
        store.set_broker(broker.clone()).unwrap();
        let group: GroupConfigs = [(
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
        )]
        .into();
        store.set_group("orders \"app\"", group.clone()).unwrap();
        store.set_group("gone", group.clone()).unwrap();
        store.set_group("gone", GroupConfigs::new()).unwrap();

        let again = DynamicConfigs::open(dir.path()).unwrap();
        assert_eq!(again.broker(), broker);
        assert_eq!(again.group("orders \"app\""), group);
        assert_eq!(
            again.groups().keys().collect::<Vec<_>>(),
            vec!["orders \"app\""]
        );
        assert_eq!(again.group("gone"), GroupConfigs::new());
        assert!(again.validate().is_ok());
    }

    #[test]
    fn a_hand_edited_file_with_a_read_only_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join(FILE),
            "[broker.per_broker]\n\"node.id\" = \"2\"\n",
        )
        .unwrap();
        let store = DynamicConfigs::open(dir.path()).unwrap();
        assert_eq!(
            store.validate().unwrap_err().to_string(),
            "Cannot update these configs dynamically: [node.id]"
        );
    }
}
