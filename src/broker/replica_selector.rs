//! KIP-392: which replica a consumer should fetch from (Kafka's
//! `ReplicaSelector` classes `LeaderSelector` and `RackAwareReplicaSelector`,
//! as `replica.selector.class` names them). Pure: the leader's view of its
//! replicas and their racks in, a broker id out; it never reads a log or
//! the metadata image.

use crate::config::ReplicaSelector;

/// A replica as the leader sees it (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    pub id: i32,
    /// Its broker's rack; `None` also when the broker is fenced, not
    /// registered or has no endpoint (Kafka's `Node.noNode()`).
    pub rack: Option<String>,
    pub log_end_offset: i64,
    /// How long ago it last had everything the leader had (0 for the leader).
    pub time_since_caught_up_ms: i64,
}

/// The replica other than the leader that a consumer in `client_rack`
/// should fetch from, if any. `followers` are the in-sync replicas that hold
/// the fetch offset. `RackAwareReplicaSelector`: none without a client rack,
/// none when no candidate shares it or the leader does, else the most caught
/// up one there (highest log end offset, then the most recently caught up,
/// then the highest id, Kafka's `ReplicaView.comparator`).
pub fn preferred_read_replica(
    selector: ReplicaSelector,
    client_rack: &str,
    leader: &ReplicaView,
    followers: &[ReplicaView],
) -> Option<i32> {
    if selector == ReplicaSelector::Leader || client_rack.is_empty() {
        return None;
    }
    let in_rack = |r: &&ReplicaView| r.rack.as_deref() == Some(client_rack);
    if in_rack(&leader) {
        return None;
    }
    followers
        .iter()
        .filter(in_rack)
        .max_by_key(|r| {
            (
                r.log_end_offset,
                std::cmp::Reverse(r.time_since_caught_up_ms),
                r.id,
            )
        })
        .map(|r| r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: Option<&str>, leo: i64, since: i64) -> ReplicaView {
        ReplicaView {
            id,
            rack: rack.map(str::to_string),
            log_end_offset: leo,
            time_since_caught_up_ms: since,
        }
    }

    #[test]
    fn a_consumer_is_sent_to_the_most_caught_up_replica_in_its_rack() {
        let leader = view(1, Some("a"), 100, 0);
        let followers = [
            view(2, Some("b"), 90, 0),
            view(3, Some("b"), 100, 500),
            view(4, Some("b"), 100, 20),
            view(5, Some("c"), 100, 0),
        ];
        let pick =
            |rack| preferred_read_replica(ReplicaSelector::RackAware, rack, &leader, &followers);
        assert_eq!(
            pick("b"),
            Some(4),
            "highest end, then most recently caught up"
        );
        assert_eq!(pick("c"), Some(5));
        assert_eq!(pick("a"), None, "the leader is in the rack");
        assert_eq!(pick("z"), None, "nobody in the rack: the leader");
        assert_eq!(pick(""), None, "no client rack: the leader");
        let tie = [view(2, Some("b"), 100, 0), view(3, Some("b"), 100, 0)];
        assert_eq!(
            preferred_read_replica(ReplicaSelector::RackAware, "b", &leader, &tie),
            Some(3),
            "a full tie goes to the highest id"
        );
        assert_eq!(
            preferred_read_replica(ReplicaSelector::Leader, "b", &leader, &followers),
            None
        );
    }

    #[test]
    fn a_replica_without_a_known_rack_is_never_chosen() {
        let leader = view(1, None, 100, 0);
        let followers = [view(2, None, 100, 0)];
        assert_eq!(
            preferred_read_replica(ReplicaSelector::RackAware, "b", &leader, &followers),
            None
        );
    }
}
