//! The nemesis: the faults a run injects and heals, one at a time. Each
//! start and heal is recorded in the run's history (process 0) and printed
//! with the time, so a log shows which faults fired and when. Chooses its
//! victims with the run's seeded `Rng`; acts only through `Net` and `Nodes`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::history::{Event, History};
use super::net::Net;
use super::nodes::Nodes;
use super::Rng;

/// The history's process id of the nemesis.
pub const NEMESIS: u32 = 0;

/// The partition whose leader the leader nemeses aim at.
pub const TARGET_PARTITION: i32 = 0;

/// How long a rolling restart waits for the topic to converge after each
/// node comes back, before it moves on anyway.
const ROLLING_CONVERGE: Duration = Duration::from_secs(60);

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nemesis {
    /// The leader of the topic's partition 0 cut off from every other node.
    IsolateLeader,
    /// The active controller cut off from every other node.
    IsolateController,
    /// Random halves: a minority (n/2 nodes) cut off from the majority.
    MajorityMinority,
    /// Two sides that cannot see each other and one node that sees both.
    Bridge,
    /// The others drop every packet from the leader: the leader cannot send
    /// to them, but still receives what they send.
    OneWayLoss,
    /// 30 % of the packets into the leader dropped at random.
    PacketLoss,
    /// The leader's link slowed (netem delay, or a tbf rate limit).
    Slow,
    /// SIGKILL of a random node.
    KillRandom,
    /// SIGKILL of the leader.
    KillLeader,
    /// SIGKILL of the active controller.
    KillController,
    /// SIGSTOP of the leader: it wakes up believing it still leads.
    PauseLeader,
    /// SIGSTOP of the active controller.
    PauseController,
    /// The small-disk node's filesystem filled to the last byte.
    DiskFull,
    /// SIGTERM and restart of every node in turn (done when `inject`
    /// returns).
    RollingRestart,
}

impl Nemesis {
    pub const ALL: [Nemesis; 14] = [
        Nemesis::IsolateLeader,
        Nemesis::IsolateController,
        Nemesis::MajorityMinority,
        Nemesis::Bridge,
        Nemesis::OneWayLoss,
        Nemesis::PacketLoss,
        Nemesis::Slow,
        Nemesis::KillRandom,
        Nemesis::KillLeader,
        Nemesis::KillController,
        Nemesis::PauseLeader,
        Nemesis::PauseController,
        Nemesis::DiskFull,
        Nemesis::RollingRestart,
    ];

    /// The kebab-case name (`isolate-leader`, …).
    pub fn name(self) -> &'static str {
        match self {
            Nemesis::IsolateLeader => "isolate-leader",
            Nemesis::IsolateController => "isolate-controller",
            Nemesis::MajorityMinority => "majority-minority",
            Nemesis::Bridge => "bridge",
            Nemesis::OneWayLoss => "one-way-loss",
            Nemesis::PacketLoss => "packet-loss",
            Nemesis::Slow => "slow",
            Nemesis::KillRandom => "kill-random",
            Nemesis::KillLeader => "kill-leader",
            Nemesis::KillController => "kill-controller",
            Nemesis::PauseLeader => "pause-leader",
            Nemesis::PauseController => "pause-controller",
            Nemesis::DiskFull => "disk-full",
            Nemesis::RollingRestart => "rolling-restart",
        }
    }

    /// The nemesis named `name` (as [`Nemesis::name`] spells it).
    pub fn parse(name: &str) -> Option<Nemesis> {
        Nemesis::ALL.into_iter().find(|n| n.name() == name.trim())
    }
}

impl std::fmt::Display for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault in force: what was done, and what heals it.
#[must_use = "a fault must be healed"]
#[derive(Debug)]
pub struct Fault {
    pub nemesis: Nemesis,
    /// What was done, to which nodes (as recorded in the history).
    pub description: String,
    /// The nodes the fault hit.
    pub nodes: Vec<i32>,
    undo: Undo,
}

#[derive(Debug)]
enum Undo {
    /// Clear every network rule and qdisc.
    Network,
    /// Start these killed nodes again.
    Start(Vec<i32>),
    /// SIGCONT this node.
    Resume(i32),
    /// Free this node's disk (and start it if the full disk stopped it).
    FreeDisk(i32),
    /// Nothing is left to undo.
    Nothing,
}

