//! ApiVersions: the table of APIs and versions this broker handles.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsResponse, ResponseKind};

use super::{Response, SUPPORTED_APIS};
use kafka_protocol::error::ResponseError;

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect()
}

pub fn handle(version: i16) -> ResponseKind {
    let mut response = ApiVersionsResponse::default().with_api_keys(api_keys());
    if version >= 3 {
        response.finalized_features_epoch = -1;
    }
    ResponseKind::ApiVersions(response)
}

/// KIP-511: a request at a version we do not know gets a v0 response with
/// UNSUPPORTED_VERSION and our table, so the client can pick a version.
pub fn unsupported_version() -> Response {
    let response = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_keys());
    Response {
        kind: ResponseKind::ApiVersions(response),
        version: 0,
    }
}
