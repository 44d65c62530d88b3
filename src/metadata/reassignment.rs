//! Partition reassignment (KIP-455, as Kafka's KRaft controller does it):
//! moving a partition's replicas to a new set without losing a record.
//!
//! Three stages, each one partition record: (1) the target replicas join
//! the partition's replica list (`adding_replicas`), the ones to go are
//! marked (`removing_replicas`) but keep replicating; (2) the new replicas
//! fetch from the leader until it adds them to the ISR; (3) once every
//! target replica is in sync, the controller drops the removed ones from
//! the replicas and the ISR — with a new leader, from the target, if the
//! leader was one of them — and their brokers delete their copies. A
//! reassignment that only reorders replicas completes at once. Pure
//! functions of the image: no I/O.

use super::election::clean_leader;
use super::image::MetadataImage;
use super::records::{MetadataRecord, PartitionRecord};

/// Why a reassignment was refused (Kafka's error codes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReassignmentError {
    /// INVALID_REPLICA_ASSIGNMENT
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// INVALID_REPLICATION_FACTOR (KIP-860)
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// NO_REASSIGNMENT_IN_PROGRESS
    #[error("No partition reassignment is in progress.")]
    NoReassignmentInProgress,
}

/// Kafka's checks of a manual assignment (a reassignment's target, or a
/// new topic's partition): not empty, every broker registered (fenced or
/// not), none twice, and — for a new topic — as many replicas as its other
/// partitions (`replication_factor`).
pub fn validate_manual_assignment(
    image: &MetadataImage,
    replicas: &[i32],
    replication_factor: Option<usize>,
) -> Result<(), ReassignmentError> {
    if replicas.is_empty() {
        return Err(ReassignmentError::InvalidReplicaAssignment(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = replicas.to_vec();
    sorted.sort_unstable();
    for (i, id) in sorted.iter().enumerate() {
        if image.broker(*id).is_none() {
            return Err(ReassignmentError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if i > 0 && sorted[i - 1] == *id {
            return Err(ReassignmentError::InvalidReplicaAssignment(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
    }
    if let Some(rf) = replication_factor.filter(|rf| *rf != replicas.len()) {
        return Err(ReassignmentError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes a partition with {} replica(s), but \
             this is not consistent with previous partitions, which have {rf} replica(s).",
            replicas.len()
        )));
    }
    Ok(())
}

/// The record that starts moving `p` to `target` (stage 1, or straight to
/// stage 3 when nothing needs to catch up); `None` when `p` already has
/// exactly that assignment. With `keep_replication_factor` (KIP-860's
/// `allowReplicationFactorChange=false`), a target of another size is
/// refused.
pub fn reassign(
    image: &MetadataImage,
    p: &PartitionRecord,
    target: &[i32],
    keep_replication_factor: bool,
) -> Result<Option<PartitionRecord>, ReassignmentError> {
    validate_manual_assignment(image, target, None)?;
    if keep_replication_factor {
        let current = p.replicas.len() - p.adding_replicas.len();
        if target.len() != current {
            return Err(ReassignmentError::InvalidReplicationFactor(format!(
                "The replication factor is changed from {current} to {} but \
                 allowReplicationFactorChange is false.",
                target.len()
            )));
        }
    }
    let removing: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    let adding: Vec<i32> = target
        .iter()
        .copied()
        .filter(|r| !p.replicas.contains(r))
        .collect();
    let mut next = PartitionRecord {
        replicas: target.iter().chain(&removing).copied().collect(),
        adding_replicas: sorted(adding),
        removing_replicas: sorted(removing),
        ..p.clone()
    };
    if let Some(done) = completed(image, &next) {
        next = done;
    }
    Ok(changed(p, next))
}

/// The record that cancels `p`'s reassignment: back to the replicas it had
/// (without the ones being added, out of the ISR too), or Kafka's errors
/// when none is in progress or going back needs an unclean election that
/// the topic does not allow.
pub fn cancel(
    image: &MetadataImage,
    p: &PartitionRecord,
    unclean_allowed: bool,
) -> Result<Option<PartitionRecord>, ReassignmentError> {
    if !p.is_reassigning() {
        return Err(ReassignmentError::NoReassignmentInProgress);
    }
    let replicas: Vec<i32> = p
        .replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    let mut isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect();
    if isr.is_empty() {
        let Some(first) = replicas.first() else {
            return Err(ReassignmentError::InvalidReplicaAssignment(
                "Invalid replica assignment: addingReplicas contains all replicas.".into(),
            ));
        };
        if !unclean_allowed {
            return Err(ReassignmentError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for partition {} because it would \
                 require an unclean leader election.",
                p.partition
            )));
        }
        isr.push(*first);
    }
    Ok(changed(p, with_leader(image, p, settled(p, replicas, isr))))
}

/// The records that finish the reassignments whose target replicas are all
/// in sync now (stage 3): what the active controller proposes as soon as
/// the leaders' ISR changes show it.
pub fn complete_all(image: &MetadataImage) -> Vec<MetadataRecord> {
    image
        .topics()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.is_reassigning())
        .filter_map(|p| completed(image, p).and_then(|next| changed(p, next)))
        .map(MetadataRecord::Partition)
        .collect()
}

/// `p` with its reassignment finished, if every target replica is in the
/// ISR (and one is left there): the removed replicas gone from replicas and
/// ISR, and a leader from the target.
fn completed(image: &MetadataImage, p: &PartitionRecord) -> Option<PartitionRecord> {
    if !p.is_reassigning() {
        return None;
    }
    let keep = |r: &i32| !p.removing_replicas.contains(r);
    let replicas: Vec<i32> = p.replicas.iter().copied().filter(keep).collect();
    let isr: Vec<i32> = p.isr.iter().copied().filter(keep).collect();
    if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
        return None;
    }
    Some(with_leader(image, p, settled(p, replicas, isr)))
}

/// `p` with `replicas` and `isr` and no reassignment in progress.
fn settled(p: &PartitionRecord, replicas: Vec<i32>, isr: Vec<i32>) -> PartitionRecord {
    PartitionRecord {
        replicas,
        isr,
        adding_replicas: Vec::new(),
        removing_replicas: Vec::new(),
        ..p.clone()
    }
}

/// `next` with a leader: the current one if it stays in sync, else the
/// first live in-sync replica (or none). The leader epoch moves when the
/// leader changes or a replica leaves (so a removed replica's fetches are
/// fenced, as in Kafka).
fn with_leader(
    image: &MetadataImage,
    p: &PartitionRecord,
    mut next: PartitionRecord,
) -> PartitionRecord {
    let stays = p.leader >= 0
        && next.isr.contains(&p.leader)
        && image.broker(p.leader).is_some_and(|b| !b.fenced);
    if !stays {
        next.leader = clean_leader(image, &next).unwrap_or(-1);
    }
    let replica_left = p.replicas.iter().any(|r| !next.replicas.contains(r));
    if next.leader != p.leader || replica_left {
        next.leader_epoch = p.leader_epoch + 1;
    }
    next
}

/// `next` as the partition's next record (the following partition epoch),
/// unless it changes nothing.
fn changed(p: &PartitionRecord, mut next: PartitionRecord) -> Option<PartitionRecord> {
    next.partition_epoch = p.partition_epoch;
    if next == *p {
        return None;
    }
    next.partition_epoch = p.partition_epoch + 1;
    Some(next)
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::test_util;

    /// Brokers `brokers` and partition 0 of `t` at leader epoch 4 and
    /// partition epoch 9.
    fn image(brokers: &[i32], replicas: &[i32], isr: &[i32], leader: i32) -> MetadataImage {
        let live: Vec<(i32, bool)> = brokers.iter().map(|b| (*b, false)).collect();
        let mut image = test_util::image(&live, &[(replicas, isr, leader)]);
        image.apply(&MetadataRecord::Partition(PartitionRecord {
            leader_epoch: 4,
            partition_epoch: 9,
            ..test_util::partition(&image, 0)
        }));
        image
    }

    fn partition(image: &MetadataImage) -> PartitionRecord {
        test_util::partition(image, 0)
    }

    /// (replicas, isr, adding, removing, leader, leader epoch, partition epoch)
    type Shape = (Vec<i32>, Vec<i32>, Vec<i32>, Vec<i32>, i32, i32, i32);

    fn shape(p: &PartitionRecord) -> Shape {
        (
            p.replicas.clone(),
            p.isr.clone(),
            p.adding_replicas.clone(),
            p.removing_replicas.clone(),
            p.leader,
            p.leader_epoch,
            p.partition_epoch,
        )
    }

    #[test]
    fn a_move_adds_the_target_then_drops_the_old_replicas_once_the_target_is_in_sync() {
        let mut image = image(&[1, 2, 3, 4], &[1, 2, 3], &[1, 2, 3], 1);
        let started = reassign(&image, &partition(&image), &[4, 2, 3], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            shape(&started),
            (vec![4, 2, 3, 1], vec![1, 2, 3], vec![4], vec![1], 1, 4, 10),
            "stage 1: the new replica joins, the old one still leads"
        );
        image.apply(&MetadataRecord::Partition(started.clone()));
        assert!(complete_all(&image).is_empty(), "4 is not in sync yet");
        // The leader's ISR change: 4 caught up.
        image.apply(&MetadataRecord::Partition(PartitionRecord {
            isr: vec![1, 2, 3, 4],
            partition_epoch: 11,
            ..started
        }));
        let done = complete_all(&image);
        let [MetadataRecord::Partition(done)] = done.as_slice() else {
            panic!("one completion expected: {done:?}");
        };
        assert_eq!(
            shape(done),
            (vec![4, 2, 3], vec![2, 3, 4], vec![], vec![], 4, 5, 12),
            "stage 3: 1 leaves, the first in-sync target replica leads in a new epoch"
        );
    }

    #[test]
    fn reordering_replicas_completes_at_once_and_the_same_assignment_changes_nothing() {
        let image = image(&[1, 2, 3], &[1, 2, 3], &[1, 2, 3], 1);
        let p = partition(&image);
        let reordered = reassign(&image, &p, &[3, 2, 1], true).unwrap().unwrap();
        assert_eq!(
            shape(&reordered),
            (vec![3, 2, 1], vec![1, 2, 3], vec![], vec![], 1, 4, 10)
        );
        assert_eq!(reassign(&image, &p, &[1, 2, 3], true), Ok(None));
    }

    #[test]
    fn kafkas_checks_refuse_a_bad_target() {
        let image = image(&[1, 2, 3], &[1, 2], &[1, 2], 1);
        let p = partition(&image);
        let refused =
            |target: &[i32], keep| reassign(&image, &p, target, keep).unwrap_err().to_string();
        assert_eq!(
            refused(&[], false),
            "The manual partition assignment includes an empty replica list."
        );
        assert_eq!(
            refused(&[1, 7], false),
            "The manual partition assignment includes broker 7, but no such broker is registered."
        );
        assert_eq!(
            refused(&[2, 1, 2], false),
            "The manual partition assignment includes the broker 2 more than once."
        );
        assert!(matches!(
            reassign(&image, &p, &[1, 2, 3], true),
            Err(ReassignmentError::InvalidReplicationFactor(_))
        ));
        assert_eq!(
            cancel(&image, &p, false),
            Err(ReassignmentError::NoReassignmentInProgress)
        );
    }

    #[test]
    fn a_cancel_goes_back_to_the_original_replicas() {
        let mut image = image(&[1, 2, 3, 4], &[1, 2], &[1, 2], 2);
        let started = reassign(&image, &partition(&image), &[3, 4], false)
            .unwrap()
            .unwrap();
        assert_eq!(
            shape(&started),
            (
                vec![3, 4, 1, 2],
                vec![1, 2],
                vec![3, 4],
                vec![1, 2],
                2,
                4,
                10
            )
        );
        image.apply(&MetadataRecord::Partition(PartitionRecord {
            isr: vec![1, 2, 3],
            partition_epoch: 11,
            ..started
        }));
        let reverted = cancel(&image, &partition(&image), false).unwrap().unwrap();
        assert_eq!(
            shape(&reverted),
            (vec![1, 2], vec![1, 2], vec![], vec![], 2, 5, 12),
            "3 and 4 leave replicas and ISR; the leader stays, in a new epoch"
        );
    }
}
