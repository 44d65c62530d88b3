//! The checker: reads one run's history (`history.rs`) and reports every
//! anomaly it finds, class by class, with a count and a few examples,
//! modelled on Jepsen's Kafka workload checker (jepsen.tests.kafka).
//! It reads only the history and never talks to a broker; where the history
//! lacks what a check needs it reports `Incomplete` rather than pass.
//! docs/FAULTS.md ("Anomalies the checker reports") explains each class.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;

use super::history::{Client, Event, Isolation, Op, Read, Value};

/// Examples kept per class.
const EXAMPLES: usize = 5;

/// A class of anomaly. `Anomaly::ALL` lists them in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Anomaly {
    /// An acknowledged value (a `SendOk` outside a transaction, or any send
    /// of a transaction that got `CommitOk`), or a value a consumer polled,
    /// is missing from the final log of its partition.
    LostWrite,
    /// A value of an idempotent or transactional producer at more than one
    /// offset of its partition.
    Duplicate,
    /// A value of a plain producer (acks=all, no idempotence) at more than
    /// one offset: a retry wrote it twice, which Kafka allows.
    DuplicateWithoutIdempotence,
    /// Two different values seen at one (partition, offset); a value read
    /// only at offsets other than the one it was acknowledged at; a value
    /// read in a partition it was not sent to.
    InconsistentOffset,
    /// A consumer read an offset not above the one it read before in that
    /// partition, with no `Assigned` of that partition between.
    NonMonotonicPoll,
    /// A consumer read offsets o1 then o2 of a partition (no `Assigned`
    /// between) and the final log visible to its isolation holds a record
    /// strictly between them.
    SkippedPoll,
    /// A read_committed read returned a value of a transaction that got
    /// `AbortOk`, or one the final logs show aborted (in the
    /// read_uncommitted log, not in the read_committed one).
    AbortedRead,
    /// A read_committed read returned a transactional value before its
    /// transaction's `Commit` was invoked (or its `Commit` never was).
    UncommittedRead,
    /// A cycle of ww dependencies (log order) among committed transactions.
    G0,
    /// A cycle among committed transactions through at least one wr
    /// dependency, using only dependencies Kafka orders: wr, and ww between
    /// two transactions of one producer.
    G1c,
    /// A cycle through at least one wr dependency that exists only with ww
    /// dependencies between transactions of different producers.
    G1cInterleaved,
    /// A value read that no `Send` in the history sent.
    UnknownValue,
    /// The history lacks (or contradicts) what a check needs.
    Incomplete,
}

impl Anomaly {
    /// Every class, in the order reports list them.
    pub const ALL: [Anomaly; 13] = [
        Anomaly::LostWrite,
        Anomaly::Duplicate,
        Anomaly::DuplicateWithoutIdempotence,
        Anomaly::InconsistentOffset,
        Anomaly::NonMonotonicPoll,
        Anomaly::SkippedPoll,
        Anomaly::AbortedRead,
        Anomaly::UncommittedRead,
        Anomaly::G0,
        Anomaly::G1c,
        Anomaly::G1cInterleaved,
        Anomaly::UnknownValue,
        Anomaly::Incomplete,
    ];

    /// Whether Kafka's documented semantics allow this class for the clients
    /// the workloads use (so finding it is not a bug).
    pub fn allowed(self) -> bool {
        matches!(
            self,
            Anomaly::DuplicateWithoutIdempotence | Anomaly::G0 | Anomaly::G1cInterleaved
        )
    }

    /// The class's name, as in reports and docs/FAULTS.md.
    pub fn name(self) -> &'static str {
        match self {
            Anomaly::LostWrite => "LostWrite",
            Anomaly::Duplicate => "Duplicate",
            Anomaly::DuplicateWithoutIdempotence => "DuplicateWithoutIdempotence",
            Anomaly::InconsistentOffset => "InconsistentOffset",
            Anomaly::NonMonotonicPoll => "NonMonotonicPoll",
            Anomaly::SkippedPoll => "SkippedPoll",
            Anomaly::AbortedRead => "AbortedRead",
            Anomaly::UncommittedRead => "UncommittedRead",
            Anomaly::G0 => "G0",
            Anomaly::G1c => "G1c",
            Anomaly::G1cInterleaved => "G1cInterleaved",
            Anomaly::UnknownValue => "UnknownValue",
            Anomaly::Incomplete => "Incomplete",
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// What the checker found of one class.
#[derive(Debug, Clone, Serialize)]
pub struct Class {
    pub anomaly: Anomaly,
    pub allowed: bool,
    pub count: usize,
    /// The first few findings, in history order, each naming process,
    /// partition, offset, value (`process:seq`) and times (seconds since
    /// the run began).
    pub examples: Vec<String>,
}

/// Records in one partition's final logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FinalRecords {
    pub read_uncommitted: usize,
    pub read_committed: usize,
}

/// What the history holds, for the report's footer.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub ops: usize,
    pub sends: usize,
    /// Sends the broker acknowledged (`SendOk`).
    pub send_ok: usize,
    /// Sends that failed as far as the client knows (`SendFail`): their
    /// outcome is indefinite.
    pub send_failed: usize,
    /// Sends with neither `SendOk` nor `SendFail`.
    pub unanswered: usize,
    /// Values that must be in the final log: `SendOk` outside a
    /// transaction, and every send of a transaction that got `CommitOk`.
    pub acknowledged: usize,
    pub transactions: usize,
    pub committed: usize,
    pub aborted: usize,
    /// Transactions with neither `CommitOk` nor `AbortOk`.
    pub indefinite: usize,
    pub polls: usize,
    /// Records returned by polls.
    pub reads: usize,
    pub faults: usize,
    /// Per partition, the records in its final logs.
    pub final_records: BTreeMap<i32, FinalRecords>,
}

/// The checker's verdict on one history: every class (found or not) and
/// the history's stats. Serializes to JSON, to be saved next to the history.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One entry per class, in `Anomaly::ALL` order.
    pub classes: Vec<Class>,
    pub stats: Stats,
}

impl Report {
    /// How many findings of `anomaly`.
    pub fn count(&self, anomaly: Anomaly) -> usize {
        self.class(anomaly).map_or(0, |c| c.count)
    }

    /// The examples kept for `anomaly`.
    pub fn examples(&self, anomaly: Anomaly) -> &[String] {
        match self.class(anomaly) {
            Some(c) => &c.examples,
            None => &[],
        }
    }

    /// The classes with findings that Kafka's semantics do not allow.
    pub fn unexpected(&self) -> Vec<Anomaly> {
        self.classes
            .iter()
            .filter(|c| c.count > 0 && !c.allowed)
            .map(|c| c.anomaly)
            .collect()
    }

    /// The report as a table (the `Display` form).
    pub fn summary(&self) -> String {
        self.to_string()
    }

    fn class(&self, anomaly: Anomaly) -> Option<&Class> {
        self.classes.iter().find(|c| c.anomaly == anomaly)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<28} {:>7} {:>9}", "anomaly", "allowed", "count")?;
        for c in &self.classes {
            let allowed = if c.allowed { "yes" } else { "no" };
            writeln!(f, "{:<28} {:>7} {:>9}", c.anomaly, allowed, c.count)?;
            for e in &c.examples {
                writeln!(f, "    {e}")?;
            }
            if c.count > c.examples.len() {
                writeln!(f, "    ... and {} more", c.count - c.examples.len())?;
            }
        }
        let s = &self.stats;
        writeln!(
            f,
            "{} ops, {} faults; sends {}: {} ok, {} failed, {} unanswered; {} acknowledged",
            s.ops, s.faults, s.sends, s.send_ok, s.send_failed, s.unanswered, s.acknowledged
        )?;
        writeln!(
            f,
            "transactions {}: {} committed, {} aborted, {} indefinite; polls {} with {} reads",
            s.transactions, s.committed, s.aborted, s.indefinite, s.polls, s.reads
        )?;
        let logs: Vec<String> = s
            .final_records
            .iter()
            .map(|(p, r)| format!("p{p} {}/{}", r.read_uncommitted, r.read_committed))
            .collect();
        writeln!(
            f,
            "final log records (read_uncommitted/read_committed): {}",
            if logs.is_empty() {
                "none".to_string()
            } else {
                logs.join(", ")
            }
        )?;
        let unexpected = self.unexpected();
        if unexpected.is_empty() {
            writeln!(f, "unexpected: none")
        } else {
            let names: Vec<&str> = unexpected.iter().map(|a| a.name()).collect();
            writeln!(f, "unexpected: {}", names.join(", "))
        }
    }
}

/// Checks a run's history (its ops in the order recorded). Takes time
/// roughly linear in the number of ops and records read.
pub fn check(ops: &[Op]) -> Report {
    let mut c = Checker::default();
    c.stats.ops = ops.len();
    if ops.is_empty() {
        c.findings
            .add(Anomaly::Incomplete, || "the history is empty".to_string());
    }
    c.index(ops);
    c.load_final_logs(ops);
    c.check_reads(ops);
    c.check_final_reads_exist();
    c.check_sends();
    c.check_cycles();
    c.count_stats();
    Report {
        classes: c.findings.classes,
        stats: c.stats,
    }
}

// ---------------------------------------------------------------------------
// The checker's state.

/// A multiply-rotate hasher (as rustc's FxHash) for the integer keys here:
/// std's SipHash guards against hash flooding, which a history cannot do,
/// and costs half the check's time on a large history.
#[derive(Default, Clone, Copy)]
struct IntHasher(u64);

