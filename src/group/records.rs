//! The record formats of `__consumer_offsets`, byte-compatible with Kafka's
//! (OffsetCommitKey v1 / OffsetCommitValue v3, GroupMetadataKey v2 /
//! GroupMetadataValue v3, and the keys of the KIP-848 consumer group's
//! records, types 3–8, whose values are in `consumer_records.rs`), so Kafka's
//! tools can read the topic. A key starts with an int16 that Kafka 4.x calls
//! the record type (older versions: the key version); the numbers are the same.
//!
//! These are Kafka's internal coordinator schemas, which the wire-protocol
//! crate does not generate. Decoding treats the bytes as untrusted: every
//! length is checked against what remains before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::classic::{GroupSnapshot, MemberSnapshot};

/// A key in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// Key versions 0 and 1: a committed offset.
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    /// Key version 2: a group's membership and generation.
    Group { group: String },
    /// Type 3: a KIP-848 group's epoch (ConsumerGroupMetadataKey).
    ConsumerGroup { group: String },
    /// Type 4: subscription metadata (written by Kafka 4.0 only; ignored).
    ConsumerGroupPartitionMetadata { group: String },
    /// Type 5: a member's subscription (ConsumerGroupMemberMetadataKey).
    ConsumerGroupMember { group: String, member: String },
    /// Type 6: the target assignment's epoch.
    ConsumerGroupTargetAssignment { group: String },
    /// Type 7: a member's target assignment.
    ConsumerGroupTargetAssignmentMember { group: String, member: String },
    /// Type 8: a member's epoch and current assignment.
    ConsumerGroupCurrentAssignment { group: String, member: String },
}

/// A committed offset as stored (OffsetCommitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// Why a stored record could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

fn err<T>(what: &str) -> Result<T, RecordError> {
    Err(RecordError(what.to_string()))
}

pub fn encode_key(key: &RecordKey) -> Bytes {
    let mut b = BytesMut::new();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            b.put_i16(1);
            put_str(&mut b, group);
            put_str(&mut b, topic);
            b.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            b.put_i16(2);
            put_str(&mut b, group);
        }
        RecordKey::ConsumerGroup { group } => {
            b.put_i16(3);
            put_str(&mut b, group);
        }
        RecordKey::ConsumerGroupPartitionMetadata { group } => {
            b.put_i16(4);
            put_str(&mut b, group);
        }
        RecordKey::ConsumerGroupMember { group, member } => {
            b.put_i16(5);
            put_str(&mut b, group);
            put_str(&mut b, member);
        }
        RecordKey::ConsumerGroupTargetAssignment { group } => {
            b.put_i16(6);
            put_str(&mut b, group);
        }
        RecordKey::ConsumerGroupTargetAssignmentMember { group, member } => {
            b.put_i16(7);
            put_str(&mut b, group);
            put_str(&mut b, member);
        }
        RecordKey::ConsumerGroupCurrentAssignment { group, member } => {
            b.put_i16(8);
            put_str(&mut b, group);
            put_str(&mut b, member);
        }
    }
    b.freeze()
}

pub fn decode_key(mut b: &[u8]) -> Result<RecordKey, RecordError> {
    match get_i16(&mut b)? {
        0 | 1 => Ok(RecordKey::Offset {
            group: get_str(&mut b)?,
            topic: get_str(&mut b)?,
            partition: get_i32(&mut b)?,
        }),
        2 => Ok(RecordKey::Group {
            group: get_str(&mut b)?,
        }),
        3 => Ok(RecordKey::ConsumerGroup {
            group: get_str(&mut b)?,
        }),
        4 => Ok(RecordKey::ConsumerGroupPartitionMetadata {
            group: get_str(&mut b)?,
        }),
        5 => Ok(RecordKey::ConsumerGroupMember {
            group: get_str(&mut b)?,
            member: get_str(&mut b)?,
        }),
        6 => Ok(RecordKey::ConsumerGroupTargetAssignment {
            group: get_str(&mut b)?,
        }),
        7 => Ok(RecordKey::ConsumerGroupTargetAssignmentMember {
            group: get_str(&mut b)?,
            member: get_str(&mut b)?,
        }),
        8 => Ok(RecordKey::ConsumerGroupCurrentAssignment {
            group: get_str(&mut b)?,
            member: get_str(&mut b)?,
        }),
        v => err(&format!("unknown key version {v}")),
    }
}

pub fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_str(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp);
    b.freeze()
}

