//! A deterministic model of one partition replicated on three brokers, for
//! property tests that no acknowledged offset is ever cut. Test-only.
//!
//! Everything that decides is production code: each broker's replica is a
//! real [`Partition`] over a real log (its `LeaderState`, high watermark,
//! leader-epoch cache, `diverging_epoch`, `diverging_truncation_offset`,
//! `truncate_to`), the controller is a real [`MetadataImage`] changed by
//! `controller::fence`, `election::elect_leaderless` and
//! `election::rebalance`, and ISR changes are applied with the image's
//! partition-epoch check. Only the glue is written here, step for step as
//! the I/O code does it: `Broker::follow_leadership` (lead or follow the
//! image), `api::replica_fetch::handle` (the leader's side of a replica
//! fetch), `replica_fetcher::apply` (the follower's side),
//! `Broker::propose_isr_change` (KIP-841's check, then the proposal) and the
//! controller's duties. No sockets, tasks, clocks or sleeps: time, messages,
//! crashes and partitions are steps a proptest strategy chooses.
//!
//! Not modelled: power loss (a kill here loses nothing written), retention
//! and a follower starting over at the leader's log start, reassignments,
//! unclean elections. `MODEL_CASES=n` runs more cases, `MODEL_TRACE=1`
//! prints the steps of a failing run, `MODEL_STATS=1` what each run did.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use proptest::prelude::*;
use tempfile::TempDir;
use uuid::Uuid;

use super::partition::{Partition, Role};
use crate::log::batch::test_util::batch;
use crate::log::{AppendOrigin, BatchHeader, Log, LogConfig};
use crate::metadata::image::test_util;
use crate::metadata::records::{BrokerRegistration, PartitionRecord};
use crate::metadata::{controller, election, MetadataImage, MetadataRecord};

const BROKERS: [i32; 3] = [1, 2, 3];
/// `replica.lag.time.max.ms`.
const MAX_LAG_MS: i64 = 100;

/// One record as the model knows it: the leader epoch of its batch and the
/// batch's unique id (its timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    epoch: i32,
    id: i64,
}

/// An offset some replica's high watermark passed: what was there, and the
/// leader epoch that replica knew then. Every leader of that epoch or a
/// later one must hold it.
#[derive(Debug, Clone, Copy)]
struct Acked {
    entry: Entry,
    epoch: i32,
}

/// A replica fetch's answer on its way back to the follower.
struct Answer {
    /// The leader epoch the follower fetched in.
    leader_epoch: i32,
    diverging: Option<(i32, i64)>,
    records: Bytes,
    high_watermark: i64,
    log_start_offset: i64,
}

struct Node {
    id: i32,
    dir: TempDir,
    /// The replica while the process runs.
    partition: Option<Partition>,
    incarnation: u32,
    /// The image the broker last followed.
    seen: Option<MetadataImage>,
    /// The replication-offset checkpoint.
    hw_checkpoint: i64,
    /// Cut off from the other brokers and the controller.
    isolated: bool,
    answer: Option<Answer>,
    /// The log end offset when the process died (a kill loses nothing
    /// written: the page cache survives it).
    leo_at_crash: i64,
    /// The high watermark at the last check, since the process started.
    last_hw: i64,
}

fn incarnation(id: i32, n: u32) -> Uuid {
    // Incarnation 0 is `test_util::image`'s.
    Uuid::from_u128(id as u128 + 1000 * n as u128)
}

