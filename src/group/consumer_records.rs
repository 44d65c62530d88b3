//! The KIP-848 consumer group's records in `__consumer_offsets`, byte-compatible
//! with Kafka 4.x's: the values of record types 3 (ConsumerGroupMetadata: the
//! group epoch), 5 (ConsumerGroupMemberMetadata), 6 and 7 (the target
//! assignment's epoch and each member's target) and 8
//! (ConsumerGroupCurrentMemberAssignment), each an int16 value version (0)
//! followed by Kafka's flexible encoding; the keys live in `records.rs`. Also
//! the image these records describe, the records that turn one image into the
//! next, and the fold of replayed records back into an image.
//!
//! Type 4 (ConsumerGroupPartitionMetadata) is not written, as Kafka 4.1+ no
//! longer writes it (its topic hash lives in a tagged field of type 3's value,
//! which Kafka reads as 0 when absent, and then recomputes); it is read and
//! ignored. Decoding treats the bytes as untrusted: every length is checked
//! against what remains before anything is allocated; unknown tagged fields
//! are skipped, as Kafka's readers do.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::consumer::Assignment;
use super::records::{encode_key, RecordError, RecordKey};

/// A member's subscription and client details (ConsumerGroupMemberMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Sorted, as Kafka writes them.
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// Kafka's `MemberState` values in ConsumerGroupCurrentMemberAssignmentValue.
pub mod member_state {
    pub const STABLE: i8 = 0;
    pub const UNREVOKED_PARTITIONS: i8 = 1;
    pub const UNRELEASED_PARTITIONS: i8 = 2;
}

/// Where a member stands (ConsumerGroupCurrentMemberAssignmentValue).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// One of [`member_state`].
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// Everything a KIP-848 group persists: what `ConsumerGroup::image` gives
/// and `ConsumerGroup::restore` takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupImage {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, MemberMetadata>,
    pub targets: BTreeMap<String, Assignment>,
    pub current: BTreeMap<String, CurrentAssignment>,
}

/// A record as written: key and value (None for a tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// The records that turn `old` into `new` for `group`, in Kafka's order
/// (tombstones of departed members, member metadata, group epoch, target
/// assignment and its epoch, current assignments). `new` None deletes the
/// group: tombstones for everything `old` holds.
pub fn records_between(
    group: &str,
    old: &ConsumerGroupImage,
    new: Option<&ConsumerGroupImage>,
) -> Vec<KeyValue> {
    let g = || group.to_string();
    let key_member = |member: &str| RecordKey::ConsumerGroupMember {
        group: g(),
        member: member.to_string(),
    };
    let key_target = |member: &str| RecordKey::ConsumerGroupTargetAssignmentMember {
        group: g(),
        member: member.to_string(),
    };
    let key_current = |member: &str| RecordKey::ConsumerGroupCurrentAssignment {
        group: g(),
        member: member.to_string(),
    };
    let empty = ConsumerGroupImage::default();
    let target_image = new.unwrap_or(&empty);
    let mut out: Vec<KeyValue> = Vec::new();
    // Departed members: current assignment, target, then metadata.
    for id in old.current.keys() {
        if !target_image.current.contains_key(id) {
            out.push((encode_key(&key_current(id)), None));
        }
    }
    for id in old.targets.keys() {
        if !target_image.targets.contains_key(id) {
            out.push((encode_key(&key_target(id)), None));
        }
    }
    for id in old.members.keys() {
        if !target_image.members.contains_key(id) {
            out.push((encode_key(&key_member(id)), None));
        }
    }
    let Some(new) = new else {
        out.push((
            encode_key(&RecordKey::ConsumerGroupTargetAssignment { group: g() }),
            None,
        ));
        out.push((encode_key(&RecordKey::ConsumerGroup { group: g() }), None));
        return out;
    };
    for (id, m) in &new.members {
        if old.members.get(id) != Some(m) {
            out.push((encode_key(&key_member(id)), Some(encode_member(m))));
        }
    }
    let fresh = old == &empty;
    if fresh || old.group_epoch != new.group_epoch {
        out.push((
            encode_key(&RecordKey::ConsumerGroup { group: g() }),
            Some(encode_epoch(new.group_epoch)),
        ));
    }
    for (id, t) in &new.targets {
        if old.targets.get(id) != Some(t) {
            out.push((encode_key(&key_target(id)), Some(encode_target(t))));
        }
    }
    if fresh || old.assignment_epoch != new.assignment_epoch {
        out.push((
            encode_key(&RecordKey::ConsumerGroupTargetAssignment { group: g() }),
            Some(encode_epoch(new.assignment_epoch)),
        ));
    }
    for (id, c) in &new.current {
        if old.current.get(id) != Some(c) {
            out.push((encode_key(&key_current(id)), Some(encode_current(c))));
        }
    }
    out
}