impl IntHasher {
    fn add(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_i32(&mut self, n: i32) {
        self.add(u64::from(n as u32));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_i64(&mut self, n: i64) {
        self.add(n as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;
type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<IntHasher>>;

const RU: usize = 0;
const RC: usize = 1;

fn iso_ix(isolation: Isolation) -> usize {
    match isolation {
        Isolation::ReadUncommitted => RU,
        Isolation::ReadCommitted => RC,
    }
}

fn iso_name(ix: usize) -> &'static str {
    if ix == RC {
        "read_committed"
    } else {
        "read_uncommitted"
    }
}

/// A value as `process:seq`.
fn val(value: Value) -> String {
    format!("{}:{}", value >> 32, value & 0xffff_ffff)
}

/// Microseconds since the run began, as seconds.
fn secs(micros: u64) -> String {
    format!("{}.{:06}s", micros / 1_000_000, micros % 1_000_000)
}

struct Findings {
    classes: Vec<Class>,
}

impl Default for Findings {
    fn default() -> Findings {
        Findings {
            classes: Anomaly::ALL
                .iter()
                .map(|&anomaly| Class {
                    anomaly,
                    allowed: anomaly.allowed(),
                    count: 0,
                    examples: Vec::new(),
                })
                .collect(),
        }
    }
}

impl Findings {
    /// Whether the next finding of `anomaly` keeps its example.
    fn wants(&self, anomaly: Anomaly) -> bool {
        self.classes
            .iter()
            .any(|c| c.anomaly == anomaly && c.examples.len() < EXAMPLES)
    }

    /// Counts one finding; formats its example only if it is kept.
    fn add(&mut self, anomaly: Anomaly, example: impl FnOnce() -> String) {
        if let Some(class) = self.classes.iter_mut().find(|c| c.anomaly == anomaly) {
            class.count += 1;
            if class.examples.len() < EXAMPLES {
                class.examples.push(example());
            }
        }
    }
}

/// One `Send` and what became of it.
struct SendRec {
    value: Value,
    process: u32,
    partition: i32,
    txn: Option<u64>,
    /// The sender's client kind when it sent.
    client: Option<Client>,
    micros: u64,
    /// `SendOk`: offset and time.
    ack: Option<(i64, u64)>,
    failed: bool,
}

/// One transaction and its outcome.
struct TxnRec {
    id: u64,
    process: Option<u32>,
    /// When `Commit` was first invoked.
    commit_invoked: Option<u64>,
    commit_ok: Option<u64>,
    abort_ok: Option<u64>,
}

/// Who observed a value at an offset.
#[derive(Clone, Copy)]
enum Source {
    Ack { process: u32, micros: u64 },
    Poll { process: u32, micros: u64 },
    Final { isolation: usize },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Source::Ack { process, micros } => {
                write!(f, "acknowledged to process {process} at {}", secs(micros))
            }
            Source::Poll { process, micros } => {
                write!(f, "polled by process {process} at {}", secs(micros))
            }
            Source::Final { isolation } => write!(f, "final {} read", iso_name(isolation)),
        }
    }
}

/// The first value seen at a (partition, offset), and whether another was.
struct OffsetObs {
    value: Value,
    source: Source,
    conflict: bool,
}

/// Where reads (polls and final reads) found a value.
struct Positions {
    first: (i32, i64),
    more: Vec<(i32, i64)>,
    /// The first poll that read it: who, partition, offset.
    polled: Option<(Source, i32, i64)>,
}

impl Positions {
    fn contains(&self, at: (i32, i64)) -> bool {
        self.first == at || self.more.contains(&at)
    }
}

/// A consumer's last read of a partition.
#[derive(Clone, Copy)]
struct Last {
    offset: i64,
    value: Value,
    micros: u64,
}

/// Whose reads an order check is about.
#[derive(Clone, Copy)]
enum Reader {
    Consumer(u32),
    Final(usize),
}

impl fmt::Display for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Reader::Consumer(p) => write!(f, "process {p}"),
            Reader::Final(iso) => write!(f, "the final {} read", iso_name(iso)),
        }
    }
}

/// A poll made for transaction `reader` read `value`, which transaction
/// `writer` (an index into `txns`) wrote.
struct WrRec {
    writer: usize,
    reader: u64,
    partition: i32,
    offset: i64,
    value: Value,
    process: u32,
    micros: u64,
}

#[derive(Default)]
struct Checker {
    findings: Findings,
    stats: Stats,
    sends: Vec<SendRec>,
    send_ix: HashMap<Value, usize>,
    txns: Vec<TxnRec>,
    txn_ix: HashMap<u64, usize>,
    /// Partitions with a send, an acknowledgement or a read.
    active: BTreeSet<i32>,
    /// The final logs (the last `FinalRead` per partition), sorted by
    /// offset: `[read_uncommitted, read_committed]`.
    logs: [HashMap<i32, Vec<(i64, Value)>>; 2],
    /// Where each value first sits in the final logs.
    in_log: [HashMap<Value, (i32, i64)>; 2],
    offsets: HashMap<(i32, i64), OffsetObs>,
    positions: HashMap<Value, Positions>,
    unknown: HashSet<Value>,
    misplaced: HashSet<(Value, i32)>,
    wr: Vec<WrRec>,
}

impl Checker {
    fn txn(&mut self, id: u64) -> &mut TxnRec {
        let next = self.txns.len();
        let i = *self.txn_ix.entry(id).or_insert(next);
        if i == next {
            self.txns.push(TxnRec {
                id,
                process: None,
                commit_invoked: None,
                commit_ok: None,
                abort_ok: None,
            });
        }
        &mut self.txns[i]
    }

    fn send_of(&self, value: Value) -> Option<&SendRec> {
        self.send_ix.get(&value).map(|&i| &self.sends[i])
    }

    fn txn_of(&self, value: Value) -> Option<&TxnRec> {
        let id = self.send_of(value)?.txn?;
        self.txn_ix.get(&id).map(|&i| &self.txns[i])
    }

    /// Whether `value` is in the final log `iso` of `partition`.
    fn in_final(&self, iso: usize, value: Value, partition: i32) -> bool {
        matches!(self.in_log[iso].get(&value), Some(&(p, _)) if p == partition)
    }

    /// Pass 1: sends, acknowledgements, transactions, client kinds.
    fn index(&mut self, ops: &[Op]) {
        let mut clients: HashMap<u32, Client> = HashMap::default();
        let mut unopened: HashSet<u32> = HashSet::default();
        let mut acked_twice: HashSet<Value> = HashSet::default();
        for op in ops {
            let p = op.process;
            let at = op.micros;
            let client = clients.get(&p).copied();
            let needs_open = !matches!(
                op.event,
                Event::Open { .. } | Event::FinalRead { .. } | Event::Fault { .. }
            );
            if needs_open && client.is_none() && unopened.insert(p) {
                self.findings.add(Anomaly::Incomplete, || {
                    format!(
                        "process {p} has events (the first at {}) but no Open naming its client kind",
                        secs(at)
                    )
                });
            }
            match &op.event {
                Event::Open { client } => {
                    clients.insert(p, *client);
                }
                Event::Send {
                    value,
                    partition,
                    txn,
                } => {
                    self.stats.sends += 1;
                    self.active.insert(*partition);
                    if self.send_ix.contains_key(value) {
                        self.findings.add(Anomaly::Incomplete, || {
                            format!(
                                "value {} sent again by process {p} at {}: values must be unique",
                                val(*value),
                                secs(at)
                            )
                        });
                        continue;
                    }
                    self.send_ix.insert(*value, self.sends.len());
                    self.sends.push(SendRec {
                        value: *value,
                        process: p,
                        partition: *partition,
                        txn: *txn,
                        client,
                        micros: at,
                        ack: None,
                        failed: false,
                    });
                    if let Some(id) = txn {
                        self.txn(*id).process.get_or_insert(p);
                    }
                }
                Event::SendOk {
                    value,
                    partition,
                    offset,
                } => {
                    self.active.insert(*partition);
                    let Some(&i) = self.send_ix.get(value) else {
                        self.findings.add(Anomaly::Incomplete, || {
                            format!(
                                "process {p} got SendOk for {} at {} with no Send of it before",
                                val(*value),
                                secs(at)
                            )
                        });
                        continue;
                    };
                    let s = &mut self.sends[i];
                    if s.partition != *partition {
                        let sent_to = s.partition;
                        self.findings.add(Anomaly::Incomplete, || {
                            format!(
                                "{} was sent to partition {sent_to} but acknowledged in partition {partition} (offset {offset}) at {}",
                                val(*value),
                                secs(at)
                            )
                        });
                    } else if s.ack.is_none() {
                        s.ack = Some((*offset, at));
                    } else if acked_twice.insert(*value) {
                        self.findings.add(Anomaly::Incomplete, || {
                            format!(
                                "{} acknowledged twice (again at offset {offset}, {})",
                                val(*value),
                                secs(at)
                            )
                        });
                    }
                }
                Event::SendFail { value, .. } => match self.send_ix.get(value) {
                    Some(&i) => self.sends[i].failed = true,
                    None => self.findings.add(Anomaly::Incomplete, || {
                        format!(
                            "process {p} got SendFail for {} at {} with no Send of it before",
                            val(*value),
                            secs(at)
                        )
                    }),
                },
                Event::Begin { txn } => {
                    self.txn(*txn).process.get_or_insert(p);
                }
                Event::Commit { txn } => {
                    self.txn(*txn).commit_invoked.get_or_insert(at);
                }
                Event::CommitOk { txn } => {
                    self.txn(*txn).commit_ok.get_or_insert(at);
                }
                Event::AbortOk { txn } => {
                    self.txn(*txn).abort_ok.get_or_insert(at);
                }
                Event::CommitFail { .. } | Event::Assigned { .. } | Event::Poll { .. } => {}
                Event::FinalRead { .. } => {}
                Event::Fault { .. } => self.stats.faults += 1,
            }
        }
        for t in &self.txns {
            if let (Some(c), Some(a)) = (t.commit_ok, t.abort_ok) {
                let (id, process) = (t.id, t.process);
                self.findings.add(Anomaly::Incomplete, || {
                    format!(
                        "transaction {id} (process {}) got CommitOk at {} and AbortOk at {}",
                        process.map_or("?".to_string(), |p| p.to_string()),
                        secs(c),
                        secs(a)
                    )
                });
            }
        }
    }