/// Injects `nemesis` (victims chosen with `rng`; the leader nemeses aim at
/// partition [`TARGET_PARTITION`] of `topic`), records it in `history`,
/// and returns the fault for [`heal`]. A rolling restart runs to its end
/// here. Panics for `DiskFull` when no node has a small disk.
pub fn inject(
    nemesis: Nemesis,
    nodes: &mut Nodes,
    net: &Net,
    rng: &mut Rng,
    topic: &str,
    history: &History,
) -> Fault {
    let up = up_nodes(nodes);
    let fault = |description: String, hit: Vec<i32>, undo: Undo| Fault {
        nemesis,
        description: format!("{nemesis}: {description}"),
        nodes: hit,
        undo,
    };
    let all = nodes.ids();
    let others = |id: i32| -> Vec<i32> { all.iter().copied().filter(|o| *o != id).collect() };
    let fault = match nemesis {
        Nemesis::IsolateLeader | Nemesis::IsolateController => {
            let (victim, why) = if nemesis == Nemesis::IsolateLeader {
                leader_or_random(nodes, rng, topic)
            } else {
                controller_or_random(nodes, rng)
            };
            net.partition(&[vec![victim], others(victim)]);
            fault(
                format!(
                    "node {victim} ({why}) cut off from nodes {:?}",
                    others(victim)
                ),
                vec![victim],
                Undo::Network,
            )
        }
        Nemesis::MajorityMinority => {
            let mut ids = nodes.ids();
            shuffle(&mut ids, rng);
            let (minority, majority) = ids.split_at(ids.len() / 2);
            let (mut minority, mut majority) = (minority.to_vec(), majority.to_vec());
            minority.sort();
            majority.sort();
            net.partition(&[minority.clone(), majority.clone()]);
            fault(
                format!("minority {minority:?} | majority {majority:?}"),
                minority,
                Undo::Network,
            )
        }
        Nemesis::Bridge => {
            let mut ids = nodes.ids();
            shuffle(&mut ids, rng);
            let middle = ids[0];
            let rest = &ids[1..];
            let (left, right) = rest.split_at(rest.len() / 2);
            let (mut left, mut right) = (left.to_vec(), right.to_vec());
            left.sort();
            right.sort();
            net.bridge(&left, &right, middle);
            fault(
                format!("{left:?} | {middle} | {right:?}: node {middle} sees both sides"),
                vec![middle],
                Undo::Network,
            )
        }
        Nemesis::OneWayLoss => {
            let (leader, why) = leader_or_random(nodes, rng, topic);
            for other in others(leader) {
                net.one_way(leader, other);
            }
            fault(
                format!(
                    "nodes {:?} drop every packet from node {leader} ({why}); \
                     node {leader} still receives theirs",
                    others(leader)
                ),
                vec![leader],
                Undo::Network,
            )
        }
        Nemesis::PacketLoss => {
            let (leader, why) = leader_or_random(nodes, rng, topic);
            net.lose(leader, 30);
            fault(
                format!("30% of packets into node {leader} ({why}) dropped"),
                vec![leader],
                Undo::Network,
            )
        }
        Nemesis::Slow => {
            let (leader, why) = leader_or_random(nodes, rng, topic);
            let how = net.slow(leader);
            fault(
                format!("node {leader} ({why}) slowed: {how}"),
                vec![leader],
                Undo::Network,
            )
        }
        Nemesis::KillRandom | Nemesis::KillLeader | Nemesis::KillController => {
            let (victim, why) = match nemesis {
                Nemesis::KillLeader => leader_or_random(nodes, rng, topic),
                Nemesis::KillController => controller_or_random(nodes, rng),
                _ => random_up(&up, rng),
            };
            nodes.kill9(victim);
            fault(
                format!("SIGKILL node {victim} ({why})"),
                vec![victim],
                Undo::Start(vec![victim]),
            )
        }
        Nemesis::PauseLeader | Nemesis::PauseController => {
            let (victim, why) = if nemesis == Nemesis::PauseLeader {
                leader_or_random(nodes, rng, topic)
            } else {
                controller_or_random(nodes, rng)
            };
            let paused = nodes.pause(victim);
            fault(
                format!(
                    "SIGSTOP node {victim} ({why}){}",
                    if paused { "" } else { ": it was not running" }
                ),
                vec![victim],
                Undo::Resume(victim),
            )
        }
        Nemesis::DiskFull => {
            let Some(victim) = nodes.small_disk() else {
                panic!("the disk-full nemesis needs a node on a small disk (Nodes::start's small_disk)");
            };
            let outcome = match nodes.fill_disk(victim) {
                Ok(written) => format!(
                    "{} MiB written, {} bytes left",
                    written >> 20,
                    nodes.available_bytes(victim).unwrap_or(u64::MAX)
                ),
                Err(e) => format!("filling failed: {e}"),
            };
            fault(
                format!("node {victim}'s disk filled ({outcome})"),
                vec![victim],
                Undo::FreeDisk(victim),
            )
        }
        Nemesis::RollingRestart => {
            let ids = nodes.ids();
            note(
                history,
                &format!("{nemesis}: restarting nodes {ids:?} in turn"),
            );
            let mut steps = Vec::new();
            for &id in &ids {
                let stopped = match nodes.terminate(id) {
                    Ok(Some(status)) => format!("exited with {status}"),
                    Ok(None) => "was not running".to_string(),
                    Err(e) => e,
                };
                let started = match nodes.start_node(id) {
                    Ok(()) => "started".to_string(),
                    Err(e) => format!("did not start: {e}"),
                };
                let converged = match nodes.wait_converged_inner(topic, None, ROLLING_CONVERGE) {
                    Ok(()) => "converged".to_string(),
                    Err(e) => format!("not converged: {e}"),
                };
                let step = format!("node {id} {stopped}, {started}, {converged}");
                note(history, &format!("{nemesis}: {step}"));
                steps.push(step);
            }
            fault(steps.join("; "), ids, Undo::Nothing)
        }
    };
    note(history, &format!("start {}", fault.description));
    fault
}

