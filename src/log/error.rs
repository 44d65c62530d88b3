//! The error type of the log layer: I/O failures (optionally with the path),
//! batch validation failures, out-of-range offsets and corrupt on-disk state.
//! It maps nothing to Kafka error codes; the broker does that.

use std::path::PathBuf;

use super::batch::BatchError;
use super::producer_state::ProducerError;

/// Anything the log layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("I/O error on {path}: {source}")]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A producer's sequence, epoch or transaction state refused the write.
    #[error(transparent)]
    Producer(#[from] ProducerError),
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    /// A follower's append does not continue the log: its first batch starts
    /// below the log end offset, or a batch starts at or below the last offset
    /// of the one before it (Kafka's UnexpectedAppendOffsetException and
    /// OffsetsOutOfOrderException). Nothing was written.
    #[error("replicated batch at offset {got} does not follow the log: expected an offset from {expected} on")]
    UnexpectedAppendOffset { expected: i64, got: i64 },
    #[error("corrupt log data: {0}")]
    Corrupt(String),
    /// A read reached a batch that is unreadable (bad length or magic) or
    /// fails its CRC-32C: Kafka's CORRUPT_MESSAGE. The batches before it are
    /// served; a read starting at it gets this.
    #[error("corrupt record batch at offset {offset} in {} at position {position}: {reason}", path.display())]
    CorruptBatch {
        offset: i64,
        path: PathBuf,
        position: u64,
        reason: String,
    },
}

impl LogError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io_at(path: impl Into<PathBuf>, source: std::io::Error) -> LogError {
        LogError::IoAt {
            path: path.into(),
            source,
        }
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, LogError> {
        self.map_err(|e| LogError::io_at(path, e))
    }
}
