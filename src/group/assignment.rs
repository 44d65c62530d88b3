//! Reading the consumer protocol's embedded subscription (the metadata a
//! "consumer" group member sends in JoinGroup), where the broker needs it.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// The topics a consumer member subscribes to; empty if the metadata is not
/// a readable consumer subscription.
pub fn subscribed_topics(metadata: &Bytes) -> Vec<String> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16();
    // Versions beyond what we know are read as the newest we know, as Kafka does.
    let version = version.clamp(0, 3);
    match ConsumerProtocolSubscription::decode(&mut buf, version) {
        Ok(sub) => sub.topics.iter().map(|t| t.to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_the_topics_of_a_consumer_subscription() {
        let sub = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("orders"),
            StrBytes::from_static_str("payments"),
        ]);
        let mut buf = BytesMut::new();
        buf.put_i16(1);
        sub.encode(&mut buf, 1).unwrap();
        assert_eq!(subscribed_topics(&buf.freeze()), vec!["orders", "payments"]);
        assert!(subscribed_topics(&Bytes::from_static(&[0, 1, 0xff])).is_empty());
    }
}
