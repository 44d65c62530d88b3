//! The API layer: decodes a request body, calls broker state, builds the
//! response. One file per API family; this file dispatches and holds the
//! table of versions Vltava advertises (exactly the ones it handles).
//!
//! Handlers never touch files or sockets. Errors from lower layers become
//! Kafka error codes here and only here (`errors.rs`).

mod admin;
mod api_versions;
mod authorized_operations;
mod cluster;
mod configs;
mod coordinators;
mod elect_leaders;
mod errors;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod producer;
mod reassignments;
mod replica_fetch;
mod txn;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};

use crate::broker::Broker;

/// Every API Vltava handles, with the versions it handles.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::DescribeQuorum, 0, 2),
];

/// The versions of `key` that Vltava handles.
pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// A response and the version to encode it at.
pub struct Response {
    pub kind: ResponseKind,
    pub version: i16,
}

/// What handling a request produced. Moved once per request, so the size
/// of the ready variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// The response is ready now.
    Ready(Response),
    /// The response waits on something (durability); later requests on the
    /// same connection are handled meanwhile, responses stay in order.
    Deferred(BoxFuture<'static, Response>),
    /// No response at all (`acks=0`).
    None,
}

/// A request that cannot be served; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("{api:?} was not finished: {reason}")]
    Cancelled { api: ApiKey, reason: String },
}

