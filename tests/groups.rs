//! Consumer groups (classic protocol) against the real binary with librdkafka
//! subscribed consumers and kcat's balanced consumer: partition split per
//! assignment strategy, independent groups, clean leave, client SIGKILL and
//! session expiry, resuming from committed offsets, and the group admin APIs
//! (ListGroups, DescribeGroups, DeleteGroups).
//!
//! The broker runs with `group.initial.rebalance.delay.ms=0`; members use a
//! 6 s session timeout and 500 ms heartbeats.

mod common;
mod group_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use common::*;
use group_support::*;

fn set(ps: &[i32]) -> BTreeSet<i32> {
    ps.iter().copied().collect()
}

/// Test 1: two members of one group split a 2-partition topic (one partition
/// each, per `assignment()`), and together receive every message exactly once.
fn two_members_split(strategy: &str) {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = format!("split-{strategy}");
    let group = format!("split-group-{strategy}");
    create_topic(&b, &topic, 2);

    let mut c1 = Member::new(&b, &group, "split-c1", strategy, &topic);
    let mut c2 = Member::new(&b, &group, "split-c2", strategy, &topic);
    wait_for(
        &mut [&mut c1, &mut c2],
        JOIN_TIMEOUT,
        "each of the two members owns exactly one partition",
        |ms| {
            let (a, b) = (ms[0].assigned(), ms[1].assigned());
            a.len() == 1
                && b.len() == 1
                && a.union(&b).copied().collect::<BTreeSet<_>>() == set(&[0, 1])
        },
    );
    assert!(
        c1.received.is_empty() && c2.received.is_empty(),
        "empty topic yielded messages"
    );

    let desc = describe_group(&b, &group);
    assert_eq!(desc.state, "Stable", "{desc:?}");
    assert_eq!(desc.protocol_type, "consumer", "{desc:?}");
    assert_eq!(desc.protocol, strategy, "{desc:?}");
    assert_eq!(desc.members.len(), 2, "{desc:?}");

    let expected = produce_batch(&b, &topic, &[0, 1], strategy, 15);
    wait_for(
        &mut [&mut c1, &mut c2],
        CONSUME_TIMEOUT,
        "30 messages received in total",
        |ms| ms[0].received.len() + ms[1].received.len() >= 30,
    );

    // Still split the same way, and each member only saw its own partition.
    let (a1, a2) = (c1.assigned(), c2.assigned());
    assert_eq!(a1.len(), 1, "{}", c1.describe());
    assert_eq!(a2.len(), 1, "{}", c2.describe());
    for (m, a) in [(&c1, &a1), (&c2, &a2)] {
        let parts: BTreeSet<i32> = m.received.iter().map(|r| r.partition).collect();
        assert_eq!(
            &parts, a,
            "{} received from partitions it does not own",
            m.name
        );
        assert_eq!(m.received.len(), 15, "{}", m.describe());
        assert_in_order(&m.name, &m.received);
    }
    let mut all = c1.received.clone();
    all.extend(c2.received.iter().cloned());
    assert_exactly_once(&format!("strategy {strategy}"), &all, &expected);

    c1.close();
    c2.close();
}

#[test]
fn split_range() {
    two_members_split("range");
}

#[test]
fn split_roundrobin() {
    two_members_split("roundrobin");
}

#[test]
fn split_cooperative_sticky() {
    two_members_split("cooperative-sticky");
}

/// Test 2: two groups each receive every message; their offsets are independent.
#[test]
fn two_groups_each_receive_everything() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = "events";
    create_topic(&b, topic, 2);
    let expected = produce_batch(&b, topic, &[0, 1], "ev", 12);

    let mut u1 = Member::new(&b, "user-1", "u1", "range", topic);
    let mut u2 = Member::new(&b, "user-2", "u2", "range", topic);
    wait_for(
        &mut [&mut u1, &mut u2],
        CONSUME_TIMEOUT,
        "both groups received 24 messages",
        |ms| ms[0].received.len() >= 24 && ms[1].received.len() >= 24,
    );
    for m in [&u1, &u2] {
        assert_eq!(m.assigned(), set(&[0, 1]), "{}", m.describe());
        assert_exactly_once(&m.name, &m.received, &expected);
        assert_in_order(&m.name, &m.received);
    }

    // user-1 commits everything, user-2 only partition 0 up to 5.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(12))
        .unwrap();
    tpl.add_partition_offset(topic, 1, Offset::Offset(12))
        .unwrap();
    u1.consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("user-1 commit");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(5))
        .unwrap();
    u2.consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("user-2 commit");

    assert_eq!(
        committed_offsets(&b, "user-1", topic, &[0, 1]),
        BTreeMap::from([(0, Offset::Offset(12)), (1, Offset::Offset(12))])
    );
    assert_eq!(
        committed_offsets(&b, "user-2", topic, &[0, 1]),
        BTreeMap::from([(0, Offset::Offset(5)), (1, Offset::Invalid)])
    );
    u1.close();
    u2.close();
}

