//! Framing: a 4-byte big-endian size, then a request (responses are built
//! by `response.rs`).
//!
//! A size over `socket.request.max.bytes` is refused before anything is
//! allocated, and the body buffer grows only as bytes actually arrive.

use bytes::Bytes;
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

/// Reads one frame; `Ok(None)` when the peer closed cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut size = [0u8; 4];
    match reader.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if size < MIN_REQUEST {
        return Err(FrameError::TooSmall(size));
    }
    if size as usize > max {
        return Err(FrameError::TooLarge {
            size: i64::from(size),
            max,
        });
    }
    let size = size as usize;
    let mut body = Vec::with_capacity(size.min(64 * 1024));
    let read = reader.take(size as u64).read_to_end(&mut body).await?;
    if read != size {
        return Err(FrameError::Truncated);
    }
    Ok(Some(Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_frame_is_refused_before_reading_it() {
        let mut input: &[u8] = &2_000_000_000i32.to_be_bytes();
        let err = read_frame(&mut input, 100 * 1024 * 1024).await.unwrap_err();
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
        let mut input: &[u8] = &data;
        assert!(matches!(
            read_frame(&mut input, 1000).await,
            Err(FrameError::Truncated)
        ));
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, 1000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn whole_frame_is_returned_exactly() {
        let mut data = 12i32.to_be_bytes().to_vec();
        data.extend_from_slice(b"hello, world");
        let mut input: &[u8] = &data;
        let frame = read_frame(&mut input, 1000).await.unwrap().unwrap();
        assert_eq!(&frame[..], b"hello, world");
    }
}