pub fn decode_offset(mut b: &[u8]) -> Result<OffsetValue, RecordError> {
    let version = get_i16(&mut b)?;
    if !(0..=3).contains(&version) {
        return err(&format!("unsupported offset value version {version}"));
    }
    let offset = get_i64(&mut b)?;
    let leader_epoch = if version >= 3 { get_i32(&mut b)? } else { -1 };
    let metadata = get_str(&mut b)?;
    let commit_timestamp = get_i64(&mut b)?;
    if version == 1 {
        get_i64(&mut b)?; // expire timestamp, unused since KIP-211
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

pub fn encode_group(s: &GroupSnapshot) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(3);
    put_str(&mut b, &s.protocol_type);
    b.put_i32(s.generation_id);
    put_nullable_str(&mut b, s.protocol.as_deref());
    put_nullable_str(&mut b, s.leader.as_deref());
    b.put_i64(s.state_timestamp_ms);
    b.put_i32(s.members.len() as i32);
    for m in &s.members {
        put_str(&mut b, &m.member_id);
        put_nullable_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

pub fn decode_group(mut b: &[u8]) -> Result<GroupSnapshot, RecordError> {
    let version = get_i16(&mut b)?;
    if !(0..=3).contains(&version) {
        return err(&format!("unsupported group value version {version}"));
    }
    let protocol_type = get_str(&mut b)?;
    let generation_id = get_i32(&mut b)?;
    let protocol = get_nullable_str(&mut b)?;
    let leader = get_nullable_str(&mut b)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut b)? } else { -1 };
    let count = get_i32(&mut b)?;
    // Each member takes at least 22 bytes; a count beyond that is corrupt.
    if count < 0 || count as usize > b.remaining() / 22 {
        return err(&format!("member count {count}"));
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = get_str(&mut b)?;
        let group_instance_id = if version >= 3 {
            get_nullable_str(&mut b)?
        } else {
            None
        };
        let client_id = get_str(&mut b)?;
        let client_host = get_str(&mut b)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut b)? } else { -1 };
        let session_timeout_ms = get_i32(&mut b)?;
        let subscription = get_bytes(&mut b)?;
        let assignment = get_bytes(&mut b)?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 {
            session_timeout_ms
        } else {
            rebalance_timeout_ms
        };
        members.push(MemberSnapshot {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupSnapshot {
        protocol_type,
        generation_id,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    b.put_i16(len as i16);
    b.put_slice(&s.as_bytes()[..len]);
}

fn put_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

fn get_i16(b: &mut &[u8]) -> Result<i16, RecordError> {
    b.try_get_i16().or_else(|_| err("truncated int16"))
}

fn get_i32(b: &mut &[u8]) -> Result<i32, RecordError> {
    b.try_get_i32().or_else(|_| err("truncated int32"))
}

fn get_i64(b: &mut &[u8]) -> Result<i64, RecordError> {
    b.try_get_i64().or_else(|_| err("truncated int64"))
}

fn take<'a>(b: &mut &'a [u8], len: usize) -> Result<&'a [u8], RecordError> {
    if b.len() < len {
        return err("length past the end of the record");
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Ok(head)
}

fn get_nullable_str(b: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let len = get_i16(b)?;
    if len < 0 {
        return Ok(None);
    }
    let raw = take(b, len as usize)?;
    String::from_utf8(raw.to_vec())
        .map(Some)
        .or_else(|_| err("string is not UTF-8"))
}

fn get_str(b: &mut &[u8]) -> Result<String, RecordError> {
    get_nullable_str(b)?.map_or_else(|| err("null string"), Ok)
}

fn get_bytes(b: &mut &[u8]) -> Result<Bytes, RecordError> {
    let len = get_i32(b)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    Ok(Bytes::copy_from_slice(take(b, len as usize)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_and_value_match_kafkas_bytes() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let k = encode_key(&key);
        assert_eq!(&k[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        assert_eq!(decode_key(&k).unwrap(), key);
        let value = OffsetValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        let v = encode_offset(&value);
        assert_eq!(v.len(), 2 + 8 + 4 + 3 + 8);
        assert_eq!(&v[..2], &[0, 3]);
        assert_eq!(decode_offset(&v).unwrap(), value);
    }

    #[test]
    fn group_value_round_trips() {
        let snapshot = GroupSnapshot {
            protocol_type: "consumer".into(),
            generation_id: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp_ms: 99,
            members: vec![MemberSnapshot {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
        assert_eq!(decode_group(&encode_group(&snapshot)).unwrap(), snapshot);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(decode_key(&[]).is_err());
        assert!(decode_key(&[0, 9]).is_err());
        assert!(decode_key(&[0, 1, 0x7f, 0xff, b'x']).is_err());
        assert!(decode_offset(&[0, 3, 0, 0]).is_err());
        // A member count far beyond the bytes present.
        let mut b = BytesMut::new();
        b.put_i16(3);
        put_str(&mut b, "consumer");
        b.put_i32(1);
        b.put_i16(-1);
        b.put_i16(-1);
        b.put_i64(0);
        b.put_i32(i32::MAX);
        assert!(decode_group(&b).is_err());
    }
}