/// Test 3: a member that closes (LeaveGroup) triggers an immediate rebalance;
/// the survivor takes over its partition from the committed offset.
#[test]
fn clean_leave_hands_partitions_to_survivor() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = "leave";
    let group = "leave-group";
    create_topic(&b, topic, 2);

    let mut a = Member::new(&b, group, "leave-a", "range", topic);
    let mut s = Member::new(&b, group, "leave-survivor", "range", topic);
    a.commit_as_you_go = true;
    s.commit_as_you_go = true;
    wait_for(
        &mut [&mut a, &mut s],
        JOIN_TIMEOUT,
        "each member owns one partition",
        |ms| ms[0].assigned().len() == 1 && ms[1].assigned().len() == 1,
    );
    let a_part = *a.assigned().iter().next().unwrap();
    let s_part = 1 - a_part;
    assert_eq!(s.assigned(), set(&[s_part]));

    let batch1 = produce_batch(&b, topic, &[0, 1], "b1", 10);
    wait_for(
        &mut [&mut a, &mut s],
        CONSUME_TIMEOUT,
        "batch 1 (20 messages) consumed",
        |ms| ms[0].received.len() + ms[1].received.len() >= 20,
    );
    assert_eq!(a.received.len(), 10, "{}", a.describe());
    assert_eq!(
        committed_offsets(&b, group, topic, &[0, 1]),
        BTreeMap::from([(0, Offset::Offset(10)), (1, Offset::Offset(10))]),
        "committed offsets after batch 1"
    );

    // Batch 2 is produced while `a` is no longer polled: it must not be lost
    // when `a` leaves, because the survivor resumes from a's committed offset.
    let batch2 = produce_batch(&b, topic, &[0, 1], "b2", 10);
    let (a_received, mut closing) = a.start_close();
    let took = wait_for(
        &mut [&mut s],
        Duration::from_secs(SESSION_TIMEOUT_MS / 1000 + 20),
        "survivor owns both partitions",
        |ms| ms[0].assigned() == set(&[0, 1]),
    );
    closing.wait(CLOSE_TIMEOUT);
    assert!(
        took < Duration::from_millis(SESSION_TIMEOUT_MS - 1000),
        "the survivor got the leaver's partition only after {took:?}: LeaveGroup did not trigger a rebalance \
         (that looks like session expiry, timeout {SESSION_TIMEOUT_MS} ms)\n{}",
        s.describe()
    );

    wait_for(
        &mut [&mut s],
        CONSUME_TIMEOUT,
        "survivor consumed batch 2 of both partitions",
        // 10 (batch 1, own) + 10 (batch 2, own) + 10 (batch 2, taken over)
        |ms| ms[0].received.len() >= 30,
    );
    assert_eq!(s.received_on(a_part).len(), 10, "{}", s.describe());
    let batch3 = produce_batch(&b, topic, &[0, 1], "b3", 10);
    wait_for(
        &mut [&mut s],
        CONSUME_TIMEOUT,
        "survivor consumed batch 3",
        |ms| ms[0].received.len() >= 50,
    );

    // The survivor's first message on the taken-over partition is the
    // leaver's committed position.
    let taken = s.received_on(a_part);
    assert_eq!(taken.len(), 20, "{}", s.describe());
    assert_eq!(
        taken[0].offset, 10,
        "survivor must resume {a_part} at the committed offset 10"
    );
    assert_eq!(taken[0].value, format!("b2-p{a_part}-0"));
    assert_in_order("survivor", &s.received);

    let mut all = a_received;
    all.extend(s.received.iter().cloned());
    let mut expected = batch1;
    expected.extend(batch2);
    expected.extend(batch3);
    assert_exactly_once("leaver + survivor", &all, &expected);
    assert_eq!(
        committed_offsets(&b, group, topic, &[0, 1]),
        BTreeMap::from([(0, Offset::Offset(30)), (1, Offset::Offset(30))]),
        "committed offsets at the end"
    );
    let desc = describe_group(&b, group);
    assert_eq!(desc.state, "Stable", "{desc:?}");
    assert_eq!(desc.members.len(), 1, "{desc:?}");
    assert_eq!(desc.members[0].client_id, "leave-survivor");
    s.close();
}

