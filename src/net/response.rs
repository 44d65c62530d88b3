//! A response frame that references large record data instead of copying it.
//!
//! A Fetch response is mostly record batches that already sit in memory as
//! `Bytes` (a memory map of the segment file, see `FetchSlice::read`). Encoding
//! with kafka-protocol would copy each of them into the frame; [`ResponseBuf`]
//! is the buffer the encoder writes into, and when the encoder puts a slice
//! that *is* one of the registered `Bytes` (same address, same length) it keeps
//! a clone of that `Bytes` as its own chunk instead. The frame is then written
//! chunk by chunk: the encoded fields are copied once, the record bytes go from
//! the page cache to the socket without passing through a buffer of ours.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Record data smaller than this is copied: a separate write costs more.
pub const SPLICE_MIN: usize = 16 * 1024;

/// A response being encoded, as a list of chunks; the first four bytes of the
/// finished frame are its size.
pub struct ResponseBuf {
    /// Finished chunks, in order.
    chunks: Vec<Bytes>,
    /// Bytes in `chunks`.
    chunked: usize,
    /// The chunk being written.
    tail: BytesMut,
    /// Data to reference rather than copy when the encoder puts it.
    splice: Vec<Bytes>,
}

impl ResponseBuf {
    /// An empty frame, with room for its size.
    pub fn new() -> ResponseBuf {
        let mut tail = BytesMut::with_capacity(1024);
        tail.put_i32(0);
        ResponseBuf {
            chunks: Vec::new(),
            chunked: 0,
            tail,
            splice: Vec::new(),
        }
    }

    /// Marks `data` to be referenced, not copied, when the encoder writes it.
    pub fn splice(&mut self, data: &Bytes) {
        if data.len() >= SPLICE_MIN {
            self.splice.push(data.clone());
        }
    }

    /// The chunk being written, for encoders that want a `BytesMut`.
    pub fn contiguous(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    /// The whole frame, size prefix filled in, as chunks to write in order.
    pub fn finish(mut self) -> Vec<Bytes> {
        let size = (self.chunked + self.tail.len() - 4) as i32;
        if self.chunks.is_empty() {
            self.tail[..4].copy_from_slice(&size.to_be_bytes());
        } else {
            // The prefix is in the first chunk, already frozen: rebuild that one.
            let mut first = BytesMut::from(&self.chunks[0][..]);
            first[..4].copy_from_slice(&size.to_be_bytes());
            self.chunks[0] = first.freeze();
        }
        if !self.tail.is_empty() {
            self.chunks.push(self.tail.freeze());
        }
        self.chunks
    }

    /// The registered `Bytes` that `src` is, if any.
    fn spliced(&mut self, src: &[u8]) -> Option<Bytes> {
        let at = self
            .splice
            .iter()
            .position(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len())?;
        Some(self.splice.swap_remove(at))
    }
}

impl Default for ResponseBuf {
    fn default() -> Self {
        ResponseBuf::new()
    }
}

// SAFETY: every method delegates to `tail`, a `BytesMut`, whose `BufMut`
// implementation upholds the contract; `put_slice` only adds whole chunks.
unsafe impl BufMut for ResponseBuf {
    fn remaining_mut(&self) -> usize {
        self.tail.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `tail.chunk_mut()`.
        unsafe { self.tail.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.tail.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SPLICE_MIN {
            if let Some(data) = self.spliced(src) {
                let written = self.tail.split().freeze();
                self.chunked += written.len() + data.len();
                self.chunks.push(written);
                self.chunks.push(data);
                return;
            }
        }
        self.tail.extend_from_slice(src);
    }
}

/// Offsets count every byte of the frame; `seek` and `range` (used by the
/// encoder only to fill in gaps it left moments before) reach into the chunk
/// being written.
impl ByteBufMut for ResponseBuf {
    fn offset(&self) -> usize {
        self.chunked + self.tail.len()
    }

    fn seek(&mut self, offset: usize) {
        self.tail.resize(offset.saturating_sub(self.chunked), 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.chunked);
        let end = r.end.saturating_sub(self.chunked);
        &mut self.tail[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn response(records: &[Bytes]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(100 + i as i64)
                    .with_records(Some(r.clone()))
            })
            .collect();
        FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(partitions)])
    }

    #[test]
    fn chunks_are_byte_for_byte_the_plain_encoding_and_records_are_not_copied() {
        let big: Vec<Bytes> = (0..3u8)
            .map(|i| Bytes::from(vec![i + 1; SPLICE_MIN + usize::from(i) * 1000]))
            .chain([Bytes::from_static(b"small")])
            .collect();
        for version in [4i16, 11, 12, 16] {
            let resp = response(&big);
            let mut plain = BytesMut::new();
            plain.put_i32(0);
            resp.encode(&mut plain, version).unwrap();
            let size = (plain.len() - 4) as i32;
            plain[..4].copy_from_slice(&size.to_be_bytes());

            let mut buf = ResponseBuf::new();
            for p in &resp.responses[0].partitions {
                buf.splice(p.records.as_ref().unwrap());
            }
            resp.encode(&mut buf, version).unwrap();
            let chunks = buf.finish();
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec(), "version {version}");
            // The three large record sets are chunks of their own, the very
            // same memory; the small one was copied.
            for b in &big[..3] {
                assert!(
                    chunks
                        .iter()
                        .any(|c| c.as_ptr() == b.as_ptr() && c.len() == b.len()),
                    "version {version}: records copied"
                );
            }
            assert_eq!(chunks.len(), 7, "version {version}");
        }
    }

    #[test]
    fn a_frame_without_spliced_data_is_one_chunk() {
        let resp = response(&[Bytes::from_static(b"abc")]);
        let mut buf = ResponseBuf::new();
        resp.encode(&mut buf, 12).unwrap();
        let chunks = buf.finish();
        assert_eq!(chunks.len(), 1);
        let size = i32::from_be_bytes(chunks[0][..4].try_into().unwrap());
        assert_eq!(size as usize, chunks[0].len() - 4);
    }

    #[test]
    fn equal_contents_elsewhere_in_memory_are_copied() {
        let registered = Bytes::from(vec![7u8; SPLICE_MIN]);
        let twin = Bytes::from(vec![7u8; SPLICE_MIN]);
        let mut buf = ResponseBuf::new();
        buf.splice(&registered);
        buf.put_slice(&twin);
        let chunks = buf.finish();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), 4 + SPLICE_MIN);
    }
}
