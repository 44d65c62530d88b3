//! A partition leader's view of its replicas (Kafka's `Replica` state and the
//! ISR rules of `Partition`): each follower's log end offset as its fetches
//! report it, when it was last caught up, and from those the high watermark
//! and which followers join or leave the ISR.
//!
//! Pure state, no I/O: `Partition` holds one behind its lock, and the ISR
//! changes it suggests go to the controller as a new partition record.

use std::collections::BTreeMap;

use crate::metadata::records::PartitionRecord;

/// What the leader knows of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// The follower's log end offset: the offset of its last fetch, which
    /// under `--durability fsync` is also how far it is on disk. -1 until
    /// it fetches from this leader.
    pub log_end_offset: i64,
    /// The follower's log start offset, as its last fetch reported it.
    pub log_start_offset: i64,
    /// The last time the follower had every offset the leader had.
    pub last_caught_up_ms: i64,
    last_fetch_ms: i64,
    /// The leader's log end offset at the follower's previous fetch.
    leader_end_at_last_fetch: i64,
}

/// The leader's side of a partition while this broker leads it.
#[derive(Debug, Clone)]
pub struct LeaderState {
    pub node_id: i32,
    /// The partition as the image that made this broker leader (or last
    /// changed its ISR) has it.
    pub record: PartitionRecord,
    /// The log end offset when this leader epoch began: a follower joins the
    /// ISR only once it has reached it (it then has this epoch's history).
    pub epoch_start_offset: i64,
    pub followers: BTreeMap<i32, FollowerState>,
    /// The ISR proposed to the controller, until the image shows the
    /// partition changed (by this change or another) or the proposal is
    /// refused. Meanwhile the high watermark counts the replicas of both
    /// ISRs (Kafka's maximal ISR, KIP-497): a follower being added may be in
    /// the controller's ISR, and electable, before this leader hears so.
    pub pending_isr: Option<Vec<i32>>,
}

impl LeaderState {
    /// Leadership of `record`'s partition, taken at log end offset `leo`.
    /// In-sync followers count as caught up now (as in Kafka), so they have
    /// `replica.lag.time.max.ms` to fetch before they leave the ISR.
    pub fn new(node_id: i32, record: PartitionRecord, leo: i64, now_ms: i64) -> LeaderState {
        let followers = record
            .replicas
            .iter()
            .filter(|r| **r != node_id)
            .map(|r| {
                let caught_up = if record.isr.contains(r) { now_ms } else { 0 };
                (
                    *r,
                    FollowerState {
                        log_end_offset: -1,
                        log_start_offset: -1,
                        last_caught_up_ms: caught_up,
                        last_fetch_ms: 0,
                        leader_end_at_last_fetch: -1,
                    },
                )
            })
            .collect();
        LeaderState {
            node_id,
            record,
            epoch_start_offset: leo,
            followers,
            pending_isr: None,
        }
    }

    /// A newer image's record of the same leadership (same leader epoch):
    /// the ISR or replicas may have changed. A proposed ISR change stays
    /// pending until the partition epoch moves: an image that changed
    /// something else says nothing of it.
    pub fn update(&mut self, record: PartitionRecord, now_ms: i64) {
        for r in record.replicas.iter().filter(|r| **r != self.node_id) {
            self.followers.entry(*r).or_insert(FollowerState {
                log_end_offset: -1,
                log_start_offset: -1,
                last_caught_up_ms: now_ms,
                last_fetch_ms: 0,
                leader_end_at_last_fetch: -1,
            });
        }
        self.followers.retain(|r, _| record.replicas.contains(r));
        if record.partition_epoch != self.record.partition_epoch {
            self.pending_isr = None;
        }
        self.record = record;
    }

    pub fn isr(&self) -> &[i32] {
        &self.record.isr
    }

