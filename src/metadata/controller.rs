//! The active controller's watch over the brokers (Kafka's
//! `BrokerHeartbeatManager` and leader election).
//!
//! Brokers heartbeat to the active controller every
//! `broker.heartbeat.interval.ms`. One silent for `broker.session.timeout.ms`
//! is fenced: the partitions it led get a new leader from their ISR, or none
//! (leader -1) when no other in-sync replica is up. A broker that heartbeats
//! again, or registers anew after a restart, is unfenced, and every partition
//! without a leader whose ISR holds a live broker elects one. A broker
//! shutting down asks to be fenced first (Kafka's controlled shutdown), so
//! its leadership moves before it goes.
//!
//! Every voter keeps the heartbeats it receives; only the leader acts, and
//! a new leader gives every broker a full session before fencing it.
//!
//! Beyond Kafka: a broker whose heartbeat is a quarter of a session late is
//! probed, and one whose listener refuses connections — no process is
//! there, it crashed or was killed — is fenced at once instead of after the
//! whole session, so its partitions get new leaders within seconds. A
//! broker that is merely slow or unreachable still has its full session.

use std::collections::BTreeMap;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use super::image::MetadataImage;
use super::records::MetadataRecord;
use super::{election, reassignment};

/// The heartbeats this voter has received.
pub struct Liveness {
    session: Duration,
    /// Kafka's `unclean.leader.election.enable` in the controller's
    /// `server.properties`: the default for topics that set nothing.
    unclean_default: bool,
    seen: Mutex<BTreeMap<i32, (Uuid, Instant)>>,
    /// When this voter last became the active controller.
    leading_since: Mutex<Option<Instant>>,
    /// Incarnations that shut down (controlled shutdown).
    stopped: Mutex<Vec<Uuid>>,
    /// Incarnations whose listener refused a connection since their last
    /// heartbeat: nothing runs there any more.
    gone: Mutex<Vec<Uuid>>,
    /// Incarnations whose last heartbeat said writes to their data
    /// directory fail (Kafka's `WantFence`): fenced until one says they
    /// succeed again.
    failing_writes: Mutex<Vec<Uuid>>,
}

impl Liveness {
    pub fn new(session: Duration, unclean_default: bool) -> Self {
        Self {
            session,
            unclean_default,
            seen: Mutex::new(BTreeMap::new()),
            leading_since: Mutex::new(None),
            stopped: Mutex::new(Vec::new()),
            gone: Mutex::new(Vec::new()),
            failing_writes: Mutex::new(Vec::new()),
        }
    }

    pub fn session(&self) -> Duration {
        self.session
    }

    pub fn heartbeat(&self, id: i32, incarnation: Uuid) {
        if !self.stopped.lock().contains(&incarnation) {
            self.seen.lock().insert(id, (incarnation, Instant::now()));
            self.gone.lock().retain(|g| *g != incarnation);
        }
    }

    /// Broker `id`'s heartbeat said whether writes to its data directory
    /// fail. A broker whose disk is full or broken must not lead a
    /// partition, nor hold up `acks=all` writes as an in-sync follower:
    /// Kafka stops a broker whose last log directory failed; Vltava fences
    /// it instead, and unfences it once its writes succeed again.
    pub fn writes_failing(&self, id: i32, incarnation: Uuid, failing: bool) {
        let mut failing_writes = self.failing_writes.lock();
        let known = failing_writes.contains(&incarnation);
        if failing && !known {
            tracing::warn!(
                broker = id,
                "a broker's writes to its data directory fail; fencing it until they succeed"
            );
            failing_writes.push(incarnation);
        } else if !failing && known {
            tracing::info!(broker = id, "a broker's writes succeed again");
            failing_writes.retain(|i| *i != incarnation);
        }
    }

