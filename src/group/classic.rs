//! The classic (JoinGroup/SyncGroup) consumer-group state machine, following Kafka 4.x's
//! `ClassicGroup` + the classic parts of `GroupMetadataManager`. Pure and synchronous: time is
//! passed in, responses to parked requests come back as `Output`s; no I/O, no locks, no tasks.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::member::Member;

pub type MemberId = String;

/// Kafka error codes used by the classic group protocol.
pub mod errors {
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const NONE: i16 = 0;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
}
use errors::*;

/// Kafka's internal `group.classic.new.member.join.timeout.ms` (5 minutes): how long a brand-new
/// member's parked JoinGroup may wait before the member is dropped.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The initial-rebalance timer's resolution. Kafka's coordinator timers run on a timing wheel
/// with 1 ms ticks, so a delay of 0 expires on the next tick, behind the requests already
/// queued: consumers whose JoinGroups arrive within that tick (started together) share the
/// first generation. The join timer here does the same rather than expiring at once.
const TIMER_TICK_MS: i64 = 1;

/// Upper bound on timer firings handled by one `tick()` call (protects against pathological
/// zero timeouts); anything left is still due and is reported by `next_deadline()`.
const MAX_FIRINGS_PER_TICK: usize = 10_000;

#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub initial_rebalance_delay_ms: i64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub max_size: usize,
}

/// Kafka's code defaults (an initial rebalance delay of 3 s); the broker's
/// own defaults come from `BrokerConfig::coordinator`.
impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn as_str(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Only for the leader.
    pub members: Vec<JoinMember>,
}

