//! InitProducerId: a producer id and epoch for an idempotent producer (no
//! transactional id). Transactional ids are the transaction coordinator's.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};

use crate::broker::Broker;

pub fn init_producer_id(
    broker: &Arc<Broker>,
    req: InitProducerIdRequest,
    _version: i16,
) -> ResponseKind {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return ResponseKind::InitProducerId(
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
        );
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