// ---------------------------------------------------------------------------
// Test 4: kcat balanced consumer SIGKILLed; the session expires.
// ---------------------------------------------------------------------------

/// A `kcat -G` child whose stdout lines (`partition offset value`) arrive on a channel.
struct KcatMember {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    got: Vec<Rec>,
}

impl KcatMember {
    fn start(bootstrap: &str, group: &str, topic: &str) -> KcatMember {
        let mut child = Command::new("kcat")
            .args([
                "-b",
                bootstrap,
                "-G",
                group,
                "-u",
                "-f",
                "%p %o %s\\n",
                "-X",
                "broker.address.family=v4",
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
                "-X",
                "partition.assignment.strategy=range",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "enable.auto.commit=true",
                "-X",
                "auto.commit.interval.ms=100",
                "-X",
                "client.id=kcat-member",
                topic,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kcat (is it on PATH?)");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match err.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        KcatMember {
            child,
            lines,
            stderr,
            got: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            let mut it = line.splitn(3, ' ');
            let (p, o, v) = (it.next(), it.next(), it.next());
            let rec = match (
                p.and_then(|p| p.parse().ok()),
                o.and_then(|o| o.parse().ok()),
                v,
            ) {
                (Some(partition), Some(offset), Some(v)) => Rec {
                    partition,
                    offset,
                    value: v.to_string(),
                },
                _ => panic!("unparsable kcat output line {line:?}"),
            };
            self.got.push(rec);
        }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "kcat exited early with {status}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for KcatMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `others` and drains kcat until `cond` holds (hard deadline).
fn wait_with_kcat(
    kcat: &mut KcatMember,
    others: &mut [&mut Member],
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&KcatMember, &[&mut Member]) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        kcat.drain();
        if cond(kcat, others) {
            return;
        }
        kcat.assert_running();
        if Instant::now() >= deadline {
            let states: Vec<String> = others.iter().map(|m| m.describe()).collect();
            panic!(
                "timed out after {timeout:?} waiting for: {what}\nkcat received {} records: {:?}\nkcat stderr:\n{}\n{}",
                kcat.got.len(),
                kcat.got,
                kcat.stderr(),
                states.join("\n")
            );
        }
        if others.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
        for m in others.iter_mut() {
            m.poll_once(Duration::from_millis(50));
        }
    }
}

#[test]
fn kill9_client_session_expires_and_survivor_resumes() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = "k9";
    let group = "k9-group";
    create_topic(&b, topic, 2);
    let batch1 = produce_batch(&b, topic, &[0, 1], "b1", 10);

    // kcat alone: it owns both partitions, consumes batch 1 and auto-commits it.
    let mut kcat = KcatMember::start(&b, group, topic);
    wait_with_kcat(
        &mut kcat,
        &mut [],
        JOIN_TIMEOUT,
        "kcat printed batch 1 (20 messages)",
        |k, _| k.got.len() >= 20,
    );
    assert_exactly_once("kcat batch 1", &kcat.got, &batch1);
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    loop {
        let c = committed_offsets(&b, group, topic, &[0, 1]);
        if c == BTreeMap::from([(0, Offset::Offset(10)), (1, Offset::Offset(10))]) {
            break;
        }
        kcat.assert_running();
        assert!(Instant::now() < deadline, "kcat's auto-commit of (10, 10) never became visible; last OffsetFetch {c:?}; kcat stderr:\n{}", kcat.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }

    // The in-test consumer joins: one partition each.
    let mut c = Member::new(&b, group, "k9-survivor", "range", topic);
    c.commit_as_you_go = true;
    wait_with_kcat(
        &mut kcat,
        &mut [&mut c],
        JOIN_TIMEOUT,
        "in-test member owns exactly one partition",
        |_, ms| ms[0].assigned().len() == 1,
    );
    let desc = describe_group(&b, group);
    assert_eq!(desc.members.len(), 2, "{desc:?}");
    let c_part = *c.assigned().iter().next().unwrap();
    let k_part = 1 - c_part;
    assert!(
        c.received.is_empty(),
        "everything was committed, yet: {}",
        c.describe()
    );

    // Batch 2: each consumes its own partition; wait for kcat's commit of 20.
    let batch2 = produce_batch(&b, topic, &[0, 1], "b2", 10);
    wait_with_kcat(
        &mut kcat,
        &mut [&mut c],
        CONSUME_TIMEOUT,
        "batch 2 consumed by both",
        |k, ms| k.got.len() >= 30 && ms[0].received.len() >= 10,
    );
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    loop {
        let off = committed_offsets(&b, group, topic, &[k_part])[&k_part];
        if off == Offset::Offset(20) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kcat never committed 20 on partition {k_part}; last {off:?}"
        );
        c.poll_once(Duration::from_millis(100));
    }

