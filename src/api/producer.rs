//! InitProducerId: a producer id and epoch for an idempotent producer (no
//! transactional id) or, through the transaction coordinator (`txn/`), for a
//! transactional id.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

use crate::broker::Broker;
use crate::txn::metadata::fenced_for_version;

pub async fn init_producer_id(
    broker: &Arc<Broker>,
    req: InitProducerIdRequest,
    version: i16,
) -> ResponseKind {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(id) = &req.transactional_id {
        if id.is_empty() {
            return ResponseKind::InitProducerId(
                response.with_error_code(ResponseError::InvalidRequest.code()),
            );
        }
        // KIP-360: both the producer id and epoch, or neither.
        let expected = match (req.producer_id.0, req.producer_epoch) {
            (-1, -1) => None,
            (id, epoch) if id >= 0 && epoch >= 0 => Some((id, epoch)),
            _ => {
                return ResponseKind::InitProducerId(
                    response.with_error_code(ResponseError::InvalidRequest.code()),
                )
            }
        };
        let answer = broker
            .txns
            .init_producer_id(broker, id, req.transaction_timeout_ms, expected)
            .await;
        let response = match answer {
            Ok((id, epoch)) => response
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(code) => response.with_error_code(fenced_for_version(code, version, 4)),
        };
        return ResponseKind::InitProducerId(response);
    }
    // Kafka gives an idempotent producer a fresh id (epoch 0) on every call,
    // also when it names its previous id and epoch (KIP-360).
    let response = match broker.allocate_producer_id() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "could not allocate a producer id");
            response.with_error_code(ResponseError::UnknownServerError.code())
        }
    };
    ResponseKind::InitProducerId(response)
}
