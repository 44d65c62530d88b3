//! Leader elections (Kafka's `PartitionChangeBuilder` elections): who leads
//! a partition, as partition records for the controller to propose.
//!
//! A clean election takes the first replica, in replica order, that is in
//! the ISR and on a live (registered, unfenced) broker. An unclean one —
//! only where `unclean.leader.election.enable` allows it, or asked for by
//! ElectLeaders — falls back to any live replica, which becomes the whole
//! ISR: records only it had may be lost, which is why it is off by default.
//! A preferred election moves leadership to the first replica (the
//! preferred leader) when it is live and in sync. Pure functions of the
//! image: no I/O.

use super::image::MetadataImage;
use super::records::{ConfigResource, MetadataRecord, PartitionRecord};

/// The topic config (and dynamic cluster default) naming whether replicas
/// outside the ISR may be elected.
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// Why ElectLeaders elected nobody for a partition (Kafka's error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotElected {
    /// The partition already has the leader asked for.
    NotNeeded,
    /// The preferred replica is fenced or out of the ISR.
    PreferredNotAvailable,
    /// No replica is live.
    EligibleNotAvailable,
}

fn live(image: &MetadataImage, id: i32) -> bool {
    image.broker(id).is_some_and(|b| !b.fenced)
}

/// Whether `topic` may elect a replica outside its ISR: its own override,
/// else the cluster-wide dynamic default, else `default` (the controller's
/// `server.properties`).
pub fn unclean_allowed(image: &MetadataImage, topic: &str, default: bool) -> bool {
    let set = |resource, name: &str| {
        image
            .configs(resource, name)
            .and_then(|c| c.get(UNCLEAN_LEADER_ELECTION))
            .map(|v| v.eq_ignore_ascii_case("true"))
    };
    set(ConfigResource::Topic, topic)
        .or_else(|| set(ConfigResource::Broker, ""))
        .unwrap_or(default)
}

/// `p` with leader `leader` in a new leader epoch; an unclean leader is the
/// whole ISR.
fn led_by(p: &PartitionRecord, leader: i32, unclean: bool) -> PartitionRecord {
    let mut next = PartitionRecord {
        leader,
        leader_epoch: p.leader_epoch + 1,
        partition_epoch: p.partition_epoch + 1,
        ..p.clone()
    };
    if unclean {
        next.isr = vec![leader];
    }
    next
}

/// The clean choice of leader for `p`: its first live in-sync replica.
pub fn clean_leader(image: &MetadataImage, p: &PartitionRecord) -> Option<i32> {
    first_in_sync(p, |r| live(image, r))
}

/// `p`'s first in-sync replica, in replica order, that `live` accepts
/// (Kafka's order for a clean election).
pub fn first_in_sync(p: &PartitionRecord, live: impl Fn(i32) -> bool) -> Option<i32> {
    p.replicas
        .iter()
        .copied()
        .find(|r| p.isr.contains(r) && live(*r))
}

/// A leader for `p`, which has none: clean if it can be, else (when
/// `unclean`) its first live replica.
fn leader_for(
    image: &MetadataImage,
    p: &PartitionRecord,
    unclean: bool,
) -> Option<PartitionRecord> {
    if let Some(leader) = clean_leader(image, p) {
        return Some(led_by(p, leader, false));
    }
    if !unclean {
        return None;
    }
    let leader = p.replicas.iter().copied().find(|r| live(image, *r))?;
    tracing::warn!(partition = p.partition, topic_id = %p.topic_id, leader,
        "unclean leader election: a replica outside the ISR leads; records only the ISR had may be lost");
    Some(led_by(p, leader, true))
}

/// Leaders for the partitions that have none: from their live in-sync
/// replicas, or — for topics that allow it (`unclean_default` when nothing
/// is set) — from any live replica.
pub fn elect_leaderless(image: &MetadataImage, unclean_default: bool) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for t in image.topics() {
        let unclean = unclean_allowed(image, &t.name, unclean_default);
        for p in t.partitions.values().filter(|p| p.leader < 0) {
            if let Some(next) = leader_for(image, p, unclean) {
                records.push(MetadataRecord::Partition(next));
            }
        }
    }
    records
}