/// Heals `fault`: clears the network, restarts killed nodes, resumes a
/// paused one, frees a full disk (restarting its node if that stopped it).
/// Records what it did; an error when a node did not come back.
pub fn heal(fault: Fault, nodes: &mut Nodes, net: &Net, history: &History) -> Result<(), String> {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    match &fault.undo {
        Undo::Network => {
            net.heal();
            done.push("network healed".to_string());
        }
        Undo::Start(ids) => {
            for &id in ids {
                start_if_down(nodes, id, &mut done, &mut errors);
            }
        }
        Undo::Resume(id) => {
            nodes.resume(*id);
            done.push(format!("SIGCONT node {id}"));
        }
        Undo::FreeDisk(id) => {
            match nodes.free_disk(*id) {
                Ok(()) => done.push(format!("node {id}'s disk freed")),
                Err(e) => errors.push(e),
            }
            start_if_down(nodes, *id, &mut done, &mut errors);
        }
        Undo::Nothing => done.push("nothing to undo".to_string()),
    }
    done.extend(errors.iter().cloned());
    note(
        history,
        &format!("heal {}: {}", fault.nemesis, done.join(", ")),
    );
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "healing {}: {}",
            fault.description,
            errors.join("; ")
        ))
    }
}

/// Leaves everything healed, whatever was injected: no network rules or
/// qdiscs, every node resumed and running, the small disk freed. For the
/// end of a run and for cleanup; records what it did.
pub fn heal_all(nodes: &mut Nodes, net: &Net, history: &History) -> Result<(), String> {
    let mut done = Vec::new();
    let mut errors = Vec::new();
    net.heal();
    done.push("network healed".to_string());
    for id in nodes.ids() {
        if nodes.resume(id) {
            done.push(format!("SIGCONT node {id}"));
        }
    }
    if let Some(id) = nodes.small_disk() {
        if nodes.disk_filled(id) {
            match nodes.free_disk(id) {
                Ok(()) => done.push(format!("node {id}'s disk freed")),
                Err(e) => errors.push(e),
            }
        }
    }
    for id in nodes.ids() {
        start_if_down(nodes, id, &mut done, &mut errors);
    }
    done.extend(errors.iter().cloned());
    note(history, &format!("heal-all: {}", done.join(", ")));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("heal-all: {}", errors.join("; ")))
    }
}

/// Records `description` as a fault event of the nemesis and prints it
/// with the wall-clock time (UTC).
pub fn note(history: &History, description: &str) {
    history.record(
        NEMESIS,
        Event::Fault {
            description: description.to_string(),
        },
    );
    eprintln!("[{} nemesis] {description}", clock());
}

fn start_if_down(nodes: &mut Nodes, id: i32, done: &mut Vec<String>, errors: &mut Vec<String>) {
    if nodes.running(id) {
        return;
    }
    match nodes.start_node(id) {
        Ok(()) => done.push(format!("node {id} started")),
        Err(e) => errors.push(e),
    }
}

/// Running, unpaused nodes.
fn up_nodes(nodes: &mut Nodes) -> Vec<i32> {
    nodes
        .ids()
        .into_iter()
        .filter(|&id| nodes.running(id) && !nodes.paused(id))
        .collect()
}

/// The leader of the target partition, or a random running node when no
/// node names one; with why it was chosen.
fn leader_or_random(nodes: &mut Nodes, rng: &mut Rng, topic: &str) -> (i32, String) {
    match nodes.leader_and_epoch(topic, TARGET_PARTITION) {
        Some((leader, epoch)) => (
            leader,
            format!("leader of {topic}-{TARGET_PARTITION} in epoch {epoch}"),
        ),
        None => {
            let (id, _) = random_up(&up_nodes(nodes), rng);
            (
                id,
                format!("no leader of {topic}-{TARGET_PARTITION} known; a random node"),
            )
        }
    }
}

/// The active controller, or a random running node when none is known.
fn controller_or_random(nodes: &mut Nodes, rng: &mut Rng) -> (i32, String) {
    match nodes.controller_and_epoch() {
        Some((controller, epoch)) => (controller, format!("active controller in epoch {epoch}")),
        None => {
            let (id, _) = random_up(&up_nodes(nodes), rng);
            (id, "no active controller known; a random node".to_string())
        }
    }
}

/// A random one of `up` (node 1 when none is up).
fn random_up(up: &[i32], rng: &mut Rng) -> (i32, String) {
    if up.is_empty() {
        return (1, "no node up; node 1".to_string());
    }
    (*rng.pick(up), "a random running node".to_string())
}

/// Fisher–Yates with the run's random source.
fn shuffle(items: &mut [i32], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

/// `HH:MM:SS.mmm` of now, UTC.
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ms = now.as_millis() % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}