/// Folds one replayed consumer-group record into `groups`. Returns false if
/// the key is not a consumer-group key.
pub fn apply(
    groups: &mut BTreeMap<String, ConsumerGroupImage>,
    key: &RecordKey,
    value: Option<&[u8]>,
) -> Result<bool, RecordError> {
    match key {
        RecordKey::ConsumerGroup { group } => match value {
            Some(v) => groups.entry(group.clone()).or_default().group_epoch = decode_epoch(v)?,
            None => {
                groups.remove(group);
            }
        },
        RecordKey::ConsumerGroupPartitionMetadata { .. } => {}
        RecordKey::ConsumerGroupMember { group, member } => {
            let image = groups.entry(group.clone()).or_default();
            match value {
                Some(v) => {
                    image.members.insert(member.clone(), decode_member(v)?);
                }
                None => {
                    image.members.remove(member);
                }
            }
        }
        RecordKey::ConsumerGroupTargetAssignment { group } => {
            let image = groups.entry(group.clone()).or_default();
            image.assignment_epoch = match value {
                Some(v) => decode_epoch(v)?,
                None => 0,
            };
        }
        RecordKey::ConsumerGroupTargetAssignmentMember { group, member } => {
            let image = groups.entry(group.clone()).or_default();
            match value {
                Some(v) => {
                    image.targets.insert(member.clone(), decode_target(v)?);
                }
                None => {
                    image.targets.remove(member);
                }
            }
        }
        RecordKey::ConsumerGroupCurrentAssignment { group, member } => {
            let image = groups.entry(group.clone()).or_default();
            match value {
                Some(v) => {
                    image.current.insert(member.clone(), decode_current(v)?);
                }
                None => {
                    image.current.remove(member);
                }
            }
        }
        RecordKey::Offset { .. } | RecordKey::Group { .. } => return Ok(false),
    }
    Ok(true)
}

// ------------------------------------------------------------------ values

/// ConsumerGroupMetadataValue and ConsumerGroupTargetAssignmentMetadataValue:
/// one int32 epoch.
pub fn encode_epoch(epoch: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(epoch);
    put_no_tags(&mut b);
    b.freeze()
}

pub fn decode_epoch(mut b: &[u8]) -> Result<i32, RecordError> {
    value_version(&mut b)?;
    let epoch = get_i32(&mut b)?;
    skip_tags(&mut b)?;
    Ok(epoch)
}

pub fn encode_member(m: &MemberMetadata) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_compact_nullable_str(&mut b, m.instance_id.as_deref());
    put_compact_nullable_str(&mut b, m.rack_id.as_deref());
    put_compact_str(&mut b, &m.client_id);
    put_compact_str(&mut b, &m.client_host);
    put_uvarint(&mut b, m.subscribed_topic_names.len() as u64 + 1);
    for t in &m.subscribed_topic_names {
        put_compact_str(&mut b, t);
    }
    put_compact_nullable_str(&mut b, m.subscribed_topic_regex.as_deref());
    b.put_i32(m.rebalance_timeout_ms);
    put_compact_nullable_str(&mut b, m.server_assignor.as_deref());
    // ClassicMemberMetadata (tag 0) is null for consumer-protocol members.
    put_no_tags(&mut b);
    b.freeze()
}

