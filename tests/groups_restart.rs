//! Committed offsets survive a broker restart, clean (SIGTERM) and crash
//! (SIGKILL): OffsetFetch returns exactly the last commit (offset and
//! metadata) of each partition, the group is still listed, and a new consumer
//! of the group resumes from those offsets.

mod common;
mod group_support;

use std::collections::BTreeMap;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use common::*;
use group_support::*;

#[derive(Clone, Copy, Debug)]
enum Stop {
    Clean,
    Kill9,
}

fn commit(m: &Member, topic: &str, offsets: &[(i32, i64, &str)]) {
    let mut tpl = TopicPartitionList::new();
    for &(p, o, meta) in offsets {
        let mut e = tpl.add_partition(topic, p);
        e.set_offset(Offset::Offset(o)).unwrap();
        e.set_metadata(meta);
    }
    m.consumer
        .commit(&tpl, CommitMode::Sync)
        .unwrap_or_else(|e| panic!("commit {offsets:?} failed: {e}\n{}", m.describe()));
}

fn offsets_survive_restart(stop: Stop) {
    let mut broker = group_broker();
    let b = broker.bootstrap();
    let topic = "durable";
    let group = "durable-group";
    create_topic(&b, topic, 3);
    let all = produce_batch(&b, topic, &[0, 1, 2], "d", 10);

    let mut m = Member::new(&b, group, "durable-1", "range", topic);
    wait_for(
        &mut [&mut m],
        CONSUME_TIMEOUT,
        "30 messages consumed",
        |ms| ms[0].received.len() >= 30,
    );
    assert_exactly_once("before restart", &m.received, &all);
    assert_eq!(m.assigned(), [0, 1, 2].into_iter().collect());

    // Two commits; only the second (last) must survive.
    commit(
        &m,
        topic,
        &[(0, 2, "first"), (1, 2, "first"), (2, 2, "first")],
    );
    commit(
        &m,
        topic,
        &[(0, 4, "p0-at-4"), (1, 7, "p1-at-7"), (2, 10, "")],
    );
    let want = BTreeMap::from([
        (0, (Offset::Offset(4), "p0-at-4".to_string())),
        (1, (Offset::Offset(7), "p1-at-7".to_string())),
        (2, (Offset::Offset(10), String::new())),
    ]);
    assert_eq!(
        committed(&b, group, topic, &[0, 1, 2]),
        want,
        "before restart"
    );
    m.close();

    match stop {
        Stop::Clean => {
            let status = broker.terminate();
            assert!(status.success(), "broker exited with {status} on SIGTERM");
        }
        Stop::Kill9 => broker.kill9(),
    }
    broker.restart();
    let b = broker.bootstrap();

    assert_eq!(
        committed(&b, group, topic, &[0, 1, 2]),
        want,
        "committed offsets after {stop:?} restart"
    );
    let d = describe_group(&b, group);
    assert_eq!(d.state, "Empty", "{d:?}");
    assert_eq!(d.protocol_type, "consumer", "{d:?}");
    assert!(d.members.is_empty(), "{d:?}");
    let listed: Vec<String> = list_groups(&b).into_iter().map(|g| g.name).collect();
    assert_eq!(listed, vec![group.to_string()]);

    // A new member resumes exactly there: 6 from p0, 3 from p1, none from p2.
    let mut r = Member::new(&b, group, "durable-2", "range", topic);
    wait_for(
        &mut [&mut r],
        JOIN_TIMEOUT,
        "9 messages after the committed offsets",
        |ms| ms[0].received.len() >= 9,
    );
    let expected: Vec<Rec> = all
        .iter()
        .filter(|rec| rec.offset >= [4, 7, 10][rec.partition as usize])
        .cloned()
        .collect();
    assert_eq!(expected.len(), 9);
    assert_exactly_once(&format!("resumed after {stop:?}"), &r.received, &expected);
    assert_eq!(r.received_on(0)[0].offset, 4);
    assert_eq!(r.received_on(0)[0].value, "d-p0-4");
    assert_eq!(r.received_on(1)[0].offset, 7);
    assert_eq!(r.received_on(1)[0].value, "d-p1-7");
    assert_in_order("resumed", &r.received);
    // Still at the committed positions: nothing consumed means nothing committed.
    assert_eq!(
        committed_offsets(&b, group, topic, &[0, 1, 2]),
        BTreeMap::from([
            (0, Offset::Offset(4)),
            (1, Offset::Offset(7)),
            (2, Offset::Offset(10))
        ])
    );
    r.close();
}

