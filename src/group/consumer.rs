//! The KIP-848 ("consumer" group type) group state machine: ConsumerGroupHeartbeat
//! v0–v1, group/target/member epochs, revoke-before-assign reconciliation,
//! session and rebalance timeouts. Pure and synchronous: time is passed in.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::assignor::{self, AssignorMember, TopicPartition};
use super::consumer_records::{
    member_state, ConsumerGroupImage, CurrentAssignment, MemberMetadata,
};

/// Kafka error codes used by this module.
pub mod errors {
    pub const NONE: i16 = 0;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const INVALID_REQUEST: i16 = 42;
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub const FENCED_INSTANCE_ID: i16 = 82;
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    pub const STALE_MEMBER_EPOCH: i16 = 113;
}

/// Member epoch sent by a member leaving the group.
pub const LEAVE_GROUP_MEMBER_EPOCH: i32 = -1;
/// Member epoch sent by a static member leaving temporarily.
pub const LEAVE_GROUP_STATIC_MEMBER_EPOCH: i32 = -2;

#[derive(Debug, Clone)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub max_size: usize,
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: usize::MAX,
        }
    }
}

/// A group's own values of the broker's defaults (KIP-848 group configs
/// `consumer.session.timeout.ms`, `consumer.heartbeat.interval.ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupOverrides {
    pub session_timeout_ms: Option<i32>,
    pub heartbeat_interval_ms: Option<i32>,
}

impl ConsumerGroupConfig {
    /// This config with a group's own values in place of the defaults.
    pub fn with(&self, overrides: GroupOverrides) -> ConsumerGroupConfig {
        ConsumerGroupConfig {
            session_timeout_ms: overrides
                .session_timeout_ms
                .unwrap_or(self.session_timeout_ms),
            heartbeat_interval_ms: overrides
                .heartbeat_interval_ms
                .unwrap_or(self.heartbeat_interval_ms),
            max_size: self.max_size,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
    Dead,
}

impl ConsumerGroupState {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Assigning => "Assigning",
            Self::Reconciling => "Reconciling",
            Self::Stable => "Stable",
            Self::Dead => "Dead",
        }
    }
}

/// Cluster topic metadata the assignor sees: name -> (topic id, partition count).
pub type TopicsImage = BTreeMap<String, (Uuid, i32)>;
/// Topic id -> sorted partitions.
pub type Assignment = BTreeMap<Uuid, Vec<i32>>;

#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// -1 if unchanged.
    pub rebalance_timeout_ms: i32,
    /// None = unchanged.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Non-empty regexes are answered with INVALID_REQUEST.
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// None = unchanged.
    pub owned_partitions: Option<Vec<(Uuid, Vec<i32>)>>,
    pub client_id: String,
    pub client_host: String,
    pub version: i16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatResponse {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Some only when it changed since the member's last response or on a full request ((re)join).
    pub assignment: Option<Assignment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub assignment: Assignment,
    pub target_assignment: Assignment,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub state: ConsumerGroupState,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor_name: String,
    pub members: Vec<MemberDescription>,
}

/// Where a member is in its reconciliation towards its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberState {
    /// Owns exactly what it was given at its epoch.
    Stable,
    /// Waits for the member to acknowledge revoked partitions.
    UnrevokedPartitions,
    /// Waits for other members to release partitions of its target.
    UnreleasedPartitions,
}

type Partitions = BTreeSet<TopicPartition>;

#[derive(Debug, Clone, PartialEq)]
struct Member {
    member_id: String,
    instance_id: Option<String>,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    rebalance_timeout_ms: i32,
    server_assignor: Option<String>,
    subscribed: BTreeSet<String>,
    member_epoch: i32,
    previous_member_epoch: i32,
    state: MemberState,
    /// The current assignment (what the member was told it owns).
    assigned: Partitions,
    /// Partitions taken away but not yet acknowledged; still owned.
    pending_revocation: Partitions,
    session_deadline: i64,
    /// (deadline, member epoch at scheduling) of the rebalance timeout.
    rebalance_deadline: Option<(i64, i32)>,
}

impl Member {
    fn new(member_id: String) -> Self {
        Self {
            member_id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            rebalance_timeout_ms: 0,
            server_assignor: None,
            subscribed: BTreeSet::new(),
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Partitions::new(),
            pending_revocation: Partitions::new(),
            session_deadline: 0,
            rebalance_deadline: None,
        }
    }

    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.member_epoch == epoch
    }
}

struct HbError {
    code: i16,
    message: String,
}

fn err<T>(code: i16, message: impl Into<String>) -> Result<T, HbError> {
    Err(HbError {
        code,
        message: message.into(),
    })
}

fn to_assignment(parts: &Partitions) -> Assignment {
    let mut out = Assignment::new();
    for &(topic_id, p) in parts {
        out.entry(topic_id).or_default().push(p);
    }
    out
}

fn owned_set(owned: &[(Uuid, Vec<i32>)]) -> Partitions {
    owned
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        .collect()
}

/// Whether the reported owned partitions still contain any of `revoked`.
/// Not reporting them (None) counts as still owning them.
fn owns_any(owned: Option<&Partitions>, revoked: &Partitions) -> bool {
    match owned {
        None => true,
        Some(owned) => !owned.is_disjoint(revoked),
    }
}

pub struct ConsumerGroup {
    group_id: String,
    config: ConsumerGroupConfig,
    dead: bool,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// instance id -> member id.
    static_members: BTreeMap<String, String>,
    /// member id -> target assignment at `assignment_epoch`.
    target: BTreeMap<String, Partitions>,
    /// Current owner of every assigned or pending-revocation partition.
    owners: BTreeMap<TopicPartition, String>,
    /// The subscribed topics that exist, as the target was computed from.
    subscription_metadata: TopicsImage,
    /// False for a group restored from `__consumer_offsets` until the first
    /// topics image arrives (that image then becomes the baseline without an
    /// epoch bump).
    subscription_metadata_known: bool,
}

fn partitions_of(a: &Assignment) -> Partitions {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
        .collect()
}

impl MemberState {
    fn code(self) -> i8 {
        match self {
            MemberState::Stable => member_state::STABLE,
            MemberState::UnrevokedPartitions => member_state::UNREVOKED_PARTITIONS,
            MemberState::UnreleasedPartitions => member_state::UNRELEASED_PARTITIONS,
        }
    }