pub fn decode_member(mut b: &[u8]) -> Result<MemberMetadata, RecordError> {
    value_version(&mut b)?;
    let instance_id = get_compact_nullable_str(&mut b)?;
    let rack_id = get_compact_nullable_str(&mut b)?;
    let client_id = get_compact_str(&mut b)?;
    let client_host = get_compact_str(&mut b)?;
    // Each name takes at least one byte.
    let count = get_compact_len(&mut b, 1)?;
    let mut subscribed_topic_names = Vec::with_capacity(count);
    for _ in 0..count {
        subscribed_topic_names.push(get_compact_str(&mut b)?);
    }
    let subscribed_topic_regex = get_compact_nullable_str(&mut b)?;
    let rebalance_timeout_ms = get_i32(&mut b)?;
    let server_assignor = get_compact_nullable_str(&mut b)?;
    skip_tags(&mut b)?;
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
    })
}

/// ConsumerGroupTargetAssignmentMemberValue: the member's target partitions.
pub fn encode_target(a: &Assignment) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    put_topic_partitions(&mut b, a);
    put_no_tags(&mut b);
    b.freeze()
}

pub fn decode_target(mut b: &[u8]) -> Result<Assignment, RecordError> {
    value_version(&mut b)?;
    let a = get_topic_partitions(&mut b)?;
    skip_tags(&mut b)?;
    Ok(a)
}

pub fn encode_current(c: &CurrentAssignment) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(c.member_epoch);
    b.put_i32(c.previous_member_epoch);
    b.put_i8(c.state);
    put_topic_partitions(&mut b, &c.assigned);
    put_topic_partitions(&mut b, &c.pending_revocation);
    put_no_tags(&mut b);
    b.freeze()
}

pub fn decode_current(mut b: &[u8]) -> Result<CurrentAssignment, RecordError> {
    value_version(&mut b)?;
    let member_epoch = get_i32(&mut b)?;
    let previous_member_epoch = get_i32(&mut b)?;
    let state = b.try_get_i8().or_else(|_| err("truncated int8"))?;
    let assigned = get_topic_partitions(&mut b)?;
    let pending_revocation = get_topic_partitions(&mut b)?;
    skip_tags(&mut b)?;
    Ok(CurrentAssignment {
        member_epoch,
        previous_member_epoch,
        state,
        assigned,
        pending_revocation,
    })
}

// ------------------------------------------------------------------ flexible encoding

fn err<T>(what: &str) -> Result<T, RecordError> {
    Err(RecordError(what.to_string()))
}

fn value_version(b: &mut &[u8]) -> Result<(), RecordError> {
    match b.try_get_i16() {
        Ok(0) => Ok(()),
        Ok(v) => err(&format!("unsupported consumer group value version {v}")),
        Err(_) => err("truncated value version"),
    }
}

fn get_i32(b: &mut &[u8]) -> Result<i32, RecordError> {
    b.try_get_i32().or_else(|_| err("truncated int32"))
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn get_uvarint(b: &mut &[u8]) -> Result<u64, RecordError> {
    let mut v: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = b.try_get_u8().or_else(|_| err("truncated varint"))?;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    err("varint longer than 5 bytes")
}

/// An empty tagged-field section.
fn put_no_tags(b: &mut BytesMut) {
    put_uvarint(b, 0);
}

/// Skips a tagged-field section (tags this reader does not use).
fn skip_tags(b: &mut &[u8]) -> Result<(), RecordError> {
    let count = get_uvarint(b)?;
    for _ in 0..count {
        get_uvarint(b)?;
        let len = get_uvarint(b)?;
        take(b, len)?;
    }
    Ok(())
}

fn take<'a>(b: &mut &'a [u8], len: u64) -> Result<&'a [u8], RecordError> {
    let len = usize::try_from(len).or_else(|_| err("length past the end of the record"))?;
    if b.len() < len {
        return err("length past the end of the record");
    }
    let (head, tail) = b.split_at(len);
    *b = tail;
    Ok(head)
}