impl JoinResponse {
    fn error(error_code: i16, member_id: &str) -> Self {
        JoinResponse {
            error_code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    fn error(error_code: i16) -> Self {
        SyncResponse {
            error_code,
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A response decided now, or later through an Output (the caller keeps the request waiting,
/// keyed by member id).
#[derive(Debug, PartialEq)]
pub enum Reply<T> {
    Now(T),
    Pending,
}

/// Responses to requests that were Pending, produced by later calls or by tick().
#[derive(Debug, PartialEq)]
pub enum Output {
    Join {
        member_id: String,
        response: JoinResponse,
    },
    Sync {
        member_id: String,
        response: SyncResponse,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// For the chosen protocol (empty unless the group is Stable, as in Kafka's DescribeGroups).
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    /// The chosen protocol when Stable, else "" (Kafka's DescribeGroups `protocolData`).
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

/// What is persisted to __consumer_offsets (Kafka's GroupMetadataValue).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// The group-level join timer (Kafka's `classicGroupJoinKey`).
#[derive(Debug, Clone, Copy)]
enum JoinTimer {
    /// Delayed initial rebalance (`tryCompleteInitialRebalanceElseSchedule`).
    InitialDelay { delay_ms: i64, remaining_ms: i64 },
    /// Rebalance timeout (`completeClassicGroupJoin`).
    Complete,
}

/// Which timer is due next (used by `tick`).
enum Due {
    Heartbeat(String),
    PendingMember(String),
    Join,
    Sync,
}

pub struct ClassicGroup {
    group_id: String,
    config: GroupConfig,
    state: GroupState,
    previous_state: GroupState,
    state_timestamp_ms: i64,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation_id: i32,
    leader: Option<String>,
    members: HashMap<String, Member>,
    /// Member ids in join order (leader re-election and output order follow it).
    order: Vec<String>,
    /// group.instance.id -> member id.
    static_members: HashMap<String, String>,
    /// KIP-394 members that were given an id and must rejoin with it, with their expiry.
    pending_join: HashMap<String, i64>,
    /// Members that have not sent SyncGroup for the current generation.
    pending_sync: HashSet<String>,
    new_member_added: bool,
    join_timer: Option<(i64, JoinTimer)>,
    /// (deadline, generation it was armed for).
    sync_timer: Option<(i64, i32)>,
    /// The persisted form changed since the last `take_snapshot_if_changed`.
    dirty: bool,
    /// The generation whose leader assignment was accepted and must be written before the group
    /// becomes Stable (`take_assignment_to_write`, then `assignment_written`).
    assignment_to_write: Option<i32>,
    /// Created by `new` and never joined yet (Kafka writes an empty record on creation by join).
    fresh: bool,
    /// Latest time seen; timers fire at max(their deadline, clock) so a late tick() behaves like
    /// timers that fired on time.
    clock: i64,
}

fn inconsistent(request: Option<&str>, group: Option<&str>) -> bool {
    matches!((request, group), (Some(r), Some(g)) if r != g)
}

impl ClassicGroup {
    pub fn new(group_id: String, config: GroupConfig) -> Self {
        ClassicGroup {
            group_id,
            config,
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp_ms: -1,
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader: None,
            members: HashMap::new(),
            order: Vec::new(),
            static_members: HashMap::new(),
            pending_join: HashMap::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            dirty: false,
            assignment_to_write: None,
            fresh: true,
            clock: i64::MIN,
        }
    }

    /// Restores a group loaded from __consumer_offsets at broker start: Stable with its members
    /// (each member's heartbeat deadline starts at now + its session timeout) if it has members,
    /// else Empty.
    pub fn restore(
        group_id: String,
        config: GroupConfig,
        snapshot: GroupSnapshot,
        now_ms: i64,
    ) -> Self {
        let mut g = ClassicGroup::new(group_id, config);
        g.fresh = false;
        g.clock = now_ms;
        g.generation_id = snapshot.generation_id;
        g.protocol_type = if snapshot.protocol_type.is_empty() {
            None
        } else {
            Some(snapshot.protocol_type.clone())
        };
        g.protocol_name = snapshot.protocol.clone();
        g.state_timestamp_ms = snapshot.state_timestamp_ms;
        let protocol = snapshot.protocol.clone().unwrap_or_default();
        for m in snapshot.members {
            if g.members.contains_key(&m.member_id) {
                continue;
            }
            if let Some(iid) = &m.group_instance_id {
                if g.static_members.contains_key(iid) {
                    continue;
                }
                g.static_members.insert(iid.clone(), m.member_id.clone());
            }
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                session_timeout_ms: m.session_timeout_ms,
                protocols: vec![(protocol.clone(), m.subscription)],
                assignment: m.assignment,
                awaiting_join: false,
                join_waiter: false,
                awaiting_sync: false,
                sync_waiter: false,
                is_new: false,
                heartbeat_deadline: Some(now_ms.saturating_add(i64::from(m.session_timeout_ms))),
            };
            g.order.push(m.member_id.clone());
            g.members.insert(m.member_id, member);
        }
        g.leader = match snapshot.leader {
            Some(l) if g.members.contains_key(&l) => Some(l),
            _ => g.order.first().cloned(),
        };
        g.state = if g.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        g
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }
    pub fn state(&self) -> GroupState {
        self.state
    }
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    // ------------------------------------------------------------------ JoinGroup

    pub fn join(&mut self, now_ms: i64, req: JoinRequest) -> (Reply<JoinResponse>, Vec<Output>) {
        let (reply, _key, outputs) = self.join_keyed(now_ms, req);
        (reply, outputs)
    }

    /// Like `join`, and also returns the member id a `Reply::Pending` is keyed by. It differs from
    /// the request's member id only when a new member without KIP-394 (`require_known_member_id`
    /// false, or a static member) is parked under a freshly generated id.
    pub fn join_keyed(
        &mut self,
        now_ms: i64,
        req: JoinRequest,
    ) -> (Reply<JoinResponse>, String, Vec<Output>) {
        let mut out = Vec::new();
        self.clock = self.clock.max(now_ms);
        // A new JoinGroup from a member supersedes the caller's older waiter for it.
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.join_waiter = false;
        }
        let result = self.join_inner(now_ms, &req, &mut out);
        match result {
            Ok(resp) => (Reply::Now(resp), req.member_id, out),
            Err(key) => {
                let pos = out
                    .iter()
                    .position(|o| matches!(o, Output::Join { member_id, .. } if *member_id == key));
                match pos {
                    Some(i) => match out.remove(i) {
                        Output::Join { response, .. } => (Reply::Now(response), key, out),
                        other => {
                            out.insert(i, other);
                            (Reply::Pending, key, out)
                        }
                    },
                    None => (Reply::Pending, key, out),
                }
            }
        }
    }

    /// Ok(response now) or Err(member id the parked request is keyed by).
    fn join_inner(
        &mut self,
        now: i64,
        req: &JoinRequest,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Ok(JoinResponse::error(INVALID_SESSION_TIMEOUT, &req.member_id));
        }
        if self.fresh {
            self.fresh = false;
            self.dirty = true;
            if self.state_timestamp_ms < 0 {
                self.state_timestamp_ms = now;
            }
        }
        if !self.accept_joining_member(&req.member_id) {
            self.remove_member(&req.member_id, out);
            return Ok(JoinResponse::error(GROUP_MAX_SIZE_REACHED, ""));
        }
        if req.member_id.is_empty() {
            self.join_new_member(now, req, out)
        } else {
            self.join_existing_member(now, req, out)
        }
    }

    fn accept_joining_member(&self, member_id: &str) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members.get(member_id).is_some_and(|m| m.awaiting_join)
                    || self.num_awaiting_join() < self.config.max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < self.config.max_size
            }
        }
    }

    fn join_new_member(
        &mut self,
        now: i64,
        req: &JoinRequest,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        if self.state == GroupState::Dead {
            return Ok(JoinResponse::error(COORDINATOR_NOT_AVAILABLE, ""));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Ok(JoinResponse::error(INCONSISTENT_GROUP_PROTOCOL, ""));
        }
        let uuid = uuid::Uuid::new_v4();
        match &req.group_instance_id {
            Some(iid) => {
                let new_id = format!("{iid}-{uuid}");
                match self.static_members.get(iid).cloned() {
                    Some(old_id) => self.update_static_member(now, req, iid, &old_id, new_id, out),
                    None => self.add_member_then_rebalance(now, req, new_id, out),
                }
            }
            None => {
                let new_id = format!("{}-{uuid}", req.client_id);
                if req.require_known_member_id {
                    let deadline = now.saturating_add(i64::from(req.session_timeout_ms));
                    self.pending_join.insert(new_id.clone(), deadline);
                    Ok(JoinResponse::error(MEMBER_ID_REQUIRED, &new_id))
                } else {
                    self.add_member_then_rebalance(now, req, new_id, out)
                }
            }
        }
    }

    fn join_existing_member(
        &mut self,
        now: i64,
        req: &JoinRequest,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        let member_id = req.member_id.as_str();
        if self.state == GroupState::Dead {
            return Ok(JoinResponse::error(COORDINATOR_NOT_AVAILABLE, member_id));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Ok(JoinResponse::error(INCONSISTENT_GROUP_PROTOCOL, member_id));
        }
        if self.pending_join.contains_key(member_id) {
            if req.group_instance_id.is_some() {
                // Kafka throws IllegalStateException here (surfaces as UNKNOWN_SERVER_ERROR).
                return Ok(JoinResponse::error(UNKNOWN_SERVER_ERROR, member_id));
            }
            return self.add_member_then_rebalance(now, req, member_id.to_string(), out);
        }
        if let Err(code) = self.validate_member(member_id, req.group_instance_id.as_deref()) {
            return Ok(JoinResponse::error(code, member_id));
        }
        let (matches, is_leader) = match self.members.get(member_id) {
            Some(m) => (m.matches(&req.protocols), self.is_leader(member_id)),
            None => return Ok(JoinResponse::error(UNKNOWN_MEMBER_ID, member_id)),
        };
        match self.state {
            GroupState::PreparingRebalance => self.update_member_then_rebalance(now, req, out),
            GroupState::CompletingRebalance => {
                if matches {
                    Ok(self.current_join_response(member_id, is_leader))
                } else {
                    self.update_member_then_rebalance(now, req, out)
                }
            }
            GroupState::Stable => {
                if is_leader || !matches {
                    self.update_member_then_rebalance(now, req, out)
                } else {
                    Ok(self.current_join_response(member_id, false))
                }
            }
            GroupState::Empty | GroupState::Dead => {
                Ok(JoinResponse::error(UNKNOWN_MEMBER_ID, member_id))
            }
        }
    }

    fn current_join_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        JoinResponse {
            error_code: NONE,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.current_members()
            } else {
                Vec::new()
            },
        }
    }