    /// Kafka's state code; anything else (UNKNOWN) reconciles from scratch.
    fn from_code(code: i8) -> MemberState {
        match code {
            member_state::UNREVOKED_PARTITIONS => MemberState::UnrevokedPartitions,
            member_state::UNRELEASED_PARTITIONS => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

impl ConsumerGroup {
    /// Replaces the group's config; the next heartbeat of each member gets
    /// the new interval and a session deadline under the new timeout.
    pub fn set_config(&mut self, config: ConsumerGroupConfig) {
        self.config = config;
    }

    pub fn new(group_id: String, config: ConsumerGroupConfig) -> Self {
        Self {
            group_id,
            config,
            dead: false,
            group_epoch: 0,
            assignment_epoch: 0,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            target: BTreeMap::new(),
            owners: BTreeMap::new(),
            subscription_metadata: TopicsImage::new(),
            subscription_metadata_known: true,
        }
    }

    /// What the group persists, as Kafka's consumer-group records describe it.
    pub fn image(&self) -> ConsumerGroupImage {
        let mut image = ConsumerGroupImage {
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            ..Default::default()
        };
        for (id, m) in &self.members {
            image.members.insert(
                id.clone(),
                MemberMetadata {
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                    subscribed_topic_regex: None,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    server_assignor: m.server_assignor.clone(),
                },
            );
            image.targets.insert(
                id.clone(),
                to_assignment(self.target.get(id).unwrap_or(&Partitions::new())),
            );
            image.current.insert(
                id.clone(),
                CurrentAssignment {
                    member_epoch: m.member_epoch,
                    previous_member_epoch: m.previous_member_epoch,
                    state: m.state.code(),
                    assigned: to_assignment(&m.assigned),
                    pending_revocation: to_assignment(&m.pending_revocation),
                },
            );
        }
        image
    }

    /// Rebuilds a group from its replayed records at broker start: members
    /// keep their ids, epochs, assignments and revocations in progress. As
    /// Kafka does on load, every member's session timeout starts now, and a
    /// member still revoking gets its rebalance timeout from now.
    pub fn restore(
        group_id: String,
        config: ConsumerGroupConfig,
        image: &ConsumerGroupImage,
        now_ms: i64,
    ) -> Self {
        let mut g = ConsumerGroup::new(group_id, config);
        g.group_epoch = image.group_epoch;
        g.assignment_epoch = image.assignment_epoch;
        g.subscription_metadata_known = false;
        let session = i64::from(g.config.session_timeout_ms);
        for (id, meta) in &image.members {
            let mut m = Member::new(id.clone());
            m.instance_id = meta.instance_id.clone();
            m.rack_id = meta.rack_id.clone();
            m.client_id = meta.client_id.clone();
            m.client_host = meta.client_host.clone();
            m.rebalance_timeout_ms = meta.rebalance_timeout_ms;
            m.server_assignor = meta.server_assignor.clone();
            m.subscribed = meta.subscribed_topic_names.iter().cloned().collect();
            if let Some(c) = image.current.get(id) {
                m.member_epoch = c.member_epoch;
                m.previous_member_epoch = c.previous_member_epoch;
                m.state = MemberState::from_code(c.state);
                m.assigned = partitions_of(&c.assigned);
                m.pending_revocation = partitions_of(&c.pending_revocation);
            }
            m.session_deadline = now_ms.saturating_add(session);
            if m.state == MemberState::UnrevokedPartitions {
                m.rebalance_deadline = Some((
                    now_ms.saturating_add(i64::from(m.rebalance_timeout_ms)),
                    m.member_epoch,
                ));
            }
            // A partition claimed twice (corrupt input) stays with the first.
            for tp in m.assigned.iter().chain(m.pending_revocation.iter()) {
                g.owners.entry(*tp).or_insert_with(|| id.clone());
            }
            if let Some(i) = &m.instance_id {
                g.static_members.insert(i.clone(), id.clone());
            }
            g.members.insert(id.clone(), m);
        }
        for (id, target) in &image.targets {
            if g.members.contains_key(id) {
                g.target.insert(id.clone(), partitions_of(target));
            }
        }
        g
    }

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.dead {
            ConsumerGroupState::Dead
        } else if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .all(|m| m.is_reconciled_to(self.assignment_epoch))
        {
            ConsumerGroupState::Stable
        } else {
            ConsumerGroupState::Reconciling
        }
    }

    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// One ConsumerGroupHeartbeat. `new_member_id` is used when the server must
    /// mint an id (v0 first heartbeat): pass a fresh UUID string.
    pub fn heartbeat(
        &mut self,
        now_ms: i64,
        req: HeartbeatRequest,
        topics: &TopicsImage,
        new_member_id: &str,
    ) -> HeartbeatResponse {
        match self.heartbeat_inner(now_ms, &req, topics, new_member_id) {
            Ok(resp) => resp,
            Err(e) => HeartbeatResponse {
                error_code: e.code,
                error_message: Some(e.message),
                member_id: None,
                member_epoch: 0,
                heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                assignment: None,
            },
        }
    }

    fn validate(req: &HeartbeatRequest) -> Result<(), HbError> {
        let blank = |s: &Option<String>| s.as_ref().is_some_and(|v| v.trim().is_empty());
        if (req.version >= 1
            || req.member_epoch > 0
            || req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH)
            && req.member_id.trim().is_empty()
        {
            return err(errors::INVALID_REQUEST, "MemberId can't be empty.");
        }
        if blank(&req.instance_id) {
            return err(errors::INVALID_REQUEST, "InstanceId can't be empty.");
        }
        if blank(&req.rack_id) {
            return err(errors::INVALID_REQUEST, "RackId can't be empty.");
        }
        if req.member_epoch == 0 {
            if req.rebalance_timeout_ms == -1 {
                return err(
                    errors::INVALID_REQUEST,
                    "RebalanceTimeoutMs must be provided in first request.",
                );
            }
            if !req.owned_partitions.as_ref().is_some_and(|o| o.is_empty()) {
                return err(
                    errors::INVALID_REQUEST,
                    "TopicPartitions must be empty when (re-)joining.",
                );
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return err(
                    errors::INVALID_REQUEST,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        } else if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            if req.instance_id.is_none() {
                return err(errors::INVALID_REQUEST, "InstanceId can't be null.");
            }
        } else if req.member_epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            return err(errors::INVALID_REQUEST, "MemberEpoch is invalid.");
        }
        if let Some(name) = &req.server_assignor {
            if !assignor::is_supported(name) {
                return err(
                    errors::UNSUPPORTED_ASSIGNOR,
                    format!(
                        "ServerAssignor {name} is not supported. Supported assignors: {}, {}.",
                        assignor::RANGE,
                        assignor::UNIFORM
                    ),
                );
            }
        }
        Ok(())
    }

    /// Kafka's member epoch check: the current epoch, 0 (rejoin), or the
    /// previous epoch when the owned partitions are a subset of the assignment.
    fn validate_member_epoch(
        member: &Member,
        received: i32,
        owned: Option<&Partitions>,
    ) -> Result<(), HbError> {
        if received == 0 || received == member.member_epoch {
            return Ok(());
        }
        if received > member.member_epoch {
            return err(
                errors::FENCED_MEMBER_EPOCH,
                format!(
                    "The consumer group member has a greater member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    member.member_epoch
                ),
            );
        }
        let subset = owned.is_some_and(|o| o.is_subset(&member.assigned));
        if received != member.previous_member_epoch || !subset {
            return err(
                errors::FENCED_MEMBER_EPOCH,
                format!(
                    "The consumer group member has a smaller member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    member.member_epoch
                ),
            );
        }
        Ok(())
    }

    fn heartbeat_inner(
        &mut self,
        now_ms: i64,
        req: &HeartbeatRequest,
        topics: &TopicsImage,
        new_member_id: &str,
    ) -> Result<HeartbeatResponse, HbError> {
        if self.dead {
            return err(
                errors::COORDINATOR_NOT_AVAILABLE,
                format!("Group {} is dead.", self.group_id),
            );
        }
        Self::validate(req)?;
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(req, topics);
        }
        if req
            .subscribed_topic_regex
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            return err(
                errors::INVALID_REQUEST,
                "SubscribedTopicRegex is not supported by this broker.",
            );
        }

        let joining = req.member_epoch == 0;
        let owned = req.owned_partitions.as_deref().map(owned_set);

        // A static member replacing its own temporarily departed incarnation
        // does not grow the group.
        let replaces_static = joining
            && req
                .instance_id
                .as_ref()
                .is_some_and(|i| self.static_members.contains_key(i));
        if self.members.len() >= self.config.max_size
            && (req.member_id.is_empty() || !self.members.contains_key(&req.member_id))
            && !replaces_static
        {
            return err(
                errors::GROUP_MAX_SIZE_REACHED,
                format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    self.config.max_size
                ),
            );
        }

