//! The classic group protocol and committed offsets: FindCoordinator,
//! JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
//! ListGroups, DescribeGroups, DeleteGroups, OffsetDelete.
//!
//! Translates protocol structs to and from the coordinator's (`group/`)
//! types; the semantics live there.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::authorized_operations::{self, when_requested};
use super::errors::ack_error_code;
use crate::broker::{Broker, Endpoint, ACKS_ALL};
use crate::group::classic::{GroupState, JoinRequest, SyncRequest};
use crate::group::coordinator::{AssignmentWrite, CommitOffset, DescribeError, DurableWrite};
use crate::group::OFFSETS_TOPIC;
use crate::txn::TRANSACTION_STATE_TOPIC;

const GROUP_KEY: i8 = 0;
const TRANSACTION_KEY: i8 = 1;

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub fn find_coordinator(
    broker: &Arc<Broker>,
    req: FindCoordinatorRequest,
    version: i16,
) -> ResponseKind {
    let image = broker.image();
    // The leader of the key's partition of the coordinators' topic.
    let answer = |key: &str| -> Result<Endpoint, (i16, String)> {
        let topic = match req.key_type {
            GROUP_KEY => OFFSETS_TOPIC,
            TRANSACTION_KEY => TRANSACTION_STATE_TOPIC,
            other => {
                let message = format!("Unknown coordinator type {other}");
                return Err((ResponseError::InvalidRequest.code(), message));
            }
        };
        let unavailable = || {
            let e = ResponseError::CoordinatorNotAvailable;
            (e.code(), e.to_string())
        };
        broker
            .coordinator_of(&image, topic, key)
            .and_then(|id| broker.endpoint_of(&image, id))
            .ok_or_else(unavailable)
    };
    let mut response = FindCoordinatorResponse::default();
    if version >= 4 {
        response.coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default();
                match answer(&key) {
                    Ok(e) => c
                        .with_key(key)
                        .with_node_id(BrokerId(e.node_id))
                        .with_host(s(e.host))
                        .with_port(e.port),
                    Err((code, message)) => c
                        .with_key(key)
                        .with_error_code(code)
                        .with_error_message(Some(s(message)))
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                }
            })
            .collect();
    } else {
        match answer(&req.key) {
            Ok(e) => {
                response.node_id = BrokerId(e.node_id);
                response.host = s(e.host);
                response.port = e.port;
            }
            Err((code, message)) => {
                response.error_code = code;
                if version >= 1 {
                    response.error_message = Some(s(message));
                }
                response.node_id = BrokerId(-1);
                response.port = -1;
            }
        }
    }
    ResponseKind::FindCoordinator(response)
}

pub async fn join_group(
    broker: &Arc<Broker>,
    req: JoinGroupRequest,
    client_id: &str,
    client_host: &str,
    version: i16,
) -> ResponseKind {
    let mut response = JoinGroupResponse::default();
    if req.group_id.is_empty() {
        response.error_code = ResponseError::InvalidGroupId.code();
        response.generation_id = -1;
        return ResponseKind::JoinGroup(response);
    }
    let request = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        reason: req.reason.map(|r| r.to_string()),
    };
    let joined = broker.groups.join(&req.group_id, request).await;
    response.error_code = joined.error_code;
    response.generation_id = joined.generation_id;
    response.member_id = s(joined.member_id);
    response.leader = s(joined.leader);
    response.protocol_name = joined.protocol_name.map(s);
    if version >= 7 {
        response.protocol_type = joined.protocol_type.map(s);
    }
    if version < 7 && response.protocol_name.is_none() {
        // Before v7 the protocol name is not nullable.
        response.protocol_name = Some(StrBytes::default());
    }
    response.members = joined
        .members
        .into_iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default()
                .with_member_id(s(m.member_id))
                .with_metadata(m.metadata);
            if version >= 5 {
                member.group_instance_id = m.group_instance_id.map(s);
            }
            member
        })
        .collect();
    ResponseKind::JoinGroup(response)
}

