//! The request header at the front of every request frame: api key and
//! version, then the header proper (correlation id, client id, tagged fields)
//! in the header version that api key and version call for.
//!
//! Pure: bytes in, header out; it never reads the body after the header.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// Decodes the header at the front of `frame`, leaving `frame` at the start
/// of the request body. The error says why, for the connection's log line.
pub fn decode_request_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), String> {
    if frame.len() < 4 {
        return Err(format!(
            "{} bytes is too short for a request header",
            frame.len()
        ));
    }
    let key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let api_key = ApiKey::try_from(key).map_err(|_| format!("unknown api key {key}"))?;
    let header = RequestHeader::decode(frame, api_key.request_header_version(version))
        .map_err(|e| format!("malformed {api_key:?} v{version} request header: {e}"))?;
    Ok((api_key, header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn header_is_decoded_and_the_body_is_left() {
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Metadata as i16)
            .with_request_api_version(12)
            .with_correlation_id(7)
            .with_client_id(Some("c".into()));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, ApiKey::Metadata.request_header_version(12))
            .unwrap();
        buf.put_slice(b"body");
        let mut frame = buf.freeze();
        let (key, decoded) = decode_request_header(&mut frame).unwrap();
        assert_eq!(key, ApiKey::Metadata);
        assert_eq!(decoded, header);
        assert_eq!(&frame[..], b"body");
    }

    #[test]
    fn short_or_unknown_headers_are_errors() {
        let mut short = Bytes::from_static(&[0, 3, 0]);
        assert_eq!(
            decode_request_header(&mut short).unwrap_err(),
            "3 bytes is too short for a request header"
        );
        let mut unknown = Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!(
            decode_request_header(&mut unknown).unwrap_err(),
            "unknown api key 32512"
        );
        // Metadata v12 (flexible header) cut inside the client id.
        let mut cut = Bytes::from_static(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 9, b'a']);
        assert!(decode_request_header(&mut cut)
            .unwrap_err()
            .starts_with("malformed Metadata v12 request header"));
    }
}