    // SIGKILL kcat (by PID): no LeaveGroup, the coordinator must expire it.
    let pid = kcat.child.id();
    let status = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -KILL {pid}");
    kcat.child.wait().expect("reap kcat");
    kcat.drain();
    let killed_at = Instant::now();

    let batch3 = produce_batch(&b, topic, &[0, 1], "b3", 10);
    wait_for(
        &mut [&mut c],
        Duration::from_millis(SESSION_TIMEOUT_MS) + JOIN_TIMEOUT,
        "survivor owns both partitions after kcat's session expired",
        |ms| ms[0].assigned() == set(&[0, 1]),
    );
    let took = killed_at.elapsed();
    wait_for(
        &mut [&mut c],
        CONSUME_TIMEOUT,
        "survivor consumed batch 3 of both partitions",
        |ms| ms[0].received.len() >= 30,
    );
    eprintln!("survivor got both partitions {took:?} after SIGKILL");
    // Expiry is last heartbeat + session timeout; heartbeats are 500 ms apart,
    // so anything much sooner means the coordinator expired a live member early.
    assert!(
        took >= Duration::from_millis(SESSION_TIMEOUT_MS - 1500),
        "kcat's partition moved only {took:?} after SIGKILL, before its {SESSION_TIMEOUT_MS} ms session could expire"
    );

    let taken = c.received_on(k_part);
    assert_eq!(taken.len(), 10, "{}", c.describe());
    assert_eq!(
        taken[0].offset, 20,
        "survivor must resume partition {k_part} at kcat's committed 20"
    );
    assert_eq!(taken[0].value, format!("b3-p{k_part}-0"));

    let mut all = kcat.got.clone();
    all.extend(c.received.iter().cloned());
    let mut expected = batch1;
    expected.extend(batch2);
    expected.extend(batch3);
    assert_exactly_once("kcat + survivor", &all, &expected);
    let kcat_parts: BTreeSet<i32> = kcat.got[20..].iter().map(|r| r.partition).collect();
    assert_eq!(
        kcat_parts,
        set(&[k_part]),
        "kcat consumed from the in-test member's partition"
    );
    let desc = describe_group(&b, group);
    assert_eq!(desc.members.len(), 1, "{desc:?}");
    assert_eq!(desc.members[0].client_id, "k9-survivor", "{desc:?}");
    c.close();
}

/// Test 5: commit, close, a new consumer in the group starts exactly at the
/// committed offset.
#[test]
fn new_consumer_resumes_at_committed_offset() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = "resume";
    let group = "resume-group";
    create_topic(&b, topic, 1);
    let expected = produce_batch(&b, topic, &[0], "m", 20);

    let mut first = Member::new(&b, group, "resume-1", "range", topic);
    // Only 7 messages are handed to the application, then commit 7.
    wait_for(
        &mut [&mut first],
        CONSUME_TIMEOUT,
        "first consumer got 7 messages",
        |ms| ms[0].received.len() >= 7,
    );
    assert_eq!(first.received, expected[..7].to_vec());
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(7))
        .unwrap();
    first
        .consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("commit 7");
    first.close();
    assert_eq!(
        committed_offsets(&b, group, topic, &[0]),
        BTreeMap::from([(0, Offset::Offset(7))])
    );

    let mut second = Member::new(&b, group, "resume-2", "range", topic);
    wait_for(
        &mut [&mut second],
        CONSUME_TIMEOUT,
        "second consumer got the remaining 13",
        |ms| ms[0].received.len() >= 13,
    );
    assert_eq!(second.received[0].offset, 7, "first offset after resume");
    assert_eq!(
        second.received[0].value, "m-p0-7",
        "first value after resume"
    );
    assert_eq!(second.received, expected[7..].to_vec());
    second.close();
}

// ---------------------------------------------------------------------------
// Test 7: ListGroups / DescribeGroups / DeleteGroups
// ---------------------------------------------------------------------------

fn delete_groups(
    bootstrap: &str,
    groups: &[&str],
) -> Vec<Result<String, (String, RDKafkaErrorCode)>> {
    let admin: AdminClient<DefaultClientContext> = admin_client(bootstrap);
    block_on(
        Duration::from_secs(20),
        admin.delete_groups(groups, &admin_opts()),
    )
    .expect("DeleteGroups request failed")
}