pub async fn sync_group(broker: &Arc<Broker>, req: SyncGroupRequest, version: i16) -> ResponseKind {
    let request = SyncRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_id: req.generation_id,
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let synced = broker
        .groups
        .sync(&req.group_id, request, |assignment| {
            tokio::spawn(assignment_durable(broker.clone(), assignment));
        })
        .await;
    let mut response = SyncGroupResponse::default()
        .with_error_code(synced.error_code)
        .with_assignment(synced.assignment);
    if version >= 5 {
        response.protocol_type = synced.protocol_type.map(s);
        response.protocol_name = synced.protocol_name.map(s);
    }
    ResponseKind::SyncGroup(response)
}

pub fn heartbeat(broker: &Arc<Broker>, req: HeartbeatRequest) -> ResponseKind {
    let code = broker.groups.heartbeat(
        &req.group_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
    );
    ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code))
}

pub fn leave_group(broker: &Arc<Broker>, req: LeaveGroupRequest, version: i16) -> ResponseKind {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let mut response = LeaveGroupResponse::default();
    match broker.groups.leave(&req.group_id, &members) {
        Ok(codes) if version >= 3 => {
            response.members = members
                .into_iter()
                .zip(codes)
                .map(|((member_id, instance), code)| {
                    MemberResponse::default()
                        .with_member_id(s(member_id))
                        .with_group_instance_id(instance.map(s))
                        .with_error_code(code)
                })
                .collect();
        }
        Ok(codes) => response.error_code = codes.first().copied().unwrap_or(0),
        Err(code) => response.error_code = code,
    }
    ResponseKind::LeaveGroup(response)
}

/// Whether the topic has the partition. OffsetCommit and TxnOffsetCommit
/// answer UNKNOWN_TOPIC_OR_PARTITION for the others, which never reach the
/// coordinator, as Kafka does.
pub(super) fn partition_exists(broker: &Broker, topic: &str, partition: i32) -> bool {
    broker
        .topic(topic)
        .is_some_and(|t| (0..t.partition_count()).contains(&partition))
}

/// Codes in request order: the coordinator's for the partitions that exist
/// (`codes`, in order), UNKNOWN_TOPIC_OR_PARTITION for the rest.
pub(super) fn with_unknown_partitions(exists: &[bool], codes: Vec<i16>) -> Vec<i16> {
    let mut codes = codes.into_iter();
    exists
        .iter()
        .map(|&e| {
            if e {
                codes.next().unwrap_or(0)
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            }
        })
        .collect()
}

