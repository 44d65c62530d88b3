//! Behaviour tests for the classic group state machine (time is driven explicitly).
//! Included from classic.rs as its `tests` module; it must not be compiled outside `cfg(test)`.

use super::*;
use proptest::prelude::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 60_000;

fn cfg() -> GroupConfig {
    GroupConfig::default()
}

fn group() -> ClassicGroup {
    ClassicGroup::new("g".into(), cfg())
}

fn group_with_delay(initial_rebalance_delay_ms: i64) -> ClassicGroup {
    ClassicGroup::new(
        "g".into(),
        GroupConfig {
            initial_rebalance_delay_ms,
            ..cfg()
        },
    )
}

fn proto(name: &str, meta: &str) -> (String, Bytes) {
    (name.to_string(), Bytes::from(meta.to_string()))
}

fn jreq(member_id: &str, client: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        client_id: client.into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![proto("range", &format!("{client}-meta"))],
        require_known_member_id: false,
        reason: None,
    }
}

fn sreq(member_id: &str, generation_id: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        member_id: member_id.into(),
        group_instance_id: None,
        generation_id,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    }
}

fn join_output(outs: &[Output], id: &str) -> JoinResponse {
    outs.iter()
        .find_map(|o| match o {
            Output::Join {
                member_id,
                response,
            } if member_id == id => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join output for {id} in {outs:?}"))
}

fn sync_output(outs: &[Output], id: &str) -> SyncResponse {
    outs.iter()
        .find_map(|o| match o {
            Output::Sync {
                member_id,
                response,
            } if member_id == id => Some(response.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync output for {id} in {outs:?}"))
}

fn now_reply<T: std::fmt::Debug>(r: Reply<T>) -> T {
    match r {
        Reply::Now(t) => t,
        Reply::Pending => panic!("expected an immediate reply"),
    }
}

/// New member without KIP-394; returns its generated id (request parked).
fn join_new(g: &mut ClassicGroup, now: i64, client: &str) -> String {
    let (reply, key, outs) = g.join_keyed(now, jreq("", client));
    assert_eq!(reply, Reply::Pending);
    assert!(outs.is_empty(), "{outs:?}");
    key
}

/// The leader's SyncGroup: parked until its assignment is written, then (written Ok) the outputs
/// that answer every member awaiting sync, and the snapshot that was written.
fn leader_sync_snapshot(
    g: &mut ClassicGroup,
    now: i64,
    req: SyncRequest,
) -> (Vec<Output>, GroupSnapshot) {
    let generation = req.generation_id;
    assert_eq!(g.sync(now, req), Reply::Pending);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.take_assignment_to_write(), Some(generation));
    let snapshot = g
        .take_snapshot_if_changed(now)
        .expect("assignment not in a snapshot");
    (g.assignment_written(now, generation, Ok(())), snapshot)
}

fn leader_sync(g: &mut ClassicGroup, now: i64, req: SyncRequest) -> Vec<Output> {
    leader_sync_snapshot(g, now, req).0
}

/// Builds a Stable group of the given clients (first one leader); returns (ids, now).
fn stable_group(g: &mut ClassicGroup, clients: &[&str]) -> (Vec<String>, i64) {
    let (ids, now, _) = stable_group_snapshot(g, clients);
    (ids, now)
}

/// [`stable_group`], and the snapshot written for its assignment.
fn stable_group_snapshot(
    g: &mut ClassicGroup,
    clients: &[&str],
) -> (Vec<String>, i64, GroupSnapshot) {
    let ids: Vec<String> = clients.iter().map(|c| join_new(g, 0, c)).collect();
    // A second member arriving during the initial delay extends it by another 3s.
    let t = if ids.len() > 1 { 6000 } else { 3000 };
    let outs = g.tick(t);
    assert_eq!(outs.len(), ids.len());
    let gen = g.generation_id();
    let assignments = ids
        .iter()
        .map(|id| (id.clone(), Bytes::from(format!("assign-{id}"))))
        .collect();
    let (outs, snapshot) = leader_sync_snapshot(g, t + 1, sreq(&ids[0], gen, assignments));
    assert_eq!(outs.len(), 1, "{outs:?}");
    assert_eq!(sync_output(&outs, &ids[0]).error_code, NONE);
    for id in &ids[1..] {
        let r = g.sync(t + 2, sreq(id, gen, vec![]));
        assert_eq!(now_reply(r).error_code, NONE);
    }
    assert_eq!(g.state(), GroupState::Stable);
    (ids, t + 2, snapshot)
}

#[test]
fn first_join_with_require_known_member_id_gets_member_id_required_then_joins() {
    let mut g = group();
    let mut r = jreq("", "c1");
    r.require_known_member_id = true;
    let (reply, outs) = g.join(0, r.clone());
    let resp = now_reply(reply);
    assert_eq!(resp.error_code, MEMBER_ID_REQUIRED);
    assert!(resp.member_id.starts_with("c1-"));
    assert!(outs.is_empty());
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.member_count(), 0);

    r.member_id = resp.member_id.clone();
    let (reply, outs) = g.join(10, r);
    assert_eq!(reply, Reply::Pending);
    assert!(outs.is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.next_deadline(), Some(3010));

    let outs = g.tick(3010);
    let j = join_output(&outs, &resp.member_id);
    assert_eq!(j.error_code, NONE);
    assert_eq!(j.generation_id, 1);
    assert_eq!(j.leader, resp.member_id);
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members.len(), 1);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn pending_member_that_never_rejoins_expires_after_session_timeout() {
    let mut g = group();
    let mut r = jreq("", "c1");
    r.require_known_member_id = true;
    let id = now_reply(g.join(0, r.clone()).0).member_id;
    assert_eq!(g.next_deadline(), Some(i64::from(SESSION)));
    assert!(g.tick(i64::from(SESSION)).is_empty());
    assert_eq!(g.next_deadline(), None);
    // Rejoining with the expired id is now an unknown member.
    r.member_id = id;
    let resp = now_reply(g.join(SESSION as i64 + 1, r).0);
    assert_eq!(resp.error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn two_members_joining_during_initial_delay_share_a_generation_and_leader_gets_all_metadata() {
    let mut g = group();
    let a = join_new(&mut g, 0, "a");
    let b = join_new(&mut g, 1000, "b");
    // The delay is extended because a new member arrived during it.
    assert!(g.tick(3000).is_empty());
    assert_eq!(g.next_deadline(), Some(6000));
    let outs = g.tick(6000);
    assert_eq!(outs.len(), 2);
    let ja = join_output(&outs, &a);
    let jb = join_output(&outs, &b);
    assert_eq!(ja.generation_id, 1);
    assert_eq!(jb.generation_id, 1);
    assert_eq!(ja.leader, a);
    assert_eq!(jb.leader, a);
    assert_eq!(
        ja.members,
        vec![
            JoinMember {
                member_id: a.clone(),
                group_instance_id: None,
                metadata: Bytes::from("a-meta")
            },
            JoinMember {
                member_id: b.clone(),
                group_instance_id: None,
                metadata: Bytes::from("b-meta")
            },
        ]
    );
    assert!(jb.members.is_empty());
}

/// With `group.initial.rebalance.delay.ms=0`, the delay expires on the next 1 ms tick, as on
/// Kafka's timing wheel, and each extension for a member that joined meanwhile is a new expiry
/// one tick later: members joining within those ticks are in the first generation rather than
/// forcing a second one.
#[test]
fn zero_initial_delay_expires_on_the_next_tick_and_each_extension_on_the_one_after() {
    let mut g = group_with_delay(0);
    let a = join_new(&mut g, 100, "a");
    assert_eq!(g.next_deadline(), Some(101));
    assert!(g.tick(100).is_empty());
    let b = join_new(&mut g, 100, "b");
    // The delay expires, sees b and is extended: nothing is completed.
    assert!(g.tick(101).is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.next_deadline(), Some(102));
    let c = join_new(&mut g, 101, "c");
    // Extended once more for c; the expiry after that completes the join phase.
    assert!(g.tick(102).is_empty());
    assert_eq!(g.next_deadline(), Some(103));
    let outs = g.tick(103);
    assert_eq!(outs.len(), 3, "{outs:?}");
    for id in [&a, &b, &c] {
        let resp = join_output(&outs, id);
        assert_eq!(resp.error_code, NONE);
        assert_eq!(resp.generation_id, 1);
        assert_eq!(resp.leader, a);
    }
    let members: Vec<String> = join_output(&outs, &a)
        .members
        .into_iter()
        .map(|m| m.member_id)
        .collect();
    assert_eq!(members, vec![a.clone(), b, c]);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.generation_id(), 1);
}

#[test]
fn initial_delay_is_capped_by_the_rebalance_timeout() {
    let mut g = group();
    let mut r = jreq("", "a");
    r.rebalance_timeout_ms = 5000;
    let (_, a, _) = g.join_keyed(0, r);
    let mut r = jreq("", "b");
    r.rebalance_timeout_ms = 5000;
    g.join_keyed(100, r);
    assert!(g.tick(3000).is_empty());
    // remaining = 5000 - 3000 = 2000, so the extension is only 2000ms.
    assert_eq!(g.next_deadline(), Some(5000));
    let outs = g.tick(5000);
    assert_eq!(join_output(&outs, &a).generation_id, 1);
}

/// Generation 1 of members a (leader) and b: b syncs at 6100, then a at 6200 with the assignment
/// a: "pa", b: "pb"; both syncs are parked while it is written. Returns (a, b).
fn two_members_with_assignment_being_written(g: &mut ClassicGroup) -> (String, String) {
    let a = join_new(g, 0, "a");
    let b = join_new(g, 0, "b");
    g.tick(6000);
    assert_eq!(g.sync(6100, sreq(&b, 1, vec![])), Reply::Pending);
    let r = g.sync(
        6200,
        sreq(
            &a,
            1,
            vec![
                (a.clone(), Bytes::from("pa")),
                (b.clone(), Bytes::from("pb")),
            ],
        ),
    );
    assert_eq!(r, Reply::Pending);
    (a, b)
}

#[test]
fn followers_sync_waits_for_the_leader_then_all_get_their_assignments() {
    let mut g = group();
    let (a, b) = two_members_with_assignment_being_written(&mut g);
    // Nobody has the assignment until its record is written; the record holds it.
    assert_eq!(g.state(), GroupState::CompletingRebalance);
    assert_eq!(g.take_assignment_to_write(), Some(1));
    assert_eq!(g.take_assignment_to_write(), None);
    let snap = g
        .take_snapshot_if_changed(6200)
        .expect("snapshot after sync");
    assert_eq!(snap.generation_id, 1);
    assert_eq!(snap.members.len(), 2);
    assert_eq!(snap.members[1].assignment, Bytes::from("pb"));
    assert_eq!(snap.members[0].subscription, Bytes::from("a-meta"));
    assert!(g.take_snapshot_if_changed(6300).is_none());
    let outs = g.assignment_written(6300, 1, Ok(()));
    assert_eq!(outs.len(), 2, "{outs:?}");
    let ra = sync_output(&outs, &a);
    assert_eq!(ra.error_code, NONE);
    assert_eq!(ra.assignment, Bytes::from("pa"));
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    let rb = sync_output(&outs, &b);
    assert_eq!(rb.error_code, NONE);
    assert_eq!(rb.assignment, Bytes::from("pb"));
    assert_eq!(rb.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(g.state(), GroupState::Stable);
    // A late report for the same generation changes nothing.
    assert!(g.assignment_written(6400, 1, Ok(())).is_empty());
    let d = g.describe();
    assert_eq!(d.protocol, "range");
    assert_eq!(d.members[1].assignment, Bytes::from("pb"));
}

#[test]
fn heartbeat_gives_kafkas_error_in_each_state() {
    let mut g = group();
    assert_eq!(g.heartbeat(0, "x", None, 0).0, UNKNOWN_MEMBER_ID);
    let a = join_new(&mut g, 0, "a");
    // PreparingRebalance (initial): known member, generation 0.
    assert_eq!(g.heartbeat(1, &a, None, 0).0, REBALANCE_IN_PROGRESS);
    g.tick(3000);
    // CompletingRebalance: accepted.
    assert_eq!(g.heartbeat(3001, &a, None, 1).0, NONE);
    assert_eq!(g.heartbeat(3001, &a, None, 0).0, ILLEGAL_GENERATION);
    assert_eq!(g.heartbeat(3001, "nobody", None, 1).0, UNKNOWN_MEMBER_ID);
    leader_sync(&mut g, 3002, sreq(&a, 1, vec![]));
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.heartbeat(3003, &a, None, 1).0, NONE);
    // A new member triggers a rebalance: the old member sees REBALANCE_IN_PROGRESS.
    join_new(&mut g, 3004, "b");
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(3005, &a, None, 1).0, REBALANCE_IN_PROGRESS);
    g.mark_dead();
    assert_eq!(g.heartbeat(3006, &a, None, 1).0, COORDINATOR_NOT_AVAILABLE);
}

#[test]
fn member_that_stops_heartbeating_is_evicted_and_the_survivor_rejoins_a_new_generation() {
    let mut g = group();
    let (ids, mut now) = stable_group(&mut g, &["a", "b"]);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    // a heartbeats every 3s; b goes silent.
    while now < 20_000 {
        now += 3000;
        let outs = g.tick(now);
        assert!(outs.is_empty());
        if g.state() == GroupState::PreparingRebalance {
            break;
        }
        assert_eq!(g.heartbeat(now, &a, None, 1).0, NONE);
    }
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.heartbeat(now, &a, None, 1).0, REBALANCE_IN_PROGRESS);
    assert_eq!(g.heartbeat(now, &b, None, 1).0, UNKNOWN_MEMBER_ID);
    let resp = now_reply(g.join(now, jreq(&a, "a")).0);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(resp.generation_id, 2);
    assert_eq!(resp.leader, a);
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn member_that_does_not_rejoin_within_the_rebalance_timeout_is_removed() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a", "b"]);
    let (a, b) = (ids[0].clone(), ids[1].clone());
    // The leader rejoining forces a rebalance.
    let (r, outs) = g.join(now, jreq(&a, "a"));
    assert_eq!(r, Reply::Pending);
    assert!(outs.is_empty());
    // b keeps heartbeating but never rejoins.
    let mut t = now;
    while t + 5000 < now + i64::from(REBALANCE) {
        t += 5000;
        assert!(g.tick(t).is_empty());
        assert_eq!(g.heartbeat(t, &b, None, 1).0, REBALANCE_IN_PROGRESS);
    }
    let outs = g.tick(now + i64::from(REBALANCE));
    let j = join_output(&outs, &a);
    assert_eq!(j.generation_id, 2);
    assert_eq!(j.members.len(), 1);
    assert_eq!(g.member_count(), 1);
    assert_eq!(
        g.heartbeat(now + i64::from(REBALANCE), &b, None, 1).0,
        UNKNOWN_MEMBER_ID
    );
}

#[test]
fn leader_leaving_elects_a_new_leader() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a", "b", "c"]);
    let (codes, outs) = g.leave(now, &[(ids[0].clone(), None)]);
    assert_eq!(codes, vec![NONE]);
    assert!(outs.is_empty());
    assert_eq!(g.leader(), Some(ids[1].as_str()));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.join(now, jreq(&ids[2], "c")).0, Reply::Pending);
    let resp = now_reply(g.join(now, jreq(&ids[1], "b")).0);
    assert_eq!(resp.leader, ids[1]);
    assert_eq!(resp.members.len(), 2);
    assert_eq!(resp.generation_id, 2);
}