/// ElectLeaders PREFERRED for `p`: its first replica leads, if live and in
/// sync.
pub fn elect_preferred(
    image: &MetadataImage,
    p: &PartitionRecord,
) -> Result<PartitionRecord, NotElected> {
    let preferred = p.replicas.first().copied().unwrap_or(-1);
    if p.leader == preferred {
        return Err(NotElected::NotNeeded);
    }
    if !p.isr.contains(&preferred) || !live(image, preferred) {
        return Err(NotElected::PreferredNotAvailable);
    }
    Ok(led_by(p, preferred, false))
}

/// ElectLeaders UNCLEAN for `p`: a leader for a partition without one,
/// outside the ISR if no in-sync replica is live.
pub fn elect_unclean(
    image: &MetadataImage,
    p: &PartitionRecord,
) -> Result<PartitionRecord, NotElected> {
    if p.leader >= 0 {
        return Err(NotElected::NotNeeded);
    }
    leader_for(image, p, true).ok_or(NotElected::EligibleNotAvailable)
}

/// Kafka's `auto.leader.rebalance.enable`: every partition not led by its
/// preferred replica, where that replica is live and in sync, goes back to
/// it, so leadership spreads as placement laid it out.
pub fn rebalance(image: &MetadataImage) -> Vec<MetadataRecord> {
    image
        .topics()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader >= 0 && !p.is_reassigning())
        .filter_map(|p| elect_preferred(image, p).ok())
        .map(MetadataRecord::Partition)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::test_util::{image, partition};
    use crate::metadata::records::ConfigRecord;

    fn summary(records: &[MetadataRecord]) -> Vec<(i32, i32, Vec<i32>, i32)> {
        records
            .iter()
            .map(|r| match r {
                MetadataRecord::Partition(p) => {
                    (p.partition, p.leader, p.isr.clone(), p.leader_epoch)
                }
                other => panic!("not a partition record: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_leaderless_partition_takes_its_first_live_in_sync_replica_in_replica_order() {
        let image = image(
            &[(1, true), (2, false), (3, false)],
            &[
                (&[1, 3, 2], &[1, 2, 3], -1),
                (&[1, 2], &[1], -1),
                (&[2], &[2], 2),
            ],
        );
        assert_eq!(
            summary(&elect_leaderless(&image, false)),
            vec![(0, 3, vec![1, 2, 3], 1)],
            "partition 1's only in-sync replica is fenced: no clean leader"
        );
    }

    #[test]
    fn unclean_election_takes_a_live_replica_outside_the_isr_only_where_allowed() {
        let mut image = image(&[(1, true), (2, false)], &[(&[1, 2], &[1], -1)]);
        assert!(elect_leaderless(&image, false).is_empty());
        assert_eq!(
            summary(&elect_leaderless(&image, true)),
            vec![(0, 2, vec![2], 1)],
            "the broker default allows it"
        );
        image.apply(&MetadataRecord::Config(ConfigRecord {
            resource: ConfigResource::Topic,
            resource_name: "t".into(),
            name: UNCLEAN_LEADER_ELECTION.into(),
            value: Some("false".into()),
        }));
        assert!(
            elect_leaderless(&image, true).is_empty(),
            "the topic's override wins"
        );
        assert_eq!(
            elect_unclean(&image, &partition(&image, 0)).map(|p| (p.leader, p.isr)),
            Ok((2, vec![2])),
            "ElectLeaders UNCLEAN asks for it explicitly"
        );
    }

    #[test]
    fn preferred_election_needs_the_first_replica_live_and_in_sync() {
        let image = image(
            &[(1, false), (2, false), (3, true)],
            &[
                (&[1, 2], &[1, 2], 2),
                (&[1, 2], &[2], 2),
                (&[3, 2], &[2, 3], 2),
                (&[2, 1], &[1, 2], 2),
            ],
        );
        let results: Vec<_> = (0..4)
            .map(|i| elect_preferred(&image, &partition(&image, i)).map(|p| p.leader))
            .collect();
        assert_eq!(
            results,
            vec![
                Ok(1),
                Err(NotElected::PreferredNotAvailable),
                Err(NotElected::PreferredNotAvailable),
                Err(NotElected::NotNeeded),
            ]
        );
        assert_eq!(summary(&rebalance(&image)), vec![(0, 1, vec![1, 2], 1)]);
    }
}