pub async fn offset_commit(broker: &Arc<Broker>, req: OffsetCommitRequest) -> ResponseKind {
    let mut shape = Vec::new();
    let mut offsets = Vec::new();
    let mut exists = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for p in &t.partitions {
            parts.push(p.partition_index);
            let known = partition_exists(broker, &t.name, p.partition_index);
            exists.push(known);
            if !known {
                continue;
            }
            offsets.push(CommitOffset {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            });
        }
        shape.push((t.name.clone(), parts));
    }
    let (mut codes, durable) = if offsets.is_empty() {
        (Vec::new(), None)
    } else if req.group_id.is_empty() {
        (
            vec![ResponseError::InvalidGroupId.code(); offsets.len()],
            None,
        )
    } else {
        broker.groups.commit(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            offsets,
        )
    };
    wait_commit_durable(broker, durable, &mut codes).await;
    let mut codes = with_unknown_partitions(&exists, codes).into_iter();
    let topics = shape
        .into_iter()
        .map(|(name, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect();
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}

/// One group's committed offsets: (topic, [(partition, offset, epoch, metadata, error)]).
type Committed = Vec<(TopicName, Vec<(i32, i64, i32, String, i16)>)>;

/// The committed offsets; with `require_stable` (v7+), partitions with
/// transactional offsets not yet committed or aborted answer
/// UNSTABLE_OFFSET_COMMIT, as Kafka does.
fn fetch_group(
    broker: &Broker,
    group_id: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Committed {
    let wanted: Option<Vec<(String, Vec<i32>)>> = topics
        .as_ref()
        .map(|t| t.iter().map(|(n, p)| (n.to_string(), p.clone())).collect());
    let rows = broker.groups.committed(group_id, wanted.as_deref());
    let unstable = if require_stable {
        broker.groups.pending_txn_partitions(group_id)
    } else {
        Default::default()
    };
    let mut out: Committed = Vec::new();
    for (topic, partition, value) in rows {
        let row = if unstable.contains(&(topic.clone(), partition)) {
            (
                partition,
                -1,
                -1,
                String::new(),
                ResponseError::UnstableOffsetCommit.code(),
            )
        } else {
            match value {
                Some(v) => (partition, v.offset, v.leader_epoch, v.metadata, 0),
                None => (partition, -1, -1, String::new(), 0),
            }
        };
        let name = TopicName(s(topic));
        match out.last_mut() {
            Some((n, parts)) if *n == name => parts.push(row),
            _ => out.push((name, vec![row])),
        }
    }
    out
}

pub fn offset_fetch(broker: &Arc<Broker>, req: OffsetFetchRequest, version: i16) -> ResponseKind {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        response.groups = req
            .groups
            .into_iter()
            .map(|g| {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let committed = fetch_group(broker, &g.group_id, topics, req.require_stable);
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(
                        committed
                            .into_iter()
                            .map(|(name, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(p, o, e, m, code)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_error_code(code)
                                                    .with_partition_index(p)
                                                    .with_committed_offset(o)
                                                    .with_committed_leader_epoch(e)
                                                    .with_metadata(Some(s(m)))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
    } else {
        let topics = req.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect()
        });
        let committed = fetch_group(broker, &req.group_id, topics, req.require_stable);
        response.topics = committed
            .into_iter()
            .map(|(name, parts)| {
                OffsetFetchResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        parts
                            .into_iter()
                            .map(|(p, o, e, m, code)| {
                                let mut r = OffsetFetchResponsePartition::default()
                                    .with_error_code(code)
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_metadata(Some(s(m)));
                                if version >= 5 {
                                    r.committed_leader_epoch = e;
                                }
                                r
                            })
                            .collect(),
                    )
            })
            .collect();
    }
    ResponseKind::OffsetFetch(response)
}

pub fn list_groups(broker: &Arc<Broker>, req: ListGroupsRequest, version: i16) -> ResponseKind {
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|g| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(g.state))
        })
        .filter(|g| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(g.group_type))
        })
        .map(|g| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type));
            if version >= 4 {
                listed.group_state = StrBytes::from_static_str(g.state);
            }
            if version >= 5 {
                listed.group_type = StrBytes::from_static_str(g.group_type);
            }
            listed
        })
        .collect();
    ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(groups))
}

pub fn describe_groups(
    broker: &Arc<Broker>,
    req: DescribeGroupsRequest,
    version: i16,
) -> ResponseKind {
    let groups = req
        .groups
        .into_iter()
        .map(|group_id| {
            let d = match broker.groups.describe(&group_id) {
                Ok(d) => d,
                Err(DescribeError::NotFound) => {
                    let mut g = DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_group_state(s(GroupState::Dead.as_str()));
                    if version >= 6 {
                        g.error_code = ResponseError::GroupIdNotFound.code();
                        g.error_message = Some(StrBytes::from_static_str("Group not found."));
                    }
                    return g;
                }
                Err(DescribeError::WrongType) => {
                    let mut g = DescribedGroup::default()
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_group_state(s(GroupState::Dead.as_str()));
                    if version >= 6 {
                        g.error_message = Some(s(format!(
                            "Group {} is not a classic group.",
                            group_id.as_str()
                        )));
                    }
                    return g.with_group_id(group_id);
                }
            };
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    let mut member = DescribedGroupMember::default()
                        .with_member_id(s(m.member_id))
                        .with_client_id(s(m.client_id))
                        .with_client_host(s(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    if version >= 4 {
                        member.group_instance_id = m.group_instance_id.map(s);
                    }
                    member
                })
                .collect();
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(s(d.state.as_str()))
                .with_protocol_type(s(d.protocol_type))
                .with_protocol_data(s(d.protocol))
                .with_members(members)
        })
        .map(|mut g| {
            // Kafka sets it on every group answered without an error.
            if req.include_authorized_operations && g.error_code == 0 {
                g.authorized_operations = authorized_operations::GROUP;
            }
            g
        })
        .collect();
    ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups))
}