    /// Pass 2: the final logs, from the last `FinalRead` of each partition
    /// and isolation.
    fn load_final_logs(&mut self, ops: &[Op]) {
        let mut last: [BTreeMap<i32, usize>; 2] = Default::default();
        for (i, op) in ops.iter().enumerate() {
            if let Event::FinalRead {
                partition,
                isolation,
                ..
            } = &op.event
            {
                last[iso_ix(*isolation)].insert(*partition, i);
            }
        }
        for (iso, finals) in last.iter().enumerate() {
            for (&p, &i) in finals {
                let Event::FinalRead { reads, .. } = &ops[i].event else {
                    continue;
                };
                let mut log: Vec<(i64, Value)> = Vec::with_capacity(reads.len());
                let mut stray = 0usize;
                for r in reads {
                    if r.partition == p {
                        log.push((r.offset, r.value));
                    } else {
                        stray += 1;
                    }
                }
                if stray > 0 {
                    self.findings.add(Anomaly::Incomplete, || {
                        format!(
                            "the final {} read of partition {p} returned {stray} record(s) of other partitions",
                            iso_name(iso)
                        )
                    });
                }
                log.sort_by_key(|&(o, _)| o);
                for &(o, v) in &log {
                    self.in_log[iso].entry(v).or_insert((p, o));
                }
                let counts = self.stats.final_records.entry(p).or_default();
                if iso == RC {
                    counts.read_committed = log.len();
                } else {
                    counts.read_uncommitted = log.len();
                }
                self.logs[iso].insert(p, log);
            }
        }
    }