    fn current_members(&self) -> Vec<JoinMember> {
        self.order
            .iter()
            .filter_map(|id| self.members.get(id))
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                group_instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol_name.as_deref()),
            })
            .collect()
    }

    fn add_member_then_rebalance(
        &mut self,
        now: i64,
        req: &JoinRequest,
        member_id: String,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let instance_taken = req
            .group_instance_id
            .as_ref()
            .is_some_and(|iid| self.static_members.contains_key(iid));
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) || instance_taken {
            // Unreachable after the checks above (Kafka would throw IllegalStateException).
            return Ok(JoinResponse::error(UNKNOWN_SERVER_ERROR, &member_id));
        }
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        let member = Member {
            id: member_id.clone(),
            instance_id: req.group_instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: true,
            join_waiter: true,
            awaiting_sync: false,
            sync_waiter: false,
            is_new: true,
            heartbeat_deadline: Some(now.saturating_add(NEW_MEMBER_JOIN_TIMEOUT_MS)),
        };
        if let Some(iid) = &member.instance_id {
            self.static_members.insert(iid.clone(), member_id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member_id.clone());
        }
        self.pending_join.remove(&member_id);
        self.order.push(member_id.clone());
        self.members.insert(member_id.clone(), member);
        self.maybe_prepare_rebalance_or_complete_join(now, out);
        Err(member_id)
    }

    fn update_member(&mut self, member_id: &str, req: &JoinRequest) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = req.protocols.clone();
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.session_timeout_ms = req.session_timeout_ms;
            m.awaiting_join = true;
            m.join_waiter = true;
        }
    }

    fn update_member_then_rebalance(
        &mut self,
        now: i64,
        req: &JoinRequest,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        self.update_member(&req.member_id, req);
        self.maybe_prepare_rebalance_or_complete_join(now, out);
        Err(req.member_id.clone())
    }

    /// A known static member rejoined with an unknown member id: replace the old member id.
    fn update_static_member(
        &mut self,
        now: i64,
        req: &JoinRequest,
        instance_id: &str,
        old_id: &str,
        new_id: String,
        out: &mut Vec<Output>,
    ) -> Result<JoinResponse, String> {
        let current_leader = self.leader.clone().unwrap_or_default();
        let Some(mut member) = self.members.remove(old_id) else {
            return Ok(JoinResponse::error(UNKNOWN_SERVER_ERROR, ""));
        };
        // Fence whoever still waits under the old member id.
        if member.awaiting_join && member.join_waiter {
            out.push(Output::Join {
                member_id: old_id.to_string(),
                response: JoinResponse::error(FENCED_INSTANCE_ID, old_id),
            });
        }
        if member.awaiting_sync && member.sync_waiter {
            out.push(Output::Sync {
                member_id: old_id.to_string(),
                response: SyncResponse::error(FENCED_INSTANCE_ID),
            });
        }
        member.id = new_id.clone();
        member.awaiting_join = false;
        member.join_waiter = false;
        member.awaiting_sync = false;
        member.sync_waiter = false;
        member.is_new = false;
        member.heartbeat_deadline = Some(now.saturating_add(i64::from(member.session_timeout_ms)));
        if let Some(slot) = self.order.iter_mut().find(|id| *id == old_id) {
            *slot = new_id.clone();
        }
        self.members.insert(new_id.clone(), member);
        if self.is_leader(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.static_members
            .insert(instance_id.to_string(), new_id.clone());
        self.update_member(&new_id, req);

        match self.state {
            GroupState::Stable => {
                if self.protocol_name.is_some() && self.select_protocol() == self.protocol_name {
                    // Same protocol: persist the new member id, no rebalance.
                    self.dirty = true;
                    let response = JoinResponse {
                        error_code: NONE,
                        generation_id: self.generation_id,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol_name.clone(),
                        leader: current_leader,
                        member_id: new_id.clone(),
                        members: Vec::new(),
                    };
                    self.complete_join(&new_id, response, out);
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(now, out);
                }
            }
            GroupState::CompletingRebalance => self.prepare_rebalance(now, out),
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
        Err(new_id)
    }

    // ------------------------------------------------------------------ SyncGroup

    /// SyncGroup: answered now, or parked until the leader's assignment is durable (then
    /// answered through [`assignment_written`](Self::assignment_written)'s outputs) or a
    /// rebalance starts.
    pub fn sync(&mut self, now_ms: i64, req: SyncRequest) -> Reply<SyncResponse> {
        self.clock = self.clock.max(now_ms);
        if let Some(m) = self.members.get_mut(&req.member_id) {
            m.sync_waiter = false;
        }
        match self.sync_inner(&req) {
            Some(resp) => Reply::Now(resp),
            None => Reply::Pending,
        }
    }

    fn sync_inner(&mut self, req: &SyncRequest) -> Option<SyncResponse> {
        match self.state {
            GroupState::Empty => return Some(SyncResponse::error(UNKNOWN_MEMBER_ID)),
            GroupState::Dead => return Some(SyncResponse::error(COORDINATOR_NOT_AVAILABLE)),
            _ => {}
        }
        if let Err(code) = self.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            return Some(SyncResponse::error(code));
        }
        if req.generation_id != self.generation_id {
            return Some(SyncResponse::error(ILLEGAL_GENERATION));
        }
        if inconsistent(req.protocol_type.as_deref(), self.protocol_type.as_deref())
            || inconsistent(req.protocol_name.as_deref(), self.protocol_name.as_deref())
        {
            return Some(SyncResponse::error(INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            GroupState::PreparingRebalance => Some(SyncResponse::error(REBALANCE_IN_PROGRESS)),
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.awaiting_sync = true;
                    m.sync_waiter = true;
                }
                self.remove_pending_sync(&req.member_id);
                if self.is_leader(&req.member_id) {
                    let mut assignment: HashMap<&str, &Bytes> = HashMap::new();
                    for (id, a) in &req.assignments {
                        assignment.insert(id.as_str(), a);
                    }
                    for id in &self.order {
                        if let Some(m) = self.members.get_mut(id) {
                            m.assignment = assignment
                                .get(id.as_str())
                                .map(|b| (*b).clone())
                                .unwrap_or_default();
                        }
                    }
                    // As Kafka: the group stays CompletingRebalance, and nobody gets the
                    // assignment, until its record is written; a member joining meanwhile
                    // starts the next rebalance and the waiting syncs get REBALANCE_IN_PROGRESS.
                    self.dirty = true;
                    self.assignment_to_write = Some(self.generation_id);
                }
                None
            }
            GroupState::Stable => {
                self.remove_pending_sync(&req.member_id);
                let assignment = self
                    .members
                    .get(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Some(SyncResponse {
                    error_code: NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::Empty | GroupState::Dead => {
                Some(SyncResponse::error(COORDINATOR_NOT_AVAILABLE))
            }
        }
    }

    /// The generation whose leader assignment is in the snapshot just taken and must be made
    /// durable, then reported to [`assignment_written`](Self::assignment_written).
    pub fn take_assignment_to_write(&mut self) -> Option<i32> {
        self.assignment_to_write.take()
    }

    /// The record holding the leader's assignment for `generation` was written (`Ok`) or could
    /// not be (`Err(code)`): Kafka's SyncGroup append callback. If the group is still completing
    /// that generation, every member awaiting sync gets its assignment and the group is Stable;
    /// on an error they get it and the group rebalances. Otherwise it is too late: nothing.
    pub fn assignment_written(
        &mut self,
        now_ms: i64,
        generation: i32,
        result: Result<(), i16>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.clock = self.clock.max(now_ms);
        let now = self.clock;
        if self.state != GroupState::CompletingRebalance || self.generation_id != generation {
            return out;
        }
        match result {
            Ok(()) => {
                self.propagate_assignment(now, NONE, &mut out);
                self.transition(GroupState::Stable, now);
            }
            Err(code) => {
                for m in self.members.values_mut() {
                    m.assignment = Bytes::new();
                }
                self.propagate_assignment(now, code, &mut out);
                self.maybe_prepare_rebalance_or_complete_join(now, &mut out);
            }
        }
        out
    }

    fn remove_pending_sync(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        match self.state {
            GroupState::CompletingRebalance | GroupState::Stable => {
                if self.pending_sync.is_empty() {
                    self.sync_timer = None;
                }
            }
            _ => self.sync_timer = None,
        }
    }

    // ------------------------------------------------------------------ Heartbeat / Leave

    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> (i16, Vec<Output>) {
        self.clock = self.clock.max(now_ms);
        if self.state == GroupState::Dead {
            return (COORDINATOR_NOT_AVAILABLE, Vec::new());
        }
        if let Err(code) = self.validate_member(member_id, group_instance_id) {
            return (code, Vec::new());
        }
        if generation_id != self.generation_id {
            return (ILLEGAL_GENERATION, Vec::new());
        }
        let code = match self.state {
            GroupState::Empty => return (UNKNOWN_MEMBER_ID, Vec::new()),
            GroupState::PreparingRebalance => REBALANCE_IN_PROGRESS,
            GroupState::CompletingRebalance | GroupState::Stable => NONE,
            GroupState::Dead => return (COORDINATOR_NOT_AVAILABLE, Vec::new()),
        };
        self.reschedule_heartbeat(member_id, now_ms);
        (code, Vec::new())
    }

    /// Batch leave (v3+: each member by member id and/or instance id); returns one error code per
    /// member, in order, plus outputs. On a Dead group every entry gets COORDINATOR_NOT_AVAILABLE
    /// (Kafka reports that as the top-level error instead).
    pub fn leave(
        &mut self,
        now_ms: i64,
        members: &[(String, Option<String>)],
    ) -> (Vec<i16>, Vec<Output>) {
        let mut out = Vec::new();
        self.clock = self.clock.max(now_ms);
        if self.state == GroupState::Dead {
            return (vec![COORDINATOR_NOT_AVAILABLE; members.len()], out);
        }
        let mut codes = Vec::with_capacity(members.len());
        let mut any_left = false;
        for (member_id, instance_id) in members {
            let code = if member_id.is_empty() {
                match instance_id
                    .as_ref()
                    .and_then(|iid| self.static_members.get(iid).cloned())
                {
                    Some(id) => {
                        self.remove_member(&id, &mut out);
                        NONE
                    }
                    None => UNKNOWN_MEMBER_ID,
                }
            } else if self.pending_join.contains_key(member_id) {
                self.remove_member(member_id, &mut out);
                NONE
            } else {
                match self.validate_member(member_id, instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_member(member_id, &mut out);
                        NONE
                    }
                    Err(code) => code,
                }
            };
            any_left |= code == NONE;
            codes.push(code);
        }
        if any_left {
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(now_ms, &mut out)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(now_ms, &mut out),
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        (codes, out)
    }

    // ------------------------------------------------------------------ timers

    /// Expires session timeouts, the initial rebalance delay, rebalance and sync timeouts due at
    /// now_ms, in deadline order; each fires at max(its deadline, latest time seen), so follow-up
    /// timers are scheduled as if it had fired on time.
    ///
    /// A join timer that a firing re-arms for a time already past (an initial rebalance delay
    /// extended for a member that joined meanwhile, seen by a late call) is left for the next
    /// call, as Kafka runs every expiry as its own event behind the requests already queued: a
    /// JoinGroup that arrived meanwhile gets into the generation instead of starting the next.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        let mut join_deferred = false;
        for _ in 0..MAX_FIRINGS_PER_TICK {
            let Some((deadline, due)) = self.earliest_due(join_deferred) else {
                break;
            };
            if deadline > now_ms {
                break;
            }
            let now_ms = deadline.max(self.clock);
            self.clock = now_ms;
            match due {
                Due::Heartbeat(id) => {
                    if let Some(m) = self.members.get_mut(&id) {
                        m.heartbeat_deadline = None;
                    }
                    self.expire_heartbeat(now_ms, &id, &mut out);
                }
                Due::PendingMember(id) => {
                    self.pending_join.remove(&id);
                    if self.state == GroupState::PreparingRebalance && self.has_all_members_joined()
                    {
                        self.complete_join_phase(now_ms, &mut out);
                    }
                }
                Due::Join => {
                    if let Some((_, kind)) = self.join_timer.take() {
                        match kind {
                            JoinTimer::InitialDelay {
                                delay_ms,
                                remaining_ms,
                            } => self.try_complete_initial_rebalance(
                                now_ms,
                                delay_ms,
                                remaining_ms,
                                &mut out,
                            ),
                            JoinTimer::Complete => self.complete_join_phase(now_ms, &mut out),
                        }
                    }
                    join_deferred = self.join_timer.is_some_and(|(d, _)| d <= now_ms);
                }
                Due::Sync => {
                    if let Some((_, generation)) = self.sync_timer.take() {
                        self.expire_pending_sync(now_ms, generation, &mut out);
                    }
                }
            }
        }
        self.clock = self.clock.max(now_ms);
        out
    }

    /// The earliest time tick() has something to do, if any.
    pub fn next_deadline(&self) -> Option<i64> {
        self.earliest_due(false).map(|(d, _)| d)
    }

    /// The earliest timer, leaving out the join timer when `skip_join`.
    fn earliest_due(&self, skip_join: bool) -> Option<(i64, Due)> {
        if self.state == GroupState::Dead {
            return None;
        }
        let mut best: Option<(i64, Due)> = None;
        let mut consider = |d: i64, due: Due| {
            if best.as_ref().is_none_or(|(b, _)| d < *b) {
                best = Some((d, due));
            }
        };
        for id in &self.order {
            if let Some(d) = self.members.get(id).and_then(|m| m.heartbeat_deadline) {
                consider(d, Due::Heartbeat(id.clone()));
            }
        }
        for (id, d) in &self.pending_join {
            consider(*d, Due::PendingMember(id.clone()));
        }
        if let Some((d, _)) = self.join_timer.filter(|_| !skip_join) {
            consider(d, Due::Join);
        }
        if let Some((d, _)) = self.sync_timer {
            consider(d, Due::Sync);
        }
        best
    }

    fn reschedule_heartbeat(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = Some(now.saturating_add(i64::from(m.session_timeout_ms)));
        }
    }

    fn expire_heartbeat(&mut self, now: i64, member_id: &str, out: &mut Vec<Output>) {
        let satisfied = match self.members.get(member_id) {
            Some(m) => m.has_satisfied_heartbeat(),
            None => return,
        };
        if !satisfied {
            self.remove_member(member_id, out);
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(now, out)
                }
                GroupState::PreparingRebalance if self.has_all_members_joined() => {
                    self.complete_join_phase(now, out)
                }
                _ => {}
            }
        }
    }

    fn expire_pending_sync(&mut self, now: i64, generation: i32, out: &mut Vec<Output>) {
        if generation != self.generation_id {
            return;
        }
        if matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        ) && !self.pending_sync.is_empty()
        {
            let mut laggards: Vec<String> = self.pending_sync.iter().cloned().collect();
            laggards.sort();
            for id in laggards {
                self.remove_member(&id, out);
            }
            self.prepare_rebalance(now, out);
        }
    }

    fn try_complete_initial_rebalance(
        &mut self,
        now: i64,
        delay_ms: i64,
        remaining_ms: i64,
        out: &mut Vec<Output>,
    ) {
        if self.new_member_added && remaining_ms != 0 {
            self.new_member_added = false;
            let new_delay = self.config.initial_rebalance_delay_ms.min(remaining_ms);
            let new_remaining = (remaining_ms - delay_ms).max(0);
            self.join_timer = Some((
                now.saturating_add(new_delay.max(TIMER_TICK_MS)),
                JoinTimer::InitialDelay {
                    delay_ms: new_delay,
                    remaining_ms: new_remaining,
                },
            ));
        } else {
            self.complete_join_phase(now, out);
        }
    }

    // ------------------------------------------------------------------ rebalance core

    fn maybe_prepare_rebalance_or_complete_join(&mut self, now: i64, out: &mut Vec<Output>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now, out);
        } else {
            self.maybe_complete_join_phase(now, out);
        }
    }

    fn maybe_complete_join_phase(&mut self, now: i64, out: &mut Vec<Output>) {
        if self.state == GroupState::PreparingRebalance
            && self.previous_state != GroupState::Empty
            && self.has_all_members_joined()
        {
            self.complete_join_phase(now, out);
        }
    }

    fn prepare_rebalance(&mut self, now: i64, out: &mut Vec<Output>) {
        if self.state == GroupState::CompletingRebalance {
            for id in &self.order {
                if let Some(m) = self.members.get_mut(id) {
                    m.assignment = Bytes::new();
                }
            }
            self.propagate_assignment(now, REBALANCE_IN_PROGRESS, out);
        }
        self.pending_sync.clear();
        self.sync_timer = None;
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay = self.config.initial_rebalance_delay_ms.max(0);
            let remaining = (self.rebalance_timeout_ms() - delay).max(0);
            self.join_timer = Some((
                now.saturating_add(delay.max(TIMER_TICK_MS)),
                JoinTimer::InitialDelay {
                    delay_ms: delay,
                    remaining_ms: remaining,
                },
            ));
        }
        self.transition(GroupState::PreparingRebalance, now);
        if !initial {
            if self.has_all_members_joined() {
                self.complete_join_phase(now, out);
            } else {
                self.join_timer = Some((
                    now.saturating_add(self.rebalance_timeout_ms()),
                    JoinTimer::Complete,
                ));
            }
        }
    }

    /// Kafka's `completeClassicGroupJoin`.
    fn complete_join_phase(&mut self, now: i64, out: &mut Vec<Output>) {
        self.join_timer = None;
        let not_rejoined: Vec<String> = self
            .order
            .iter()
            .filter_map(|id| self.members.get(id))
            .filter(|m| !m.awaiting_join && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in not_rejoined {
            self.remove_member(&id, out);
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Nobody (re)joined: try again after another rebalance timeout.
            self.join_timer = Some((
                now.saturating_add(self.rebalance_timeout_ms()),
                JoinTimer::Complete,
            ));
            return;
        }
        self.generation_id = self.generation_id.wrapping_add(1);
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty, now);
            self.dirty = true;
            return;
        }
        self.protocol_name = self.select_protocol();
        self.transition(GroupState::CompletingRebalance, now);
        let leader = self.leader.clone().unwrap_or_default();
        let ids = self.order.clone();
        for id in &ids {
            let response = JoinResponse {
                error_code: NONE,
                generation_id: self.generation_id,
                protocol_type: self.protocol_type.clone(),
                protocol_name: self.protocol_name.clone(),
                leader: leader.clone(),
                member_id: id.clone(),
                members: if *id == leader {
                    self.current_members()
                } else {
                    Vec::new()
                },
            };
            self.complete_join(id, response, out);
            self.reschedule_heartbeat(id, now);
            if let Some(m) = self.members.get_mut(id) {
                m.is_new = false;
            }
            self.pending_sync.insert(id.clone());
        }
        self.sync_timer = Some((
            now.saturating_add(self.rebalance_timeout_ms()),
            self.generation_id,
        ));
    }

    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self.members.get(&leader).is_some_and(|m| m.awaiting_join) {
            return true;
        }
        let candidate = self
            .order
            .iter()
            .find(|id| self.members.get(*id).is_some_and(|m| m.awaiting_join))
            .cloned();
        match candidate {
            Some(id) => {
                self.leader = Some(id);
                true
            }
            None => false,
        }
    }

    /// Sends `error` (with the group's protocol and each member's assignment when NONE) to every
    /// member awaiting sync, re-arming their heartbeat timers.
    fn propagate_assignment(&mut self, now: i64, error: i16, out: &mut Vec<Output>) {
        let (ptype, pname) = if error == NONE {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        let ids = self.order.clone();
        for id in &ids {
            let Some(m) = self.members.get(id) else {
                continue;
            };
            let response = SyncResponse {
                error_code: error,
                protocol_type: ptype.clone(),
                protocol_name: pname.clone(),
                assignment: m.assignment.clone(),
            };
            if self.complete_sync(id, response, out) {
                self.reschedule_heartbeat(id, now);
            }
        }
    }

    fn complete_join(&mut self, member_id: &str, response: JoinResponse, out: &mut Vec<Output>) {
        if let Some(m) = self.members.get_mut(member_id) {
            if m.awaiting_join {
                m.awaiting_join = false;
                if m.join_waiter {
                    m.join_waiter = false;
                    out.push(Output::Join {
                        member_id: member_id.to_string(),
                        response,
                    });
                }
            }
        }
    }

    fn complete_sync(
        &mut self,
        member_id: &str,
        response: SyncResponse,
        out: &mut Vec<Output>,
    ) -> bool {
        if let Some(m) = self.members.get_mut(member_id) {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                if m.sync_waiter {
                    m.sync_waiter = false;
                    out.push(Output::Sync {
                        member_id: member_id.to_string(),
                        response,
                    });
                }
                return true;
            }
        }
        false
    }

    /// Removes a member (or pending / pending-sync id), answering its waiters with
    /// UNKNOWN_MEMBER_ID and re-electing the leader (first remaining member in join order).
    fn remove_member(&mut self, member_id: &str, out: &mut Vec<Output>) {
        self.complete_join(member_id, JoinResponse::error(UNKNOWN_MEMBER_ID, ""), out);
        self.complete_sync(member_id, SyncResponse::error(UNKNOWN_MEMBER_ID), out);
        if let Some(m) = self.members.remove(member_id) {
            self.order.retain(|id| id != member_id);
            if let Some(iid) = &m.instance_id {
                if self
                    .static_members
                    .get(iid)
                    .is_some_and(|id| id == member_id)
                {
                    self.static_members.remove(iid);
                }
            }
        }
        if self.is_leader(member_id) {
            self.leader = self.order.first().cloned();
        }
        self.pending_join.remove(member_id);
        self.pending_sync.remove(member_id);
    }

    fn transition(&mut self, state: GroupState, now: i64) {
        self.previous_state = self.state;
        self.state = state;
        self.state_timestamp_ms = now;
    }

    // ------------------------------------------------------------------ helpers

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    fn num_awaiting_join(&self) -> usize {
        self.members.values().filter(|m| m.awaiting_join).count()
    }

    fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_join.is_empty()
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(iid) = instance_id {
            match self.static_members.get(iid) {
                None => return Err(UNKNOWN_MEMBER_ID),
                Some(existing) if existing != member_id => return Err(FENCED_INSTANCE_ID),
                Some(_) => {}
            }
        }
        if self.members.contains_key(member_id) {
            Ok(())
        } else {
            Err(UNKNOWN_MEMBER_ID)
        }
    }

    /// Protocols every current member supports, in the first member's preference order.
    fn candidate_protocols(&self) -> Vec<String> {
        let Some(first) = self.order.first().and_then(|id| self.members.get(id)) else {
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for (name, _) in &first.protocols {
            if !out.contains(name) && self.members.values().all(|m| m.supports(name)) {
                out.push(name.clone());
            }
        }
        out
    }

    /// Kafka's `supportsProtocols`.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == GroupState::Empty {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.supports(name)))
    }

    /// Each member votes for its first supported candidate; most votes wins (ties broken by
    /// the first member's preference order, where Kafka's choice is arbitrary).
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in self.members.values() {
            if let Some(v) = m.vote(&candidates) {
                if let Some(i) = candidates.iter().position(|c| c == v) {
                    votes[i] += 1;
                }
            }
        }
        let mut best: Option<usize> = None;
        for (i, v) in votes.iter().enumerate() {
            if best.is_none_or(|b| *v > votes[b]) {
                best = Some(i);
            }
        }
        best.map(|i| candidates[i].clone())
    }

    // ------------------------------------------------------------------ offsets / describe

    /// Kafka's `ClassicGroup.validateOffsetCommit` for a non-transactional commit.
    pub fn validate_offset_commit(
        &self,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            return Err(COORDINATOR_NOT_AVAILABLE);
        }
        if generation_id < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        if generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some() {
            self.validate_member(member_id, group_instance_id)?;
            if generation_id != self.generation_id {
                return Err(ILLEGAL_GENERATION);
            }
        } else if self.state != GroupState::Empty {
            return Err(UNKNOWN_MEMBER_ID);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        Ok(())
    }

    /// Kafka's `ClassicGroup.validateOffsetFetch`: only a Dead group is refused.
    pub fn validate_offset_fetch(&self) -> Result<(), i16> {
        if self.state == GroupState::Dead {
            Err(GROUP_ID_NOT_FOUND)
        } else {
            Ok(())
        }
    }

    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                self.protocol_name.clone().unwrap_or_default()
            } else {
                String::new()
            },
            members: self
                .order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(self.protocol_name.as_deref())
                    } else {
                        Bytes::new()
                    },
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Some(snapshot) whenever the persisted form changed since the last call (group created by a
    /// join, a completed leader SyncGroup, a generation that ended Empty, a static member
    /// replaced without rebalance — where Kafka writes GroupMetadata records). Never for Dead.
    pub fn take_snapshot_if_changed(&mut self, now_ms: i64) -> Option<GroupSnapshot> {
        if !self.dirty || self.state == GroupState::Dead {
            return None;
        }
        self.dirty = false;
        let protocol = self.protocol_name.as_deref();
        Some(GroupSnapshot {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation_id: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: if self.state_timestamp_ms < 0 {
                now_ms
            } else {
                self.state_timestamp_ms
            },
            members: self
                .order
                .iter()
                .filter_map(|id| self.members.get(id))
                .map(|m| MemberSnapshot {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Marks the group Dead (DeleteGroups / unload), answering every parked JoinGroup and
    /// SyncGroup with COORDINATOR_NOT_AVAILABLE and disarming all timers.
    pub fn mark_dead(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        let ids = self.order.clone();
        for id in &ids {
            self.complete_join(
                id,
                JoinResponse::error(COORDINATOR_NOT_AVAILABLE, id),
                &mut out,
            );
            self.complete_sync(id, SyncResponse::error(COORDINATOR_NOT_AVAILABLE), &mut out);
            if let Some(m) = self.members.get_mut(id) {
                m.heartbeat_deadline = None;
            }
        }
        self.pending_join.clear();
        self.pending_sync.clear();
        self.join_timer = None;
        self.sync_timer = None;
        let now = self.clock.max(self.state_timestamp_ms);
        self.transition(GroupState::Dead, now);
        out
    }
}

#[cfg(test)]
#[path = "classic_tests.rs"]
mod tests;