fn put_compact_str(b: &mut BytesMut, s: &str) {
    put_uvarint(b, s.len() as u64 + 1);
    b.put_slice(s.as_bytes());
}

fn put_compact_nullable_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_str(b, s),
        None => put_uvarint(b, 0),
    }
}

fn get_compact_nullable_str(b: &mut &[u8]) -> Result<Option<String>, RecordError> {
    let len = get_uvarint(b)?;
    if len == 0 {
        return Ok(None);
    }
    let raw = take(b, len - 1)?;
    String::from_utf8(raw.to_vec())
        .map(Some)
        .or_else(|_| err("string is not UTF-8"))
}

fn get_compact_str(b: &mut &[u8]) -> Result<String, RecordError> {
    get_compact_nullable_str(b)?.map_or_else(|| err("null string"), Ok)
}

/// A compact array's element count, refused if `min_element_bytes` per
/// element would run past the end (a null array reads as empty).
fn get_compact_len(b: &mut &[u8], min_element_bytes: usize) -> Result<usize, RecordError> {
    let n = get_uvarint(b)?;
    if n == 0 {
        return Ok(0);
    }
    let n = usize::try_from(n - 1).or_else(|_| err("array count"))?;
    if n > b.len() / min_element_bytes {
        return err(&format!("array count {n} past the end of the record"));
    }
    Ok(n)
}

/// `[]TopicPartitions`: per topic its id, its partitions, and no tags.
fn put_topic_partitions(b: &mut BytesMut, a: &Assignment) {
    put_uvarint(b, a.len() as u64 + 1);
    for (topic_id, partitions) in a {
        b.put_slice(topic_id.as_bytes());
        put_uvarint(b, partitions.len() as u64 + 1);
        for p in partitions {
            b.put_i32(*p);
        }
        put_no_tags(b);
    }
}