#[derive(Debug, Clone)]
enum Op {
    /// A producer writes this many records to whoever thinks it leads.
    Produce(usize, u8),
    /// A follower's replica fetch reaches its leader (one batch, or all).
    Fetch(usize, bool),
    /// The answer reaches the follower, or is lost.
    Answer(usize, bool),
    /// The broker follows the controller's latest image.
    Learn(usize),
    ShrinkCheck(usize),
    /// The broker writes its high-watermark checkpoint.
    Checkpoint(usize),
    /// kill -9.
    Crash(usize),
    Restart(usize),
    Isolate(usize),
    Heal(usize),
    /// The controller takes the oldest proposed ISR change, or refuses it.
    Commit,
    /// The controller takes it, but the answer is lost: the proposer's
    /// `propose` times out (not in the strategy: see the ignored test).
    CommitUnanswered,
    /// The controller fences a broker (missed heartbeats) and elects.
    Fence(usize),
    /// A live, reachable broker heartbeats again.
    Unfence(usize),
    /// `auto.leader.rebalance.enable` / ElectLeaders PREFERRED.
    Rebalance,
    Tick(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let node = 0usize..3;
    prop_oneof![
        8 => (node.clone(), 1u8..4).prop_map(|(n, k)| Op::Produce(n, k)),
        8 => (node.clone(), any::<bool>()).prop_map(|(n, b)| Op::Fetch(n, b)),
        8 => (node.clone(), prop::bool::weighted(0.9)).prop_map(|(n, d)| Op::Answer(n, d)),
        5 => node.clone().prop_map(Op::Learn),
        4 => Just(Op::Commit),
        2 => node.clone().prop_map(Op::ShrinkCheck),
        1 => node.clone().prop_map(Op::Checkpoint),
        3 => (0u8..60).prop_map(Op::Tick),
        2 => node.clone().prop_map(Op::Crash),
        3 => node.clone().prop_map(Op::Restart),
        1 => node.clone().prop_map(Op::Isolate),
        2 => node.clone().prop_map(Op::Heal),
        3 => node.clone().prop_map(Op::Fence),
        3 => node.prop_map(Op::Unfence),
        2 => Just(Op::Rebalance),
    ]
}

/// Every record of `p`'s log, by offset (the model's logs start at 0).
fn entries(p: &Partition) -> Vec<Entry> {
    let (start, end) = p.log_bounds();
    assert_eq!(start, 0, "no retention in the model");
    let mut out = Vec::new();
    while (out.len() as i64) < end {
        let bytes = p
            .read_for_follower(out.len() as i64, usize::MAX)
            .expect("read");
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let h = BatchHeader::parse(rest).expect("batch header");
            assert_eq!(h.base_offset, out.len() as i64, "offsets are contiguous");
            for _ in h.base_offset..=h.last_offset() {
                out.push(Entry {
                    epoch: h.partition_leader_epoch,
                    id: h.max_timestamp,
                });
            }
            rest = &rest[h.total_size()..];
        }
    }
    out
}

fn scratch_dir() -> TempDir {
    // tmpfs where there is one: truncation and epoch checkpoints fsync.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("temporary directory")
}

struct World {
    nodes: Vec<Node>,
    /// The controller's image (committed metadata).
    image: MetadataImage,
    /// ISR changes on their way to the controller: (broker, incarnation, record).
    proposals: VecDeque<(i32, u32, PartitionRecord)>,
    now: i64,
    next_id: i64,
    acked: BTreeMap<i64, Acked>,
    config: LogConfig,
    /// What happened, for the failure message.
    trace: Vec<String>,
}