#[test]
fn committed_offsets_survive_clean_restart() {
    offsets_survive_restart(Stop::Clean);
}

#[test]
fn committed_offsets_survive_kill9() {
    offsets_survive_restart(Stop::Kill9);
}

/// A commit acknowledged immediately before a SIGKILL is durable, even with
/// the committing member still in the group. After the restart the group's
/// metadata (Kafka writes it to `__consumer_offsets` too) still holds that
/// member until its session expires; a new consumer then gets every partition
/// and resumes from the commit.
#[test]
fn commit_acked_right_before_kill9_with_live_member() {
    let mut broker = group_broker();
    let b = broker.bootstrap();
    let topic = "crash";
    let group = "crash-group";
    create_topic(&b, topic, 2);
    let all = produce_batch(&b, topic, &[0, 1], "c", 8);

    let mut m = Member::new(&b, group, "crash-1", "range", topic);
    wait_for(
        &mut [&mut m],
        CONSUME_TIMEOUT,
        "16 messages consumed",
        |ms| ms[0].received.len() >= 16,
    );
    assert_exactly_once("before crash", &m.received, &all);
    commit(&m, topic, &[(0, 3, "m0"), (1, 6, "m1")]);
    // No further request to the broker: SIGKILL right after the ack.
    broker.kill9();
    broker.restart();
    let b = broker.bootstrap();
    // The old client points at the old port; close it in the background
    // (it cannot reach anything) and never wait for it.
    let (_, _old_closing) = m.start_close();

    assert_eq!(
        committed(&b, group, topic, &[0, 1]),
        BTreeMap::from([
            (0, (Offset::Offset(3), "m0".to_string())),
            (1, (Offset::Offset(6), "m1".to_string())),
        ]),
        "commit acknowledged before SIGKILL"
    );
    let d = describe_group(&b, group);
    eprintln!("group after crash restart: {d:?}");
    assert_eq!(d.protocol_type, "consumer", "{d:?}");
    assert_eq!(
        (d.state.as_str(), d.members.len()),
        ("Stable", 1),
        "Kafka reloads the group with its member from __consumer_offsets: {d:?}"
    );
    assert_eq!(d.members[0].client_id, "crash-1", "{d:?}");

    let restarted = std::time::Instant::now();
    let mut r = Member::new(&b, group, "crash-2", "range", topic);
    wait_for(
        &mut [&mut r],
        std::time::Duration::from_millis(SESSION_TIMEOUT_MS) + JOIN_TIMEOUT,
        "new member owns both partitions and consumed the 7 uncommitted messages",
        |ms| ms[0].assigned() == [0, 1].into_iter().collect() && ms[0].received.len() >= 7,
    );
    eprintln!("new member consumed after {:?}", restarted.elapsed());
    let expected: Vec<Rec> = all
        .iter()
        .filter(|rec| rec.offset >= [3, 6][rec.partition as usize])
        .cloned()
        .collect();
    assert_exactly_once("resumed after crash", &r.received, &expected);
    assert_eq!(r.received_on(0)[0].value, "c-p0-3");
    assert_eq!(r.received_on(1)[0].value, "c-p1-6");
    let d = describe_group(&b, group);
    assert_eq!((d.state.as_str(), d.members.len()), ("Stable", 1), "{d:?}");
    assert_eq!(d.members[0].client_id, "crash-2", "{d:?}");
    r.close();
}