fn get_topic_partitions(b: &mut &[u8]) -> Result<Assignment, RecordError> {
    // A topic entry is at least 16 (id) + 1 (count) + 1 (tags) bytes.
    let topics = get_compact_len(b, 18)?;
    let mut out = Assignment::new();
    for _ in 0..topics {
        let id = take(b, 16)?;
        let topic_id = Uuid::from_slice(id).or_else(|_| err("topic id"))?;
        let count = get_compact_len(b, 4)?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            partitions.push(get_i32(b)?);
        }
        skip_tags(b)?;
        partitions.sort_unstable();
        partitions.dedup();
        out.entry(topic_id).or_default().extend(partitions);
    }
    for partitions in out.values_mut() {
        partitions.sort_unstable();
        partitions.dedup();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::decode_key;

    const TOPIC: Uuid = Uuid::from_bytes([
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
        0xff,
    ]);

    /// Keys: int16 record type, then the non-flexible fields (int16-length
    /// strings), per ConsumerGroup*Key.json (`"type": "coordinator-key"`,
    /// `"apiKey"` 3..8, `"flexibleVersions": "none"`).
    #[test]
    fn keys_are_the_record_type_then_group_and_member() {
        let cases: Vec<(RecordKey, Vec<u8>)> = vec![
            (
                RecordKey::ConsumerGroup { group: "g".into() },
                vec![0, 3, 0, 1, b'g'],
            ),
            (
                RecordKey::ConsumerGroupPartitionMetadata { group: "g".into() },
                vec![0, 4, 0, 1, b'g'],
            ),
            (
                RecordKey::ConsumerGroupMember {
                    group: "g".into(),
                    member: "m".into(),
                },
                vec![0, 5, 0, 1, b'g', 0, 1, b'm'],
            ),
            (
                RecordKey::ConsumerGroupTargetAssignment { group: "g".into() },
                vec![0, 6, 0, 1, b'g'],
            ),
            (
                RecordKey::ConsumerGroupTargetAssignmentMember {
                    group: "g".into(),
                    member: "m".into(),
                },
                vec![0, 7, 0, 1, b'g', 0, 1, b'm'],
            ),
            (
                RecordKey::ConsumerGroupCurrentAssignment {
                    group: "g".into(),
                    member: "m".into(),
                },
                vec![0, 8, 0, 1, b'g', 0, 1, b'm'],
            ),
        ];
        for (key, bytes) in cases {
            assert_eq!(&encode_key(&key)[..], &bytes[..], "{key:?}");
            assert_eq!(decode_key(&bytes).unwrap(), key);
        }
    }

    /// ConsumerGroupMetadataValue v0 and ConsumerGroupTargetAssignmentMetadataValue
    /// v0: version 0, `Epoch` int32, an empty tagged-field section.
    #[test]
    fn epoch_values_match_kafkas_bytes() {
        let v = encode_epoch(7);
        assert_eq!(&v[..], &[0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(decode_epoch(&v).unwrap(), 7);
        // Kafka 4.1+ may add tagged field 0 (MetadataHash, int64): skipped.
        let tagged = [0, 0, 0, 0, 0, 7, 1, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(decode_epoch(&tagged).unwrap(), 7);
    }

    /// ConsumerGroupMemberMetadataValue v0 (flexible): InstanceId (compact
    /// nullable string), RackId, ClientId, ClientHost (compact strings),
    /// SubscribedTopicNames (compact array of compact strings),
    /// SubscribedTopicRegex (compact nullable string), RebalanceTimeoutMs
    /// (int32), ServerAssignor (compact nullable string), tags (none: the
    /// tagged ClassicMemberMetadata is null). Compact lengths are N+1, null 0.
    #[test]
    fn member_metadata_matches_kafkas_bytes() {
        let m = MemberMetadata {
            instance_id: None,
            rack_id: Some("r".into()),
            client_id: "c".into(),
            client_host: "/h".into(),
            subscribed_topic_names: vec!["a".into(), "bc".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
        };
        let mut want = vec![0u8, 0]; // value version 0
        want.push(0); // InstanceId null
        want.extend([2, b'r']); // RackId "r"
        want.extend([2, b'c']); // ClientId "c"
        want.extend([3, b'/', b'h']); // ClientHost "/h"
        want.extend([3, 2, b'a', 3, b'b', b'c']); // ["a", "bc"]
        want.push(0); // SubscribedTopicRegex null
        want.extend(300_000i32.to_be_bytes()); // RebalanceTimeoutMs
        want.extend([8, b'u', b'n', b'i', b'f', b'o', b'r', b'm']); // ServerAssignor
        want.push(0); // no tagged fields
        let v = encode_member(&m);
        assert_eq!(&v[..], &want[..]);
        assert_eq!(decode_member(&v).unwrap(), m);
        // A classic member's tag 0 (ClassicMemberMetadata) is skipped.
        let mut with_tag = want[..want.len() - 1].to_vec();
        with_tag.extend([1, 0, 3, 0xaa, 0xbb, 0xcc]);
        assert_eq!(decode_member(&with_tag).unwrap(), m);
    }

    /// ConsumerGroupTargetAssignmentMemberValue v0: TopicPartitions, a compact
    /// array of {TopicId uuid, Partitions compact []int32, tags}, then tags.
    #[test]
    fn target_assignment_matches_kafkas_bytes() {
        let a: Assignment = [(TOPIC, vec![0, 2])].into_iter().collect();
        let mut want = vec![0u8, 0, 2];
        want.extend(TOPIC.as_bytes());
        want.extend([3, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
        want.push(0);
        let v = encode_target(&a);
        assert_eq!(&v[..], &want[..]);
        assert_eq!(decode_target(&v).unwrap(), a);
        assert_eq!(&encode_target(&Assignment::new())[..], &[0, 0, 1, 0]);
    }

    /// ConsumerGroupCurrentMemberAssignmentValue v0: MemberEpoch int32,
    /// PreviousMemberEpoch int32, State int8, AssignedPartitions,
    /// PartitionsPendingRevocation ([]TopicPartitions as above), tags.
    #[test]
    fn current_assignment_matches_kafkas_bytes() {
        let c = CurrentAssignment {
            member_epoch: 5,
            previous_member_epoch: 4,
            state: member_state::UNREVOKED_PARTITIONS,
            assigned: [(TOPIC, vec![1])].into_iter().collect(),
            pending_revocation: [(TOPIC, vec![3])].into_iter().collect(),
        };
        let mut want = vec![0u8, 0, 0, 0, 0, 5, 0, 0, 0, 4, 1];
        want.push(2);
        want.extend(TOPIC.as_bytes());
        want.extend([2, 0, 0, 0, 1, 0]);
        want.push(2);
        want.extend(TOPIC.as_bytes());
        want.extend([2, 0, 0, 0, 3, 0]);
        want.push(0);
        let v = encode_current(&c);
        assert_eq!(&v[..], &want[..]);
        assert_eq!(decode_current(&v).unwrap(), c);
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        assert!(decode_epoch(&[]).is_err());
        assert!(decode_epoch(&[0, 1, 0, 0, 0, 0, 0]).is_err());
        // A topic count far beyond the bytes present.
        assert!(decode_target(&[0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // A string length past the end.
        assert!(decode_member(&[0, 0, 0, 0, 9, b'x']).is_err());
        // A tag whose size runs past the end.
        assert!(decode_epoch(&[0, 0, 0, 0, 0, 1, 1, 0, 50]).is_err());
    }

    fn image(epoch: i32, members: &[&str]) -> ConsumerGroupImage {
        let mut i = ConsumerGroupImage {
            group_epoch: epoch,
            assignment_epoch: epoch,
            ..Default::default()
        };
        for (n, m) in members.iter().enumerate() {
            i.members.insert(
                m.to_string(),
                MemberMetadata {
                    client_id: m.to_string(),
                    subscribed_topic_names: vec!["t".into()],
                    ..Default::default()
                },
            );
            let a: Assignment = [(TOPIC, vec![n as i32])].into_iter().collect();
            i.targets.insert(m.to_string(), a.clone());
            i.current.insert(
                m.to_string(),
                CurrentAssignment {
                    member_epoch: epoch,
                    previous_member_epoch: epoch - 1,
                    state: member_state::STABLE,
                    assigned: a,
                    pending_revocation: Assignment::new(),
                },
            );
        }
        i
    }

    fn replay(records: &[KeyValue], into: &mut BTreeMap<String, ConsumerGroupImage>) {
        for (k, v) in records {
            let key = decode_key(k).unwrap();
            assert!(apply(into, &key, v.as_deref()).unwrap());
        }
    }

    #[test]
    fn replaying_the_records_between_images_rebuilds_each_image() {
        let mut replayed = BTreeMap::new();
        let empty = ConsumerGroupImage::default();
        let one = image(1, &["m1"]);
        let two = image(2, &["m1", "m2"]);
        let back = image(3, &["m2"]);
        let mut previous = &empty;
        for next in [&one, &two, &back] {
            replay(&records_between("g", previous, Some(next)), &mut replayed);
            assert_eq!(replayed.get("g"), Some(next));
            previous = next;
        }
        // Unchanged: nothing to write.
        assert!(records_between("g", &back, Some(&back)).is_empty());
        // m1 left: its three records are tombstoned, current first.
        let left = records_between("g", &two, Some(&back));
        let tombstoned: Vec<RecordKey> = left
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| decode_key(k).unwrap())
            .collect();
        let member = |k: fn(String, String) -> RecordKey| k("g".into(), "m1".into());
        assert_eq!(
            tombstoned,
            vec![
                member(|group, member| RecordKey::ConsumerGroupCurrentAssignment { group, member }),
                member(
                    |group, member| RecordKey::ConsumerGroupTargetAssignmentMember {
                        group,
                        member
                    }
                ),
                member(|group, member| RecordKey::ConsumerGroupMember { group, member }),
            ]
        );
        // Deleting the group tombstones everything; replay drops it.
        replay(&records_between("g", &back, None), &mut replayed);
        assert_eq!(replayed.get("g"), None);
    }
}
