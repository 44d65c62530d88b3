//! One run's history, as Jepsen keeps it: every client operation with the
//! time it happened, appended by many client threads, written out as one
//! JSON line per operation. The checker reads nothing else.
//!
//! Values are unique per run (`producer << 32 | sequence`), so a value read
//! anywhere names exactly one send.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A record's value: unique in a run.
pub type Value = u64;

/// The value producer `process` sends as its `seq`-th record.
pub fn value(process: u32, seq: u32) -> Value {
    (u64::from(process) << 32) | u64::from(seq)
}

/// How a consumer reads: read_committed or read_uncommitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

/// What kind of client a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Client {
    /// acks=all without idempotence: a retried send may be written twice.
    PlainProducer,
    /// enable.idempotence=true: every acknowledged value exactly once.
    IdempotentProducer,
    /// Sends only inside transactions (which may span partitions).
    TransactionalProducer,
    /// A consumer with partitions assigned by the test.
    AssignedConsumer(Isolation),
    /// A consumer in a consumer group (its partitions come from rebalances).
    SubscribedConsumer(Isolation),
}

/// One record a consumer polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub value: Value,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A client started; every later event of `process` is this client's.
    Open { client: Client },
    /// A producer handed `value` for `partition` to its client library.
    /// `txn` names the transaction it belongs to, if any.
    Send {
        value: Value,
        partition: i32,
        txn: Option<u64>,
    },
    /// The broker acknowledged `value` at `offset` (for a transactional send
    /// this is not a commit: see `CommitOk`).
    SendOk {
        value: Value,
        partition: i32,
        offset: i64,
    },
    /// The send of `value` failed as far as the client knows. It may still
    /// have been written (a timeout is indefinite).
    SendFail { value: Value, error: String },
    /// A transactional producer began transaction `txn`.
    Begin { txn: u64 },
    /// A transactional producer asked to commit `txn`.
    Commit { txn: u64 },
    /// The commit of `txn` succeeded: every send in it must be visible.
    CommitOk { txn: u64 },
    /// The commit of `txn` failed; its outcome is indefinite unless an
    /// `AbortOk` follows.
    CommitFail { txn: u64, error: String },
    /// The producer aborted `txn` and the broker confirmed it: none of its
    /// sends may ever be read under read_committed.
    AbortOk { txn: u64 },
    /// A consumer's position was set anew (assignment, rebalance, seek):
    /// the offsets it reads next for these partitions need not follow the
    /// ones it read before.
    Assigned { partitions: Vec<i32> },
    /// One poll's records, in the order the client returned them; `txn`
    /// names the transaction the poll belongs to, when a transactional
    /// consume-transform-produce loop polled it.
    Poll { reads: Vec<Read>, txn: Option<u64> },
    /// After every fault healed: all of `partition` from the log start to
    /// the end, read with `isolation` by a fresh consumer.
    FinalRead {
        partition: i32,
        isolation: Isolation,
        reads: Vec<Read>,
    },
    /// A fault began or healed (from the nemesis), for the timeline.
    Fault { description: String },
}

/// An event, by whom and when (microseconds since the run began).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub micros: u64,
    pub process: u32,
    pub event: Event,
}

/// A run's history, shared by its client threads.
#[derive(Clone)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    pub fn new() -> History {
        History {
            start: Instant::now(),
            ops: Arc::default(),
        }
    }

    /// Appends `event` of `process`, stamped now.
    pub fn record(&self, process: u32, event: Event) {
        let micros = self.start.elapsed().as_micros() as u64;
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.push(Op {
            micros,
            process,
            event,
        });
    }

    /// Every operation so far, in the order recorded.
    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes the history as JSON lines to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for op in self.ops() {
            serde_json::to_writer(&mut out, &op)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }

    /// Reads a history written by [`History::write`].
    pub fn read(path: &Path) -> std::io::Result<Vec<Op>> {
        let text = std::fs::read_to_string(path)?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}