#[test]
fn leader_not_rejoining_hands_leadership_to_a_member_that_did() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a", "b"]);
    // The follower changes its metadata -> rebalance; the leader never rejoins.
    let mut r = jreq(&ids[1], "b");
    r.protocols = vec![proto("range", "b-meta-2")];
    assert_eq!(g.join(now, r).0, Reply::Pending);
    let outs = g.tick(now + i64::from(SESSION));
    // The leader's session ran out first (it is not awaiting join).
    let j = join_output(&outs, &ids[1]);
    assert_eq!(j.leader, ids[1]);
    assert_eq!(j.members[0].metadata, Bytes::from("b-meta-2"));
}

#[test]
fn sync_timeout_removes_members_that_did_not_sync_and_rebalances() {
    let mut g = group();
    let a = join_new(&mut g, 0, "a");
    let b = join_new(&mut g, 0, "b");
    g.tick(6000);
    assert_eq!(g.next_deadline(), Some(6000 + i64::from(SESSION)));
    // Keep both alive by heartbeating; only the leader syncs.
    let outs = leader_sync(&mut g, 6100, sreq(&a, 1, vec![]));
    assert_eq!(sync_output(&outs, &a).error_code, NONE);
    assert_eq!(g.state(), GroupState::Stable);
    let mut t = 6000;
    while t + 5000 < 6000 + i64::from(REBALANCE) {
        t += 5000;
        assert!(g.tick(t).is_empty());
        assert_eq!(g.heartbeat(t, &a, None, 1).0, NONE);
        assert_eq!(g.heartbeat(t, &b, None, 1).0, NONE);
    }
    let outs = g.tick(6000 + i64::from(REBALANCE));
    assert!(outs.is_empty());
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(66_000, &b, None, 1).0, UNKNOWN_MEMBER_ID);
    assert_eq!(g.heartbeat(66_000, &a, None, 1).0, REBALANCE_IN_PROGRESS);
}

