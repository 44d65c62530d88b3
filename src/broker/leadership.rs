//! Partition admin that moves replicas and leaders: reassignments
//! (AlterPartitionReassignments) and leader elections (ElectLeaders).
//!
//! The broker that receives the request works out each partition's next
//! record from the image (`metadata::reassignment`, `metadata::election`)
//! and proposes it, as Kafka's controller would. A record computed from a
//! partition that changed meanwhile (an ISR change, say) is refused by its
//! partition epoch and worked out again from the newer image. Finishing a
//! reassignment is the active controller's job (`metadata::controller`).

use std::sync::Arc;

use crate::metadata::election::{self, NotElected};
use crate::metadata::reassignment::{self, ReassignmentError};
use crate::metadata::records::{MetadataRecord, PartitionRecord};
use crate::metadata::{MetadataImage, ProposeError, Refused};

use super::{AdminError, Broker, METADATA_TIMEOUT};

/// How often a partition change refused as stale is worked out again.
const ATTEMPTS: usize = 5;

/// Why a partition's reassignment or election was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum PartitionAdminError {
    /// UNKNOWN_TOPIC_OR_PARTITION
    #[error("{0}")]
    UnknownPartition(String),
    #[error(transparent)]
    Reassignment(#[from] ReassignmentError),
    /// ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE
    #[error("{0:?}")]
    NotElected(NotElected),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Kafka's ElectLeaders election types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

impl Broker {
    /// AlterPartitionReassignments for one partition: moves it to `target`,
    /// or cancels its reassignment (`None`). `keep_replication_factor`:
    /// KIP-860's `allowReplicationFactorChange=false`.
    pub async fn reassign_partition(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        target: Option<&[i32]>,
        keep_replication_factor: bool,
    ) -> Result<(), PartitionAdminError> {
        let unclean_default = self.current_config().unclean_leader_election();
        self.change_partition(topic, partition, |image, p| {
            Ok(match target {
                Some(target) => reassignment::reassign(image, p, target, keep_replication_factor)?,
                None => reassignment::cancel(
                    image,
                    p,
                    election::unclean_allowed(image, topic, unclean_default),
                )?,
            })
        })
        .await?;
        tracing::info!(
            topic,
            partition,
            ?target,
            "partition reassignment requested"
        );
        Ok(())
    }

    /// ElectLeaders for one partition.
    pub async fn elect_leader(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        election: ElectionType,
    ) -> Result<(), PartitionAdminError> {
        self.change_partition(topic, partition, |image, p| {
            let elected = match election {
                ElectionType::Preferred => election::elect_preferred(image, p),
                ElectionType::Unclean => election::elect_unclean(image, p),
            };
            elected.map(Some).map_err(PartitionAdminError::NotElected)
        })
        .await?;
        tracing::info!(topic, partition, ?election, "leader elected");
        Ok(())
    }

    /// Proposes the record `next` works out for a partition from the
    /// current image (nothing when it returns `None`), again from a newer
    /// image if the partition changed meanwhile.
    async fn change_partition(
        self: &Arc<Self>,
        topic: &str,
        partition: i32,
        next: impl Fn(
            &MetadataImage,
            &PartitionRecord,
        ) -> Result<Option<PartitionRecord>, PartitionAdminError>,
    ) -> Result<(), PartitionAdminError> {
        for _ in 0..ATTEMPTS {
            let image = self.metadata.image();
            let Some(p) = image
                .topic(topic)
                .and_then(|t| t.partitions.get(&partition))
            else {
                return Err(PartitionAdminError::UnknownPartition(format!(
                    "Unable to find partition {topic}:{partition}."
                )));
            };
            let Some(record) = next(&image, p)? else {
                return Ok(());
            };
            match self
                .metadata
                .propose(vec![MetadataRecord::Partition(record)], METADATA_TIMEOUT)
                .await
            {
                Ok(_) => return Ok(self.follow_now().await?),
                // Someone changed the partition first (the refusal is
                // applied here too): look again.
                Err(ProposeError::Refused(Refused::StalePartition { .. })) => {}
                Err(e) => return Err(AdminError::from(e).into()),
            }
        }
        Err(AdminError::Timeout(format!(
            "partition {topic}:{partition} kept changing; try again"
        ))
        .into())
    }
}