impl World {
    fn new(replicas: &[i32]) -> World {
        let config = LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            ..LogConfig::default()
        };
        let image = test_util::image(
            &[(1, false), (2, false), (3, false)],
            &[(replicas, &[1, 2, 3], replicas[0])],
        );
        let nodes = BROKERS
            .iter()
            .map(|id| {
                let dir = scratch_dir();
                let log = Log::open(dir.path(), config.clone(), 0, 0).expect("open log");
                Node {
                    id: *id,
                    dir,
                    partition: Some(Partition::with_high_watermark("t", 0, log, 0)),
                    incarnation: 0,
                    seen: None,
                    hw_checkpoint: 0,
                    isolated: false,
                    answer: None,
                    leo_at_crash: 0,
                    last_hw: 0,
                }
            })
            .collect();
        let mut world = World {
            nodes,
            image,
            proposals: VecDeque::new(),
            now: 1_000,
            next_id: 1,
            acked: BTreeMap::new(),
            config,
            trace: Vec::new(),
        };
        for i in 0..3 {
            world.learn(i);
        }
        world
    }

    fn record(&self) -> PartitionRecord {
        test_util::partition(&self.image, 0)
    }

    fn index(id: i32) -> usize {
        (id - 1) as usize
    }

    /// The active controller's duties after a change: elect leaders (clean
    /// only) for partitions without one.
    fn controller_duties(&mut self) {
        let elected = election::elect_leaderless(&self.image, false);
        self.commit_records(&elected);
    }

    fn commit_records(&mut self, records: &[MetadataRecord]) {
        if records.is_empty() {
            return;
        }
        self.image
            .apply_batch(records)
            .expect("the controller's own records fit its image");
        let p = self.record();
        self.trace.push(format!(
            "  image: leader {} epoch {} isr {:?} (partition epoch {})",
            p.leader, p.leader_epoch, p.isr, p.partition_epoch
        ));
    }

    /// `Broker::follow_leadership` for the one partition.
    fn learn(&mut self, i: usize) {
        let record = self.record();
        let now = self.now;
        let node = &mut self.nodes[i];
        let Some(p) = &node.partition else { return };
        if node.isolated {
            return;
        }
        node.seen = Some(self.image.clone());
        if record.leader == node.id {
            p.lead(node.id, &record, now);
        } else {
            p.follow(record.leader, record.leader_epoch);
        }
    }

    /// `Broker::propose_isr_change`: KIP-841's check against the broker's
    /// image, then the proposal (lost at once when the broker is cut off:
    /// it times out).
    fn propose(&mut self, i: usize, record: PartitionRecord) {
        let node = &self.nodes[i];
        let Some(p) = &node.partition else { return };
        let fenced = node.seen.as_ref().is_none_or(|image| {
            record
                .isr
                .iter()
                .any(|r| image.broker(*r).is_none_or(|b| b.fenced))
        });
        if fenced || node.isolated {
            p.isr_change_failed();
            return;
        }
        self.trace.push(format!(
            "  {} proposes isr {:?} at partition epoch {}",
            node.id, record.isr, record.partition_epoch
        ));
        self.proposals
            .push_back((node.id, node.incarnation, record));
    }

    /// A replica fetch from follower `i`: the follower's request, then
    /// `api::replica_fetch::handle` on its leader.
    fn fetch(&mut self, i: usize, one_batch: bool) {
        let now = self.now;
        let node = &self.nodes[i];
        if node.isolated || node.answer.is_some() {
            return;
        }
        let Some(p) = &node.partition else { return };
        let Role::Follower {
            leader,
            leader_epoch,
        } = p.role()
        else {
            return;
        };
        if leader < 0 {
            return;
        }
        let leader_node = &self.nodes[Self::index(leader)];
        let Some(lp) = &leader_node.partition else {
            return;
        };
        // `fetch::leader_of`: the replica leads, in the epoch asked for.
        if leader_node.isolated || !lp.is_leading() || lp.leader_epoch() != leader_epoch {
            return;
        }
        let (log_start_offset, fetch_offset) = p.log_bounds();
        let diverging = lp.diverging_epoch(p.latest_epoch(), fetch_offset);
        let mut change = None;
        if diverging.is_none() {
            change = lp.follower_fetched(node.id, fetch_offset, log_start_offset, now);
        }
        let records = match diverging {
            Some(_) => Bytes::new(),
            None => {
                let max = if one_batch { 1 } else { usize::MAX };
                match lp.read_for_follower(fetch_offset, max) {
                    Ok(records) => records,
                    Err(_) => return,
                }
            }
        };
        let answer = Answer {
            leader_epoch,
            diverging,
            records,
            high_watermark: lp.high_watermark(),
            log_start_offset: lp.log_bounds().0,
        };
        self.trace.push(format!(
            "  {} fetched from {leader} at {fetch_offset}: hw {}, diverging {:?}",
            node.id, answer.high_watermark, answer.diverging
        ));
        self.nodes[i].answer = Some(answer);
        if let Some(change) = change {
            self.propose(Self::index(leader), change);
        }
    }

    /// The answer reaches follower `i`: `replica_fetcher::apply`.
    fn answer(&mut self, i: usize, delivered: bool) -> Result<(), TestCaseError> {
        let node = &mut self.nodes[i];
        let Some(answer) = node.answer.take() else {
            return Ok(());
        };
        let Some(p) = &node.partition else {
            return Ok(());
        };
        if !delivered || node.isolated {
            return Ok(());
        }
        // The image moved on while the fetch was out.
        if p.is_leading() || p.leader_epoch() != answer.leader_epoch {
            return Ok(());
        }
        if let Some((epoch, end_offset)) = answer.diverging {
            let before = entries(p);
            let hw = p.high_watermark();
            let to = p.diverging_truncation_offset(epoch, end_offset);
            prop_assert!(
                to >= hw,
                "{} is told to cut at {to}, below its high watermark {hw} (diverging epoch {epoch} ending at {end_offset})",
                node.id
            );
            p.truncate_to(to).expect("truncate");
            let after = p.log_end_offset();
            self.trace.push(format!(
                "  {} truncated to {after} (from {})",
                node.id,
                before.len()
            ));
            for (offset, entry) in before.iter().enumerate().skip(after as usize) {
                if let Some(acked) = self.acked.get(&(offset as i64)) {
                    prop_assert!(
                        acked.entry != *entry,
                        "{} cut acknowledged offset {offset} ({entry:?})",
                        node.id
                    );
                }
            }
            return Ok(());
        }
        let mut records = answer.records.to_vec();
        p.append_as_follower(&mut records, answer.high_watermark)
            .expect("a follower appends its leader's batches");
        p.follow_log_start_offset(answer.log_start_offset)
            .expect("log start");
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.trace.push(format!("{op:?}"));
        match *op {
            Op::Produce(i, n) => {
                // To one of the brokers that think they lead (a producer's
                // metadata may be stale).
                let now = self.now;
                let leaders: Vec<&Node> = self
                    .nodes
                    .iter()
                    .filter(|n| !n.isolated && n.partition.as_ref().is_some_and(|p| p.is_leading()))
                    .collect();
                if leaders.is_empty() {
                    return Ok(());
                }
                let node = leaders[i % leaders.len()];
                let p = node.partition.as_ref().expect("running");
                let mut b = batch(usize::from(n), self.next_id);
                self.next_id += 1;
                let info = p.append(&mut b, AppendOrigin::Client, now).expect("append");
                self.trace.push(format!(
                    "  {} appended {}..={} in epoch {}",
                    node.id,
                    info.base_offset,
                    info.last_offset,
                    p.leader_epoch()
                ));
            }
            Op::Fetch(i, one_batch) => self.fetch(i, one_batch),
            Op::Answer(i, delivered) => self.answer(i, delivered)?,
            Op::Learn(i) => self.learn(i),
            Op::ShrinkCheck(i) => {
                let now = self.now;
                let change = match &self.nodes[i].partition {
                    Some(p) => p.isr_shrink(now, MAX_LAG_MS),
                    None => None,
                };
                if let Some(change) = change {
                    prop_assert!(
                        change.isr.contains(&self.nodes[i].id),
                        "a leader shrank itself out: {change:?}"
                    );
                    self.propose(i, change);
                }
            }
            Op::Checkpoint(i) => {
                if let Some(p) = &self.nodes[i].partition {
                    self.nodes[i].hw_checkpoint = p.high_watermark();
                }
            }
            Op::Crash(i) => {
                let node = &mut self.nodes[i];
                if let Some(p) = node.partition.take() {
                    node.leo_at_crash = p.log_end_offset();
                }
                node.answer = None;
            }
            Op::Restart(i) => self.restart(i)?,
            Op::Isolate(i) => self.nodes[i].isolated = true,
            Op::Heal(i) => self.nodes[i].isolated = false,
            Op::Commit => self.commit(false),
            Op::CommitUnanswered => self.commit(true),
            Op::Fence(i) => {
                let id = self.nodes[i].id;
                if self.image.broker(id).is_some_and(|b| !b.fenced) {
                    let records = controller::fence(&self.image, id);
                    self.commit_records(&records);
                    self.controller_duties();
                }
            }
            Op::Unfence(i) => self.unfence(i),
            Op::Rebalance => {
                let records = election::rebalance(&self.image);
                self.commit_records(&records);
            }
            Op::Tick(ms) => self.now += i64::from(ms),
        }
        Ok(())
    }

    fn commit(&mut self, unanswered: bool) {
        let Some((id, incarnation, record)) = self.proposals.pop_front() else {
            return;
        };
        let refused = self
            .image
            .apply_batch(&[MetadataRecord::Partition(record)])
            .is_err();
        if refused || unanswered {
            self.trace
                .push(format!("  {id} hears its isr change failed"));
            let node = &self.nodes[Self::index(id)];
            if node.incarnation == incarnation {
                if let Some(p) = &node.partition {
                    p.isr_change_failed();
                }
            }
        }
        if !refused {
            let p = self.record();
            self.trace.push(format!(
                "  committed {id}'s isr {:?} (partition epoch {})",
                p.isr, p.partition_epoch
            ));
            self.controller_duties();
        }
    }

    fn unfence(&mut self, i: usize) {
        let node = &self.nodes[i];
        if node.partition.is_none() || node.isolated {
            return;
        }
        if self.image.broker(node.id).is_some_and(|b| b.fenced) {
            let record = MetadataRecord::BrokerFencing {
                id: node.id,
                incarnation: incarnation(node.id, node.incarnation),
                fenced: false,
            };
            self.commit_records(&[record]);
            self.controller_duties();
        }
    }

    /// The process starts again: the log recovered from disk, the high
    /// watermark from its checkpoint, a new incarnation registered, and
    /// the image followed before anything is served.
    fn restart(&mut self, i: usize) -> Result<(), TestCaseError> {
        let node = &mut self.nodes[i];
        if node.partition.is_some() || node.isolated {
            return Ok(());
        }
        let log = Log::open(node.dir.path(), self.config.clone(), 0, 0).expect("reopen log");
        prop_assert_eq!(
            log.log_end_offset(),
            node.leo_at_crash,
            "a kill loses nothing written"
        );
        node.partition = Some(Partition::with_high_watermark(
            "t",
            0,
            log,
            node.hw_checkpoint,
        ));
        node.incarnation += 1;
        node.seen = None;
        node.last_hw = node.hw_checkpoint.min(node.leo_at_crash);
        let registration = MetadataRecord::RegisterBroker(BrokerRegistration {
            id: node.id,
            incarnation: incarnation(node.id, node.incarnation),
            endpoints: Vec::new(),
            rack: None,
            fenced: false,
        });
        self.commit_records(&[registration]);
        self.controller_duties();
        self.learn(i);
        Ok(())
    }

    /// What must hold after every step: a replica's high watermark never
    /// passes its log end and never moves back while it runs; offsets under
    /// any replica's high watermark are acknowledged and never change; every
    /// leader of the epoch that saw an acknowledgement, or of a later one,
    /// holds it; a clean election only ever picks an in-sync replica.
    fn check(&mut self) -> Result<(), TestCaseError> {
        let p = self.record();
        if p.leader >= 0 {
            prop_assert!(p.isr.contains(&p.leader), "leader outside the ISR: {p:?}");
        }
        prop_assert!(!p.isr.is_empty());
        for node in &mut self.nodes {
            let Some(p) = &node.partition else { continue };
            let log = entries(p);
            let hw = p.high_watermark();
            prop_assert!(
                hw <= log.len() as i64,
                "{}: high watermark {hw} past its log end {}",
                node.id,
                log.len()
            );
            prop_assert!(
                hw >= node.last_hw,
                "{}: high watermark back from {} to {hw}",
                node.id,
                node.last_hw
            );
            node.last_hw = hw;
            for (offset, entry) in log.iter().enumerate().take(hw as usize) {
                let acked = self.acked.entry(offset as i64).or_insert(Acked {
                    entry: *entry,
                    epoch: p.leader_epoch(),
                });
                prop_assert_eq!(
                    acked.entry,
                    *entry,
                    "{}'s high watermark {} covers another record at acknowledged offset {}",
                    node.id,
                    hw,
                    offset
                );
            }
        }
        for node in &self.nodes {
            let Some(p) = &node.partition else { continue };
            if !p.is_leading() {
                continue;
            }
            let log = entries(p);
            for (offset, acked) in &self.acked {
                if p.leader_epoch() < acked.epoch {
                    continue;
                }
                prop_assert_eq!(
                    log.get(*offset as usize),
                    Some(&acked.entry),
                    "{} leads epoch {} without acknowledged offset {} (acknowledged in epoch {})",
                    node.id,
                    p.leader_epoch(),
                    offset,
                    acked.epoch
                );
            }
        }
        Ok(())
    }

    /// Every fault heals: every broker runs, reachable and unfenced, and
    /// replication runs until the replicas agree.
    fn converge(&mut self) -> Result<(), TestCaseError> {
        self.trace.push("-- heal".into());
        for i in 0..3 {
            self.nodes[i].isolated = false;
            self.restart(i)?;
        }
        for _ in 0..40 {
            for i in 0..3 {
                self.unfence(i);
            }
            while !self.proposals.is_empty() {
                self.commit(false);
            }
            for i in 0..3 {
                self.learn(i);
            }
            self.check()?;
            for i in 0..3 {
                self.fetch(i, false);
                self.answer(i, true)?;
            }
            self.now += 1;
            self.check()?;
            if self.converged() {
                return Ok(());
            }
        }
        let logs: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                let p = n.partition.as_ref().expect("running");
                (n.id, p.role(), p.log_bounds().1, p.high_watermark())
            })
            .collect();
        prop_assert!(false, "no convergence: {:?} {:?}", self.record(), logs);
        Ok(())
    }

    fn converged(&self) -> bool {
        let record = self.record();
        if record.leader < 0 || record.isr.len() != 3 {
            return false;
        }
        let leader = self.nodes[Self::index(record.leader)]
            .partition
            .as_ref()
            .expect("running");
        let log = entries(leader);
        self.nodes.iter().all(|n| {
            let p = n.partition.as_ref().expect("running");
            entries(p) == log && p.high_watermark() == log.len() as i64
        })
    }
}