    /// Pass 3: every acknowledgement, poll and final read in history order.
    fn check_reads(&mut self, ops: &[Op]) {
        let mut clients: HashMap<u32, Client> = HashMap::default();
        let mut last: HashMap<(u32, i32), Last> = HashMap::default();
        let mut not_consumers: HashSet<u32> = HashSet::default();
        for op in ops {
            let (process, micros) = (op.process, op.micros);
            match &op.event {
                Event::Open { client } => {
                    clients.insert(process, *client);
                }
                // librdkafka reports -1001 (offset unknown) for a send it
                // knows was written without knowing where.
                Event::SendOk {
                    value,
                    partition,
                    offset,
                } if *offset >= 0 => {
                    let source = Source::Ack { process, micros };
                    self.observe_offset(*partition, *offset, *value, source);
                }
                Event::Assigned { partitions } => {
                    for p in partitions {
                        last.remove(&(process, *p));
                    }
                }
                Event::Poll { reads, txn } => {
                    self.stats.polls += 1;
                    self.stats.reads += reads.len();
                    let isolation = match clients.get(&process) {
                        Some(Client::AssignedConsumer(i) | Client::SubscribedConsumer(i)) => {
                            Some(iso_ix(*i))
                        }
                        Some(other) => {
                            if not_consumers.insert(process) {
                                let other = *other;
                                self.findings.add(Anomaly::Incomplete, || {
                                    format!(
                                        "process {process} polled at {} but its Open names {other:?}, not a consumer: its isolation is unknown",
                                        secs(micros)
                                    )
                                });
                            }
                            None
                        }
                        // Reported by pass 1 (no Open).
                        None => None,
                    };
                    let source = Source::Poll { process, micros };
                    for r in reads {
                        self.observe_read(r, source, true);
                        let now = Last {
                            offset: r.offset,
                            value: r.value,
                            micros,
                        };
                        if let Some(prev) = last.insert((process, r.partition), now) {
                            let reader = Reader::Consumer(process);
                            self.check_order(reader, r.partition, prev, now, isolation);
                        }
                        if isolation == Some(RC) {
                            self.check_committed_read(r, source, micros);
                        }
                        if let Some(reader) = txn {
                            self.note_wr(r, *reader, process, micros);
                        }
                    }
                }
                Event::FinalRead {
                    isolation, reads, ..
                } => {
                    let iso = iso_ix(*isolation);
                    let source = Source::Final { isolation: iso };
                    let mut prevs: HashMap<i32, Last> = HashMap::default();
                    for r in reads {
                        self.observe_read(r, source, false);
                        let now = Last {
                            offset: r.offset,
                            value: r.value,
                            micros,
                        };
                        if let Some(prev) = prevs.insert(r.partition, now) {
                            self.check_order(Reader::Final(iso), r.partition, prev, now, None);
                        }
                        if iso == RC {
                            self.check_committed_read(r, source, micros);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Records that `source` saw `value` at (`partition`, `offset`).
    fn observe_offset(&mut self, partition: i32, offset: i64, value: Value, source: Source) {
        match self.offsets.entry((partition, offset)) {
            Entry::Vacant(e) => {
                e.insert(OffsetObs {
                    value,
                    source,
                    conflict: false,
                });
            }
            Entry::Occupied(mut e) => {
                let obs = e.get_mut();
                if obs.value != value && !obs.conflict {
                    obs.conflict = true;
                    let (first, first_source) = (obs.value, obs.source);
                    self.findings.add(Anomaly::InconsistentOffset, || {
                        format!(
                            "partition {partition} offset {offset} holds {} ({first_source}) and {} ({source})",
                            val(first),
                            val(value)
                        )
                    });
                }
            }
        }
    }

    /// Records a read of a poll (`polled`) or final read.
    fn observe_read(&mut self, r: &Read, source: Source, polled: bool) {
        let at = (r.partition, r.offset);
        self.active.insert(r.partition);
        self.observe_offset(r.partition, r.offset, r.value, source);
        match self.positions.entry(r.value) {
            Entry::Vacant(e) => {
                e.insert(Positions {
                    first: at,
                    more: Vec::new(),
                    polled: polled.then_some((source, r.partition, r.offset)),
                });
            }
            Entry::Occupied(mut e) => {
                let pos = e.get_mut();
                if !pos.contains(at) {
                    pos.more.push(at);
                }
                if polled && pos.polled.is_none() {
                    pos.polled = Some((source, r.partition, r.offset));
                }
            }
        }
        let sent_to = self.send_of(r.value).map(|s| s.partition);
        match sent_to {
            None => {
                if self.unknown.insert(r.value) {
                    self.findings.add(Anomaly::UnknownValue, || {
                        format!(
                            "{} at partition {} offset {} ({source}) was never sent (process {} has no Send of it)",
                            val(r.value),
                            r.partition,
                            r.offset,
                            r.value >> 32
                        )
                    });
                }
            }
            Some(p) if p != r.partition => {
                if self.misplaced.insert((r.value, r.partition)) {
                    self.findings.add(Anomaly::InconsistentOffset, || {
                        format!(
                            "{} was sent to partition {p} but is at partition {} offset {} ({source})",
                            val(r.value),
                            r.partition,
                            r.offset
                        )
                    });
                }
            }
            Some(_) => {}
        }
    }

    /// Consecutive reads `prev`, `now` of one reader and partition.
    fn check_order(
        &mut self,
        reader: Reader,
        partition: i32,
        prev: Last,
        now: Last,
        isolation: Option<usize>,
    ) {
        let pair = || {
            format!(
                "{reader} read partition {partition} offset {} ({}) at {}, then offset {} ({}) at {}",
                prev.offset,
                val(prev.value),
                secs(prev.micros),
                now.offset,
                val(now.value),
                secs(now.micros)
            )
        };
        if now.offset <= prev.offset {
            self.findings.add(Anomaly::NonMonotonicPoll, || {
                format!("{} with no Assigned of the partition between", pair())
            });
            return;
        }
        let Some(iso) = isolation else { return };
        let Some(log) = self.logs[iso].get(&partition) else {
            return;
        };
        let lo = log.partition_point(|&(o, _)| o <= prev.offset);
        let hi = log.partition_point(|&(o, _)| o < now.offset);
        if hi > lo {
            let (o, v) = log[lo];
            self.findings.add(Anomaly::SkippedPoll, || {
                format!(
                    "{}, skipping {} record(s) of the final {} log, the first {} at offset {o}",
                    pair(),
                    hi - lo,
                    iso_name(iso),
                    val(v)
                )
            });
        }
    }

    /// A read_committed read (poll or final read) of `r` at `micros`.
    fn check_committed_read(&mut self, r: &Read, source: Source, micros: u64) {
        let Some(s) = self.send_of(r.value) else {
            return;
        };
        let Some(id) = s.txn else { return };
        let (partition, sender) = (s.partition, s.process);
        let (process, aborted, invoked) = match self.txn_of(r.value) {
            Some(t) => (t.process.unwrap_or(sender), t.abort_ok, t.commit_invoked),
            None => (sender, None, None),
        };
        let aborted_per_log = self.in_final(RU, r.value, partition)
            && self.logs[RC].contains_key(&partition)
            && !self.in_final(RC, r.value, partition);
        let read = || {
            format!(
                "{} at partition {} offset {} ({source})",
                val(r.value),
                r.partition,
                r.offset
            )
        };
        if let Some(at) = aborted {
            self.findings.add(Anomaly::AbortedRead, || {
                format!(
                    "{}: its transaction {id} (process {process}) got AbortOk at {}",
                    read(),
                    secs(at)
                )
            });
        } else if aborted_per_log {
            self.findings.add(Anomaly::AbortedRead, || {
                format!(
                    "{}: its transaction {id} (process {process}) is aborted per the log (in the final read_uncommitted log, not the read_committed one)",
                    read()
                )
            });
        } else if invoked.is_none_or(|c| c > micros) {
            self.findings.add(Anomaly::UncommittedRead, || {
                let when = invoked.map_or("never".to_string(), |c| format!("at {}", secs(c)));
                format!(
                    "{}: its transaction {id} (process {process}) invoked Commit {when}",
                    read()
                )
            });
        }
    }

    /// A poll for transaction `reader` read `r`: a wr dependency if a
    /// transaction wrote `r`.
    fn note_wr(&mut self, r: &Read, reader: u64, process: u32, micros: u64) {
        let Some(id) = self.send_of(r.value).and_then(|s| s.txn) else {
            return;
        };
        let Some(&writer) = self.txn_ix.get(&id) else {
            return;
        };
        self.wr.push(WrRec {
            writer,
            reader,
            partition: r.partition,
            offset: r.offset,
            value: r.value,
            process,
            micros,
        });
    }

    /// Every partition with activity has both final logs.
    fn check_final_reads_exist(&mut self) {
        for &p in &self.active {
            for iso in [RU, RC] {
                if !self.logs[iso].contains_key(&p) {
                    self.findings.add(Anomaly::Incomplete, || {
                        format!(
                            "partition {p} had sends or reads but no final {} read: its lost writes, skips and aborted reads cannot be checked",
                            iso_name(iso)
                        )
                    });
                }
            }
        }
    }

    /// Pass 4: lost writes, acknowledged offsets, duplicates.
    fn check_sends(&mut self) {
        for s in &self.sends {
            let txn = s
                .txn
                .and_then(|id| self.txn_ix.get(&id))
                .map(|&i| &self.txns[i]);
            let committed = txn.and_then(|t| t.commit_ok);
            let acked = match s.txn {
                None => s.ack.is_some(),
                Some(_) => committed.is_some(),
            };
            let positions = self.positions.get(&s.value);
            let polled = positions.and_then(|p| p.polled);
            let sent = || {
                let mut d = format!(
                    "{} sent by process {} to partition {} at {}",
                    val(s.value),
                    s.process,
                    s.partition,
                    secs(s.micros)
                );
                if let Some(id) = s.txn {
                    d += &format!(" in transaction {id}");
                }
                if let Some((o, at)) = s.ack {
                    d += &format!(", acknowledged at offset {o} at {}", secs(at));
                }
                if let Some(at) = committed {
                    d += &format!(", committed at {}", secs(at));
                }
                if let Some((source, p, o)) = polled {
                    d += &format!(", {source} at partition {p} offset {o}");
                }
                d
            };

            // Lost: acknowledged (or polled) but not in the final log.
            let ru = self.logs[RU].get(&s.partition);
            let rc = self.logs[RC].get(&s.partition);
            let missing = |iso: usize, log: Option<&Vec<(i64, Value)>>| {
                log.filter(|_| !self.in_final(iso, s.value, s.partition))
                    .map(|l| (iso, l.len()))
            };
            let lost = match (s.txn, acked) {
                (Some(_), true) => missing(RC, rc),
                (None, true) => missing(RU, ru),
                (_, false) => None,
            }
            .or_else(|| polled.and_then(|_| missing(RU, ru)));
            if let Some((iso, len)) = lost {
                self.findings.add(Anomaly::LostWrite, || {
                    format!(
                        "{}, is not in the final {} log of partition {} ({len} records)",
                        sent(),
                        iso_name(iso),
                        s.partition
                    )
                });
            }

            let Some(positions) = positions else { continue };

            // Read only away from its acknowledged offset (when another value
            // was seen at that offset, that conflict is already reported).
            if let Some((o, _)) = s.ack.filter(|(o, _)| *o >= 0) {
                let conflict = self
                    .offsets
                    .get(&(s.partition, o))
                    .is_some_and(|obs| obs.conflict);
                if !positions.contains((s.partition, o)) && !conflict {
                    let read_at = std::iter::once(positions.first)
                        .chain(positions.more.iter().copied())
                        .map(|(p, o)| format!("partition {p} offset {o}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.findings.add(Anomaly::InconsistentOffset, || {
                        format!("{}, but was read only at {read_at}", sent())
                    });
                }
            }

            // At more than one offset of its partition.
            if !positions.more.is_empty() {
                let offsets: Vec<i64> = std::iter::once(positions.first)
                    .chain(positions.more.iter().copied())
                    .filter(|&(p, _)| p == s.partition)
                    .map(|(_, o)| o)
                    .collect();
                if offsets.len() > 1 {
                    let class = if s.client == Some(Client::PlainProducer) {
                        Anomaly::DuplicateWithoutIdempotence
                    } else {
                        Anomaly::Duplicate
                    };
                    let client = s
                        .client
                        .map_or("an unknown client".to_string(), |c| format!("{c:?}"));
                    self.findings.add(class, || {
                        format!(
                            "{} ({client}) is at offsets {offsets:?} of partition {}",
                            sent(),
                            s.partition
                        )
                    });
                }
            }
        }
    }

    /// Pass 5: the dependency graph of committed transactions and its
    /// cycles.
    fn check_cycles(&mut self) {
        // Nodes: transactions that got CommitOk, or (with no AbortOk) whose
        // writes the final read_committed log shows.
        let mut visible = vec![false; self.txns.len()];
        let mut partitions: Vec<i32> = self.logs[RC].keys().copied().collect();
        partitions.sort_unstable();
        for log in partitions.iter().filter_map(|p| self.logs[RC].get(p)) {
            for &(_, v) in log {
                if let Some(&i) = self
                    .send_of(v)
                    .and_then(|s| s.txn.and_then(|id| self.txn_ix.get(&id)))
                {
                    visible[i] = true;
                }
            }
        }
        let mut node_of: Vec<Option<usize>> = vec![None; self.txns.len()];
        let mut txn_of_node: Vec<usize> = Vec::new();
        for (i, t) in self.txns.iter().enumerate() {
            if t.commit_ok.is_some() || (t.abort_ok.is_none() && visible[i]) {
                node_of[i] = Some(txn_of_node.len());
                txn_of_node.push(i);
            }
        }
        if txn_of_node.len() < 2 {
            return;
        }
        let mut adj: Vec<Vec<Edge>> = vec![Vec::new(); txn_of_node.len()];
        let node_of_value = |v: Value| -> Option<(usize, u32)> {
            let s = self.send_of(v)?;
            let i = *self.txn_ix.get(&s.txn?)?;
            Some((node_of[i]?, s.process))
        };

        // ww: consecutive transactions in each partition's committed log,
        // and consecutive transactions of one producer there.
        for &p in &partitions {
            let mut prev: Option<(usize, Value)> = None;
            let mut prev_of: HashMap<u32, (usize, Value)> = HashMap::default();
            let Some(log) = self.logs[RC].get(&p) else {
                continue;
            };
            for &(_, v) in log {
                let Some((n, producer)) = node_of_value(v) else {
                    continue;
                };
                let own = prev_of.insert(producer, (n, v));
                if let Some((m, u)) = prev {
                    if m != n {
                        let same_producer = own.is_some_and(|(k, _)| k == m);
                        adj[m].push(Edge {
                            to: n,
                            dep: Dep::Ww {
                                partition: p,
                                from: u,
                                to: v,
                                same_producer,
                            },
                        });
                    }
                }
                if let Some((m, u)) = own {
                    if m != n && prev.is_none_or(|(k, _)| k != m) {
                        adj[m].push(Edge {
                            to: n,
                            dep: Dep::Ww {
                                partition: p,
                                from: u,
                                to: v,
                                same_producer: true,
                            },
                        });
                    }
                }
                prev = Some((n, v));
            }
        }

        // wr: a poll made for a committed transaction read a committed
        // transaction's write.
        for w in &self.wr {
            let (Some(from), Some(to)) = (
                node_of[w.writer],
                self.txn_ix.get(&w.reader).and_then(|&i| node_of[i]),
            ) else {
                continue;
            };
            if from != to {
                adj[from].push(Edge {
                    to,
                    dep: Dep::Wr {
                        partition: w.partition,
                        offset: w.offset,
                        value: w.value,
                        process: w.process,
                        micros: w.micros,
                    },
                });
            }
        }
        for edges in &mut adj {
            edges.sort_by_key(|e| (e.to, e.dep.rank()));
            edges.dedup_by_key(|e| (e.to, e.dep.rank()));
        }

        let mut found: Vec<(Anomaly, Vec<(usize, Edge)>)> = Vec::new();

        // G0: ww edges only.
        let ww = |d: &Dep| matches!(d, Dep::Ww { .. });
        let (comp, comps) = sccs(&adj, ww);
        for members in &comps {
            if let Some(cycle) = cycle_through(&adj, &comp, members, ww, ww) {
                found.push((Anomaly::G0, cycle));
            }
        }

        // G1c: wr edges and same-producer ww edges.
        let wr = |d: &Dep| matches!(d, Dep::Wr { .. });
        let strict = |d: &Dep| {
            matches!(
                d,
                Dep::Wr { .. }
                    | Dep::Ww {
                        same_producer: true,
                        ..
                    }
            )
        };
        let mut in_g1c = vec![false; adj.len()];
        let (comp, comps) = sccs(&adj, strict);
        for members in &comps {
            if let Some(cycle) = cycle_through(&adj, &comp, members, wr, strict) {
                found.push((Anomaly::G1c, cycle));
                for &m in members {
                    in_g1c[m] = true;
                }
            }
        }

        // G1cInterleaved: a wr cycle that needs ww edges across producers.
        let any = |_: &Dep| true;
        let (comp, comps) = sccs(&adj, any);
        for members in &comps {
            if members.iter().any(|&m| in_g1c[m]) {
                continue;
            }
            if let Some(cycle) = cycle_through(&adj, &comp, members, wr, any) {
                found.push((Anomaly::G1cInterleaved, cycle));
            }
        }

        for (anomaly, cycle) in found {
            let description = if self.findings.wants(anomaly) {
                self.describe(&cycle, &txn_of_node)
            } else {
                String::new()
            };
            self.findings.add(anomaly, || description);
        }
    }

    /// A cycle as `txn -dep-> txn -dep-> ... txn`.
    fn describe(&self, cycle: &[(usize, Edge)], txn_of_node: &[usize]) -> String {
        let mut d = String::new();
        for (n, e) in cycle {
            d += &self.txn_name(txn_of_node[*n]);
            d += &self.dep_name(&e.dep);
        }
        if let Some((n, _)) = cycle.first() {
            d += &self.txn_name(txn_of_node[*n]);
        }
        d
    }

    fn txn_name(&self, i: usize) -> String {
        let t = &self.txns[i];
        match t.process {
            Some(p) => format!("txn {} (process {p})", t.id),
            None => format!("txn {}", t.id),
        }
    }

    fn dep_name(&self, dep: &Dep) -> String {
        let at = |v: Value| {
            self.in_log[RC]
                .get(&v)
                .map_or("?".to_string(), |(_, o)| o.to_string())
        };
        match *dep {
            Dep::Ww {
                partition,
                from,
                to,
                ..
            } => format!(
                " -ww[p{partition}: {} at {} before {} at {}]-> ",
                val(from),
                at(from),
                val(to),
                at(to)
            ),
            Dep::Wr {
                partition,
                offset,
                value,
                process,
                micros,
            } => format!(
                " -wr[p{partition}: {} at {offset} polled by process {process} at {}]-> ",
                val(value),
                secs(micros)
            ),
        }
    }

    fn count_stats(&mut self) {
        let st = &mut self.stats;
        for s in &self.sends {
            if s.ack.is_some() {
                st.send_ok += 1;
            }
            if s.failed {
                st.send_failed += 1;
            }
            if s.ack.is_none() && !s.failed {
                st.unanswered += 1;
            }
            let acked = match s.txn.and_then(|id| self.txn_ix.get(&id)) {
                None if s.txn.is_none() => s.ack.is_some(),
                None => false,
                Some(&i) => self.txns[i].commit_ok.is_some(),
            };
            if acked {
                st.acknowledged += 1;
            }
        }
        st.transactions = self.txns.len();
        for t in &self.txns {
            match (t.commit_ok, t.abort_ok) {
                (Some(_), _) => st.committed += 1,
                (None, Some(_)) => st.aborted += 1,
                (None, None) => st.indefinite += 1,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The dependency graph.

/// A dependency between two committed transactions.
#[derive(Debug, Clone, Copy)]
enum Dep {
    /// In `partition`'s committed log, `from` (of the edge's source
    /// transaction) precedes `to` (of its target).
    Ww {
        partition: i32,
        from: Value,
        to: Value,
        /// Both transactions are one producer's.
        same_producer: bool,
    },
    /// A poll made for the target transaction read `value`, which the
    /// source transaction wrote.
    Wr {
        partition: i32,
        offset: i64,
        value: Value,
        process: u32,
        micros: u64,
    },
}

impl Dep {
    fn rank(&self) -> u8 {
        match self {
            Dep::Wr { .. } => 0,
            Dep::Ww {
                same_producer: true,
                ..
            } => 1,
            Dep::Ww { .. } => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    to: usize,
    dep: Dep,
}

const UNSEEN: usize = usize::MAX;

/// Tarjan's strongly connected components over the edges `keep` accepts
/// (iterative, so deep graphs cannot overflow the stack). Returns each
/// node's component and the components of two or more nodes.
fn sccs(adj: &[Vec<Edge>], keep: impl Fn(&Dep) -> bool) -> (Vec<usize>, Vec<Vec<usize>>) {
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut calls: Vec<(usize, usize)> = Vec::new();
    let mut comps: Vec<Vec<usize>> = Vec::new();
    let mut next = 0;
    let mut components = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        calls.push((root, 0));
        while let Some(&(v, i)) = calls.last() {
            if let Some(e) = adj[v].get(i) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                if !keep(&e.dep) {
                    continue;
                }
                let w = e.to;
                if index[w] == UNSEEN {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                calls.pop();
                if let Some(&(u, _)) = calls.last() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut members = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = components;
                        members.push(w);
                        if w == v {
                            break;
                        }
                    }
                    components += 1;
                    if members.len() > 1 {
                        members.reverse();
                        comps.push(members);
                    }
                }
            }
        }
    }
    (comp, comps)
}

/// A cycle inside one component (`members`, all with the same `comp`)
/// that starts with an edge `first` accepts and continues along edges
/// `keep` accepts: as (node, edge out of it) steps.
fn cycle_through(
    adj: &[Vec<Edge>],
    comp: &[usize],
    members: &[usize],
    first: impl Fn(&Dep) -> bool,
    keep: impl Fn(&Dep) -> bool,
) -> Option<Vec<(usize, Edge)>> {
    let c = comp[*members.first()?];
    let (start, edge) = members.iter().find_map(|&v| {
        adj[v]
            .iter()
            .find(|e| first(&e.dep) && keep(&e.dep) && comp[e.to] == c)
            .map(|e| (v, *e))
    })?;
    // Breadth-first from the edge's head back to its tail, inside `c`.
    let mut parent: HashMap<usize, (usize, Edge)> = HashMap::default();
    let mut queue = VecDeque::from([edge.to]);
    let mut seen: HashSet<usize> = HashSet::default();
    seen.insert(edge.to);
    while let Some(v) = queue.pop_front() {
        if v == start {
            break;
        }
        for e in &adj[v] {
            if keep(&e.dep) && comp[e.to] == c && seen.insert(e.to) {
                parent.insert(e.to, (v, *e));
                queue.push_back(e.to);
            }
        }
    }
    let mut back = Vec::new();
    let mut at = start;
    while at != edge.to {
        let &(prev, e) = parent.get(&at)?;
        back.push((prev, e));
        at = prev;
    }
    back.reverse();
    let mut cycle = vec![(start, edge)];
    cycle.extend(back);
    Some(cycle)
}

#[cfg(test)]
mod tests {
    use super::super::history::value;
    use super::*;

    const RU: Isolation = Isolation::ReadUncommitted;
    const RC: Isolation = Isolation::ReadCommitted;
    const PLAIN: Client = Client::PlainProducer;
    const IDEMPOTENT: Client = Client::IdempotentProducer;
    const TXN: Client = Client::TransactionalProducer;
    const ASSIGNED_RC: Client = Client::AssignedConsumer(RC);
    const ASSIGNED_RU: Client = Client::AssignedConsumer(RU);
    const SUBSCRIBED_RU: Client = Client::SubscribedConsumer(RU);
    /// The process that makes the final reads.
    const FINAL: u32 = 99;

    /// A history under construction; each op 10 µs after the one before.
    #[derive(Default)]
    struct H {
        ops: Vec<Op>,
        now: u64,
    }

    impl H {
        fn at(&mut self, process: u32, event: Event) -> &mut H {
            self.now += 10;
            self.ops.push(Op {
                micros: self.now,
                process,
                event,
            });
            self
        }
        fn open(&mut self, p: u32, client: Client) -> &mut H {
            self.at(p, Event::Open { client })
        }
        fn send(&mut self, p: u32, value: Value, partition: i32) -> &mut H {
            self.at(
                p,
                Event::Send {
                    value,
                    partition,
                    txn: None,
                },
            )
        }
        fn send_in(&mut self, p: u32, value: Value, partition: i32, txn: u64) -> &mut H {
            self.at(
                p,
                Event::Send {
                    value,
                    partition,
                    txn: Some(txn),
                },
            )
        }
        fn ok(&mut self, p: u32, value: Value, partition: i32, offset: i64) -> &mut H {
            self.at(
                p,
                Event::SendOk {
                    value,
                    partition,
                    offset,
                },
            )
        }
        fn produce(&mut self, p: u32, value: Value, partition: i32, offset: i64) -> &mut H {
            self.send(p, value, partition)
                .ok(p, value, partition, offset)
        }
        fn produce_in(
            &mut self,
            p: u32,
            v: Value,
            partition: i32,
            offset: i64,
            txn: u64,
        ) -> &mut H {
            self.send_in(p, v, partition, txn)
                .ok(p, v, partition, offset)
        }
        fn fail(&mut self, p: u32, value: Value) -> &mut H {
            let error = "timed out".to_string();
            self.at(p, Event::SendFail { value, error })
        }
        fn begin(&mut self, p: u32, txn: u64) -> &mut H {
            self.at(p, Event::Begin { txn })
        }
        fn commit(&mut self, p: u32, txn: u64) -> &mut H {
            self.at(p, Event::Commit { txn })
                .at(p, Event::CommitOk { txn })
        }
        fn abort(&mut self, p: u32, txn: u64) -> &mut H {
            self.at(p, Event::AbortOk { txn })
        }
        fn assigned(&mut self, p: u32, partitions: &[i32]) -> &mut H {
            let partitions = partitions.to_vec();
            self.at(p, Event::Assigned { partitions })
        }
        fn poll_in(&mut self, p: u32, reads: &[(i32, i64, Value)], txn: Option<u64>) -> &mut H {
            let reads = reads
                .iter()
                .map(|&(partition, offset, value)| Read {
                    partition,
                    offset,
                    value,
                })
                .collect();
            self.at(p, Event::Poll { reads, txn })
        }
        fn poll(&mut self, p: u32, reads: &[(i32, i64, Value)]) -> &mut H {
            self.poll_in(p, reads, None)
        }
        fn final_read(
            &mut self,
            partition: i32,
            isolation: Isolation,
            log: &[(i64, Value)],
        ) -> &mut H {
            let reads = log
                .iter()
                .map(|&(offset, value)| Read {
                    partition,
                    offset,
                    value,
                })
                .collect();
            self.at(
                FINAL,
                Event::FinalRead {
                    partition,
                    isolation,
                    reads,
                },
            )
        }
        /// Both final reads of `partition`, the same log.
        fn finals(&mut self, partition: i32, log: &[(i64, Value)]) -> &mut H {
            self.final_read(partition, RU, log)
                .final_read(partition, RC, log)
        }
        fn check(&self) -> Report {
            check(&self.ops)
        }
    }

    fn v(process: u32, seq: u32) -> Value {
        value(process, seq)
    }

    /// `anomaly` was found exactly `n` times and nothing else was found.
    #[track_caller]
    fn assert_only(report: &Report, anomaly: Anomaly, n: usize) {
        for a in Anomaly::ALL {
            let want = if a == anomaly { n } else { 0 };
            assert_eq!(report.count(a), want, "{a} count\n{report}");
        }
    }

    #[track_caller]
    fn assert_clean(report: &Report) {
        for a in Anomaly::ALL {
            assert_eq!(report.count(a), 0, "{a} count\n{report}");
        }
        assert!(report.unexpected().is_empty());
    }

    #[test]
    fn classes_are_listed_in_declaration_order() {
        for (i, a) in Anomaly::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
        }
        let report = check(&[]);
        let listed: Vec<Anomaly> = report.classes.iter().map(|c| c.anomaly).collect();
        assert_eq!(listed, Anomaly::ALL);
    }

    /// Every client kind, a committed and an aborted transaction, a
    /// transactional poll, a failed send that still reached the log, a
    /// rebalance, and gaps from markers and aborted records.
    fn clean_history() -> H {
        let mut h = H::default();
        h.open(1, PLAIN)
            .open(2, IDEMPOTENT)
            .open(3, TXN)
            .open(4, ASSIGNED_RC)
            .open(5, SUBSCRIBED_RU)
            .open(6, ASSIGNED_RC)
            .at(
                0,
                Event::Fault {
                    description: "partition {1} {2 3}".into(),
                },
            )
            .produce(1, v(1, 0), 0, 0)
            .produce(2, v(2, 0), 0, 1)
            // Transaction 30: p0 offset 2 and p1 offset 0; markers at p0 3, p1 1.
            .begin(3, 30)
            .produce_in(3, v(3, 0), 0, 2, 30)
            .produce_in(3, v(3, 1), 1, 0, 30)
            .commit(3, 30)
            // Transaction 31, aborted: p0 offset 4, marker at 5.
            .begin(3, 31)
            .produce_in(3, v(3, 2), 0, 4, 31)
            .abort(3, 31)
            // A send that timed out but was written, at p0 offset 6.
            .send(1, v(1, 1), 0)
            .fail(1, v(1, 1))
            // Consume-transform-produce: transaction 32 reads 3:1, writes 3:3.
            .assigned(6, &[1])
            .begin(3, 32)
            .poll_in(6, &[(1, 0, v(3, 1))], Some(32))
            .produce_in(3, v(3, 3), 1, 2, 32)
            .commit(3, 32)
            // read_committed: the gap 3..=5 (marker, aborted record, marker).
            .assigned(4, &[0, 1])
            .poll(4, &[(0, 0, v(1, 0)), (0, 1, v(2, 0)), (0, 2, v(3, 0))])
            .poll(4, &[(0, 6, v(1, 1)), (1, 0, v(3, 1)), (1, 2, v(3, 3))])
            // read_uncommitted sees the aborted record; a rebalance lets it
            // go back.
            .assigned(5, &[0])
            .poll(5, &[(0, 0, v(1, 0)), (0, 1, v(2, 0)), (0, 2, v(3, 0))])
            .poll(5, &[(0, 4, v(3, 2)), (0, 6, v(1, 1))])
            .assigned(5, &[0])
            .poll(5, &[(0, 1, v(2, 0))])
            .at(
                0,
                Event::Fault {
                    description: "heal".into(),
                },
            )
            .final_read(
                0,
                RU,
                &[
                    (0, v(1, 0)),
                    (1, v(2, 0)),
                    (2, v(3, 0)),
                    (4, v(3, 2)),
                    (6, v(1, 1)),
                ],
            )
            .final_read(
                0,
                RC,
                &[(0, v(1, 0)), (1, v(2, 0)), (2, v(3, 0)), (6, v(1, 1))],
            )
            .finals(1, &[(0, v(3, 1)), (2, v(3, 3))]);
        h
    }

    /// librdkafka acknowledges a resend the broker reported as already
    /// written with offset -1001 (unknown): still acknowledged, so it must
    /// be in the final log, but it names no offset to compare.
    #[test]
    fn an_acknowledgement_without_an_offset_is_checked_for_loss_only() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, -1001)
            .produce(1, v(1, 2), 0, -1001)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 1))]);
        let report = h.check();
        assert_only(&report, Anomaly::LostWrite, 1);
        assert!(report.examples(Anomaly::LostWrite)[0].contains("1:2"));
    }

    #[test]
    fn clean_history_with_every_client_kind_reports_nothing() {
        let report = clean_history().check();
        assert_clean(&report);
        let s = &report.stats;
        assert_eq!(s.sends, 7);
        assert_eq!(s.send_ok, 6);
        assert_eq!(s.send_failed, 1);
        assert_eq!(s.unanswered, 0);
        // 1:0, 2:0 (SendOk) and 3:0, 3:1, 3:3 (committed).
        assert_eq!(s.acknowledged, 5);
        assert_eq!(
            (s.transactions, s.committed, s.aborted, s.indefinite),
            (3, 2, 1, 0)
        );
        assert_eq!((s.polls, s.reads), (6, 13));
        assert_eq!(s.faults, 2);
        let p0 = FinalRecords {
            read_uncommitted: 5,
            read_committed: 4,
        };
        assert_eq!(s.final_records.get(&0), Some(&p0));
    }

    #[test]
    fn report_prints_every_class_and_serializes_to_json() {
        let report = clean_history().check();
        let table = report.summary();
        for a in Anomaly::ALL {
            assert!(table.contains(a.name()), "{table}");
        }
        assert!(table.contains("unexpected: none"), "{table}");
        let json = serde_json::to_value(&report).expect("a report serializes");
        assert_eq!(
            json["classes"].as_array().map(Vec::len),
            Some(Anomaly::ALL.len())
        );
        assert_eq!(json["classes"][0]["anomaly"], "LostWrite");
        assert_eq!(json["stats"]["sends"], 7);
    }

    // --- LostWrite

    #[test]
    fn acknowledged_send_missing_from_the_final_log_is_a_lost_write() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .finals(0, &[(0, v(1, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::LostWrite, 1);
        assert_eq!(report.unexpected(), vec![Anomaly::LostWrite]);
        assert!(report.examples(Anomaly::LostWrite)[0].contains("1:1"));
    }

    #[test]
    fn committed_transaction_missing_from_the_read_committed_log_is_a_lost_write() {
        let mut h = H::default();
        h.open(1, TXN)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .produce_in(1, v(1, 1), 0, 1, 10)
            .commit(1, 10)
            .final_read(0, RU, &[(0, v(1, 0)), (1, v(1, 1))])
            .final_read(0, RC, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::LostWrite, 1);
    }

    #[test]
    fn polled_value_missing_from_the_final_log_is_a_lost_write() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .open(2, ASSIGNED_RU)
            .send(1, v(1, 0), 0)
            .fail(1, v(1, 0))
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .finals(0, &[]);
        assert_only(&h.check(), Anomaly::LostWrite, 1);
    }

    #[test]
    fn failed_or_unanswered_send_missing_from_the_log_is_not_lost() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .send(1, v(1, 0), 0)
            .fail(1, v(1, 0))
            .send(1, v(1, 1), 0)
            .finals(0, &[]);
        let report = h.check();
        assert_clean(&report);
        assert_eq!((report.stats.send_failed, report.stats.unanswered), (1, 1));
    }

    #[test]
    fn aborted_transaction_missing_from_the_log_is_not_lost() {
        let mut h = H::default();
        h.open(1, TXN)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .abort(1, 10)
            .finals(0, &[]);
        assert_clean(&h.check());
    }

    // --- Duplicate

    #[test]
    fn idempotent_value_at_two_offsets_is_a_duplicate() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .produce(1, v(1, 0), 0, 0)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::Duplicate, 1);
        assert!(report.examples(Anomaly::Duplicate)[0].contains("[0, 1]"));
    }