    /// The unfenced brokers not heard from for a quarter of a session (a
    /// healthy broker heartbeats several times a session): worth a probe.
    pub fn overdue<'a>(
        &self,
        image: &'a MetadataImage,
        leading_since: Instant,
    ) -> Vec<&'a super::records::BrokerRegistration> {
        let now = Instant::now();
        let seen = self.seen.lock();
        image
            .brokers()
            .filter(|b| !b.fenced)
            .filter(|b| {
                let heard = match seen.get(&b.id) {
                    Some((i, at)) if *i == b.incarnation => (*at).max(leading_since),
                    _ => leading_since,
                };
                now.duration_since(heard) >= self.session / 4
            })
            .collect()
    }

    /// Broker `id`'s listener refused a connection: `incarnation` is gone,
    /// and fenced at the next duty unless it heartbeats first.
    pub fn refused(&self, id: i32, incarnation: Uuid) {
        let mut gone = self.gone.lock();
        if !gone.contains(&incarnation) {
            tracing::warn!(
                broker = id,
                "a broker's listener refuses connections; fencing it now"
            );
            gone.push(incarnation);
        }
    }

    /// Notes whether this voter leads now; returns when it started to.
    pub fn leading(&self, is_leader: bool) -> Option<Instant> {
        let mut since = self.leading_since.lock();
        match (is_leader, *since) {
            (false, _) => *since = None,
            (true, None) => *since = Some(Instant::now()),
            (true, Some(_)) => {}
        }
        *since
    }

    /// Whether `incarnation` of broker `id` was heard from within a session
    /// (a new controller counts its first moment as a heartbeat from all).
    fn is_alive(&self, id: i32, incarnation: Uuid, leading_since: Instant, now: Instant) -> bool {
        if self.gone.lock().contains(&incarnation)
            || self.failing_writes.lock().contains(&incarnation)
        {
            return false;
        }
        let heard = match self.seen.lock().get(&id) {
            Some((i, at)) if *i == incarnation => (*at).max(leading_since),
            _ => leading_since,
        };
        now.duration_since(heard) < self.session
    }

    /// The records the active controller proposes now: fence the brokers
    /// silent for a session, unfence those heard from again, elect leaders
    /// for partitions without one, and finish the reassignments whose
    /// target replicas are all in sync. Empty when nothing changes.
    pub fn duties(&self, image: &MetadataImage, leading_since: Instant) -> Vec<MetadataRecord> {
        let now = Instant::now();
        {
            // A registration counts as a heartbeat: an incarnation this
            // voter sees for the first time gets a full session from now.
            let mut seen = self.seen.lock();
            for b in image.brokers().filter(|b| !b.fenced) {
                if seen.get(&b.id).is_none_or(|(i, _)| *i != b.incarnation) {
                    seen.insert(b.id, (b.incarnation, now));
                }
            }
        }
        let changed: Vec<(i32, Uuid, bool)> = image
            .brokers()
            .filter_map(|b| {
                let alive = self.is_alive(b.id, b.incarnation, leading_since, now);
                (alive == b.fenced).then_some((b.id, b.incarnation, alive))
            })
            .collect();
        let mut working = image.clone();
        let mut records = Vec::new();
        for (id, incarnation, alive) in changed {
            let change = if alive {
                vec![fencing(id, incarnation, false)]
            } else {
                tracing::warn!(broker = id, session = ?self.session,
                    "fencing a broker silent for a session, gone, or failing writes");
                fence(&working, id)
            };
            working.apply_all(&change);
            records.extend(change);
        }
        // Each step sees the one before, so one batch never holds two
        // records of a partition at the same partition epoch.
        let elected = election::elect_leaderless(&working, self.unclean_default);
        working.apply_all(&elected);
        records.extend(elected);
        records.extend(reassignment::complete_all(&working));
        records
    }

    /// A broker shutting down: its heartbeats from now on are ignored, so
    /// the fencing that moves its leadership away is not undone.
    pub fn stopping(&self, id: i32, incarnation: Uuid) {
        self.seen.lock().remove(&id);
        self.stopped.lock().push(incarnation);
    }
}

