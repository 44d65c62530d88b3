//! One member of a classic group: identity, timeouts, supported protocols, assignment, and the
//! Kafka-visible "awaiting join/sync" flags plus whether the caller still holds a waiter for them.
//! Pure data with small helpers; it owns no timers and must not make group-level decisions.

use bytes::Bytes;

/// A member of a classic group (Kafka's `ClassicGroupMember`).
#[derive(Debug, Clone)]
pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Kafka's "has an awaiting JoinGroup future" (counts towards hasAllMembersJoined).
    pub awaiting_join: bool,
    /// The caller holds a JoinGroup waiter for this member that is owed exactly one Output.
    pub join_waiter: bool,
    /// Kafka's "has an awaiting SyncGroup future".
    pub awaiting_sync: bool,
    /// The caller holds a SyncGroup waiter for this member that is owed exactly one Output.
    pub sync_waiter: bool,
    /// Joined but has not yet received a JoinGroup response (may expire while awaiting join).
    pub is_new: bool,
    /// When the heartbeat (session) timer fires, if armed.
    pub heartbeat_deadline: Option<i64>,
}

impl Member {
    /// Metadata this member supplied for `protocol` (empty if none / unknown).
    pub fn metadata(&self, protocol: Option<&str>) -> Bytes {
        protocol
            .and_then(|p| self.protocols.iter().find(|(n, _)| n == p))
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// True when the member declared exactly these protocols (names, metadata and order).
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols.as_slice() == protocols
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }

    /// The member's first protocol (in its preference order) among `candidates`.
    pub fn vote<'a>(&'a self, candidates: &[String]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .find(|n| candidates.iter().any(|c| c == n))
    }

    /// Kafka's `hasSatisfiedHeartbeat`: new members can expire even while awaiting join;
    /// others awaiting a join or sync response are considered alive.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.awaiting_join || self.awaiting_sync)
    }
}