        let member_id = if req.member_id.is_empty() {
            if new_member_id.is_empty() {
                Uuid::new_v4().to_string()
            } else {
                new_member_id.to_string()
            }
        } else {
            req.member_id.clone()
        };

        // Find (or prepare) the member; `replaced` is the id of a departed
        // static member whose state the new member takes over.
        let mut replaced: Option<String> = None;
        let old: Option<Member> = match &req.instance_id {
            None => match self.members.get(&member_id) {
                Some(m) => {
                    Self::validate_member_epoch(m, req.member_epoch, owned.as_ref())?;
                    Some(m.clone())
                }
                None if joining => None,
                None => {
                    return err(
                        errors::UNKNOWN_MEMBER_ID,
                        format!(
                            "Member {member_id} is not a member of group {}.",
                            self.group_id
                        ),
                    )
                }
            },
            Some(instance_id) => {
                let existing = self
                    .static_members
                    .get(instance_id)
                    .and_then(|id| self.members.get(id));
                match existing {
                    None if joining => self.members.get(&member_id).cloned(),
                    None => {
                        return err(
                            errors::UNKNOWN_MEMBER_ID,
                            format!("Instance id {instance_id} is unknown."),
                        )
                    }
                    Some(ex) if ex.member_id == member_id => {
                        Self::validate_member_epoch(ex, req.member_epoch, owned.as_ref())?;
                        Some(ex.clone())
                    }
                    Some(ex) if !joining => {
                        return err(
                            errors::FENCED_INSTANCE_ID,
                            format!(
                                "Static member {member_id} with instance id {instance_id} was fenced by member {}.",
                                ex.member_id
                            ),
                        )
                    }
                    Some(ex) => {
                        if ex.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                            return err(
                                errors::UNRELEASED_INSTANCE_ID,
                                format!(
                                    "Static member {member_id} with instance id {instance_id} cannot join the group because the instance id is owned by {} member.",
                                    ex.member_id
                                ),
                            );
                        }
                        if self.members.contains_key(&member_id) {
                            return err(
                                errors::INVALID_REQUEST,
                                format!("Member id {member_id} is already used by another member."),
                            );
                        }
                        let mut m = ex.clone();
                        m.member_id = member_id.clone();
                        m.member_epoch = 0;
                        m.previous_member_epoch = 0;
                        replaced = Some(ex.member_id.clone());
                        Some(m)
                    }
                }
            }
        };

        // 1. Create or update the member; bump the group epoch on changes.
        let mut updated = old
            .clone()
            .unwrap_or_else(|| Member::new(member_id.clone()));
        if let Some(i) = &req.instance_id {
            updated.instance_id = Some(i.clone());
        }
        if let Some(r) = &req.rack_id {
            updated.rack_id = Some(r.clone());
        }
        if req.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(a) = &req.server_assignor {
            updated.server_assignor = Some(a.clone());
        }
        if let Some(names) = &req.subscribed_topic_names {
            updated.subscribed = names.iter().cloned().collect();
        }
        updated.client_id = req.client_id.clone();
        updated.client_host = req.client_host.clone();

        let old_subscription = old
            .as_ref()
            .map(|m| m.subscribed.clone())
            .unwrap_or_default();
        let mut bump = self.group_epoch == 0 || old_subscription != updated.subscribed;

        if let Some(previous_id) = &replaced {
            self.replace_static_member(previous_id, &member_id);
        }
        if let Some(i) = &updated.instance_id {
            self.static_members.insert(i.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), updated);

        let metadata = self.compute_subscription_metadata(topics);
        if !self.subscription_metadata_known {
            self.subscription_metadata = metadata;
            self.subscription_metadata_known = true;
        } else if metadata != self.subscription_metadata {
            self.subscription_metadata = metadata;
            bump = true;
        }
        if bump {
            self.group_epoch = self.group_epoch.saturating_add(1);
        }

        // 2. Recompute the target assignment when the group epoch moved on.
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }

        // 3. Reconcile the member towards its target.
        self.reconcile(&member_id, owned.as_ref(), now_ms);

        let session_deadline = now_ms.saturating_add(i64::from(self.config.session_timeout_ms));
        let Some(member) = self.members.get_mut(&member_id) else {
            return err(errors::UNKNOWN_MEMBER_ID, "Member vanished.");
        };
        member.session_deadline = session_deadline;

        let full_request = joining
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.owned_partitions.is_some());
        let changed = old.as_ref().is_none_or(|o| o.assigned != member.assigned);
        Ok(HeartbeatResponse {
            error_code: errors::NONE,
            error_message: None,
            member_id: Some(member_id),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: (full_request || changed).then(|| to_assignment(&member.assigned)),
        })
    }

    fn leave(
        &mut self,
        req: &HeartbeatRequest,
        topics: &TopicsImage,
    ) -> Result<HeartbeatResponse, HbError> {
        let member_id = match &req.instance_id {
            None => {
                if !self.members.contains_key(&req.member_id) {
                    return err(
                        errors::UNKNOWN_MEMBER_ID,
                        format!(
                            "Member {} is not a member of group {}.",
                            req.member_id, self.group_id
                        ),
                    );
                }
                req.member_id.clone()
            }
            Some(instance_id) => {
                let Some(ex) = self
                    .static_members
                    .get(instance_id)
                    .and_then(|id| self.members.get(id))
                else {
                    return err(
                        errors::UNKNOWN_MEMBER_ID,
                        format!("Instance id {instance_id} is unknown."),
                    );
                };
                if ex.member_id != req.member_id {
                    return err(
                        errors::FENCED_INSTANCE_ID,
                        format!(
                            "Static member {} with instance id {instance_id} was fenced by member {}.",
                            req.member_id, ex.member_id
                        ),
                    );
                }
                ex.member_id.clone()
            }
        };
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // Temporary leave: keep the assignment for the instance's return,
            // release only what was pending revocation.
            if let Some(m) = self.members.get_mut(&member_id) {
                let released = std::mem::take(&mut m.pending_revocation);
                m.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
                m.rebalance_deadline = None;
                for tp in released {
                    if self.owners.get(&tp) == Some(&member_id) {
                        self.owners.remove(&tp);
                    }
                }
            }
        } else {
            self.fence(&member_id, topics);
        }
        Ok(HeartbeatResponse {
            error_code: errors::NONE,
            error_message: None,
            member_id: Some(req.member_id.clone()),
            member_epoch: req.member_epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: None,
        })
    }

    /// Moves the state of the departed static member `previous_id` to `new_id`.
    fn replace_static_member(&mut self, previous_id: &str, new_id: &str) {
        self.members.remove(previous_id);
        if let Some(t) = self.target.remove(previous_id) {
            self.target.insert(new_id.to_string(), t);
        }
        for owner in self.owners.values_mut() {
            if owner == previous_id {
                *owner = new_id.to_string();
            }
        }
    }

    /// Removes a member and bumps the group epoch.
    fn fence(&mut self, member_id: &str, topics: &TopicsImage) {
        let Some(m) = self.members.remove(member_id) else {
            return;
        };
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i).map(String::as_str) == Some(member_id) {
                self.static_members.remove(i);
            }
        }
        self.target.remove(member_id);
        self.owners.retain(|_, owner| owner != member_id);
        self.subscription_metadata = self.compute_subscription_metadata(topics);
        self.group_epoch = self.group_epoch.saturating_add(1);
    }

    fn compute_subscription_metadata(&self, topics: &TopicsImage) -> TopicsImage {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter())
            .filter_map(|name| topics.get(name).map(|meta| (name.clone(), *meta)))
            .collect()
    }

    /// The most requested server assignor, or the default.
    fn preferred_assignor(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for name in self
            .members
            .values()
            .filter_map(|m| m.server_assignor.as_deref())
        {
            *counts.entry(name).or_default() += 1;
        }
        // max_by_key returns the last maximum; iterate in reverse so ties go
        // to the alphabetically first name.
        counts
            .iter()
            .rev()
            .max_by_key(|(_, c)| **c)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| assignor::DEFAULT_ASSIGNOR.to_string())
    }

    fn compute_target(&mut self) {
        let name = self.preferred_assignor();
        let input: Vec<AssignorMember<'_>> = self
            .members
            .values()
            .map(|m| AssignorMember {
                member_id: &m.member_id,
                subscribed: &m.subscribed,
                previous: self.target.get(&m.member_id),
            })
            .collect();
        let target = assignor::assign(&name, &input, &self.subscription_metadata);
        self.target = target;
        self.assignment_epoch = self.group_epoch;
    }

    /// Kafka's CurrentAssignmentBuilder: revoke first, then assign partitions
    /// once their previous owners released them.
    fn reconcile(&mut self, member_id: &str, owned: Option<&Partitions>, now_ms: i64) {
        let target_epoch = self.assignment_epoch;
        let Some(member) = self.members.get(member_id) else {
            return;
        };
        if member.is_reconciled_to(target_epoch) {
            return;
        }
        if member.state == MemberState::UnrevokedPartitions
            && owns_any(owned, &member.pending_revocation)
        {
            return;
        }
        let empty = Partitions::new();
        let target = self.target.get(member_id).unwrap_or(&empty);

        let kept: Partitions = member.assigned.intersection(target).copied().collect();
        let revoked: Partitions = member.assigned.difference(&kept).copied().collect();
        let mut unreleased = false;
        let to_assign: Partitions = target
            .difference(&kept)
            .filter(|tp| match self.owners.get(*tp) {
                Some(owner) if owner != member_id => {
                    unreleased = true;
                    false
                }
                _ => true,
            })
            .copied()
            .collect();

        let mut next = member.clone();
        next.previous_member_epoch = member.member_epoch;
        if !revoked.is_empty() && owns_any(owned, &revoked) {
            next.state = MemberState::UnrevokedPartitions;
            next.assigned = kept;
            next.pending_revocation = revoked;
        } else {
            next.state = if unreleased {
                MemberState::UnreleasedPartitions
            } else {
                MemberState::Stable
            };
            next.member_epoch = target_epoch;
            next.assigned = kept.union(&to_assign).copied().collect();
            next.pending_revocation.clear();
        }
        if next == *member {
            return;
        }
        next.rebalance_deadline = if next.state == MemberState::UnrevokedPartitions {
            Some((
                now_ms.saturating_add(i64::from(next.rebalance_timeout_ms)),
                next.member_epoch,
            ))
        } else {
            None
        };

        // Re-index ownership.
        for tp in member
            .assigned
            .iter()
            .chain(member.pending_revocation.iter())
        {
            if self.owners.get(tp).map(String::as_str) == Some(member_id) {
                self.owners.remove(tp);
            }
        }
        for tp in next.assigned.iter().chain(next.pending_revocation.iter()) {
            self.owners.insert(*tp, member_id.to_string());
        }
        self.members.insert(member_id.to_string(), next);
    }

    /// Re-evaluates subscriptions against changed topic metadata (partitions
    /// added, topics created/deleted); bumps the group epoch if it changed.
    /// The new target is computed on the next heartbeat (state Assigning).
    pub fn on_topics_changed(&mut self, _now_ms: i64, topics: &TopicsImage) {
        if self.dead {
            return;
        }
        let metadata = self.compute_subscription_metadata(topics);
        if !self.subscription_metadata_known {
            self.subscription_metadata = metadata;
            self.subscription_metadata_known = true;
        } else if metadata != self.subscription_metadata {
            self.subscription_metadata = metadata;
            self.group_epoch = self.group_epoch.saturating_add(1);
        }
    }

    /// Expires session and rebalance timeouts due at now_ms.
    pub fn tick(&mut self, now_ms: i64, topics: &TopicsImage) {
        if self.dead {
            return;
        }
        let mut expired = Vec::new();
        for m in self.members.values_mut() {
            if m.session_deadline <= now_ms {
                expired.push(m.member_id.clone());
            } else if let Some((deadline, epoch)) = m.rebalance_deadline {
                if deadline <= now_ms {
                    if m.member_epoch == epoch {
                        expired.push(m.member_id.clone());
                    } else {
                        m.rebalance_deadline = None;
                    }
                }
            }
        }
        for id in expired {
            self.fence(&id, topics);
        }
    }

    pub fn next_deadline(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| {
                std::iter::once(m.session_deadline).chain(m.rebalance_deadline.map(|(d, _)| d))
            })
            .min()
    }

    /// Offset commit validation: `Err(error code)` when the commit must be refused.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), i16> {
        // A commit without group management (admin client, assign()) is only
        // allowed while the group has no members.
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let Some(member) = self.members.get(member_id) else {
            return Err(errors::UNKNOWN_MEMBER_ID);
        };
        if member.member_epoch != member_epoch {
            return Err(errors::STALE_MEMBER_EPOCH);
        }
        Ok(())
    }

    pub fn describe(&self) -> GroupDescription {
        let empty = Partitions::new();
        GroupDescription {
            state: self.state(),
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: self.preferred_assignor(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    member_epoch: m.member_epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                    assignment: to_assignment(&m.assigned),
                    target_assignment: to_assignment(
                        self.target.get(&m.member_id).unwrap_or(&empty),
                    ),
                })
                .collect(),
        }
    }

    /// The set of topic names any member subscribes to (for OffsetDelete's
    /// GROUP_SUBSCRIBED_TO_TOPIC).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// Marks the group deleted: drops every member; heartbeats then answer
    /// COORDINATOR_NOT_AVAILABLE (the coordinator should drop the object).
    pub fn mark_dead(&mut self) {
        self.dead = true;
        self.members.clear();
        self.static_members.clear();
        self.target.clear();
        self.owners.clear();
        self.subscription_metadata.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T1: u128 = 1;
    const T2: u128 = 2;

    fn image(list: &[(&str, u128, i32)]) -> TopicsImage {
        list.iter()
            .map(|(n, id, c)| (n.to_string(), (Uuid::from_u128(*id), *c)))
            .collect()
    }

    fn tid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn base(member_id: &str, epoch: i32) -> HeartbeatRequest {
        HeartbeatRequest {
            member_id: member_id.to_string(),
            member_epoch: epoch,
            instance_id: None,
            rack_id: None,
            rebalance_timeout_ms: -1,
            subscribed_topic_names: None,
            subscribed_topic_regex: None,
            server_assignor: None,
            owned_partitions: None,
            client_id: "client".to_string(),
            client_host: "/127.0.0.1".to_string(),
            version: 1,
        }
    }

    fn join_req(member_id: &str, topics: &[&str]) -> HeartbeatRequest {
        HeartbeatRequest {
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(topics.iter().map(|t| t.to_string()).collect()),
            owned_partitions: Some(vec![]),
            ..base(member_id, 0)
        }
    }

    fn owned_of(a: &Assignment) -> Option<Vec<(Uuid, Vec<i32>)>> {
        Some(a.iter().map(|(t, p)| (*t, p.clone())).collect())
    }

    fn hb(
        g: &mut ConsumerGroup,
        now: i64,
        id: &str,
        epoch: i32,
        owned: &Assignment,
        t: &TopicsImage,
    ) -> HeartbeatResponse {
        let req = HeartbeatRequest {
            owned_partitions: owned_of(owned),
            ..base(id, epoch)
        };
        g.heartbeat(now, req, t, "unused")
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(Vec::len).sum()
    }

    fn group() -> ConsumerGroup {
        ConsumerGroup::new("g".to_string(), ConsumerGroupConfig::default())
    }

    /// Every partition has at most one owner (current assignment plus
    /// partitions pending revocation), and the owner index agrees.
    fn assert_exclusive(g: &ConsumerGroup) {
        let mut seen: BTreeMap<TopicPartition, &str> = BTreeMap::new();
        for m in g.members.values() {
            for tp in m.assigned.iter().chain(m.pending_revocation.iter()) {
                if let Some(other) = seen.insert(*tp, &m.member_id) {
                    panic!("{tp:?} owned by {other} and {}", m.member_id);
                }
            }
        }
        let index: BTreeMap<TopicPartition, &str> =
            g.owners.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(seen, index);
    }

    #[test]
    fn first_member_gets_all_partitions_at_epoch_1() {
        let t = image(&[("a", T1, 4), ("b", T2, 2)]);
        let mut g = group();
        assert_eq!(g.state(), ConsumerGroupState::Empty);
        let r = g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_deref(), Some("m1"));
        assert_eq!(r.member_epoch, 1);
        assert_eq!(r.heartbeat_interval_ms, 5000);
        assert_eq!(r.assignment, Some([(tid(T1), vec![0, 1, 2, 3])].into()));
        assert_eq!(g.group_epoch(), 1);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        // A plain heartbeat with nothing new carries no assignment.
        let owned = r.assignment.unwrap();
        let r = hb(&mut g, 100, "m1", 1, &owned, &t);
        assert_eq!((r.error_code, r.member_epoch, r.assignment), (0, 1, None));
        assert_eq!(g.subscribed_topics(), ["a".to_string()].into());
    }

    /// A group restored from its image (as after a broker restart) in the
    /// middle of a revocation: the same image, members keep their ids and
    /// epochs, the revocation completes, and a member that never comes back
    /// is fenced one session timeout after the restore.
    #[test]
    fn restored_group_continues_reconciliation_and_expires_silent_members() {
        let t = image(&[("a", T1, 4)]);
        let mut g = group();
        let owned1 = g
            .heartbeat(0, join_req("m1", &["a"]), &t, "x")
            .assignment
            .unwrap();
        g.heartbeat(10, join_req("m2", &["a"]), &t, "x");
        let kept = hb(&mut g, 20, "m1", 1, &owned1, &t).assignment.unwrap();
        assert_eq!(count(&kept), 2);
        let before = g.image();
        assert_eq!(
            before.current["m1"].state,
            member_state::UNREVOKED_PARTITIONS
        );
        assert_eq!(count(&before.current["m1"].pending_revocation), 2);

        let restart = 100_000;
        let mut r =
            ConsumerGroup::restore("g".into(), ConsumerGroupConfig::default(), &before, restart);
        r.on_topics_changed(restart, &t);
        assert_eq!(r.image(), before);
        assert_eq!(r.group_epoch(), 2);
        assert_eq!(r.state(), ConsumerGroupState::Reconciling);
        assert_exclusive(&r);

        // m1 acknowledges the revocation with its old epoch and moves on.
        let r1 = hb(&mut r, restart + 10, "m1", 1, &kept, &t);
        assert_eq!((r1.error_code, r1.member_epoch), (errors::NONE, 2));
        let r2 = hb(&mut r, restart + 20, "m2", 2, &Assignment::new(), &t);
        assert_eq!((r2.error_code, r2.member_epoch), (errors::NONE, 2));
        assert_eq!(count(&r2.assignment.unwrap()), 2);
        assert_eq!(r.state(), ConsumerGroupState::Stable);
        assert_exclusive(&r);

        // m2 goes silent: fenced one session timeout after its last heartbeat.
        let session = i64::from(ConsumerGroupConfig::default().session_timeout_ms);
        hb(&mut r, restart + 30, "m1", 2, &kept, &t);
        r.tick(restart + 20 + session, &t);
        assert_eq!(r.member_count(), 1);
        assert!(r.image().members.contains_key("m1"));

        // A member restored but never heard from again expires too.
        let mut lone =
            ConsumerGroup::restore("g".into(), ConsumerGroupConfig::default(), &before, restart);
        lone.on_topics_changed(restart, &t);
        assert_eq!(lone.next_deadline(), Some(restart + session.min(30_000)));
        lone.tick(restart + session, &t);
        assert_eq!(lone.member_count(), 0);
    }

    #[test]
    fn second_member_gets_partitions_only_after_first_revokes() {
        let t = image(&[("a", T1, 4)]);
        let mut g = group();
        let r1 = g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        let owned1 = r1.assignment.unwrap();

        let r2 = g.heartbeat(10, join_req("m2", &["a"]), &t, "x");
        assert_eq!(g.group_epoch(), 2);
        // m2 is at the new epoch but its partitions are still owned by m1.
        assert_eq!(r2.member_epoch, 2);
        assert_eq!(r2.assignment, Some(Assignment::new()));
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);
        assert_exclusive(&g);

        // m1 is asked to revoke half: its assignment shrinks, epoch stays 1.
        let r1 = hb(&mut g, 20, "m1", 1, &owned1, &t);
        assert_eq!(r1.member_epoch, 1);
        let kept = r1.assignment.clone().unwrap();
        assert_eq!(count(&kept), 2);
        assert_exclusive(&g);

        // m2 still gets nothing: m1 has not acknowledged.
        let r2 = hb(&mut g, 30, "m2", 2, &Assignment::new(), &t);
        assert_eq!((r2.member_epoch, r2.assignment), (2, None));
        // Heartbeating without owned partitions is no acknowledgement either.
        let r1b = g.heartbeat(35, base("m1", 1), &t, "x");
        assert_eq!((r1b.member_epoch, r1b.assignment), (1, None));

        // m1 acks by reporting the smaller owned set and moves to epoch 2.
        let r1 = hb(&mut g, 40, "m1", 1, &kept, &t);
        assert_eq!(r1.member_epoch, 2);
        assert_eq!(r1.assignment, None);
        assert_exclusive(&g);

        // Now m2 receives the released partitions.
        let r2 = hb(&mut g, 50, "m2", 2, &Assignment::new(), &t);
        assert_eq!(r2.member_epoch, 2);
        let got = r2.assignment.unwrap();
        assert_eq!(count(&got), 2);
        for (topic, ps) in &got {
            for p in ps {
                assert!(!kept.get(topic).is_some_and(|k| k.contains(p)));
            }
        }
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        assert_exclusive(&g);
        let d = g.describe();
        assert!(d
            .members
            .iter()
            .all(|m| m.member_epoch == 2 && m.assignment == m.target_assignment));
    }

    /// Drives every member with acknowledging heartbeats until nothing changes.
    fn converge(
        g: &mut ConsumerGroup,
        now: i64,
        owned: &mut BTreeMap<String, (i32, Assignment)>,
        t: &TopicsImage,
    ) {
        for _ in 0..10 {
            for (id, (epoch, a)) in owned.iter_mut() {
                let r = hb(g, now, id, *epoch, a, t);
                assert_eq!(r.error_code, 0, "{r:?}");
                *epoch = r.member_epoch;
                if let Some(new) = r.assignment {
                    *a = new;
                }
                assert_exclusive(g);
            }
        }
    }

    #[test]
    fn leave_gives_partitions_to_survivor() {
        let t = image(&[("a", T1, 6)]);
        let mut g = group();
        let mut owned = BTreeMap::new();
        for id in ["m1", "m2"] {
            let r = g.heartbeat(0, join_req(id, &["a"]), &t, "x");
            owned.insert(id.to_string(), (r.member_epoch, r.assignment.unwrap()));
        }
        converge(&mut g, 1, &mut owned, &t);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        assert_eq!(count(&owned["m2"].1), 3);

        let r = g.heartbeat(2, base("m1", LEAVE_GROUP_MEMBER_EPOCH), &t, "x");
        assert_eq!((r.error_code, r.member_epoch), (0, -1));
        assert_eq!(r.member_id.as_deref(), Some("m1"));
        assert_eq!(g.member_count(), 1);
        assert_eq!(g.state(), ConsumerGroupState::Assigning);
        owned.remove("m1");
        converge(&mut g, 3, &mut owned, &t);
        assert_eq!(count(&owned["m2"].1), 6);
        assert_eq!(owned["m2"].0, g.group_epoch());
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        // Leaving again: unknown.
        let r = g.heartbeat(4, base("m1", LEAVE_GROUP_MEMBER_EPOCH), &t, "x");
        assert_eq!(r.error_code, errors::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn session_timeout_evicts_silent_member() {
        let t = image(&[("a", T1, 2)]);
        let mut g = group();
        g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        let r2 = g.heartbeat(1_000, join_req("m2", &["a"]), &t, "x");
        assert_eq!(g.next_deadline(), Some(45_000));
        g.tick(44_999, &t);
        assert_eq!(g.member_count(), 2);
        // m2 keeps heartbeating; m1 stays silent.
        hb(
            &mut g,
            30_000,
            "m2",
            r2.member_epoch,
            &Assignment::new(),
            &t,
        );
        g.tick(45_000, &t);
        assert_eq!(g.member_count(), 1);
        assert!(g.describe().members.iter().all(|m| m.member_id == "m2"));
        let r = hb(&mut g, 45_001, "m1", 1, &Assignment::new(), &t);
        assert_eq!(r.error_code, errors::UNKNOWN_MEMBER_ID);
        let r = hb(
            &mut g,
            45_002,
            "m2",
            r2.member_epoch,
            &Assignment::new(),
            &t,
        );
        assert_eq!(count(r.assignment.as_ref().unwrap()), 2);
        g.tick(90_002, &t);
        assert_eq!(g.state(), ConsumerGroupState::Empty);
        assert_eq!(g.next_deadline(), None);
    }

    #[test]
    fn member_that_never_revokes_is_evicted_after_rebalance_timeout() {
        let t = image(&[("a", T1, 4)]);
        let mut g = group();
        let r1 = g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        let owned1 = r1.assignment.unwrap();
        g.heartbeat(100, join_req("m2", &["a"]), &t, "x");
        // m1 learns it must revoke at t=200 (rebalance timeout 30s).
        let r = hb(&mut g, 200, "m1", 1, &owned1, &t);
        assert_eq!(count(r.assignment.as_ref().unwrap()), 2);
        // It keeps heartbeating (session alive) but never drops the partitions.
        for now in [10_000, 20_000, 30_000] {
            let r = hb(&mut g, now, "m1", 1, &owned1, &t);
            assert_eq!((r.error_code, r.member_epoch), (0, 1));
            hb(&mut g, now, "m2", 2, &Assignment::new(), &t);
        }
        assert_eq!(g.next_deadline(), Some(30_200));
        g.tick(30_199, &t);
        assert_eq!(g.member_count(), 2);
        g.tick(30_200, &t);
        assert_eq!(g.member_count(), 1);
        let r = hb(&mut g, 30_300, "m1", 1, &owned1, &t);
        assert_eq!(r.error_code, errors::UNKNOWN_MEMBER_ID);
        let r = hb(&mut g, 30_300, "m2", 2, &Assignment::new(), &t);
        assert_eq!(count(r.assignment.as_ref().unwrap()), 4);
        assert_eq!(r.member_epoch, 3);
    }

    #[test]
    fn fencing_errors() {
        let t = image(&[("a", T1, 2)]);
        let mut g = group();
        let r = hb(&mut g, 0, "ghost", 3, &Assignment::new(), &t);
        assert_eq!(r.error_code, errors::UNKNOWN_MEMBER_ID);
        assert_eq!(r.heartbeat_interval_ms, 5000);
        let r1 = g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        let owned = r1.assignment.unwrap();
        // Epoch ahead of the server.
        let r = hb(&mut g, 1, "m1", 5, &owned, &t);
        assert_eq!(r.error_code, errors::FENCED_MEMBER_EPOCH);
        // m2 joins; m1 gives one partition away and reaches epoch 2.
        g.heartbeat(2, join_req("m2", &["a"]), &t, "x");
        let r = hb(&mut g, 3, "m1", 1, &owned, &t);
        let kept = r.assignment.unwrap();
        let r = hb(&mut g, 4, "m1", 1, &kept, &t);
        assert_eq!(r.member_epoch, 2);
        // The previous epoch is accepted with a subset of the assignment
        // (the response with the new epoch may have been lost) ...
        let r = hb(&mut g, 5, "m1", 1, &kept, &t);
        assert_eq!((r.error_code, r.member_epoch), (0, 2));
        // ... but not with partitions outside it, nor without owned partitions.
        let r = hb(&mut g, 6, "m1", 1, &owned, &t);
        assert_eq!(r.error_code, errors::FENCED_MEMBER_EPOCH);
        let r = g.heartbeat(6, base("m1", 1), &t, "x");
        assert_eq!(r.error_code, errors::FENCED_MEMBER_EPOCH);
        // Epoch 0 is only valid as a full (re)join request.
        let r = hb(&mut g, 7, "m1", 0, &Assignment::new(), &t);
        assert_eq!(r.error_code, errors::INVALID_REQUEST);
        // A fenced member rejoins with epoch 0 and its id.
        let r = g.heartbeat(8, join_req("m1", &["a"]), &t, "x");
        assert_eq!((r.error_code, r.member_epoch), (0, 2));
        assert_eq!(r.assignment, Some(kept));
    }

    #[test]
    fn uniform_assignor_balances_partitions() {
        let t = image(&[("a", T1, 7), ("b", T2, 6)]);
        let mut g = group();
        let mut owned = BTreeMap::new();
        for id in ["m1", "m2", "m3", "m4"] {
            let r = g.heartbeat(0, join_req(id, &["a", "b"]), &t, "x");
            owned.insert(id.to_string(), (r.member_epoch, r.assignment.unwrap()));
            converge(&mut g, 1, &mut owned, &t);
        }
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        let d = g.describe();
        assert_eq!(d.assignor_name, "uniform");
        let counts: Vec<usize> = d.members.iter().map(|m| count(&m.assignment)).collect();
        assert_eq!(counts.iter().sum::<usize>(), 13);
        assert!(
            counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
            "{counts:?}"
        );
    }

    #[test]
    fn range_assignor_on_two_topics() {
        let t = image(&[("a", T1, 3), ("b", T2, 3)]);
        let mut g = group();
        let mut owned = BTreeMap::new();
        for id in ["m1", "m2"] {
            let req = HeartbeatRequest {
                server_assignor: Some("range".to_string()),
                ..join_req(id, &["a", "b"])
            };
            let r = g.heartbeat(0, req, &t, "x");
            owned.insert(id.to_string(), (r.member_epoch, r.assignment.unwrap()));
        }
        converge(&mut g, 1, &mut owned, &t);
        let d = g.describe();
        assert_eq!(d.assignor_name, "range");
        assert_eq!(d.state, ConsumerGroupState::Stable);
        let expect1: Assignment = [(tid(T1), vec![0, 1]), (tid(T2), vec![0, 1])].into();
        let expect2: Assignment = [(tid(T1), vec![2]), (tid(T2), vec![2])].into();
        assert_eq!(owned["m1"].1, expect1);
        assert_eq!(owned["m2"].1, expect2);
    }

    #[test]
    fn added_partitions_get_assigned() {
        let mut t = image(&[("a", T1, 2)]);
        let mut g = group();
        let r = g.heartbeat(0, join_req("m1", &["a", "later"]), &t, "x");
        let owned = r.assignment.unwrap();
        assert_eq!(count(&owned), 2);
        t.insert("a".to_string(), (tid(T1), 4));
        t.insert("later".to_string(), (tid(T2), 1));
        g.on_topics_changed(10, &t);
        assert_eq!(g.group_epoch(), 2);
        assert_eq!(g.state(), ConsumerGroupState::Assigning);
        let r = hb(&mut g, 20, "m1", 1, &owned, &t);
        assert_eq!(r.member_epoch, 2);
        assert_eq!(
            r.assignment,
            Some([(tid(T1), vec![0, 1, 2, 3]), (tid(T2), vec![0])].into())
        );
        // Unchanged metadata does not bump.
        g.on_topics_changed(30, &t);
        assert_eq!(g.group_epoch(), 2);
        // A heartbeat also notices metadata changes.
        t.insert("a".to_string(), (tid(T1), 5));
        let r = hb(&mut g, 40, "m1", 2, &r.assignment.unwrap(), &t);
        assert_eq!(r.member_epoch, 3);
        assert_eq!(count(r.assignment.as_ref().unwrap()), 6);
        // Topic deletion revokes its partitions.
        t.remove("later");
        g.on_topics_changed(50, &t);
        let owned = g.describe().members[0].assignment.clone();
        let r = hb(&mut g, 60, "m1", 3, &owned, &t);
        assert_eq!(r.assignment, Some([(tid(T1), vec![0, 1, 2, 3, 4])].into()));
        assert_eq!(r.member_epoch, 3);
        let r = hb(&mut g, 70, "m1", 3, &r.assignment.unwrap(), &t);
        assert_eq!(r.member_epoch, 4);
    }

    #[test]
    fn v0_server_generates_member_id_v1_requires_client_id() {
        let t = image(&[("a", T1, 1)]);
        let mut g = group();
        let req = HeartbeatRequest {
            version: 0,
            ..join_req("", &["a"])
        };
        let r = g.heartbeat(0, req, &t, "minted-id");
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_id.as_deref(), Some("minted-id"));
        assert!(g
            .describe()
            .members
            .iter()
            .any(|m| m.member_id == "minted-id"));
        // v1 requires the client-generated id.
        let req = HeartbeatRequest {
            version: 1,
            ..join_req("", &["a"])
        };
        let r = g.heartbeat(1, req, &t, "other");
        assert_eq!(r.error_code, errors::INVALID_REQUEST);
        let r = g.heartbeat(2, join_req("client-uuid", &["a"]), &t, "ignored");
        assert_eq!(r.member_id.as_deref(), Some("client-uuid"));
        assert_eq!(g.member_count(), 2);
        // v0 with an epoch > 0 still needs the id.
        let req = HeartbeatRequest {
            version: 0,
            ..base("", 1)
        };
        assert_eq!(
            g.heartbeat(3, req, &t, "x").error_code,
            errors::INVALID_REQUEST
        );
    }

    #[test]
    fn malformed_first_heartbeats_are_rejected() {
        let t = image(&[("a", T1, 1)]);
        let mut g = group();
        let cases = [
            HeartbeatRequest {
                subscribed_topic_names: None,
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                rebalance_timeout_ms: -1,
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                owned_partitions: None,
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                owned_partitions: Some(vec![(tid(T1), vec![0])]),
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                instance_id: Some(" ".into()),
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                subscribed_topic_regex: Some("a.*".into()),
                ..join_req("m", &["a"])
            },
            HeartbeatRequest {
                member_epoch: -3,
                ..base("m", 0)
            },
            HeartbeatRequest {
                member_epoch: -2,
                ..base("m", 0)
            },
        ];
        for req in cases {
            let r = g.heartbeat(0, req.clone(), &t, "x");
            assert_eq!(r.error_code, errors::INVALID_REQUEST, "{req:?}");
        }
        let r = g.heartbeat(
            0,
            HeartbeatRequest {
                server_assignor: Some("sticky".into()),
                ..join_req("m", &["a"])
            },
            &t,
            "x",
        );
        assert_eq!(r.error_code, errors::UNSUPPORTED_ASSIGNOR);
        assert_eq!(g.member_count(), 0);
        assert_eq!(g.group_epoch(), 0);
        // An empty subscription is a valid join.
        let r = g.heartbeat(0, join_req("m", &[]), &t, "x");
        assert_eq!((r.error_code, r.member_epoch), (0, 1));
    }

    #[test]
    fn group_max_size_reached() {
        let t = image(&[("a", T1, 1)]);
        let config = ConsumerGroupConfig {
            max_size: 1,
            ..ConsumerGroupConfig::default()
        };
        let mut g = ConsumerGroup::new("g".into(), config);
        assert_eq!(
            g.heartbeat(0, join_req("m1", &["a"]), &t, "x").error_code,
            0
        );
        let r = g.heartbeat(0, join_req("m2", &["a"]), &t, "x");
        assert_eq!(r.error_code, errors::GROUP_MAX_SIZE_REACHED);
        // The existing member may still heartbeat.
        let r = g.heartbeat(1, join_req("m1", &["a"]), &t, "x");
        assert_eq!(r.error_code, 0);
    }

    #[test]
    fn static_member_temporary_leave_and_replacement() {
        let t = image(&[("a", T1, 2)]);
        let mut g = group();
        let join_static = |id: &str| HeartbeatRequest {
            instance_id: Some("inst".into()),
            ..join_req(id, &["a"])
        };
        let r = g.heartbeat(0, join_static("s1"), &t, "x");
        let owned = r.assignment.unwrap();
        g.heartbeat(0, join_req("d1", &["a"]), &t, "x");
        // Another incarnation cannot take the instance id while it is in use.
        let r = g.heartbeat(1, join_static("s2"), &t, "x");
        assert_eq!(r.error_code, errors::UNRELEASED_INSTANCE_ID);
        // A different member id heartbeating for the instance is fenced.
        let req = HeartbeatRequest {
            instance_id: Some("inst".into()),
            ..base("s2", 1)
        };
        assert_eq!(
            g.heartbeat(1, req, &t, "x").error_code,
            errors::FENCED_INSTANCE_ID
        );
        let req = HeartbeatRequest {
            instance_id: Some("nope".into()),
            ..base("s1", 1)
        };
        assert_eq!(
            g.heartbeat(1, req, &t, "x").error_code,
            errors::UNKNOWN_MEMBER_ID
        );
        // Temporary leave keeps the member (and its partitions) without a rebalance.
        let epoch_before = g.group_epoch();
        let req = HeartbeatRequest {
            instance_id: Some("inst".into()),
            ..base("s1", -2)
        };
        let r = g.heartbeat(2, req, &t, "x");
        assert_eq!((r.error_code, r.member_epoch), (0, -2));
        assert_eq!(g.group_epoch(), epoch_before);
        assert_eq!(g.member_count(), 2);
        // The new incarnation takes over the identity and its assignment.
        let r = g.heartbeat(3, join_static("s2"), &t, "x");
        assert_eq!(r.error_code, 0);
        assert_eq!(r.member_epoch, epoch_before);
        assert!(count(r.assignment.as_ref().unwrap()) <= count(&owned));
        assert_eq!(g.group_epoch(), epoch_before);
        let ids: Vec<String> = g
            .describe()
            .members
            .into_iter()
            .map(|m| m.member_id)
            .collect();
        assert_eq!(ids, vec!["d1".to_string(), "s2".to_string()]);
        assert_exclusive(&g);
        // A permanent leave removes it.
        let req = HeartbeatRequest {
            instance_id: Some("inst".into()),
            ..base("s2", -1)
        };
        assert_eq!(g.heartbeat(4, req, &t, "x").error_code, 0);
        assert_eq!(g.member_count(), 1);
    }

    #[test]
    fn validate_offset_commit_cases() {
        let t = image(&[("a", T1, 1)]);
        let mut g = group();
        // Empty group: simple (non-member) commits are allowed.
        assert_eq!(g.validate_offset_commit("", -1), Ok(()));
        assert_eq!(
            g.validate_offset_commit("m1", 1),
            Err(errors::UNKNOWN_MEMBER_ID)
        );
        g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        assert_eq!(g.validate_offset_commit("m1", 1), Ok(()));
        assert_eq!(
            g.validate_offset_commit("m1", 0),
            Err(errors::STALE_MEMBER_EPOCH)
        );
        assert_eq!(
            g.validate_offset_commit("m1", 2),
            Err(errors::STALE_MEMBER_EPOCH)
        );
        assert_eq!(
            g.validate_offset_commit("m1", -1),
            Err(errors::STALE_MEMBER_EPOCH)
        );
        assert_eq!(
            g.validate_offset_commit("zz", 1),
            Err(errors::UNKNOWN_MEMBER_ID)
        );
        // Non-empty group: simple commits are refused.
        assert_eq!(
            g.validate_offset_commit("", -1),
            Err(errors::UNKNOWN_MEMBER_ID)
        );
    }

    #[test]
    fn mark_dead_and_state_names() {
        let t = image(&[("a", T1, 1)]);
        let mut g = group();
        g.heartbeat(0, join_req("m1", &["a"]), &t, "x");
        g.mark_dead();
        assert_eq!(g.state(), ConsumerGroupState::Dead);
        assert_eq!(g.state().as_str(), "Dead");
        assert_eq!(g.member_count(), 0);
        let r = g.heartbeat(1, join_req("m1", &["a"]), &t, "x");
        assert_eq!(r.error_code, errors::COORDINATOR_NOT_AVAILABLE);
        assert_eq!(ConsumerGroupState::Reconciling.as_str(), "Reconciling");
        assert_eq!(ConsumerGroupState::Assigning.as_str(), "Assigning");
    }

    /// One simulated client.
    #[derive(Debug, Clone, Default)]
    struct Client {
        id: String,
        epoch: i32,
        owned: Assignment,
        joined: bool,
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Heartbeat; the flag says whether to omit the owned partitions.
        Heartbeat(usize, bool),
        Leave(usize),
        Advance(i64),
        GrowTopic,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..4usize, any::<bool>()).prop_map(|(c, omit)| Op::Heartbeat(c, omit)),
            1 => (0..4usize).prop_map(Op::Leave),
            1 => (1..40_000i64).prop_map(Op::Advance),
            1 => Just(Op::GrowTopic),
        ]
    }

    fn client_heartbeat(
        g: &mut ConsumerGroup,
        now: i64,
        c: &mut Client,
        omit: bool,
        t: &TopicsImage,
    ) {
        let req = if !c.joined {
            join_req(&c.id, &["a", "b"])
        } else {
            HeartbeatRequest {
                owned_partitions: if omit { None } else { owned_of(&c.owned) },
                ..base(&c.id, c.epoch)
            }
        };
        let r = g.heartbeat(now, req, t, "x");
        if r.error_code == 0 {
            c.joined = true;
            c.epoch = r.member_epoch;
            if let Some(a) = r.assignment {
                c.owned = a;
            }
        } else {
            assert!(
                [errors::UNKNOWN_MEMBER_ID, errors::FENCED_MEMBER_EPOCH].contains(&r.error_code),
                "{r:?}"
            );
            *c = Client {
                id: c.id.clone(),
                ..Client::default()
            };
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn no_partition_is_ever_owned_twice(ops in proptest::collection::vec(op(), 1..60)) {
            let mut t = image(&[("a", T1, 5), ("b", T2, 3)]);
            let mut g = group();
            let mut clients: Vec<Client> = (0..4)
                .map(|i| Client { id: format!("c{i}"), ..Client::default() })
                .collect();
            let mut now = 0i64;
            for op in ops {
                match op {
                    Op::Heartbeat(i, omit) => client_heartbeat(&mut g, now, &mut clients[i], omit, &t),
                    Op::Leave(i) => {
                        let c = &mut clients[i];
                        if c.joined {
                            g.heartbeat(now, base(&c.id, -1), &t, "x");
                            *c = Client { id: c.id.clone(), ..Client::default() };
                        }
                    }
                    Op::Advance(ms) => {
                        now += ms;
                        g.tick(now, &t);
                    }
                    Op::GrowTopic => {
                        if let Some(e) = t.get_mut("a") {
                            e.1 += 1;
                        }
                        g.on_topics_changed(now, &t);
                    }
                }
                assert_exclusive(&g);
                // A client never believes it owns a partition another member holds.
                for c in clients.iter().filter(|c| c.joined && g.members.contains_key(&c.id)) {
                    for (topic, ps) in &c.owned {
                        for p in ps {
                            if let Some(owner) = g.owners.get(&(*topic, *p)) {
                                prop_assert_eq!(owner, &c.id);
                            }
                        }
                    }
                }
            }
            // Every live client keeps heartbeating and acknowledging: the group converges.
            for _ in 0..8 {
                for c in clients.iter_mut() {
                    client_heartbeat(&mut g, now, c, false, &t);
                    assert_exclusive(&g);
                }
            }
            prop_assert_eq!(g.state(), ConsumerGroupState::Stable);
            let d = g.describe();
            let total: usize = d.members.iter().map(|m| count(&m.assignment)).sum();
            let partitions: i32 = t.values().map(|(_, n)| *n).sum();
            prop_assert_eq!(total, partitions as usize);
            for m in &d.members {
                prop_assert_eq!(m.member_epoch, d.assignment_epoch);
                prop_assert_eq!(&m.assignment, &m.target_assignment);
            }
        }
    }
}