fn run(replicas: &[i32], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut world = World::new(replicas);
    let outcome = (|| {
        for op in ops {
            world.apply(op)?;
            world.check()?;
        }
        world.converge()?;
        for node in &world.nodes {
            let log = entries(node.partition.as_ref().expect("running"));
            for (offset, acked) in &world.acked {
                prop_assert_eq!(
                    log.get(*offset as usize),
                    Some(&acked.entry),
                    "{} lost acknowledged offset {}",
                    node.id,
                    offset
                );
            }
        }
        Ok(())
    })();
    if std::env::var_os("MODEL_STATS").is_some() {
        let t = |w: &str| world.trace.iter().filter(|l| l.contains(w)).count();
        eprintln!(
            "acked {} epochs {} truncations {} committed {} failed {} produced {}",
            world.acked.len(),
            world.record().leader_epoch,
            t("truncated to"),
            t("committed"),
            t("failed"),
            t("appended")
        );
    }
    if outcome.is_err() && std::env::var_os("MODEL_TRACE").is_some() {
        eprintln!("{}", world.trace.join("\n"));
    }
    outcome
}

/// 256 unless `MODEL_CASES` says otherwise (about 5 s in a debug build).
fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn no_acknowledged_offset_is_cut_by_any_sequence_of_crashes_and_elections(
        replicas in Just(BROKERS.to_vec()).prop_shuffle(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        run(&replicas, &ops)?;
    }
}