pub fn delete_groups(broker: &Arc<Broker>, req: DeleteGroupsRequest) -> ResponseKind {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = broker.groups.delete(&g);
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code)
        })
        .collect();
    ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
}

pub fn offset_delete(broker: &Arc<Broker>, req: OffsetDeleteRequest) -> ResponseKind {
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let mut response = OffsetDeleteResponse::default();
    match broker.groups.delete_offsets(&req.group_id, &partitions) {
        Ok(codes) => {
            let mut codes = codes.into_iter();
            response.topics = req
                .topics
                .into_iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(codes.next().unwrap_or(0))
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default()
                        .with_name(t.name)
                        .with_partitions(parts)
                })
                .collect();
        }
        Err(code) => response.error_code = code,
    }
    ResponseKind::OffsetDelete(response)
}

/// KIP-848: one heartbeat of the consumer group protocol, answered once the
/// group's changed records are durable (under the durability policy).
pub async fn consumer_group_heartbeat(
    broker: &Arc<Broker>,
    req: ConsumerGroupHeartbeatRequest,
    client_id: &str,
    client_host: &str,
    version: i16,
) -> ResponseKind {
    use crate::group::consumer::HeartbeatRequest;
    use kafka_protocol::messages::consumer_group_heartbeat_response::{
        Assignment, TopicPartitions,
    };
    let request = HeartbeatRequest {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .map(|names| names.iter().map(|n| n.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned_partitions: req.topic_partitions.map(|tps| {
            tps.into_iter()
                .map(|tp| (tp.topic_id, tp.partitions))
                .collect()
        }),
        client_id: client_id.to_string(),
        client_host: client_host.to_string(),
        version,
    };
    let r = if req.group_id.is_empty() {
        crate::group::consumer::HeartbeatResponse {
            error_code: ResponseError::InvalidRequest.code(),
            error_message: Some("GroupId can't be empty.".into()),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    } else {
        let (mut r, durable) = broker.groups.consumer_heartbeat(&req.group_id, request);
        let mut code = [r.error_code];
        wait_commit_durable(broker, durable, &mut code).await;
        if code[0] != r.error_code {
            r = crate::group::consumer::HeartbeatResponse {
                error_code: code[0],
                error_message: Some("The group's state could not be made durable.".into()),
                member_id: None,
                member_epoch: 0,
                heartbeat_interval_ms: r.heartbeat_interval_ms,
                assignment: None,
            };
        }
        r
    };
    let response = ConsumerGroupHeartbeatResponse::default()
        .with_error_code(r.error_code)
        .with_error_message(r.error_message.map(s))
        .with_member_id(r.member_id.map(s))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(r.assignment.map(|a| {
            Assignment::default().with_topic_partitions(
                a.into_iter()
                    .map(|(topic_id, partitions)| {
                        TopicPartitions::default()
                            .with_topic_id(topic_id)
                            .with_partitions(partitions)
                    })
                    .collect(),
            )
        }));
    ResponseKind::ConsumerGroupHeartbeat(response)
}

/// KIP-848: describes consumer-protocol groups.
pub fn consumer_group_describe(
    broker: &Arc<Broker>,
    req: ConsumerGroupDescribeRequest,
) -> ResponseKind {
    use kafka_protocol::messages::consumer_group_describe_response::{
        Assignment, DescribedGroup, Member, TopicPartitions,
    };
    let names: std::collections::HashMap<uuid::Uuid, String> = broker
        .topics()
        .iter()
        .map(|t| (t.id, t.name.clone()))
        .collect();
    let assignment = |a: crate::group::consumer::Assignment| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(id)
                        .with_topic_name(TopicName(s(names.get(&id).cloned().unwrap_or_default())))
                        .with_partitions(partitions)
                })
                .collect(),
        )
    };
    let groups = req
        .group_ids
        .into_iter()
        .map(
            |group_id| match broker.groups.describe_consumer(&group_id) {
                Ok(d) => DescribedGroup::default()
                    .with_group_id(group_id)
                    .with_authorized_operations(when_requested(
                        req.include_authorized_operations,
                        authorized_operations::GROUP,
                    ))
                    .with_group_state(StrBytes::from_static_str(d.state.as_str()))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(s(d.assignor_name))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(s(m.member_id))
                                    .with_instance_id(m.instance_id.map(s))
                                    .with_rack_id(m.rack_id.map(s))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .into_iter()
                                            .map(|n| TopicName(s(n)))
                                            .collect(),
                                    )
                                    .with_assignment(assignment(m.assignment))
                                    .with_target_assignment(assignment(m.target_assignment))
                            })
                            .collect(),
                    ),
                Err(e) => {
                    let message = match e {
                        DescribeError::NotFound => {
                            format!("Group {} not found.", group_id.as_str())
                        }
                        DescribeError::WrongType => {
                            format!("Group {} is not a consumer group.", group_id.as_str())
                        }
                    };
                    DescribedGroup::default()
                        .with_group_id(group_id)
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(s(message)))
                }
            },
        )
        .collect();
    ResponseKind::ConsumerGroupDescribe(
        ConsumerGroupDescribeResponse::default().with_groups(groups),
    )
}