#[test]
fn admin_list_describe_delete_groups() {
    let broker = group_broker();
    let b = broker.bootstrap();
    let topic = "admin-groups";
    create_topic(&b, topic, 2);
    let expected = produce_batch(&b, topic, &[0, 1], "a", 3);

    // "active": one live member. "idle": committed offsets, no members.
    let mut m = Member::new(&b, "active", "admin-member", "range", topic);
    wait_for(
        &mut [&mut m],
        CONSUME_TIMEOUT,
        "member consumed 6 messages",
        |ms| ms[0].received.len() >= 6,
    );
    assert_exactly_once("active member", &m.received, &expected);
    let mut idle = Member::new(&b, "idle", "idle-member", "range", topic);
    wait_for(
        &mut [&mut idle, &mut m],
        CONSUME_TIMEOUT,
        "idle member consumed 6",
        |ms| ms[0].received.len() >= 6,
    );
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(3))
        .unwrap();
    tpl.add_partition_offset(topic, 1, Offset::Offset(2))
        .unwrap();
    idle.consumer
        .commit(&tpl, CommitMode::Sync)
        .expect("idle commit");
    idle.close();

    // ListGroups (+ describe of each) sees both, as consumer groups.
    let groups = list_groups(&b);
    let by_name: BTreeMap<&str, &GroupView> = groups.iter().map(|g| (g.name.as_str(), g)).collect();
    let names: BTreeSet<&str> = by_name.keys().copied().collect();
    assert_eq!(
        names,
        BTreeSet::from(["active", "idle"]),
        "listed groups: {groups:#?}"
    );
    let active = by_name["active"];
    assert_eq!(active.protocol_type, "consumer", "{active:?}");
    assert_eq!(active.state, "Stable", "{active:?}");
    let idle_view = by_name["idle"];
    assert_eq!(idle_view.protocol_type, "consumer", "{idle_view:?}");
    assert_eq!(idle_view.state, "Empty", "{idle_view:?}");
    assert!(idle_view.members.is_empty(), "{idle_view:?}");

    // DescribeGroups of the active group: member, client id, subscription, assignment.
    let d = describe_group(&b, "active");
    assert_eq!(d.state, "Stable", "{d:?}");
    assert_eq!(d.protocol_type, "consumer", "{d:?}");
    assert_eq!(d.protocol, "range", "{d:?}");
    assert_eq!(d.members.len(), 1, "{d:?}");
    let mv = &d.members[0];
    assert_eq!(mv.client_id, "admin-member", "{d:?}");
    assert!(!mv.id.is_empty(), "member id is empty: {d:?}");
    assert!(
        mv.id.starts_with("admin-member-"),
        "Kafka member ids are `client.id-uuid`: {d:?}"
    );
    assert!(
        mv.client_host.contains("127.0.0.1"),
        "client host {:?}",
        mv.client_host
    );
    assert_eq!(mv.subscription, Some(vec![topic.to_string()]), "{d:?}");
    assert_eq!(
        mv.assignment,
        Some(BTreeMap::from([(topic.to_string(), vec![0, 1])])),
        "{d:?}"
    );

    // librdkafka describes only groups that ListGroups returned: an unknown
    // group yields an empty list (and describing it must not create it).
    let unknown = describe_groups_matching(&b, "no-such-group");
    assert!(unknown.is_empty(), "{unknown:?}");

    // DeleteGroups: non-empty fails, empty succeeds, unknown is not found.
    let res = delete_groups(&b, &["active", "idle", "no-such-group"]);
    assert_eq!(
        res,
        vec![
            Err(("active".to_string(), RDKafkaErrorCode::NonEmptyGroup)),
            Ok("idle".to_string()),
            Err((
                "no-such-group".to_string(),
                RDKafkaErrorCode::GroupIdNotFound
            )),
        ]
    );
    let names: BTreeSet<String> = list_groups(&b).into_iter().map(|g| g.name).collect();
    assert_eq!(names, BTreeSet::from(["active".to_string()]));
    assert_eq!(
        committed_offsets(&b, "idle", topic, &[0, 1]),
        BTreeMap::from([(0, Offset::Invalid), (1, Offset::Invalid)]),
        "offsets of a deleted group must be gone"
    );

    // Once its last member leaves, the active group is Empty and deletable.
    m.close();
    let d = describe_group(&b, "active");
    assert_eq!(d.state, "Empty", "{d:?}");
    assert!(d.members.is_empty(), "{d:?}");
    assert_eq!(
        delete_groups(&b, &["active"]),
        vec![Ok("active".to_string())]
    );
    assert!(list_groups(&b).is_empty(), "groups left after deleting all");
}