/// Found by the property above (before the leader counted a proposed ISR):
/// broker 1 catches up with leader 3 and is proposed for the ISR; 3 takes a
/// write past it (alone in the ISR it knows) and acknowledges it; the
/// controller commits ISR [1, 3], and the preferred-leader election gives 1,
/// first in replica order, the leadership before 3 hears of the new ISR.
/// Offset 0 was acknowledged and 1 never had it.
#[test]
fn a_replica_elected_as_it_joins_the_isr_holds_every_acknowledged_offset() {
    use Op::*;
    let ops = [
        // 1 and 2 miss heartbeats: 3 leads alone.
        Fence(0),
        Fence(1),
        Learn(0),
        Unfence(0),
        Learn(2),
        // 1 is caught up (at 0): 3 proposes ISR [1, 3].
        Fetch(0, false),
        // 3 appends offset 0; the ISR it knows is [3].
        Produce(2, 1),
        Commit,
        Rebalance,
    ];
    run(&[1, 2, 3], &ops).unwrap();
}

/// The race above, still open one way: the controller commits the ISR
/// change but its answer times out, so `Broker::propose_isr_change` calls
/// `isr_change_failed` and the leader stops counting the follower before it
/// hears the image. Kafka keeps the change pending and retries the
/// AlterPartition until it is answered.
#[test]
#[ignore = "known gap: an ISR change committed after its proposal timed out"]
fn an_isr_change_whose_answer_is_lost_still_holds_the_high_watermark_back() {
    use Op::*;
    let ops = [
        Fence(0),
        Fence(1),
        Learn(0),
        Unfence(0),
        Learn(2),
        Fetch(0, false),
        CommitUnanswered,
        Produce(2, 1),
        Rebalance,
    ];
    run(&[1, 2, 3], &ops).unwrap();
}