/// Makes a leader's assignment durable under the durability policy, then
/// tells the coordinator, which answers the members' SyncGroups (or, on a
/// failure, COORDINATOR_NOT_AVAILABLE and a new rebalance). A task of its
/// own, so it completes even if the leader's connection goes meanwhile.
async fn assignment_durable(broker: Arc<Broker>, assignment: AssignmentWrite) {
    let result = match assignment.write {
        Ok(w) => broker
            .acknowledged_one(ACKS_ALL, &w.partition, w.offset)
            .await
            .map_err(|_| ResponseError::CoordinatorNotAvailable.code()),
        Err(code) => Err(code),
    };
    broker
        .groups
        .assignment_written(&assignment.group_id, assignment.generation, result);
}

/// Waits until a commit's write is durable (when acks wait for fsync); if
/// that fails, every offset that was accepted gets the storage error.
pub(super) async fn wait_commit_durable(
    broker: &Arc<Broker>,
    durable: Option<DurableWrite>,
    codes: &mut [i16],
) {
    let Some(w) = durable else {
        return;
    };
    if let Err(e) = broker
        .acknowledged_one(ACKS_ALL, &w.partition, w.offset)
        .await
    {
        let code = ack_error_code(&e);
        codes
            .iter_mut()
            .filter(|c| **c == 0)
            .for_each(|c| *c = code);
    }
}

#[cfg(test)]
mod tests {
    //! A leader's SyncGroup through the real coordinator and log: nobody gets
    //! the assignment before its record is durable, and a member joining
    //! while it is written starts the next generation.

    use super::*;
    use crate::api::test_util::broker;
    use crate::group::classic::JoinResponse;
    use bytes::Bytes;
    use tokio::sync::mpsc;

    const GROUP: &str = "g";

    fn join_request(member_id: &str, client: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.to_string(),
            group_instance_id: None,
            client_id: client.to_string(),
            client_host: "/127.0.0.1".to_string(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".to_string(),
            protocols: vec![("range".to_string(), Bytes::from_static(b"meta"))],
            require_known_member_id: false,
            reason: None,
        }
    }

