//! Framing: a 4-byte big-endian size, then a request (responses are built
//! by `response.rs`).
//!
//! A size over `socket.request.max.bytes` is refused before anything is
//! allocated; a connection holds no buffer between requests, and the buffer
//! of a request grows only as its bytes actually arrive.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why reading a frame ended the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: i64, max: usize },
    #[error("frame size {0} is too small for a request header")]
    TooSmall(i32),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The smallest request: api key, version, correlation id, client id length.
const MIN_REQUEST: i32 = 10;

/// The first room given to a frame's body; past it the buffer at most doubles
/// per read, so a client must send as many bytes as it makes us allocate.
const FIRST_GRANT: usize = 8 * 1024;

/// Reads frames from one connection, one at a time.
#[derive(Debug)]
pub struct FrameReader {
    /// The frame being received (size prefix included); empty between frames.
    buf: BytesMut,
    /// `socket.request.max.bytes`.
    max: usize,
}

impl FrameReader {
    pub fn new(max: usize) -> FrameReader {
        FrameReader {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Whether part of a frame has arrived but not all of it.
    pub fn in_progress(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes of buffer this reader holds.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads the next frame; `Ok(None)` when the peer closed cleanly between
    /// frames. Never reads past the end of the frame, so nothing is held
    /// between requests.
    pub async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> Result<Option<Bytes>, FrameError> {
        loop {
            let missing = self.missing()?;
            if missing == 0 {
                self.buf.advance(4);
                // The frame takes the whole buffer; the reader keeps nothing.
                return Ok(Some(std::mem::take(&mut self.buf).freeze()));
            }
            let read = if self.buf.is_empty() {
                // Waiting for a request: no buffer until its first bytes come.
                let mut size = [0u8; 4];
                let n = reader.read(&mut size).await?;
                self.buf.extend_from_slice(&size[..n]);
                n
            } else {
                self.buf
                    .reserve(missing.min(self.buf.len().max(FIRST_GRANT)));
                (&mut *reader)
                    .take(missing as u64)
                    .read_buf(&mut self.buf)
                    .await?
            };
            if read == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::Truncated)
                };
            }
        }
    }

    /// Bytes still to come for the frame being received (0: it is whole),
    /// checking its size as soon as the prefix is in.
    fn missing(&self) -> Result<usize, FrameError> {
        if self.buf.len() < 4 {
            return Ok(4 - self.buf.len());
        }
        let size = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if size < MIN_REQUEST {
            return Err(FrameError::TooSmall(size));
        }
        if size as usize > self.max {
            return Err(FrameError::TooLarge {
                size: i64::from(size),
                max: self.max,
            });
        }
        Ok(4 + size as usize - self.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_one(data: &[u8], max: usize) -> Result<Option<Bytes>, FrameError> {
        let mut input = data;
        FrameReader::new(max).next(&mut input).await
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let err = read_one(&2_000_000_000i32.to_be_bytes(), 100 * 1024 * 1024)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                size: 2_000_000_000,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_and_clean_close_is_not() {
        let mut data = 100i32.to_be_bytes().to_vec();
        data.extend_from_slice(&[1; 10]);
        assert!(matches!(
            read_one(&data, 1000).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_one(&[0, 0], 1000).await,
            Err(FrameError::Truncated)
        ));
        assert!(read_one(&[], 1000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn whole_frame_is_returned_exactly() {
        let mut data = 12i32.to_be_bytes().to_vec();
        data.extend_from_slice(b"hello, world");
        let frame = read_one(&data, 1000).await.unwrap().unwrap();
        assert_eq!(&frame[..], b"hello, world");
    }

    #[tokio::test]
    async fn pipelined_frames_come_out_in_order_and_nothing_is_held_between_them() {
        let mut data = Vec::new();
        for body in [&b"first request"[..], b"second one", b"third request!"] {
            data.extend_from_slice(&(body.len() as i32).to_be_bytes());
            data.extend_from_slice(body);
        }
        let mut input = &data[..];
        let mut frames = FrameReader::new(1000);
        for body in [&b"first request"[..], b"second one", b"third request!"] {
            let frame = frames.next(&mut input).await.unwrap().unwrap();
            assert_eq!(&frame[..], body);
            assert_eq!(frames.held(), 0);
            assert!(!frames.in_progress());
        }
        assert!(frames.next(&mut input).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_large_size_prefix_allocates_only_as_bytes_arrive() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        let mut frames = FrameReader::new(200 * 1024 * 1024);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&(100 * 1024 * 1024i32).to_be_bytes())
            .await
            .unwrap();
        client.write_all(&[7; 100]).await.unwrap();
        drop(client);
        assert!(matches!(
            frames.next(&mut server).await,
            Err(FrameError::Truncated)
        ));
        assert!(frames.in_progress());
        assert!(frames.held() <= 4 * FIRST_GRANT, "{}", frames.held());
    }
}