#[test]
fn sync_timeout_in_completing_rebalance_answers_waiting_followers_with_rebalance_in_progress() {
    let mut g = group();
    let a = join_new(&mut g, 0, "a");
    let b = join_new(&mut g, 0, "b");
    g.tick(6000);
    assert_eq!(g.sync(6100, sreq(&b, 1, vec![])), Reply::Pending);
    for t in [8000, 13_000, 18_000] {
        assert_eq!(g.heartbeat(t, &a, None, 1).0, NONE);
        assert_eq!(g.heartbeat(t, &b, None, 1).0, NONE);
        g.tick(t);
    }
    // The leader never syncs and its session runs out: b is told to rejoin.
    let outs = g.tick(28_000);
    assert_eq!(sync_output(&outs, &b).error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(g.heartbeat(28_000, &a, None, 1).0, UNKNOWN_MEMBER_ID);
}

#[test]
fn static_member_rejoining_with_a_new_member_id_replaces_the_old_one_without_rebalance() {
    let mut g = group();
    let mut r = jreq("", "s");
    r.group_instance_id = Some("inst-1".into());
    let (_, old, _) = g.join_keyed(0, r.clone());
    assert!(old.starts_with("inst-1-"));
    let b = join_new(&mut g, 0, "b");
    g.tick(6000);
    leader_sync(
        &mut g,
        6001,
        sreq(&old, 1, vec![(old.clone(), Bytes::from("ps"))]),
    );
    assert_eq!(
        now_reply(g.sync(6001, sreq(&b, 1, vec![]))).error_code,
        NONE
    );
    assert_eq!(g.state(), GroupState::Stable);

    // Restarted static member joins with an empty member id and the same protocols.
    let (reply, new_id, outs) = g.join_keyed(7000, r);
    let resp = now_reply(reply);
    assert!(outs.is_empty());
    assert_eq!(resp.error_code, NONE);
    assert_eq!(resp.member_id, new_id);
    assert_ne!(new_id, old);
    assert_eq!(resp.generation_id, 1);
    assert_eq!(
        resp.leader, old,
        "pre-v9 response carries the leader as it was"
    );
    assert_eq!(g.state(), GroupState::Stable);
    assert_eq!(g.generation_id(), 1);
    assert_eq!(g.leader(), Some(new_id.as_str()));
    assert!(g.take_snapshot_if_changed(7000).is_some());

    // Its normal SyncGroup returns the current assignment.
    let mut s = sreq(&new_id, 1, vec![]);
    s.group_instance_id = Some("inst-1".into());
    let sr = now_reply(g.sync(7001, s));
    assert_eq!(sr.assignment, Bytes::from("ps"));

    // The old member id is fenced.
    assert_eq!(
        g.heartbeat(7002, &old, Some("inst-1"), 1).0,
        FENCED_INSTANCE_ID
    );
    let mut s = sreq(&old, 1, vec![]);
    s.group_instance_id = Some("inst-1".into());
    assert_eq!(now_reply(g.sync(7002, s)).error_code, FENCED_INSTANCE_ID);
    assert_eq!(
        g.validate_offset_commit(&old, Some("inst-1"), 1),
        Err(FENCED_INSTANCE_ID)
    );

    // Leaving by instance id only.
    let (codes, _) = g.leave(7003, &[(String::new(), Some("inst-1".into()))]);
    assert_eq!(codes, vec![NONE]);
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_replaced_while_its_join_is_parked_fences_the_old_waiter() {
    let mut g = group();
    let mut r = jreq("", "s");
    r.group_instance_id = Some("inst-1".into());
    let (reply, old, _) = g.join_keyed(0, r.clone());
    assert_eq!(reply, Reply::Pending);
    let (reply, new_id, outs) = g.join_keyed(100, r);
    assert_eq!(reply, Reply::Pending);
    let fenced = join_output(&outs, &old);
    assert_eq!(fenced.error_code, FENCED_INSTANCE_ID);
    let outs = g.tick(3000);
    assert_eq!(join_output(&outs, &new_id).error_code, NONE);
    assert_eq!(g.member_count(), 1);
}

#[test]
fn protocol_selection_follows_member_votes() {
    let mut g = group();
    let mut ra = jreq("", "a");
    ra.protocols = vec![proto("x", "ax"), proto("y", "ay")];
    let mut rb = jreq("", "b");
    rb.protocols = vec![proto("y", "by"), proto("x", "bx")];
    let mut rc = jreq("", "c");
    rc.protocols = vec![proto("z", "cz"), proto("y", "cy"), proto("x", "cx")];
    let (_, a, _) = g.join_keyed(0, ra);
    g.join_keyed(0, rb);
    g.join_keyed(0, rc);
    let outs = g.tick(6000);
    let j = join_output(&outs, &a);
    // Candidates {x, y}: a votes x, b and c vote y.
    assert_eq!(j.protocol_name.as_deref(), Some("y"));
    assert_eq!(j.members[0].metadata, Bytes::from("ay"));
    assert_eq!(j.members[2].metadata, Bytes::from("cy"));
}

#[test]
fn joining_without_a_common_protocol_is_inconsistent_group_protocol() {
    let mut g = group();
    join_new(&mut g, 0, "a");
    let mut r = jreq("", "b");
    r.protocols = vec![proto("roundrobin", "m")];
    let resp = now_reply(g.join(10, r).0);
    assert_eq!(resp.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let mut r = jreq("", "b");
    r.protocol_type = "connect".into();
    let resp = now_reply(g.join(10, r).0);
    assert_eq!(resp.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let mut r = jreq("", "b");
    r.protocols.clear();
    let mut empty = group();
    assert_eq!(
        now_reply(empty.join(0, r).0).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
}

#[test]
fn any_protocol_type_is_a_group() {
    let mut g = group();
    let mut r = jreq("", "w");
    r.protocol_type = "connect".into();
    r.protocols = vec![proto("sessioned", "cfg")];
    let (_, id, _) = g.join_keyed(0, r);
    let outs = g.tick(3000);
    let j = join_output(&outs, &id);
    assert_eq!(j.protocol_type.as_deref(), Some("connect"));
    assert_eq!(j.protocol_name.as_deref(), Some("sessioned"));
}

#[test]
fn sync_with_mismatched_protocol_name_or_type_is_inconsistent_group_protocol() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a"]);
    let mut s = sreq(&ids[0], 1, vec![]);
    s.protocol_name = Some("roundrobin".into());
    assert_eq!(
        now_reply(g.sync(now, s)).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut s = sreq(&ids[0], 1, vec![]);
    s.protocol_type = Some("connect".into());
    assert_eq!(
        now_reply(g.sync(now, s)).error_code,
        INCONSISTENT_GROUP_PROTOCOL
    );
    let mut s = sreq(&ids[0], 1, vec![]);
    s.protocol_type = None;
    s.protocol_name = None;
    assert_eq!(now_reply(g.sync(now, s)).error_code, NONE);
}

#[test]
fn stale_generation_and_unknown_member_are_rejected_on_sync_heartbeat_and_commit() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a"]);
    let a = &ids[0];
    assert_eq!(
        now_reply(g.sync(now, sreq(a, 0, vec![]))).error_code,
        ILLEGAL_GENERATION
    );
    assert_eq!(
        now_reply(g.sync(now, sreq("ghost", 1, vec![]))).error_code,
        UNKNOWN_MEMBER_ID
    );
    assert_eq!(g.heartbeat(now, a, None, 7).0, ILLEGAL_GENERATION);
    assert_eq!(g.heartbeat(now, "ghost", None, 1).0, UNKNOWN_MEMBER_ID);
    assert_eq!(
        g.validate_offset_commit(a, None, 7),
        Err(ILLEGAL_GENERATION)
    );
    assert_eq!(
        g.validate_offset_commit("ghost", None, 1),
        Err(UNKNOWN_MEMBER_ID)
    );
    assert_eq!(g.validate_offset_commit(a, None, 1), Ok(()));
    // Simple commit against a non-empty group.
    assert_eq!(
        g.validate_offset_commit("", None, -1),
        Err(UNKNOWN_MEMBER_ID)
    );
    // Unknown instance id.
    assert_eq!(
        g.validate_offset_commit(a, Some("inst"), 1),
        Err(UNKNOWN_MEMBER_ID)
    );
}

#[test]
fn commit_during_completing_rebalance_is_rebalance_in_progress() {
    let mut g = group();
    let a = join_new(&mut g, 0, "a");
    g.tick(3000);
    assert_eq!(
        g.validate_offset_commit(&a, None, 1),
        Err(REBALANCE_IN_PROGRESS)
    );
}

#[test]
fn simple_commit_with_generation_minus_one_is_allowed_only_when_empty() {
    let mut g = group();
    assert_eq!(g.validate_offset_commit("", None, -1), Ok(()));
    // Any member id with generation -1 is also accepted while Empty (Kafka checks this first).
    assert_eq!(g.validate_offset_commit("whoever", None, -1), Ok(()));
    assert_eq!(
        g.validate_offset_commit("", None, 0),
        Err(UNKNOWN_MEMBER_ID)
    );
    join_new(&mut g, 0, "a");
    assert_eq!(
        g.validate_offset_commit("", None, -1),
        Err(UNKNOWN_MEMBER_ID)
    );
    g.mark_dead();
    assert_eq!(
        g.validate_offset_commit("", None, -1),
        Err(COORDINATOR_NOT_AVAILABLE)
    );
    assert_eq!(g.validate_offset_fetch(), Err(GROUP_ID_NOT_FOUND));
}

#[test]
fn restore_from_snapshot_resumes_stable_with_heartbeat_deadlines() {
    let mut g = group();
    let (ids, _, snap) = stable_group_snapshot(&mut g, &["a", "b"]);
    let mut r = ClassicGroup::restore("g".into(), cfg(), snap.clone(), 100_000);
    assert_eq!(r.state(), GroupState::Stable);
    assert_eq!(r.generation_id(), 1);
    assert_eq!(r.leader(), Some(ids[0].as_str()));
    assert_eq!(r.protocol_name(), Some("range"));
    assert_eq!(r.protocol_type(), Some("consumer"));
    assert_eq!(r.member_count(), 2);
    assert_eq!(r.next_deadline(), Some(100_000 + i64::from(SESSION)));
    let sr = now_reply(r.sync(100_001, sreq(&ids[1], 1, vec![])));
    assert_eq!(sr.assignment, Bytes::from(format!("assign-{}", ids[1])));
    assert_eq!(r.heartbeat(100_001, &ids[0], None, 1).0, NONE);
    // b never heartbeats after the restart: evicted.
    r.tick(100_000 + i64::from(SESSION));
    assert_eq!(r.member_count(), 1);
    assert_eq!(r.state(), GroupState::PreparingRebalance);

    let empty = GroupSnapshot {
        members: vec![],
        ..snap
    };
    let e = ClassicGroup::restore("g".into(), cfg(), empty, 0);
    assert_eq!(e.state(), GroupState::Empty);
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn group_becoming_empty_is_persisted() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a"]);
    g.take_snapshot_if_changed(now);
    let (codes, _) = g.leave(now, &[(ids[0].clone(), None)]);
    assert_eq!(codes, vec![NONE]);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(g.generation_id(), 2);
    let snap = g.take_snapshot_if_changed(now).expect("empty snapshot");
    assert!(snap.members.is_empty());
    assert_eq!(snap.protocol, None);
    assert_eq!(snap.generation_id, 2);
}

#[test]
fn mark_dead_answers_every_pending_request() {
    let mut g2 = group();
    let x = join_new(&mut g2, 0, "x");
    let y = join_new(&mut g2, 0, "y");
    let outs = g2.mark_dead();
    assert_eq!(outs.len(), 2);
    assert_eq!(join_output(&outs, &x).error_code, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(join_output(&outs, &y).error_code, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(g2.state(), GroupState::Dead);
    assert_eq!(g2.next_deadline(), None);
    assert!(g2.tick(1_000_000).is_empty());
    assert_eq!(
        now_reply(g2.join(1, jreq("", "z")).0).error_code,
        COORDINATOR_NOT_AVAILABLE
    );
    assert_eq!(g2.leave(1, &[(x, None)]).0, vec![COORDINATOR_NOT_AVAILABLE]);

    // A parked sync is answered too.
    let mut g3 = group();
    let p = join_new(&mut g3, 0, "p");
    let q = join_new(&mut g3, 0, "q");
    g3.tick(6000);
    assert_eq!(g3.sync(6001, sreq(&q, 1, vec![])), Reply::Pending);
    let outs = g3.mark_dead();
    assert_eq!(outs.len(), 1);
    assert_eq!(sync_output(&outs, &q).error_code, COORDINATOR_NOT_AVAILABLE);
    assert_eq!(
        now_reply(g3.sync(6002, sreq(&p, 1, vec![]))).error_code,
        COORDINATOR_NOT_AVAILABLE
    );
}

#[test]
fn a_new_join_during_completing_rebalance_sends_rebalance_in_progress_to_waiting_syncs() {
    let mut g = group();
    let _a = join_new(&mut g, 0, "a");
    let b = join_new(&mut g, 0, "b");
    g.tick(6000);
    assert_eq!(g.sync(6001, sreq(&b, 1, vec![])), Reply::Pending);
    let (reply, _c, outs) = g.join_keyed(6002, jreq("", "c"));
    assert_eq!(reply, Reply::Pending);
    let sb = sync_output(&outs, &b);
    assert_eq!(sb.error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(sb.protocol_name, None);
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn a_join_while_the_leaders_assignment_is_written_puts_everyone_in_the_next_generation() {
    // Two consumers started together: the second joins after the first generation completed
    // with only the first, while its leader's assignment is being written. As in Kafka, the
    // leader's SyncGroup gets REBALANCE_IN_PROGRESS instead of an assignment it would hold
    // until its next heartbeat, and both are in generation 2.
    let mut g = group_with_delay(0);
    let (reply, a, _) = g.join_keyed(0, jreq("", "a"));
    assert_eq!(reply, Reply::Pending);
    let outs = g.tick(1);
    assert_eq!(join_output(&outs, &a).generation_id, 1);
    let r = g.sync(1, sreq(&a, 1, vec![(a.clone(), Bytes::from("all"))]));
    assert_eq!(r, Reply::Pending);
    assert_eq!(g.take_assignment_to_write(), Some(1));
    assert!(g.take_snapshot_if_changed(1).is_some());

    let (reply, b, outs) = g.join_keyed(2, jreq("", "b"));
    assert_eq!(reply, Reply::Pending);
    let sa = sync_output(&outs, &a);
    assert_eq!(sa.error_code, REBALANCE_IN_PROGRESS);
    assert_eq!(sa.assignment, Bytes::new());
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    // The write lands too late to matter.
    assert!(g.assignment_written(3, 1, Ok(())).is_empty());
    assert_eq!(g.state(), GroupState::PreparingRebalance);

    let (reply, outs) = g.join(4, jreq(&a, "a"));
    let ja = now_reply(reply);
    assert_eq!(ja.generation_id, 2);
    assert_eq!(ja.members.len(), 2);
    let jb = join_output(&outs, &b);
    assert_eq!((jb.error_code, jb.generation_id), (NONE, 2));
    let outs = leader_sync(
        &mut g,
        5,
        sreq(
            &a,
            2,
            vec![
                (a.clone(), Bytes::from("pa")),
                (b.clone(), Bytes::from("pb")),
            ],
        ),
    );
    assert_eq!(sync_output(&outs, &a).assignment, Bytes::from("pa"));
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn an_assignment_that_cannot_be_written_is_an_error_to_every_waiting_member_and_a_rebalance() {
    let mut g = group();
    let (a, b) = two_members_with_assignment_being_written(&mut g);
    assert_eq!(g.take_assignment_to_write(), Some(1));
    let outs = g.assignment_written(6300, 1, Err(COORDINATOR_NOT_AVAILABLE));
    assert_eq!(outs.len(), 2, "{outs:?}");
    for id in [&a, &b] {
        let r = sync_output(&outs, id);
        assert_eq!(r.error_code, COORDINATOR_NOT_AVAILABLE);
        assert_eq!(r.assignment, Bytes::new());
    }
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    assert_eq!(g.generation_id(), 1);
    // Both rejoin into generation 2.
    assert_eq!(g.join(6400, jreq(&a, "a")).0, Reply::Pending);
    let (reply, outs) = g.join(6500, jreq(&b, "b"));
    assert_eq!(now_reply(reply).generation_id, 2);
    assert_eq!(join_output(&outs, &a).generation_id, 2);
}

#[test]
fn batch_leave_reports_one_unknown_member_and_removes_the_rest() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a", "b", "c"]);
    let (codes, outs) = g.leave(
        now,
        &[
            (ids[0].clone(), None),
            ("ghost".into(), None),
            (ids[2].clone(), None),
            (String::new(), Some("no-such-instance".into())),
        ],
    );
    assert_eq!(
        codes,
        vec![NONE, UNKNOWN_MEMBER_ID, NONE, UNKNOWN_MEMBER_ID]
    );
    assert!(outs.is_empty());
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.leader(), Some(ids[1].as_str()));
    assert_eq!(g.state(), GroupState::PreparingRebalance);
}

#[test]
fn leaving_member_with_a_parked_join_gets_unknown_member_id() {
    let mut g = group();
    let a = join_new(&mut g, 0, "a");
    let b = join_new(&mut g, 0, "b");
    let (codes, outs) = g.leave(10, &[(b.clone(), None)]);
    assert_eq!(codes, vec![NONE]);
    let jb = join_output(&outs, &b);
    assert_eq!(jb.error_code, UNKNOWN_MEMBER_ID);
    assert_eq!(jb.member_id, "");
    let outs = g.tick(6000);
    assert_eq!(join_output(&outs, &a).members.len(), 1);
}

#[test]
fn group_max_size_rejects_new_members() {
    let mut g = ClassicGroup::new(
        "g".into(),
        GroupConfig {
            max_size: 1,
            ..cfg()
        },
    );
    join_new(&mut g, 0, "a");
    let resp = now_reply(g.join(1, jreq("", "b")).0);
    assert_eq!(resp.error_code, GROUP_MAX_SIZE_REACHED);
    assert_eq!(g.member_count(), 1);
}

#[test]
fn session_timeout_outside_bounds_is_invalid() {
    let mut g = group();
    let mut r = jreq("", "a");
    r.session_timeout_ms = 10;
    assert_eq!(
        now_reply(g.join(0, r.clone()).0).error_code,
        INVALID_SESSION_TIMEOUT
    );
    r.session_timeout_ms = 1_800_001;
    assert_eq!(
        now_reply(g.join(0, r).0).error_code,
        INVALID_SESSION_TIMEOUT
    );
    assert_eq!(g.member_count(), 0);
}

#[test]
fn follower_rejoining_a_stable_group_with_same_metadata_gets_current_generation() {
    let mut g = group();
    let (ids, now) = stable_group(&mut g, &["a", "b"]);
    let resp = now_reply(g.join(now, jreq(&ids[1], "b")).0);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(resp.generation_id, 1);
    assert!(resp.members.is_empty());
    assert_eq!(g.state(), GroupState::Stable);
}

#[test]
fn describe_hides_metadata_unless_stable() {
    let mut g = group();
    join_new(&mut g, 0, "a");
    let d = g.describe();
    assert_eq!(d.state, GroupState::PreparingRebalance);
    assert_eq!(d.protocol, "");
    assert_eq!(d.members[0].metadata, Bytes::new());
    assert_eq!(
        GroupState::CompletingRebalance.as_str(),
        "CompletingRebalance"
    );
}

// ------------------------------------------------------------------ model test

#[derive(Debug, Clone)]
enum Op {
    Join {
        who: usize,
        fresh: bool,
        kip394: bool,
        alt_protocol: bool,
    },
    Sync {
        who: usize,
        stale: bool,
    },
    Heartbeat {
        who: usize,
    },
    Leave {
        who: usize,
        by_instance: bool,
    },
    Tick {
        advance: i64,
    },
    /// The oldest leader assignment still being written is written, or fails.
    Written {
        ok: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (
            0..4usize,
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.15)
        )
            .prop_map(|(who, fresh, kip394, alt_protocol)| Op::Join {
                who,
                fresh,
                kip394,
                alt_protocol
            }),
        (0..4usize, prop::bool::weighted(0.1)).prop_map(|(who, stale)| Op::Sync { who, stale }),
        (0..4usize).prop_map(|who| Op::Heartbeat { who }),
        (0..4usize, any::<bool>()).prop_map(|(who, by_instance)| Op::Leave { who, by_instance }),
        (0i64..15_000).prop_map(|advance| Op::Tick { advance }),
        prop::bool::weighted(0.8).prop_map(|ok| Op::Written { ok }),
    ]
}

/// The caller's side: waiters held per member id, and what each client believes.
#[derive(Default)]
struct Model {
    join_waiters: HashSet<String>,
    sync_waiters: HashSet<String>,
    ids: [Option<String>; 4],
    gens: [i32; 4],
    /// Generations whose leader assignment is being written, oldest first.
    writes: Vec<i32>,
}

impl Model {
    fn absorb(&mut self, outs: Vec<Output>) -> Result<(), TestCaseError> {
        for o in outs {
            match o {
                Output::Join {
                    member_id,
                    response,
                } => {
                    prop_assert!(
                        self.join_waiters.remove(&member_id),
                        "join output without a waiter: {}",
                        member_id
                    );
                    if response.error_code == NONE {
                        self.learn(&member_id, response.generation_id);
                    }
                }
                Output::Sync { member_id, .. } => {
                    prop_assert!(
                        self.sync_waiters.remove(&member_id),
                        "sync output without a waiter: {}",
                        member_id
                    );
                }
            }
        }
        Ok(())
    }

    fn learn(&mut self, member_id: &str, generation: i32) {
        for i in 0..4 {
            if self.ids[i].as_deref() == Some(member_id) {
                self.gens[i] = generation;
            }
        }
    }
}

fn instance(who: usize) -> Option<String> {
    // Clients 2 and 3 are static members.
    (who >= 2).then(|| format!("inst-{who}"))
}

fn run_model(ops: Vec<Op>, drain: bool) -> Result<(), TestCaseError> {
    let mut g = ClassicGroup::new(
        "g".into(),
        GroupConfig {
            max_size: 3,
            ..cfg()
        },
    );
    let mut m = Model::default();
    let mut now = 0i64;
    let mut last_gen = g.generation_id();
    for op in ops {
        match op {
            Op::Join {
                who,
                fresh,
                kip394,
                alt_protocol,
            } => {
                let mut r = jreq("", &format!("c{who}"));
                r.group_instance_id = instance(who);
                r.require_known_member_id = kip394;
                if alt_protocol {
                    r.protocols = vec![proto("other", "o")];
                }
                if !fresh {
                    r.member_id = m.ids[who].clone().unwrap_or_default();
                }
                if !r.member_id.is_empty() {
                    // The caller drops any older waiter for this member id.
                    m.join_waiters.remove(&r.member_id);
                }
                let (reply, key, outs) = g.join_keyed(now, r);
                m.absorb(outs)?;
                match reply {
                    Reply::Pending => {
                        prop_assert!(m.join_waiters.insert(key.clone()));
                        m.ids[who] = Some(key);
                    }
                    Reply::Now(resp) => {
                        if resp.error_code == NONE || resp.error_code == MEMBER_ID_REQUIRED {
                            m.ids[who] = Some(resp.member_id.clone());
                            if resp.error_code == NONE {
                                m.gens[who] = resp.generation_id;
                            }
                        }
                    }
                }
            }
            Op::Sync { who, stale } => {
                let Some(id) = m.ids[who].clone() else {
                    continue;
                };
                let generation = if stale { m.gens[who] - 1 } else { m.gens[who] };
                let mut s = sreq(&id, generation, vec![(id.clone(), Bytes::from("a"))]);
                s.group_instance_id = instance(who);
                m.sync_waiters.remove(&id);
                if g.sync(now, s) == Reply::Pending {
                    prop_assert!(m.sync_waiters.insert(id));
                }
                if let Some(generation) = g.take_assignment_to_write() {
                    m.writes.push(generation);
                }
            }
            Op::Heartbeat { who } => {
                if let Some(id) = m.ids[who].clone() {
                    let (_, outs) = g.heartbeat(now, &id, instance(who).as_deref(), m.gens[who]);
                    prop_assert!(outs.is_empty());
                }
            }
            Op::Leave { who, by_instance } => {
                let entry = if by_instance && instance(who).is_some() {
                    (String::new(), instance(who))
                } else {
                    (m.ids[who].clone().unwrap_or_default(), instance(who))
                };
                let (codes, outs) = g.leave(now, &[entry]);
                prop_assert_eq!(codes.len(), 1);
                m.absorb(outs)?;
            }
            Op::Tick { advance } => {
                now += advance;
                let outs = g.tick(now);
                m.absorb(outs)?;
            }
            Op::Written { ok } => {
                if !m.writes.is_empty() {
                    let generation = m.writes.remove(0);
                    let result = if ok {
                        Ok(())
                    } else {
                        Err(COORDINATOR_NOT_AVAILABLE)
                    };
                    let outs = g.assignment_written(now, generation, result);
                    m.absorb(outs)?;
                }
            }
        }
        prop_assert!(g.generation_id() >= last_gen, "generation went backwards");
        last_gen = g.generation_id();
        if let Some(d) = g.next_deadline() {
            prop_assert!(
                d >= now || g.state() == GroupState::Dead,
                "overdue timer after op"
            );
        }
    }
    if drain {
        // Every write completes (the coordinator always reports it) ...
        for generation in std::mem::take(&mut m.writes) {
            let outs = g.assignment_written(now, generation, Ok(()));
            m.absorb(outs)?;
        }
        // ... and with nobody heartbeating any more, every parked request must be answered.
        for _ in 0..1000 {
            let Some(d) = g.next_deadline() else { break };
            now = now.max(d);
            let outs = g.tick(now);
            m.absorb(outs)?;
            prop_assert!(g.generation_id() >= last_gen);
            last_gen = g.generation_id();
        }
        prop_assert!(
            m.join_waiters.is_empty(),
            "unanswered joins {:?}",
            m.join_waiters
        );
        prop_assert!(
            m.sync_waiters.is_empty(),
            "unanswered syncs {:?}",
            m.sync_waiters
        );
        prop_assert_eq!(g.state(), GroupState::Empty);
    }
    let outs = g.mark_dead();
    m.absorb(outs)?;
    prop_assert!(
        m.join_waiters.is_empty(),
        "unanswered joins {:?}",
        m.join_waiters
    );
    prop_assert!(
        m.sync_waiters.is_empty(),
        "unanswered syncs {:?}",
        m.sync_waiters
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_pending_request_gets_exactly_one_output_and_generations_never_decrease(
        ops in prop::collection::vec(op(), 1..60),
        drain in any::<bool>(),
    ) {
        run_model(ops, drain)?;
    }
}