fn fencing(id: i32, incarnation: Uuid, fenced: bool) -> MetadataRecord {
    MetadataRecord::BrokerFencing {
        id,
        incarnation,
        fenced,
    }
}

/// Fences broker `id` and moves every partition it leads to another live
/// in-sync replica, or to no leader; it leaves ISRs it is not the last of.
pub fn fence(image: &MetadataImage, id: i32) -> Vec<MetadataRecord> {
    let Some(b) = image.broker(id) else {
        return Vec::new();
    };
    let mut records = vec![fencing(id, b.incarnation, true)];
    let live = |r: i32| r != id && image.broker(r).is_some_and(|b| !b.fenced);
    for t in image.topics() {
        for p in t.partitions.values() {
            if !p.isr.contains(&id) && p.leader != id {
                continue;
            }
            let mut next = p.clone();
            if next.isr.len() > 1 {
                next.isr.retain(|r| *r != id);
            }
            if p.leader == id {
                next.leader = election::first_in_sync(&next, live).unwrap_or(-1);
                next.leader_epoch += 1;
            }
            if next != *p {
                next.partition_epoch += 1;
                records.push(MetadataRecord::Partition(next));
            }
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::BrokerRegistration;

    fn image(brokers: &[i32], partitions: &[(Vec<i32>, i32)]) -> MetadataImage {
        let brokers: Vec<(i32, bool)> = brokers.iter().map(|b| (*b, false)).collect();
        let partitions: Vec<(&[i32], &[i32], i32)> = partitions
            .iter()
            .map(|(r, l)| (r.as_slice(), r.as_slice(), *l))
            .collect();
        crate::metadata::image::test_util::image(&brokers, &partitions)
    }

    fn leaders(image: &MetadataImage) -> Vec<(i32, i32, Vec<i32>)> {
        image
            .topic("t")
            .unwrap()
            .partitions
            .values()
            .map(|p| (p.leader, p.leader_epoch, p.isr.clone()))
            .collect()
    }

    #[test]
    fn a_fenced_broker_hands_leadership_to_the_isr_or_to_nobody() {
        let mut image = image(
            &[1, 2, 3],
            &[(vec![1, 2], 1), (vec![3], 3), (vec![2, 1], 2)],
        );
        image.apply_all(&fence(&image, 1));
        assert!(image.broker(1).unwrap().fenced);
        assert_eq!(
            leaders(&image),
            vec![(2, 1, vec![2]), (3, 0, vec![3]), (2, 0, vec![2])]
        );
        image.apply_all(&fence(&image, 3));
        // The last in-sync replica stays in the ISR, with no leader.
        assert_eq!(leaders(&image)[1], (-1, 1, vec![3]));
        // Back: registered anew, it leads what waited for it.
        image.apply(&fencing(3, Uuid::from_u128(3), false));
        image.apply_all(&election::elect_leaderless(&image, false));
        assert_eq!(leaders(&image)[1], (3, 2, vec![3]));
        assert!(
            election::elect_leaderless(&image, false).is_empty(),
            "nothing left to elect"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn silence_for_a_session_fences_and_a_heartbeat_unfences() {
        let liveness = Liveness::new(Duration::from_secs(9), false);
        let mut image = image(&[1, 2], &[(vec![2], 2)]);
        let since = liveness.leading(true).unwrap();
        assert!(liveness.duties(&image, since).is_empty());
        tokio::time::advance(Duration::from_secs(5)).await;
        liveness.heartbeat(1, Uuid::from_u128(1));
        assert!(
            liveness.duties(&image, since).is_empty(),
            "a new leader waits a session"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let records = liveness.duties(&image, since);
        image.apply_all(&records);
        assert!(image.broker(2).unwrap().fenced && !image.broker(1).unwrap().fenced);
        assert_eq!(leaders(&image), vec![(-1, 1, vec![2])]);
        liveness.heartbeat(2, Uuid::from_u128(2));
        image.apply_all(&liveness.duties(&image, since));
        assert!(!image.broker(2).unwrap().fenced);
        assert_eq!(leaders(&image), vec![(2, 2, vec![2])]);

        // Long after, broker 2 restarts (a new incarnation): its
        // registration starts a session, it is not fenced before its first
        // heartbeat is due.
        tokio::time::advance(Duration::from_secs(60)).await;
        liveness.heartbeat(1, Uuid::from_u128(1));
        image.apply(&MetadataRecord::RegisterBroker(BrokerRegistration {
            id: 2,
            incarnation: Uuid::from_u128(22),
            endpoints: Vec::new(),
            rack: None,
            fenced: false,
        }));
        assert!(liveness.duties(&image, since).is_empty());
        tokio::time::advance(Duration::from_secs(5)).await;
        liveness.heartbeat(1, Uuid::from_u128(1));
        assert!(liveness.duties(&image, since).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_broker_whose_listener_refuses_is_fenced_without_waiting_a_session() {
        let liveness = Liveness::new(Duration::from_secs(9), false);
        let mut image = image(&[1, 2], &[(vec![2, 1], 2)]);
        let since = liveness.leading(true).unwrap();
        tokio::time::advance(Duration::from_secs(2)).await;
        liveness.heartbeat(1, Uuid::from_u128(1));
        liveness.heartbeat(2, Uuid::from_u128(2));
        assert!(liveness.overdue(&image, since).is_empty());
        tokio::time::advance(Duration::from_millis(2_250)).await;
        liveness.heartbeat(1, Uuid::from_u128(1));
        let overdue: Vec<i32> = liveness
            .overdue(&image, since)
            .iter()
            .map(|b| b.id)
            .collect();
        assert_eq!(overdue, vec![2], "a quarter of a session late");
        assert!(
            liveness.duties(&image, since).is_empty(),
            "not fenced for being late"
        );
        liveness.refused(2, Uuid::from_u128(2));
        let records = liveness.duties(&image, since);
        image.apply_all(&records);
        assert!(image.broker(2).unwrap().fenced);
        assert_eq!(
            leaders(&image),
            vec![(1, 1, vec![1])],
            "the ISR's other member leads"
        );
        // It was only a blip: its next heartbeat unfences it.
        liveness.heartbeat(2, Uuid::from_u128(2));
        image.apply_all(&liveness.duties(&image, since));
        assert!(!image.broker(2).unwrap().fenced);
    }

    #[tokio::test(start_paused = true)]
    async fn a_broker_whose_writes_fail_is_fenced_until_they_succeed() {
        let liveness = Liveness::new(Duration::from_secs(9), false);
        // Broker 2 leads; 1, 2 and 3 are in sync.
        let mut image = image(&[1, 2, 3], &[(vec![2, 1, 3], 2)]);
        let since = liveness.leading(true).unwrap();
        for b in 1..=3 {
            liveness.heartbeat(b, Uuid::from_u128(b as u128));
        }
        liveness.writes_failing(2, Uuid::from_u128(2), true);
        image.apply_all(&liveness.duties(&image, since));
        assert!(image.broker(2).unwrap().fenced);
        assert_eq!(
            leaders(&image),
            vec![(1, 1, vec![1, 3])],
            "leadership moves and the ISR no longer waits for it"
        );
        // Heartbeats keep coming while the disk is full: still fenced.
        liveness.heartbeat(2, Uuid::from_u128(2));
        liveness.writes_failing(2, Uuid::from_u128(2), true);
        assert!(liveness.duties(&image, since).is_empty());
        // Writes succeed again: unfenced (it rejoins the ISR by fetching).
        liveness.heartbeat(2, Uuid::from_u128(2));
        liveness.writes_failing(2, Uuid::from_u128(2), false);
        image.apply_all(&liveness.duties(&image, since));
        assert!(!image.broker(2).unwrap().fenced);
        assert_eq!(leaders(&image), vec![(1, 1, vec![1, 3])]);
    }
}