    /// Follower `id` fetched from `fetch_offset` at `now_ms`, its log
    /// starting at `log_start_offset`, while the leader's log ended at
    /// `leader_end` (Kafka's `Replica.updateFetchStateOrThrow` rule for the
    /// caught-up time).
    pub fn fetched(
        &mut self,
        id: i32,
        fetch_offset: i64,
        log_start_offset: i64,
        leader_end: i64,
        now_ms: i64,
    ) {
        let Some(f) = self.followers.get_mut(&id) else {
            return;
        };
        f.log_start_offset = log_start_offset;
        if fetch_offset >= leader_end {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if fetch_offset >= f.leader_end_at_last_fetch && f.leader_end_at_last_fetch >= 0 {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_ms = now_ms;
        f.leader_end_at_last_fetch = leader_end;
    }

    /// The in-sync followers that hold `fetch_offset` (their log starts at
    /// or below it and ends at or past it), as (id, log end offset, ms since
    /// last caught up): where a consumer fetching from there may be sent
    /// (Kafka's `findPreferredReadReplica` candidates).
    pub fn read_replicas(&self, fetch_offset: i64, now_ms: i64) -> Vec<(i32, i64, i64)> {
        self.followers
            .iter()
            .filter(|(id, f)| {
                self.record.isr.contains(id)
                    && f.log_end_offset >= fetch_offset
                    && f.log_start_offset <= fetch_offset
            })
            .map(|(id, f)| (*id, f.log_end_offset, now_ms - f.last_caught_up_ms))
            .collect()
    }

    /// The high watermark the ISR allows: the lowest log end offset among
    /// the leader (`leader_end`) and its in-sync followers — those of the
    /// image's ISR and of a pending proposal; `None` while one of them has
    /// not fetched from this leader yet.
    pub fn high_watermark(&self, leader_end: i64) -> Option<i64> {
        let mut hw = leader_end;
        let pending = self.pending_isr.iter().flatten();
        for r in self
            .record
            .isr
            .iter()
            .chain(pending)
            .filter(|r| **r != self.node_id)
        {
            let leo = self.followers.get(r).map_or(-1, |f| f.log_end_offset);
            if leo < 0 {
                return None;
            }
            hw = hw.min(leo);
        }
        Some(hw)
    }

    /// A follower out of the ISR that has caught up (its log end offset at
    /// least the high watermark and this epoch's start): the ISR to propose
    /// with it added.
    pub fn isr_to_expand(&self, high_watermark: i64) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() {
            return None;
        }
        let joining: Vec<i32> = self
            .followers
            .iter()
            .filter(|(r, f)| {
                !self.record.isr.contains(r)
                    && f.log_end_offset >= high_watermark
                    && f.log_end_offset >= self.epoch_start_offset
            })
            .map(|(r, _)| *r)
            .collect();
        if joining.is_empty() {
            return None;
        }
        let mut isr = self.record.isr.clone();
        isr.extend(joining);
        isr.sort_unstable();
        Some(isr)
    }

    /// In-sync followers not caught up within `max_lag_ms` (Kafka's
    /// `replica.lag.time.max.ms`): the ISR to propose without them. The
    /// leader always stays.
    pub fn isr_to_shrink(&self, now_ms: i64, max_lag_ms: i64) -> Option<Vec<i32>> {
        if self.pending_isr.is_some() {
            return None;
        }
        let isr: Vec<i32> = self
            .record
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.node_id
                    || self
                        .followers
                        .get(r)
                        .is_some_and(|f| now_ms - f.last_caught_up_ms <= max_lag_ms)
            })
            .collect();
        (isr.len() < self.record.isr.len()).then_some(isr)
    }

    /// The partition record that changes the ISR to `isr` (Kafka's
    /// AlterPartition): the next partition epoch, so the controller refuses
    /// it if the partition changed meanwhile.
    pub fn isr_change(&self, isr: Vec<i32>) -> PartitionRecord {
        PartitionRecord {
            isr,
            partition_epoch: self.record.partition_epoch + 1,
            ..self.record.clone()
        }
    }

    /// `isr_change(isr)`, to be proposed now: pending until the image or a
    /// refusal answers it.
    pub fn propose_isr(&mut self, isr: Vec<i32>) -> PartitionRecord {
        self.pending_isr = Some(isr.clone());
        self.isr_change(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(replicas: &[i32], isr: &[i32]) -> PartitionRecord {
        PartitionRecord {
            topic_id: uuid::Uuid::nil(),
            partition: 0,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader: 1,
            leader_epoch: 3,
            partition_epoch: 7,
            ..Default::default()
        }
    }

    #[test]
    fn the_high_watermark_is_the_lowest_end_in_the_isr_once_every_member_fetched() {
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2, 3]), 100, 0);
        assert_eq!(s.high_watermark(120), None);
        s.fetched(2, 110, 0, 120, 1);
        assert_eq!(s.high_watermark(120), None);
        s.fetched(3, 105, 0, 120, 1);
        assert_eq!(s.high_watermark(120), Some(105));
        s.fetched(3, 120, 0, 120, 2);
        assert_eq!(s.high_watermark(120), Some(110));
        // A follower outside the ISR does not hold the high watermark back.
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2]), 100, 0);
        s.fetched(2, 118, 0, 120, 1);
        assert_eq!(s.high_watermark(120), Some(118));
    }

    #[test]
    fn a_follower_joins_the_isr_once_it_reaches_the_high_watermark_and_the_epoch_start() {
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2]), 100, 0);
        s.fetched(3, 90, 0, 120, 1);
        assert_eq!(s.isr_to_expand(80), None, "below this epoch's start");
        s.fetched(3, 100, 0, 120, 2);
        assert_eq!(s.isr_to_expand(110), None, "below the high watermark");
        assert_eq!(s.isr_to_expand(100), Some(vec![1, 2, 3]));
        let change = s.propose_isr(vec![1, 2, 3]);
        assert_eq!((change.partition_epoch, change.isr), (8, vec![1, 2, 3]));
        assert_eq!(s.isr_to_expand(100), None, "one change at a time");
    }

    #[test]
    fn a_follower_not_caught_up_within_the_lag_time_leaves_the_isr() {
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2, 3]), 100, 1_000);
        assert_eq!(s.isr_to_shrink(31_000, 30_000), None);
        // 2 keeps fetching to the end; 3 fetches but stays behind.
        s.fetched(2, 100, 0, 100, 20_000);
        s.fetched(3, 50, 0, 100, 20_000);
        s.fetched(3, 60, 0, 130, 30_000);
        s.fetched(2, 130, 0, 130, 30_000);
        assert_eq!(s.isr_to_shrink(31_001, 30_000), Some(vec![1, 2]));
        // Reaching the leader's end at the previous fetch counts as caught
        // up at that fetch's time.
        s.fetched(3, 130, 0, 150, 40_000);
        assert_eq!(s.followers[&3].last_caught_up_ms, 30_000);
        assert_eq!(s.isr_to_shrink(60_000, 30_000), None);
    }

    #[test]
    fn only_in_sync_followers_holding_the_fetch_offset_may_serve_a_consumer() {
        let mut s = LeaderState::new(1, record(&[1, 2, 3, 4], &[1, 2, 3]), 100, 0);
        s.fetched(2, 120, 10, 120, 50);
        s.fetched(3, 90, 0, 120, 50);
        s.fetched(4, 120, 0, 120, 50);
        // 3 lacks offset 100, 4 is not in the ISR.
        assert_eq!(s.read_replicas(100, 70), vec![(2, 120, 20)]);
        // 2's log starts above offset 5; 3 has it.
        assert_eq!(s.read_replicas(5, 70), vec![(3, 90, 70)]);
    }

    #[test]
    fn an_update_keeps_what_followers_reported_and_ends_the_pending_change_once_the_partition_moved(
    ) {
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2]), 100, 0);
        s.fetched(3, 100, 0, 100, 5);
        let change = s.propose_isr(vec![1, 2, 3]);
        // An image that changed something else: the proposal is still out.
        s.update(record(&[1, 2, 3], &[1, 2]), 8);
        assert_eq!(s.pending_isr, Some(vec![1, 2, 3]));
        s.update(change, 10);
        assert_eq!(s.pending_isr, None);
        assert_eq!(s.followers[&3].log_end_offset, 100);
        assert_eq!(s.isr(), &[1, 2, 3]);
    }

    #[test]
    fn a_follower_being_added_holds_the_high_watermark_back_until_the_image_answers() {
        // 3 caught up and is proposed; the controller may take it into the
        // ISR (and elect it) before this leader hears so.
        let mut s = LeaderState::new(1, record(&[1, 2, 3], &[1, 2]), 100, 0);
        s.fetched(2, 100, 0, 100, 1);
        s.fetched(3, 100, 0, 100, 1);
        assert_eq!(s.high_watermark(100), Some(100));
        let isr = s.isr_to_expand(100).expect("3 caught up");
        s.propose_isr(isr);
        // The leader appends to 110 and 2 fetches it all: 3 still counts.
        s.fetched(2, 110, 0, 110, 2);
        assert_eq!(s.high_watermark(110), Some(100));
        // Refused: only the image's ISR counts again.
        s.pending_isr = None;
        assert_eq!(s.high_watermark(110), Some(110));
        // A pending shrink keeps counting the follower leaving.
        s.propose_isr(vec![1]);
        assert_eq!(s.high_watermark(110), Some(110));
        s.fetched(2, 105, 0, 110, 3);
        assert_eq!(s.high_watermark(110), Some(105));
    }

    /// A property test of the leader's rules against a controller that
    /// commits, refuses or fences, and followers whose fetches arrive late,
    /// out of order or not at all. Only `Partition`'s glue around
    /// `LeaderState` is mirrored here (`Leader::publish`, three lines: the
    /// high watermark only moves forward; `Leader::fetched`: a fetch, then
    /// the expansion it suggests).
    mod model {
        use super::*;
        use crate::metadata::controller::fence;
        use crate::metadata::image::test_util;
        use crate::metadata::{MetadataImage, MetadataRecord};
        use proptest::prelude::*;
        use uuid::Uuid;

        const LEADER: i32 = 1;
        const FOLLOWERS: [i32; 3] = [2, 3, 4];
        const MAX_LAG_MS: i64 = 100;

        #[derive(Debug, Clone)]
        enum Op {
            /// The leader appends this many records.
            Append(u8),
            /// A follower sends a fetch from its log end offset.
            Send(usize),
            /// The leader takes an in-flight fetch (the oldest, or any when
            /// fetches may be reordered); its answer reaches the follower
            /// or is lost.
            Deliver(usize, bool),
            Tick(u8),
            /// The leader's periodic ISR check.
            ShrinkCheck,
            /// The controller takes the proposed ISR change, or refuses it.
            Commit,
            /// The leader learns the controller's image.
            Learn,
            /// The controller fences a follower (silent for a session).
            Fence(usize),
            Unfence(usize),
            /// The leader leads again in a new leader epoch.
            NewEpoch,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                3 => (1u8..4).prop_map(Op::Append),
                4 => (0usize..3).prop_map(Op::Send),
                4 => (0usize..8, prop::bool::weighted(0.85)).prop_map(|(i, r)| Op::Deliver(i, r)),
                2 => any::<u8>().prop_map(Op::Tick),
                1 => Just(Op::ShrinkCheck),
                2 => Just(Op::Commit),
                2 => Just(Op::Learn),
                1 => (0usize..3).prop_map(Op::Fence),
                1 => (0usize..3).prop_map(Op::Unfence),
                1 => Just(Op::NewEpoch),
            ]
        }

        struct Leader {
            state: LeaderState,
            leo: i64,
            /// The published high watermark (`Partition::high_watermark`).
            hw: i64,
            now: i64,
            /// The controller's image, and the change proposed to it.
            image: MetadataImage,
            proposed: Option<PartitionRecord>,
            /// Each follower's real log end offset (its fetches may report
            /// less, never more).
            follower_leo: BTreeMap<i32, i64>,
            /// Fetches on their way: (follower, fetch offset, leader epoch).
            in_flight: Vec<(i32, i64, i32)>,
        }

        impl Leader {
            fn record(&self) -> PartitionRecord {
                test_util::partition(&self.image, 0)
            }

            /// `Partition::advance_high_watermark`.
            fn publish(&mut self) {
                if let Some(hw) = self.state.high_watermark(self.leo) {
                    self.hw = self.hw.max(hw);
                }
            }

            /// `Partition::follower_fetched`, then `Broker::propose_isr_change`'s
            /// KIP-841 check.
            fn fetched(&mut self, id: i32, fetch_offset: i64) -> Result<(), TestCaseError> {
                self.state.fetched(id, fetch_offset, 0, self.leo, self.now);
                if let Some(isr) = self.state.isr_to_expand(self.hw) {
                    for joining in isr.iter().filter(|r| !self.state.isr().contains(r)) {
                        let f = self.state.followers[joining];
                        prop_assert!(
                            f.log_end_offset >= self.hw && f.log_end_offset >= self.state.epoch_start_offset,
                            "{joining} joins at {} below the high watermark {} or the epoch start {}",
                            f.log_end_offset, self.hw, self.state.epoch_start_offset
                        );
                    }
                    self.propose(isr);
                }
                self.publish();
                Ok(())
            }

            fn propose(&mut self, isr: Vec<i32>) {
                let fenced = isr
                    .iter()
                    .any(|r| self.image.broker(*r).is_none_or(|b| b.fenced));
                let change = self.state.propose_isr(isr);
                if fenced {
                    self.state.pending_isr = None;
                } else {
                    self.proposed = Some(change);
                }
            }

            fn apply(&mut self, op: &Op, reorder: bool) -> Result<(), TestCaseError> {
                match *op {
                    Op::Append(n) => {
                        self.leo += i64::from(n);
                        self.publish();
                    }
                    Op::Send(i) => {
                        let f = FOLLOWERS[i];
                        let epoch = self.state.record.leader_epoch;
                        self.in_flight.push((f, self.follower_leo[&f], epoch));
                    }
                    Op::Deliver(i, answered) => {
                        if self.in_flight.is_empty() {
                            return Ok(());
                        }
                        let i = if reorder { i % self.in_flight.len() } else { 0 };
                        let (f, offset, epoch) = self.in_flight.remove(i);
                        // A fetch of another leader epoch is refused.
                        if epoch == self.state.record.leader_epoch {
                            self.fetched(f, offset)?;
                            if answered {
                                let leo = self.follower_leo.get_mut(&f).unwrap();
                                *leo = (*leo).max(self.leo);
                            }
                        }
                    }
                    Op::Tick(ms) => self.now += i64::from(ms),
                    Op::ShrinkCheck => {
                        if let Some(isr) = self.state.isr_to_shrink(self.now, MAX_LAG_MS) {
                            prop_assert!(isr.contains(&LEADER), "the leader left the ISR: {isr:?}");
                            self.propose(isr);
                        }
                    }
                    Op::Commit => {
                        if let Some(change) = self.proposed.take() {
                            let batch = [MetadataRecord::Partition(change)];
                            if self.image.apply_batch(&batch).is_err() {
                                self.state.pending_isr = None;
                            }
                        }
                    }
                    Op::Learn => {
                        let record = self.record();
                        if record.leader_epoch == self.state.record.leader_epoch {
                            self.state.update(record, self.now);
                            self.publish();
                        }
                    }
                    Op::Fence(i) => {
                        let records = fence(&self.image, FOLLOWERS[i]);
                        self.image.apply_all(&records);
                    }
                    Op::Unfence(i) => {
                        let id = FOLLOWERS[i];
                        self.image.apply(&MetadataRecord::BrokerFencing {
                            id,
                            incarnation: Uuid::from_u128(id as u128),
                            fenced: false,
                        });
                    }
                    Op::NewEpoch => {
                        let current = self.record();
                        let next = PartitionRecord {
                            leader_epoch: current.leader_epoch + 1,
                            partition_epoch: current.partition_epoch + 1,
                            ..current
                        };
                        self.image.apply(&MetadataRecord::Partition(next.clone()));
                        self.proposed = None;
                        self.state = LeaderState::new(LEADER, next, self.leo, self.now);
                        self.publish();
                    }
                }
                Ok(())
            }

            /// What must hold after every step.
            fn check(
                &self,
                hw_before: i64,
                epoch_before: i32,
                reorder: bool,
            ) -> Result<(), TestCaseError> {
                prop_assert!(
                    self.hw <= self.leo,
                    "high watermark {} past the log end {}",
                    self.hw,
                    self.leo
                );
                let controller_isr = self.record().isr;
                for m in controller_isr.iter().chain(self.state.isr()) {
                    if *m == LEADER {
                        continue;
                    }
                    prop_assert!(
                        self.hw <= self.follower_leo[m],
                        "high watermark {} past the log end {} of {m}, in the ISR of the controller {:?} or the leader {:?}",
                        self.hw, self.follower_leo[m], controller_isr, self.state.isr()
                    );
                }
                prop_assert!(self.state.isr().contains(&LEADER));
                // With fetches taken in order, what the ISR allows never
                // falls behind what was published in this epoch.
                if !reorder && self.state.record.leader_epoch == epoch_before {
                    if let Some(allowed) = self.state.high_watermark(self.leo) {
                        prop_assert!(
                            allowed >= hw_before,
                            "the ISR {:?} allows {allowed}, below the published {hw_before}",
                            self.state.isr()
                        );
                    }
                }
                Ok(())
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
            #[test]
            fn the_high_watermark_never_passes_an_in_sync_replica_and_never_moves_back(
                initial_isr in prop::sample::subsequence(FOLLOWERS.to_vec(), 0..=3),
                reorder in any::<bool>(),
                ops in prop::collection::vec(op(), 1..120),
            ) {
                let mut isr = vec![LEADER];
                isr.extend(&initial_isr);
                let image = test_util::image(
                    &[(1, false), (2, false), (3, false), (4, false)],
                    &[(&[1, 2, 3, 4], &isr, LEADER)],
                );
                let record = test_util::partition(&image, 0);
                let mut leader = Leader {
                    state: LeaderState::new(LEADER, record, 0, 0),
                    leo: 0,
                    hw: 0,
                    now: 0,
                    image,
                    proposed: None,
                    follower_leo: FOLLOWERS.iter().map(|f| (*f, 0)).collect(),
                    in_flight: Vec::new(),
                };
                for op in &ops {
                    let (hw_before, epoch_before) = (leader.hw, leader.state.record.leader_epoch);
                    leader.apply(op, reorder)?;
                    prop_assert!(leader.hw >= hw_before);
                    leader.check(hw_before, epoch_before, reorder)?;
                }
            }
        }
    }
}