    /// The first member of a new group: generation 1, leader (the initial
    /// delay is 0, so the coordinator's timer task completes the join).
    async fn first_member(broker: &Arc<Broker>) -> JoinResponse {
        let joined = broker.groups.join(GROUP, join_request("", "a")).await;
        assert_eq!(joined.error_code, 0);
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, joined.member_id);
        joined
    }

    fn leader_sync(leader: &JoinResponse) -> SyncGroupRequest {
        SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id(leader.generation_id)
            .with_member_id(StrBytes::from_string(leader.member_id.clone()))
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(leader.member_id.clone()))
                    .with_assignment(Bytes::from_static(b"all")),
            ])
    }

    fn run_timers(broker: &Arc<Broker>) -> crate::shutdown::Shutdown {
        let (shutdown, stopping) = crate::shutdown::Shutdown::new();
        tokio::spawn(broker.groups.clone().run_timers(stopping));
        shutdown
    }

    #[tokio::test]
    async fn the_leaders_sync_is_answered_once_its_assignment_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path()).await;
        let _stop = run_timers(&broker);
        let leader = first_member(&broker).await;
        let ResponseKind::SyncGroup(synced) = sync_group(&broker, leader_sync(&leader), 3).await
        else {
            panic!("not a SyncGroup response");
        };
        assert_eq!(synced.error_code, 0);
        assert_eq!(synced.assignment, Bytes::from_static(b"all"));
        // The group record holding it was fsynced before the answer.
        let description = broker.groups.describe(GROUP).ok().unwrap();
        assert_eq!(description.state, GroupState::Stable);
        let offsets = broker
            .topic(crate::group::coordinator::OFFSETS_TOPIC)
            .unwrap();
        let partition = offsets
            .partition(crate::group::coordinator::partition_for(
                GROUP,
                offsets.partition_count(),
            ))
            .unwrap();
        let end = partition.high_watermark();
        assert!(end > 0);
        assert_eq!(partition.durable_offset(), end);
    }

    #[tokio::test]
    async fn a_member_joining_while_the_assignment_is_written_gets_everyone_into_the_next_generation(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path()).await;
        let _stop = run_timers(&broker);
        let leader = first_member(&broker).await;

        // The leader's SyncGroup, with its write held back.
        let (writes, mut written) = mpsc::unbounded_channel();
        let request = SyncRequest {
            member_id: leader.member_id.clone(),
            group_instance_id: None,
            generation_id: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(leader.member_id.clone(), Bytes::from_static(b"all"))],
        };
        let b = broker.clone();
        let leader_synced = tokio::spawn(async move {
            b.groups
                .sync(GROUP, request, |w| writes.send(w).unwrap())
                .await
        });
        let write = written.recv().await.expect("the leader's assignment");
        assert_eq!(write.generation, 1);
        assert!(!leader_synced.is_finished());

        // A second consumer joins meanwhile.
        let b = broker.clone();
        let second = tokio::spawn(async move { b.groups.join(GROUP, join_request("", "b")).await });
        let synced = leader_synced.await.unwrap();
        assert_eq!(synced.error_code, ResponseError::RebalanceInProgress.code());
        assert_eq!(synced.assignment, Bytes::new());

        // The write lands too late to change anything.
        assignment_durable(broker.clone(), write).await;
        let description = broker.groups.describe(GROUP).ok().unwrap();
        assert_eq!(description.state, GroupState::PreparingRebalance);

        // The leader rejoins: both are in generation 2.
        let rejoined = broker
            .groups
            .join(GROUP, join_request(&leader.member_id, "a"))
            .await;
        assert_eq!(rejoined.error_code, 0);
        assert_eq!(rejoined.generation_id, 2);
        assert_eq!(rejoined.members.len(), 2);
        let second = second.await.unwrap();
        assert_eq!((second.error_code, second.generation_id), (0, 2));
        assert_eq!(second.leader, leader.member_id);
    }
}