/// Decodes a request body of `api` at `version` (one `handle` has checked is
/// supported). Pure, so the fuzz targets decode exactly as the broker does.
pub fn decode_request(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<RequestKind, RequestError> {
    RequestKind::decode(api, body, version).map_err(|e| RequestError::Malformed {
        api,
        version,
        reason: e.to_string(),
    })
}

/// Decodes and serves one request from the client at `peer`.
pub async fn handle(
    broker: &Arc<Broker>,
    api: ApiKey,
    header: RequestHeader,
    mut body: Bytes,
    peer: SocketAddr,
) -> Result<Reply, RequestError> {
    let version = header.request_api_version;
    let supported =
        supported_versions(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !supported {
        if api == ApiKey::ApiVersions {
            // KIP-511: answer in v0 so any client can read the versions we do have.
            return Ok(Reply::Ready(api_versions::unsupported_version()));
        }
        return Err(RequestError::UnsupportedVersion { api, version });
    }
    let request = decode_request(api, version, &mut body)?;
    let ready = |kind| Ok(Reply::Ready(Response { kind, version }));
    if let Some(kind) = coordinators::not_coordinator(broker, &request, version) {
        return ready(kind);
    }
    match request {
        RequestKind::ApiVersions(_) => ready(api_versions::handle(version)),
        RequestKind::Metadata(req) => ready(metadata::handle(broker, req, version).await),
        RequestKind::Produce(req) => Ok(produce::handle(broker, req, version)),
        RequestKind::Fetch(req) => ready(fetch::handle(broker, req, version).await),
        RequestKind::ListOffsets(req) => ready(list_offsets::handle(broker, req, version)),
        RequestKind::OffsetForLeaderEpoch(req) => {
            ready(offset_for_leader_epoch::handle(broker, req))
        }
        RequestKind::CreateTopics(req) => ready(admin::create_topics(broker, req, version).await),
        RequestKind::DeleteTopics(req) => ready(admin::delete_topics(broker, req, version).await),
        RequestKind::CreatePartitions(req) => {
            ready(admin::create_partitions(broker, req, version).await)
        }
        RequestKind::AlterPartitionReassignments(req) => {
            ready(reassignments::alter(broker, req, version).await)
        }
        RequestKind::ListPartitionReassignments(req) => ready(reassignments::list(broker, req)),
        RequestKind::ElectLeaders(req) => ready(elect_leaders::handle(broker, req, version).await),
        RequestKind::DescribeConfigs(req) => ready(configs::describe(broker, req, version)),
        RequestKind::AlterConfigs(req) => ready(configs::alter(broker, req).await),
        RequestKind::IncrementalAlterConfigs(req) => {
            ready(configs::incremental_alter(broker, req).await)
        }
        RequestKind::DeleteRecords(req) => {
            ready(on_disk_thread(api, broker, move |b| admin::delete_records(b, req)).await?)
        }
        RequestKind::DescribeCluster(req) => ready(cluster::describe_cluster(broker, req)),
        RequestKind::DescribeTopicPartitions(req) => {
            ready(cluster::describe_topic_partitions(broker, req))
        }
        RequestKind::FindCoordinator(req) => ready(groups::find_coordinator(broker, req, version)),
        RequestKind::JoinGroup(req) => {
            let client_id = header.client_id.as_deref().unwrap_or_default();
            let host = format!("/{}", peer.ip());
            ready(groups::join_group(broker, req, client_id, &host, version).await)
        }
        RequestKind::SyncGroup(req) => ready(groups::sync_group(broker, req, version).await),
        RequestKind::Heartbeat(req) => ready(groups::heartbeat(broker, req)),
        RequestKind::LeaveGroup(req) => ready(groups::leave_group(broker, req, version)),
        RequestKind::OffsetCommit(req) => ready(groups::offset_commit(broker, req).await),
        RequestKind::OffsetFetch(req) => ready(groups::offset_fetch(broker, req, version)),
        RequestKind::ListGroups(req) => ready(groups::list_groups(broker, req, version)),
        RequestKind::DescribeGroups(req) => ready(groups::describe_groups(broker, req, version)),
        RequestKind::DeleteGroups(req) => ready(groups::delete_groups(broker, req)),
        RequestKind::OffsetDelete(req) => ready(groups::offset_delete(broker, req)),
        RequestKind::ConsumerGroupHeartbeat(req) => {
            let client_id = header.client_id.as_deref().unwrap_or_default();
            let host = format!("/{}", peer.ip());
            ready(groups::consumer_group_heartbeat(broker, req, client_id, &host, version).await)
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            ready(groups::consumer_group_describe(broker, req))
        }
        RequestKind::DescribeProducers(req) => ready(producer::describe_producers(broker, req)),
        RequestKind::InitProducerId(req) => {
            ready(producer::init_producer_id(broker, req, version).await)
        }
        RequestKind::AddPartitionsToTxn(req) => {
            ready(txn::add_partitions_to_txn(broker, req, version).await)
        }
        RequestKind::AddOffsetsToTxn(req) => {
            ready(txn::add_offsets_to_txn(broker, req, version).await)
        }
        RequestKind::EndTxn(req) => ready(txn::end_txn(broker, req, version).await),
        RequestKind::TxnOffsetCommit(req) => {
            ready(txn::txn_offset_commit(broker, req, version).await)
        }
        RequestKind::DescribeTransactions(req) => {
            ready(txn::describe_transactions(broker, req).await)
        }
        RequestKind::ListTransactions(req) => {
            ready(txn::list_transactions(broker, req, version).await)
        }
        RequestKind::WriteTxnMarkers(req) => ready(txn::write_txn_markers(broker, req).await),
        RequestKind::DescribeQuorum(req) => ready(cluster::describe_quorum(broker, req, version)),
        _ => Err(RequestError::UnsupportedVersion { api, version }),
    }
}

/// Runs a handler that removes files and fsyncs (DeleteRecords) on tokio's
/// blocking pool, so the other connections of this worker thread are not
/// held up meanwhile. The connection still waits for it before reading its
/// next request. (Topic admin opens and removes logs on the blocking pool
/// itself, once the metadata log has the change.)
async fn on_disk_thread(
    api: ApiKey,
    broker: &Arc<Broker>,
    handler: impl FnOnce(&Arc<Broker>) -> ResponseKind + Send + 'static,
) -> Result<ResponseKind, RequestError> {
    let broker = broker.clone();
    match tokio::task::spawn_blocking(move || handler(&broker)).await {
        Ok(kind) => Ok(kind),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(RequestError::Cancelled {
            api,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_versions_are_within_what_the_codec_knows() {
        for &(key, min, max) in SUPPORTED_APIS {
            let known = key.valid_versions();
            assert!(
                known.min <= min && max <= known.max,
                "{key:?} {min}-{max} outside {known:?}"
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::sync::Arc;

    use crate::broker::Broker;
    use crate::config::BrokerConfig;

    /// A broker on `dir` with fsync durability and no initial rebalance delay.
    pub(crate) async fn broker(dir: &std::path::Path) -> Arc<Broker> {
        let config = BrokerConfig {
            overrides: [(
                "group.initial.rebalance.delay.ms".to_string(),
                "0".to_string(),
            )]
            .into(),
            ..crate::broker::tests::config(dir)
        };
        Arc::new(Broker::open(config).await.unwrap())
    }
}

#[cfg(test)]
mod encode_tests {
    //! Every handler's response must encode at every version we advertise:
    //! the codec refuses fields set on versions that lack them.

    use super::test_util::broker;
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;

    fn batch() -> Bytes {
        Bytes::from(crate::log::batch::test_util::batch(1, 1_700_000_000_000))
    }

    fn txn_id(s: &str) -> TransactionalId {
        TransactionalId(StrBytes::from_string(s.to_string()))
    }

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    async fn encodes(broker: &Arc<Broker>, api: ApiKey, version: i16, request: RequestKind) {
        let mut body = bytes::BytesMut::new();
        request
            .encode(&mut body, version)
            .unwrap_or_else(|e| panic!("test request {api:?} v{version} does not encode: {e}"));
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version);
        let peer = "127.0.0.1:1".parse().unwrap();
        let reply = handle(broker, api, header, body.freeze(), peer)
            .await
            .unwrap();
        let response = match reply {
            Reply::Ready(r) => r,
            Reply::Deferred(f) => f.await,
            Reply::None => return,
        };
        let mut out = bytes::BytesMut::new();
        response
            .kind
            .encode(&mut out, response.version)
            .unwrap_or_else(|e| panic!("{api:?} v{version} response does not encode: {e}"));
    }

    #[tokio::test]
    async fn every_advertised_version_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let broker = broker(dir.path()).await;
        let (_shutdown, stopping) = crate::shutdown::Shutdown::new();
        tokio::spawn(broker.groups.clone().run_timers(stopping));
        let topic = broker
            .create_topic("t", 2, 1, Default::default(), false)
            .await
            .unwrap();
        for &(api, min, max) in SUPPORTED_APIS {
            for v in min..=max {
                let by_id = |n: &str| {
                    if v >= 13 {
                        TopicName::default()
                    } else {
                        name(n)
                    }
                };
                let id = if v >= 13 { topic.id } else { uuid::Uuid::nil() };
                let request = match api {
                    ApiKey::ApiVersions => {
                        let mut r = ApiVersionsRequest::default();
                        if v >= 3 {
                            r.client_software_name = StrBytes::from_static_str("test");
                            r.client_software_version = StrBytes::from_static_str("1");
                        }
                        RequestKind::ApiVersions(r)
                    }
                    ApiKey::Metadata => {
                        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                            metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(name("t"))),
                        ])))
                    }
                    ApiKey::Produce => RequestKind::Produce(
                        ProduceRequest::default()
                            .with_acks(-1)
                            .with_topic_data(vec![produce_request::TopicProduceData::default()
                                .with_name(by_id("t"))
                                .with_topic_id(id)
                                .with_partition_data(vec![
                                    produce_request::PartitionProduceData::default()
                                        .with_index(0)
                                        .with_records(Some(batch())),
                                ])]),
                    ),
                    ApiKey::Fetch => RequestKind::Fetch(
                        FetchRequest::default()
                            .with_max_wait_ms(0)
                            .with_max_bytes(1 << 20)
                            .with_topics(vec![fetch_request::FetchTopic::default()
                                .with_topic(by_id("t"))
                                .with_topic_id(id)
                                .with_partitions(vec![fetch_request::FetchPartition::default()
                                    .with_partition(0)
                                    .with_partition_max_bytes(1 << 20)])]),
                    ),
                    ApiKey::ListOffsets => {
                        RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                            list_offsets_request::ListOffsetsTopic::default()
                                .with_name(name("t"))
                                .with_partitions(vec![
                                    list_offsets_request::ListOffsetsPartition::default()
                                        .with_partition_index(0)
                                        .with_timestamp(-1),
                                ]),
                        ]))
                    }
                    ApiKey::CreateTopics => {
                        RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                            create_topics_request::CreatableTopic::default()
                                .with_name(name(&format!("c{v}")))
                                .with_num_partitions(1)
                                .with_replication_factor(1),
                            create_topics_request::CreatableTopic::default()
                                .with_name(name("t"))
                                .with_num_partitions(1)
                                .with_replication_factor(1),
                        ]))
                    }
                    ApiKey::DeleteTopics => {
                        broker
                            .create_topic(&format!("d{v}"), 1, 1, Default::default(), false)
                            .await
                            .unwrap();
                        let mut r = DeleteTopicsRequest::default();
                        if v >= 6 {
                            r.topics = vec![delete_topics_request::DeleteTopicState::default()
                                .with_name(Some(name(&format!("d{v}"))))];
                        } else {
                            r.topic_names = vec![name(&format!("d{v}")), name("missing")];
                        }
                        RequestKind::DeleteTopics(r)
                    }
                    ApiKey::CreatePartitions => RequestKind::CreatePartitions(
                        CreatePartitionsRequest::default().with_topics(vec![
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(name("t"))
                                .with_count(1),
                        ]),
                    ),
                    ApiKey::AlterPartitionReassignments => {
                        RequestKind::AlterPartitionReassignments(
                            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                                alter_partition_reassignments_request::ReassignableTopic::default()
                                    .with_name(name("t"))
                                    .with_partitions(vec![
                                        alter_partition_reassignments_request::ReassignablePartition::default()
                                            .with_partition_index(0)
                                            .with_replicas(Some(vec![BrokerId(1)])),
                                    ]),
                            ]),
                        )
                    }
                    ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(
                        ListPartitionReassignmentsRequest::default(),
                    ),
                    ApiKey::ElectLeaders => {
                        RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(
                            Some(vec![elect_leaders_request::TopicPartitions::default()
                                .with_topic(name("t"))
                                .with_partitions(vec![0, 1])]),
                        ))
                    }
                    ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(
                        DescribeConfigsRequest::default()
                            .with_include_synonyms(true)
                            .with_resources(vec![
                                describe_configs_request::DescribeConfigsResource::default()
                                    .with_resource_type(2)
                                    .with_resource_name(StrBytes::from_static_str("t")),
                                describe_configs_request::DescribeConfigsResource::default()
                                    .with_resource_type(4)
                                    .with_resource_name(StrBytes::from_static_str("1")),
                            ]),
                    ),
                    ApiKey::AlterConfigs => {
                        RequestKind::AlterConfigs(AlterConfigsRequest::default().with_resources(
                            vec![
                            alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("t"))
                                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                                    .with_name(StrBytes::from_static_str("retention.ms"))
                                    .with_value(Some(StrBytes::from_static_str("-2")))]),
                            alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(4)
                                .with_resource_name(StrBytes::from_static_str("1")),
                        ],
                        ))
                    }
                    ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(
                        IncrementalAlterConfigsRequest::default().with_resources(vec![
                            incremental_alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(StrBytes::from_static_str("t"))
                                .with_configs(vec![
                                    incremental_alter_configs_request::AlterableConfig::default()
                                        .with_name(StrBytes::from_static_str("retention.ms"))
                                        .with_config_operation(0)
                                        .with_value(Some(StrBytes::from_static_str("86400000"))),
                                ]),
                        ]),
                    ),
                    ApiKey::DeleteRecords => RequestKind::DeleteRecords(
                        DeleteRecordsRequest::default().with_topics(vec![
                            delete_records_request::DeleteRecordsTopic::default()
                                .with_name(name("t"))
                                .with_partitions(vec![
                                    delete_records_request::DeleteRecordsPartition::default()
                                        .with_partition_index(0)
                                        .with_offset(-1),
                                    delete_records_request::DeleteRecordsPartition::default()
                                        .with_partition_index(7)
                                        .with_offset(0),
                                ]),
                        ]),
                    ),
                    ApiKey::DescribeCluster => {
                        RequestKind::DescribeCluster(DescribeClusterRequest::default())
                    }
                    ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
                        DescribeTopicPartitionsRequest::default().with_response_partition_limit(1),
                    ),
                    ApiKey::FindCoordinator => {
                        let mut r = FindCoordinatorRequest::default();
                        if v >= 4 {
                            r.coordinator_keys = vec![StrBytes::from_static_str("g")];
                        } else {
                            r.key = StrBytes::from_static_str("g");
                        }
                        RequestKind::FindCoordinator(r)
                    }
                    ApiKey::JoinGroup => RequestKind::JoinGroup(
                        JoinGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_string(format!("j{v}"))))
                            .with_session_timeout_ms(10_000)
                            .with_rebalance_timeout_ms(10_000)
                            .with_protocol_type(StrBytes::from_static_str("consumer"))
                            .with_protocols(vec![
                                join_group_request::JoinGroupRequestProtocol::default()
                                    .with_name(StrBytes::from_static_str("range"))
                                    .with_metadata(Bytes::from_static(b"m")),
                            ]),
                    ),
                    ApiKey::SyncGroup => RequestKind::SyncGroup(
                        SyncGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("j0")))
                            .with_member_id(StrBytes::from_static_str("nobody")),
                    ),
                    ApiKey::Heartbeat => RequestKind::Heartbeat(
                        HeartbeatRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("j0"))),
                    ),
                    ApiKey::LeaveGroup => {
                        let mut r = LeaveGroupRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("j0")));
                        if v >= 3 {
                            r.members = vec![leave_group_request::MemberIdentity::default()
                                .with_member_id(StrBytes::from_static_str("nobody"))];
                        } else {
                            r.member_id = StrBytes::from_static_str("nobody");
                        }
                        RequestKind::LeaveGroup(r)
                    }
                    ApiKey::OffsetCommit => RequestKind::OffsetCommit(
                        OffsetCommitRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                            .with_generation_id_or_member_epoch(-1)
                            .with_topics(vec![
                                offset_commit_request::OffsetCommitRequestTopic::default()
                                    .with_name(name("t"))
                                    .with_partitions(vec![
                                    offset_commit_request::OffsetCommitRequestPartition::default()
                                        .with_partition_index(0)
                                        .with_committed_offset(5),
                                ]),
                            ]),
                    ),
                    ApiKey::OffsetFetch => {
                        let mut r = OffsetFetchRequest::default();
                        if v >= 8 {
                            r.groups =
                                vec![offset_fetch_request::OffsetFetchRequestGroup::default()
                                    .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                                    .with_topics(None)];
                        } else {
                            r.group_id = GroupId(StrBytes::from_static_str("simple"));
                            r.topics = Some(vec![
                                offset_fetch_request::OffsetFetchRequestTopic::default()
                                    .with_name(name("t"))
                                    .with_partition_indexes(vec![0, 1]),
                            ]);
                        }
                        RequestKind::OffsetFetch(r)
                    }
                    ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
                    ApiKey::DescribeGroups => RequestKind::DescribeGroups(
                        DescribeGroupsRequest::default().with_groups(vec![
                            GroupId(StrBytes::from_static_str("simple")),
                            GroupId(StrBytes::from_static_str("missing")),
                        ]),
                    ),
                    ApiKey::DeleteGroups => RequestKind::DeleteGroups(
                        DeleteGroupsRequest::default()
                            .with_groups_names(vec![GroupId(StrBytes::from_static_str("missing"))]),
                    ),
                    ApiKey::OffsetDelete => RequestKind::OffsetDelete(
                        OffsetDeleteRequest::default()
                            .with_group_id(GroupId(StrBytes::from_static_str("simple")))
                            .with_topics(vec![
                                offset_delete_request::OffsetDeleteRequestTopic::default()
                                    .with_name(name("t"))
                                    .with_partitions(vec![
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(1),
                                ]),
                            ]),
                    ),
                    ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(
                        ConsumerGroupHeartbeatRequest::default()
                            .with_group_id(GroupId(StrBytes::from_string(format!("k{v}"))))
                            .with_member_id(StrBytes::from_string(format!("member-{v}")))
                            .with_member_epoch(0)
                            .with_rebalance_timeout_ms(30_000)
                            .with_subscribed_topic_names(Some(vec![name("t")]))
                            .with_topic_partitions(Some(vec![])),
                    ),
                    ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(
                        ConsumerGroupDescribeRequest::default().with_group_ids(vec![
                            GroupId(StrBytes::from_static_str("k1")),
                            GroupId(StrBytes::from_static_str("simple")),
                        ]),
                    ),
                    ApiKey::InitProducerId => {
                        let mut r =
                            InitProducerIdRequest::default().with_transaction_timeout_ms(60_000);
                        if v % 2 == 1 {
                            r.transactional_id = Some(TransactionalId(StrBytes::from_string(
                                format!("tx{v}"),
                            )));
                        }
                        RequestKind::InitProducerId(r)
                    }
                    ApiKey::AddPartitionsToTxn => {
                        let topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                            .with_name(name("t"))
                            .with_partitions(vec![0, 9]);
                        let mut r = AddPartitionsToTxnRequest::default();
                        if v >= 4 {
                            r.transactions = vec![
                                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                                    .with_transactional_id(txn_id("tx1"))
                                    .with_verify_only(true)
                                    .with_topics(vec![topic]),
                            ];
                        } else {
                            r.v3_and_below_transactional_id = txn_id("tx1");
                            r.v3_and_below_topics = vec![topic];
                        }
                        RequestKind::AddPartitionsToTxn(r)
                    }
                    ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(
                        AddOffsetsToTxnRequest::default()
                            .with_transactional_id(txn_id("missing"))
                            .with_group_id(GroupId(StrBytes::from_static_str("g"))),
                    ),
                    ApiKey::EndTxn => RequestKind::EndTxn(
                        EndTxnRequest::default()
                            .with_transactional_id(txn_id("tx1"))
                            .with_committed(true),
                    ),
                    ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(
                        TxnOffsetCommitRequest::default()
                            .with_transactional_id(txn_id("tx1"))
                            .with_group_id(GroupId(StrBytes::from_static_str("g")))
                            .with_generation_id(-1)
                            .with_topics(vec![
                                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                                    .with_name(name("t"))
                                    .with_partitions(vec![
                                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                            .with_partition_index(0)
                                            .with_committed_offset(1),
                                    ]),
                            ]),
                    ),
                    ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
                        DescribeTransactionsRequest::default()
                            .with_transactional_ids(vec![txn_id("tx1"), txn_id("missing")]),
                    ),
                    ApiKey::ListTransactions => RequestKind::ListTransactions(
                        ListTransactionsRequest::default()
                            .with_state_filters(vec![StrBytes::from_static_str("Nope")]),
                    ),
                    ApiKey::DescribeProducers => RequestKind::DescribeProducers(
                        DescribeProducersRequest::default().with_topics(vec![
                            describe_producers_request::TopicRequest::default()
                                .with_name(name("t"))
                                .with_partition_indexes(vec![0, 9]),
                        ]),
                    ),
                    ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(
                        WriteTxnMarkersRequest::default().with_markers(vec![
                            write_txn_markers_request::WritableTxnMarker::default()
                                .with_producer_id(ProducerId(7))
                                .with_topics(vec![
                                    write_txn_markers_request::WritableTxnMarkerTopic::default()
                                        .with_name(name("t"))
                                        .with_partition_indexes(vec![0, 9]),
                                ]),
                        ]),
                    ),
                    ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(
                        DescribeQuorumRequest::default().with_topics(vec![
                            describe_quorum_request::TopicData::default()
                                .with_topic_name(name("__cluster_metadata"))
                                .with_partitions(vec![
                                    describe_quorum_request::PartitionData::default(),
                                    describe_quorum_request::PartitionData::default()
                                        .with_partition_index(1),
                                ]),
                        ]),
                    ),
                    ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
                        OffsetForLeaderEpochRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(vec![
                                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                                    .with_topic(name("t"))
                                    .with_partitions(vec![
                                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                            .with_partition(0)
                                            .with_current_leader_epoch(-1)
                                            .with_leader_epoch(0),
                                        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                                            .with_partition(9),
                                    ]),
                            ]),
                    ),
                    other => panic!("no test request for {other:?}"),
                };
                encodes(&broker, api, v, request).await;
            }
        }
    }
}