    #[test]
    fn transactional_value_at_two_offsets_is_a_duplicate() {
        let mut h = H::default();
        h.open(1, TXN)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .commit(1, 10)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 0))]);
        assert_only(&h.check(), Anomaly::Duplicate, 1);
    }

    #[test]
    fn value_polled_at_two_offsets_is_a_duplicate() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .open(2, ASSIGNED_RU)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .assigned(2, &[0])
            .poll(2, &[(0, 1, v(1, 0))])
            .finals(0, &[(0, v(1, 0)), (1, v(1, 1))]);
        // The poll also put two values at offset 1.
        let report = h.check();
        assert_eq!(report.count(Anomaly::Duplicate), 1, "{report}");
        assert_eq!(report.count(Anomaly::InconsistentOffset), 1, "{report}");
    }

    #[test]
    fn plain_producer_duplicate_is_allowed_and_not_a_duplicate() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .produce(1, v(1, 0), 0, 1)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::DuplicateWithoutIdempotence, 1);
        assert!(report.unexpected().is_empty());
    }

    // --- InconsistentOffset

    #[test]
    fn two_values_at_one_offset_are_inconsistent() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .open(2, PLAIN)
            .produce(1, v(1, 0), 0, 0)
            .send(2, v(2, 0), 0)
            .fail(2, v(2, 0))
            .finals(0, &[(0, v(2, 0)), (1, v(1, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::InconsistentOffset, 1);
        let example = &report.examples(Anomaly::InconsistentOffset)[0];
        assert!(example.contains("offset 0 holds 1:0"), "{example}");
    }

    #[test]
    fn value_acknowledged_at_one_offset_and_read_at_another_is_inconsistent() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .produce(1, v(1, 0), 0, 5)
            .finals(0, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::InconsistentOffset, 1);
    }

    #[test]
    fn value_read_in_another_partition_is_inconsistent() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .send(1, v(1, 0), 0)
            .fail(1, v(1, 0))
            .finals(0, &[])
            .finals(1, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::InconsistentOffset, 1);
    }

    // --- NonMonotonicPoll

    fn two_records() -> H {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .open(2, ASSIGNED_RU)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 1))])
            .assigned(2, &[0]);
        h
    }

    #[test]
    fn consumer_reading_an_offset_again_is_non_monotonic() {
        let mut h = two_records();
        h.poll(2, &[(0, 0, v(1, 0)), (0, 1, v(1, 1))])
            .poll(2, &[(0, 1, v(1, 1))]);
        assert_only(&h.check(), Anomaly::NonMonotonicPoll, 1);
    }

    #[test]
    fn consumer_going_back_within_one_poll_is_non_monotonic() {
        let mut h = two_records();
        h.poll(2, &[(0, 1, v(1, 1)), (0, 0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::NonMonotonicPoll, 1);
    }

    #[test]
    fn assignment_lets_a_consumer_go_back() {
        let mut h = two_records();
        h.poll(2, &[(0, 0, v(1, 0)), (0, 1, v(1, 1))])
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0)), (0, 1, v(1, 1))]);
        assert_clean(&h.check());
    }

    #[test]
    fn assignment_of_other_partitions_does_not_reset_this_one() {
        let mut h = two_records();
        h.poll(2, &[(0, 0, v(1, 0)), (0, 1, v(1, 1))])
            .assigned(2, &[1])
            .poll(2, &[(0, 0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::NonMonotonicPoll, 1);
    }

    #[test]
    fn final_read_going_back_is_non_monotonic() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .final_read(0, RU, &[(0, v(1, 0)), (1, v(1, 1))]);
        let reads = vec![
            Read {
                partition: 0,
                offset: 1,
                value: v(1, 1),
            },
            Read {
                partition: 0,
                offset: 0,
                value: v(1, 0),
            },
        ];
        h.at(
            FINAL,
            Event::FinalRead {
                partition: 0,
                isolation: RC,
                reads,
            },
        );
        assert_only(&h.check(), Anomaly::NonMonotonicPoll, 1);
    }

    // --- SkippedPoll

    #[test]
    fn consumer_jumping_over_a_record_skips() {
        let mut h = H::default();
        h.open(1, IDEMPOTENT)
            .open(2, ASSIGNED_RU)
            .produce(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .produce(1, v(1, 2), 0, 2)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .poll(2, &[(0, 2, v(1, 2))])
            .finals(0, &[(0, v(1, 0)), (1, v(1, 1)), (2, v(1, 2))]);
        let report = h.check();
        assert_only(&report, Anomaly::SkippedPoll, 1);
        assert!(report.examples(Anomaly::SkippedPoll)[0].contains("1:1 at offset 1"));
    }

    /// p0: 0 plain, 1 an aborted transaction's record, 2 its marker, 3 plain.
    fn aborted_gap(consumer: Client) -> H {
        let mut h = H::default();
        h.open(1, PLAIN)
            .open(2, TXN)
            .open(3, consumer)
            .produce(1, v(1, 0), 0, 0)
            .begin(2, 20)
            .produce_in(2, v(2, 0), 0, 1, 20)
            .abort(2, 20)
            .produce(1, v(1, 1), 0, 3)
            .assigned(3, &[0])
            .poll(3, &[(0, 0, v(1, 0)), (0, 3, v(1, 1))])
            .final_read(0, RU, &[(0, v(1, 0)), (1, v(2, 0)), (3, v(1, 1))])
            .final_read(0, RC, &[(0, v(1, 0)), (3, v(1, 1))]);
        h
    }

    #[test]
    fn aborted_records_are_not_skips_under_read_committed() {
        assert_clean(&aborted_gap(ASSIGNED_RC).check());
    }

    #[test]
    fn read_uncommitted_consumer_jumping_over_an_aborted_record_skips() {
        assert_only(&aborted_gap(ASSIGNED_RU).check(), Anomaly::SkippedPoll, 1);
    }

    // --- AbortedRead and UncommittedRead

    #[test]
    fn read_committed_poll_of_an_aborted_transaction_is_an_aborted_read() {
        let mut h = H::default();
        h.open(1, TXN)
            .open(2, ASSIGNED_RC)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .abort(1, 10)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .final_read(0, RU, &[(0, v(1, 0))])
            .final_read(0, RC, &[]);
        let report = h.check();
        assert_only(&report, Anomaly::AbortedRead, 1);
        assert!(report.examples(Anomaly::AbortedRead)[0].contains("AbortOk"));
    }

    #[test]
    fn read_committed_poll_of_a_value_the_log_aborted_is_an_aborted_read() {
        let mut h = H::default();
        h.open(1, TXN)
            .open(2, ASSIGNED_RC)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .at(1, Event::Commit { txn: 10 })
            .at(
                1,
                Event::CommitFail {
                    txn: 10,
                    error: "timed out".into(),
                },
            )
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .final_read(0, RU, &[(0, v(1, 0))])
            .final_read(0, RC, &[]);
        let report = h.check();
        assert_only(&report, Anomaly::AbortedRead, 1);
        assert!(report.examples(Anomaly::AbortedRead)[0].contains("aborted per the log"));
    }

    #[test]
    fn read_committed_final_log_holding_an_aborted_value_is_an_aborted_read() {
        let mut h = H::default();
        h.open(1, TXN)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .abort(1, 10)
            .finals(0, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::AbortedRead, 1);
    }

    #[test]
    fn read_uncommitted_consumer_may_read_aborted_values() {
        let mut h = H::default();
        h.open(1, TXN)
            .open(2, ASSIGNED_RU)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .abort(1, 10)
            .final_read(0, RU, &[(0, v(1, 0))])
            .final_read(0, RC, &[]);
        assert_clean(&h.check());
    }

    #[test]
    fn read_committed_poll_before_commit_is_an_uncommitted_read() {
        let mut h = H::default();
        h.open(1, TXN)
            .open(2, ASSIGNED_RC)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 0, 10)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(1, 0))])
            .commit(1, 10)
            .finals(0, &[(0, v(1, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::UncommittedRead, 1);
        assert_eq!(report.unexpected(), vec![Anomaly::UncommittedRead]);
    }

    // --- G0, G1c

    /// Two committed transactions of processes 1 and 2.
    fn two_transactions() -> H {
        let mut h = H::default();
        h.open(1, TXN)
            .open(2, TXN)
            .open(3, ASSIGNED_RC)
            .begin(1, 10)
            .begin(2, 20);
        h
    }

    #[test]
    fn transactions_ordered_differently_in_two_partitions_are_g0() {
        let mut h = two_transactions();
        h.produce_in(1, v(1, 0), 0, 0, 10)
            .produce_in(2, v(2, 0), 1, 0, 20)
            .produce_in(2, v(2, 1), 0, 1, 20)
            .produce_in(1, v(1, 1), 1, 1, 10)
            .commit(1, 10)
            .commit(2, 20)
            .finals(0, &[(0, v(1, 0)), (1, v(2, 1))])
            .finals(1, &[(0, v(2, 0)), (1, v(1, 1))]);
        let report = h.check();
        assert_only(&report, Anomaly::G0, 1);
        assert!(report.unexpected().is_empty());
        let example = &report.examples(Anomaly::G0)[0];
        assert!(
            example.starts_with("txn 10 (process 1) -ww[p0"),
            "{example}"
        );
    }

    #[test]
    fn transactions_reading_each_others_writes_are_g1c() {
        let mut h = two_transactions();
        h.produce_in(1, v(1, 0), 0, 0, 10)
            .produce_in(2, v(2, 0), 1, 0, 20)
            .commit(1, 10)
            .commit(2, 20)
            .assigned(3, &[0, 1])
            .poll_in(3, &[(0, 0, v(1, 0))], Some(20))
            .poll_in(3, &[(1, 0, v(2, 0))], Some(10))
            .finals(0, &[(0, v(1, 0))])
            .finals(1, &[(0, v(2, 0))]);
        let report = h.check();
        assert_only(&report, Anomaly::G1c, 1);
        assert_eq!(report.unexpected(), vec![Anomaly::G1c]);
    }

    #[test]
    fn wr_cycle_through_one_producers_write_order_is_g1c() {
        // Process 1 runs 10, then 11, which reads 10's write (10 -wr-> 11);
        // but in p0 the log puts 11's record before 10's (11 -ww-> 10), an
        // order one producer's transactions cannot have.
        let mut h = H::default();
        h.open(1, TXN)
            .open(3, ASSIGNED_RC)
            .begin(1, 10)
            .produce_in(1, v(1, 0), 0, 1, 10)
            .produce_in(1, v(1, 1), 1, 0, 10)
            .commit(1, 10)
            .begin(1, 11)
            .assigned(3, &[1])
            .poll_in(3, &[(1, 0, v(1, 1))], Some(11))
            .produce_in(1, v(1, 2), 0, 0, 11)
            .commit(1, 11)
            .finals(0, &[(0, v(1, 2)), (1, v(1, 0))])
            .finals(1, &[(0, v(1, 1))]);
        // The acknowledged offsets agree with the log (11's record first),
        // so only the cycle is found.
        assert_only(&h.check(), Anomaly::G1c, 1);
    }

    #[test]
    fn wr_cycle_through_two_producers_write_order_is_allowed() {
        let mut h = two_transactions();
        h.produce_in(2, v(2, 0), 0, 0, 20)
            .produce_in(1, v(1, 0), 0, 1, 10)
            .produce_in(1, v(1, 1), 1, 0, 10)
            .commit(1, 10)
            .assigned(3, &[1])
            .poll_in(3, &[(1, 0, v(1, 1))], Some(20))
            .commit(2, 20)
            .finals(0, &[(0, v(2, 0)), (1, v(1, 0))])
            .finals(1, &[(0, v(1, 1))]);
        let report = h.check();
        assert_only(&report, Anomaly::G1cInterleaved, 1);
        assert!(report.unexpected().is_empty());
    }

    #[test]
    fn aborted_transactions_are_not_in_cycles() {
        let mut h = two_transactions();
        h.produce_in(1, v(1, 0), 0, 0, 10)
            .produce_in(2, v(2, 0), 1, 0, 20)
            .produce_in(2, v(2, 1), 0, 1, 20)
            .produce_in(1, v(1, 1), 1, 1, 10)
            .commit(1, 10)
            .abort(2, 20)
            .final_read(0, RU, &[(0, v(1, 0)), (1, v(2, 1))])
            .final_read(0, RC, &[(0, v(1, 0))])
            .final_read(1, RU, &[(0, v(2, 0)), (1, v(1, 1))])
            .final_read(1, RC, &[(1, v(1, 1))]);
        assert_clean(&h.check());
    }

    // --- UnknownValue, Incomplete

    #[test]
    fn value_nobody_sent_is_unknown() {
        let mut h = H::default();
        h.open(2, ASSIGNED_RU)
            .assigned(2, &[0])
            .poll(2, &[(0, 0, v(9, 0))])
            .finals(0, &[]);
        let report = h.check();
        assert_only(&report, Anomaly::UnknownValue, 1);
        assert!(report.examples(Anomaly::UnknownValue)[0].contains("9:0"));
    }

    #[test]
    fn partition_without_final_reads_is_incomplete_not_passing() {
        let mut h = H::default();
        h.open(1, PLAIN).produce(1, v(1, 0), 0, 0);
        let report = h.check();
        assert_only(&report, Anomaly::Incomplete, 2);
        assert_eq!(report.unexpected(), vec![Anomaly::Incomplete]);
    }

    #[test]
    fn partition_missing_one_final_read_is_incomplete() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .produce(1, v(1, 0), 0, 0)
            .final_read(0, RU, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::Incomplete, 1);
    }

    #[test]
    fn process_without_open_is_incomplete() {
        let mut h = H::default();
        h.produce(1, v(1, 0), 0, 0).finals(0, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::Incomplete, 1);
    }

    #[test]
    fn poll_by_a_producer_is_incomplete() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .produce(1, v(1, 0), 0, 0)
            .poll(1, &[(0, 0, v(1, 0))])
            .finals(0, &[(0, v(1, 0))]);
        assert_only(&h.check(), Anomaly::Incomplete, 1);
    }

    #[test]
    fn acknowledgement_without_send_and_value_sent_twice_are_incomplete() {
        let mut h = H::default();
        h.open(1, PLAIN)
            .ok(1, v(1, 0), 0, 0)
            .produce(1, v(1, 1), 0, 1)
            .send(1, v(1, 1), 0)
            .finals(0, &[(0, v(1, 0)), (1, v(1, 1))]);
        // 1:0 is read but has no Send: also an unknown value.
        let report = h.check();
        assert_eq!(report.count(Anomaly::Incomplete), 2, "{report}");
        assert_eq!(report.count(Anomaly::UnknownValue), 1, "{report}");
    }

    #[test]
    fn empty_history_is_incomplete() {
        assert_only(&check(&[]), Anomaly::Incomplete, 1);
    }

    // --- Size

    /// About `n` ops: plain and idempotent sends, transactions of four
    /// sends over 8 partitions, two consumers polling every 200 records,
    /// and the final reads.
    fn big_history(n: usize) -> Vec<Op> {
        let mut ops: Vec<Op> = Vec::with_capacity(n + n / 50);
        let mut now = 0u64;
        let mut push = |ops: &mut Vec<Op>, process: u32, event: Event| {
            now += 1;
            ops.push(Op {
                micros: now,
                process,
                event,
            });
        };
        let parts = 8usize;
        let mut logs: Vec<Vec<(i64, Value)>> = vec![Vec::new(); parts];
        let mut next = vec![0i64; parts];
        let mut seq = [0u32; 4];
        let mut read_upto = [vec![0usize; parts], vec![0usize; parts]];
        for (p, c) in [
            (1, PLAIN),
            (2, IDEMPOTENT),
            (3, TXN),
            (4, SUBSCRIBED_RU),
            (5, ASSIGNED_RC),
        ] {
            push(&mut ops, p, Event::Open { client: c });
        }
        let all: Vec<i32> = (0..parts as i32).collect();
        push(
            &mut ops,
            4,
            Event::Assigned {
                partitions: all.clone(),
            },
        );
        push(
            &mut ops,
            5,
            Event::Assigned {
                partitions: all.clone(),
            },
        );
        let mut i = 0usize;
        while ops.len() < n {
            i += 1;
            if i.is_multiple_of(20) {
                let txn = i as u64;
                push(&mut ops, 3, Event::Begin { txn });
                let mut touched = Vec::new();
                for k in 0..4 {
                    let p = (i + k) % parts;
                    let value = value(3, seq[3]);
                    seq[3] += 1;
                    let partition = p as i32;
                    push(
                        &mut ops,
                        3,
                        Event::Send {
                            value,
                            partition,
                            txn: Some(txn),
                        },
                    );
                    let offset = next[p];
                    push(
                        &mut ops,
                        3,
                        Event::SendOk {
                            value,
                            partition,
                            offset,
                        },
                    );
                    logs[p].push((offset, value));
                    next[p] += 1;
                    touched.push(p);
                }
                push(&mut ops, 3, Event::Commit { txn });
                push(&mut ops, 3, Event::CommitOk { txn });
                touched.sort_unstable();
                touched.dedup();
                for p in touched {
                    next[p] += 1; // the commit marker
                }
            } else {
                let process = 1 + (i % 2) as u32;
                let p = i % parts;
                let value = value(process, seq[process as usize]);
                seq[process as usize] += 1;
                let partition = p as i32;
                push(
                    &mut ops,
                    process,
                    Event::Send {
                        value,
                        partition,
                        txn: None,
                    },
                );
                let offset = next[p];
                push(
                    &mut ops,
                    process,
                    Event::SendOk {
                        value,
                        partition,
                        offset,
                    },
                );
                logs[p].push((offset, value));
                next[p] += 1;
            }
            if i.is_multiple_of(200) {
                for (c, upto) in read_upto.iter_mut().enumerate() {
                    let mut reads = Vec::new();
                    for (p, (log, from)) in logs.iter().zip(upto.iter_mut()).enumerate() {
                        for &(offset, value) in &log[*from..] {
                            reads.push(Read {
                                partition: p as i32,
                                offset,
                                value,
                            });
                        }
                        *from = log.len();
                    }
                    push(&mut ops, 4 + c as u32, Event::Poll { reads, txn: None });
                }
            }
        }
        for (p, log) in logs.iter().enumerate() {
            for isolation in [RU, RC] {
                let reads = log
                    .iter()
                    .map(|&(offset, value)| Read {
                        partition: p as i32,
                        offset,
                        value,
                    })
                    .collect();
                push(
                    &mut ops,
                    FINAL,
                    Event::FinalRead {
                        partition: p as i32,
                        isolation,
                        reads,
                    },
                );
            }
        }
        ops
    }

    #[test]
    fn million_op_history_checks_in_seconds() {
        let ops = big_history(1_000_000);
        let started = std::time::Instant::now();
        let report = check(&ops);
        let took = started.elapsed();
        eprintln!("checked {} ops in {took:?}", ops.len());
        assert_clean(&report);
        assert!(report.stats.reads > 700_000, "{report}");
        assert!(took < std::time::Duration::from_secs(10), "took {took:?}");
    }
}
