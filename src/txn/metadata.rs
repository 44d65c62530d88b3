//! The metadata of one transactional id and Kafka's rules for moving it
//! between states (Kafka's TransactionMetadata and the checks of its
//! TransactionCoordinator, Transactions V1).
//!
//! Pure: time and new producer ids come in, the next metadata or a Kafka
//! error code comes out. Writing the next metadata to `__transaction_state`
//! and the markers to partitions is the coordinator's job.

use std::collections::BTreeSet;

/// No producer id / epoch (Kafka's RecordBatch.NO_PRODUCER_ID / _EPOCH).
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;

/// Kafka's TransactionState, with the codes stored in TransactionLogValue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(code: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name DescribeTransactions and ListTransactions report.
    pub fn as_str(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn is_prepare(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// One transactional id's producer and its current transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion).
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, to recognise a retried InitProducerId.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// The partitions of the ongoing (or completing) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction started; -1 when there is none.
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// Kafka's `isEpochExhausted`: the epoch cannot be bumped twice more.
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

const CONCURRENT_TRANSACTIONS: i16 = 51;
const INVALID_TXN_STATE: i16 = 48;
const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
const PRODUCER_FENCED: i16 = 90;
const INVALID_PRODUCER_EPOCH: i16 = 47;

/// What InitProducerId must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// Persist this metadata, then answer with its producer id and epoch.
    Ready(TxnMetadata),
    /// An ongoing transaction is in the way: persist this metadata (its
    /// epoch bumped, in PrepareAbort), write abort markers with that epoch,
    /// complete, and answer CONCURRENT_TRANSACTIONS so the client retries.
    FenceAndAbort(TxnMetadata),
}

/// What EndTxn must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndOutcome {
    /// A retry of a completed EndTxn: answer OK, nothing to write.
    AlreadyDone,
    /// Persist this metadata (PrepareCommit / PrepareAbort), write the markers.
    Prepare(TxnMetadata),
}

impl TxnMetadata {
    /// A transactional id seen for the first time (Kafka creates it Empty
    /// with epoch -1, so the first InitProducerId bumps it to 0).
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now: i64) -> Self {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            last_producer_epoch: NO_PRODUCER_EPOCH,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now,
        }
    }

    /// Kafka's `isValidProducerId` for a KIP-360 InitProducerId that names
    /// the producer's current id and epoch.
    fn is_valid_producer(&self, expected: (i64, i16)) -> bool {
        self.producer_epoch == NO_PRODUCER_EPOCH
            || expected.0 == self.producer_id
            || (expected.0 == self.last_producer_id && epoch_exhausted(expected.1))
    }

    /// InitProducerId with a transactional id (Kafka's
    /// `prepareInitProducerIdTransit`). `new_producer_id` is called only when
    /// the epoch is exhausted and the id must rotate.
    pub fn init_producer_id(
        &self,
        expected: Option<(i64, i16)>,
        timeout_ms: i32,
        now: i64,
        new_producer_id: impl FnOnce() -> Result<i64, i16>,
    ) -> Result<InitOutcome, i16> {
        if let Some(e) = expected {
            if !self.is_valid_producer(e) {
                return Err(PRODUCER_FENCED);
            }
        }
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(CONCURRENT_TRANSACTIONS),
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = self.clone();
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now;
                if epoch_exhausted(self.producer_epoch)
                    && expected.is_none_or(|e| e.1 == self.producer_epoch)
                {
                    // Rotate: a new producer id starting at epoch 0.
                    next.producer_id = new_producer_id()?;
                    next.producer_epoch = 0;
                    next.last_producer_id = self.producer_id;
                    next.last_producer_epoch = if expected.is_some() {
                        self.producer_epoch
                    } else {
                        NO_PRODUCER_EPOCH
                    };
                    return Ok(InitOutcome::Ready(next));
                }
                let bumped = self.producer_epoch.saturating_add(1);
                match expected {
                    None => {
                        next.producer_epoch = bumped;
                        next.last_producer_epoch = NO_PRODUCER_EPOCH;
                    }
                    Some((_, epoch))
                        if self.producer_epoch == NO_PRODUCER_EPOCH
                            || epoch == self.producer_epoch =>
                    {
                        next.producer_epoch = bumped;
                        next.last_producer_epoch = self.producer_epoch;
                    }
                    // A retry of an InitProducerId whose answer was lost.
                    Some((_, epoch)) if epoch == self.last_producer_epoch => {}
                    Some(_) => return Err(PRODUCER_FENCED),
                }
                Ok(InitOutcome::Ready(next))
            }
            TxnState::Ongoing => Ok(InitOutcome::FenceAndAbort(self.fence_and_abort(now))),
            TxnState::Dead | TxnState::PrepareEpochFence => Err(INVALID_TXN_STATE),
        }
    }

    /// Kafka's `prepareFenceProducerEpoch` followed by the coordinator's own
    /// abort: the epoch is bumped (the old producer is fenced) and the
    /// transaction goes to PrepareAbort under the new epoch.
    pub fn fence_and_abort(&self, now: i64) -> TxnMetadata {
        let mut next = self.clone();
        // PrepareEpochFence is the transient state between these two lines.
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.last_producer_epoch = NO_PRODUCER_EPOCH;
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now;
        next
    }

    /// Checks the producer of an AddPartitionsToTxn / AddOffsetsToTxn /
    /// TxnOffsetCommit against this transactional id.
    pub fn check_producer(&self, producer_id: i64, producer_epoch: i16) -> Result<(), i16> {
        if self.producer_id != producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if self.producer_epoch != producer_epoch {
            return Err(PRODUCER_FENCED);
        }
        Ok(())
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn): Ok(None) when the partitions
    /// are already in the ongoing transaction (nothing to write).
    pub fn add_partitions(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now: i64,
    ) -> Result<Option<TxnMetadata>, i16> {
        self.check_producer(producer_id, producer_epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => Err(CONCURRENT_TRANSACTIONS),
            TxnState::Ongoing if partitions.iter().all(|p| self.partitions.contains(p)) => Ok(None),
            TxnState::Ongoing
            | TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort => {
                let mut next = self.clone();
                if self.state != TxnState::Ongoing {
                    next.start_ms = now;
                    next.partitions.clear();
                }
                next.state = TxnState::Ongoing;
                next.partitions.extend(partitions.iter().cloned());
                next.last_update_ms = now;
                Ok(Some(next))
            }
            TxnState::Dead | TxnState::PrepareEpochFence => Err(INVALID_TXN_STATE),
        }
    }

    /// EndTxn from the client (Kafka's `handleEndTransaction`, Transactions V1).
    pub fn end_txn(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now: i64,
    ) -> Result<EndOutcome, i16> {
        if self.producer_id != producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if producer_epoch != self.producer_epoch {
            return Err(PRODUCER_FENCED);
        }
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now;
                Ok(EndOutcome::Prepare(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndOutcome::AlreadyDone)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Err(CONCURRENT_TRANSACTIONS)
            }
            _ => Err(INVALID_TXN_STATE),
        }
    }

    /// After every marker is durable: CompleteCommit / CompleteAbort.
    pub fn complete(&self, now: i64) -> TxnMetadata {
        debug_assert!(self.state.is_prepare());
        let mut next = self.clone();
        next.state = if self.state == TxnState::PrepareCommit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        next.partitions.clear();
        next.last_update_ms = now;
        next
    }

    /// Ongoing for longer than its timeout (Kafka's timed-out check).
    pub fn is_timed_out(&self, now: i64) -> bool {
        self.state == TxnState::Ongoing
            && self.start_ms.saturating_add(i64::from(self.timeout_ms)) < now
    }

    /// Idle long enough for `transactional.id.expiration.ms` to remove it.
    pub fn is_expired(&self, now: i64, expiration_ms: i64) -> bool {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        ) && self.last_update_ms.saturating_add(expiration_ms) <= now
    }
}

/// Before KIP-588 (InitProducerId v4, AddPartitionsToTxn / AddOffsetsToTxn /
/// EndTxn v2) clients do not know PRODUCER_FENCED: Kafka answers
/// INVALID_PRODUCER_EPOCH instead.
pub fn fenced_for_version(code: i16, version: i16, first_version_with_fenced: i16) -> i16 {
    if code == PRODUCER_FENCED && version < first_version_with_fenced {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    const NOW: i64 = 1_000;

    fn fresh() -> TxnMetadata {
        TxnMetadata::new("tx", 7, 60_000, 0)
    }

    fn no_new_id() -> Result<i64, i16> {
        panic!("no producer id rotation expected")
    }

    fn ready(o: InitOutcome) -> TxnMetadata {
        match o {
            InitOutcome::Ready(m) => m,
            other => panic!("expected Ready, got {other:?}"),
        }
    }

    fn ongoing(m: &TxnMetadata) -> TxnMetadata {
        m.add_partitions(m.producer_id, m.producer_epoch, &[("t".into(), 0)], NOW)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn error_codes_are_kafkas() {
        assert_eq!(
            CONCURRENT_TRANSACTIONS,
            ResponseError::ConcurrentTransactions.code()
        );
        assert_eq!(INVALID_TXN_STATE, ResponseError::InvalidTxnState.code());
        assert_eq!(
            INVALID_PRODUCER_ID_MAPPING,
            ResponseError::InvalidProducerIdMapping.code()
        );
        assert_eq!(PRODUCER_FENCED, ResponseError::ProducerFenced.code());
        assert_eq!(
            INVALID_PRODUCER_EPOCH,
            ResponseError::InvalidProducerEpoch.code()
        );
        for s in TxnState::ALL {
            assert_eq!(TxnState::from_code(s.code()), Some(s));
        }
        assert_eq!(TxnState::from_code(8), None);
    }

    #[test]
    fn first_init_gives_epoch_zero_and_each_init_bumps() {
        let m = ready(
            fresh()
                .init_producer_id(None, 30_000, NOW, no_new_id)
                .unwrap(),
        );
        assert_eq!((m.producer_id, m.producer_epoch), (7, 0));
        assert_eq!(m.state, TxnState::Empty);
        assert_eq!(m.timeout_ms, 30_000);
        let m2 = ready(m.init_producer_id(None, 30_000, NOW, no_new_id).unwrap());
        assert_eq!((m2.producer_id, m2.producer_epoch), (7, 1));
        assert_eq!(m2.last_producer_epoch, NO_PRODUCER_EPOCH);
    }

    #[test]
    fn init_on_an_ongoing_transaction_fences_and_aborts_with_a_bumped_epoch() {
        let m = ready(
            fresh()
                .init_producer_id(None, 30_000, NOW, no_new_id)
                .unwrap(),
        );
        let m = ongoing(&m);
        match m.init_producer_id(None, 30_000, NOW, no_new_id).unwrap() {
            InitOutcome::FenceAndAbort(next) => {
                assert_eq!(next.state, TxnState::PrepareAbort);
                assert_eq!(next.producer_epoch, 1);
                assert_eq!(next.partitions, m.partitions);
                // The fenced producer's EndTxn now fails.
                assert_eq!(m.producer_epoch, 0);
                assert_eq!(next.end_txn(7, 0, true, NOW), Err(PRODUCER_FENCED));
                // While completing, a retried InitProducerId waits.
                assert_eq!(
                    next.init_producer_id(None, 30_000, NOW, no_new_id),
                    Err(CONCURRENT_TRANSACTIONS)
                );
                let done = next.complete(NOW);
                assert_eq!(done.state, TxnState::CompleteAbort);
                assert!(done.partitions.is_empty());
                let again = ready(done.init_producer_id(None, 30_000, NOW, no_new_id).unwrap());
                assert_eq!(again.producer_epoch, 2);
            }
            other => panic!("expected a fence, got {other:?}"),
        }
    }

    #[test]
    fn commit_and_abort_follow_kafkas_transitions() {
        let m = ready(
            fresh()
                .init_producer_id(None, 30_000, NOW, no_new_id)
                .unwrap(),
        );
        assert_eq!(m.end_txn(7, 0, true, NOW), Err(INVALID_TXN_STATE));
        assert_eq!(m.end_txn(7, 0, false, NOW), Err(INVALID_TXN_STATE));
        let o = ongoing(&m);
        assert_eq!(o.state, TxnState::Ongoing);
        assert_eq!(o.start_ms, NOW);
        // Adding the same partition again writes nothing.
        assert_eq!(
            o.add_partitions(7, 0, &[("t".into(), 0)], NOW + 1),
            Ok(None)
        );
        let EndOutcome::Prepare(p) = o.end_txn(7, 0, true, NOW).unwrap() else {
            panic!("expected prepare")
        };
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(p.end_txn(7, 0, true, NOW), Err(CONCURRENT_TRANSACTIONS));
        assert_eq!(p.end_txn(7, 0, false, NOW), Err(INVALID_TXN_STATE));
        assert_eq!(
            p.add_partitions(7, 0, &[("t".into(), 1)], NOW),
            Err(CONCURRENT_TRANSACTIONS)
        );
        let c = p.complete(NOW);
        assert_eq!(c.state, TxnState::CompleteCommit);
        // A retried commit is answered OK; an abort is not allowed.
        assert_eq!(c.end_txn(7, 0, true, NOW), Ok(EndOutcome::AlreadyDone));
        assert_eq!(c.end_txn(7, 0, false, NOW), Err(INVALID_TXN_STATE));
        // The next transaction starts afresh.
        let n = c
            .add_partitions(7, 0, &[("u".into(), 2)], NOW + 5)
            .unwrap()
            .unwrap();
        assert_eq!(n.partitions.len(), 1);
        assert_eq!(n.start_ms, NOW + 5);
    }

    #[test]
    fn wrong_producer_is_rejected() {
        let m = ongoing(&ready(
            fresh()
                .init_producer_id(None, 30_000, NOW, no_new_id)
                .unwrap(),
        ));
        assert_eq!(m.end_txn(8, 0, true, NOW), Err(INVALID_PRODUCER_ID_MAPPING));
        assert_eq!(m.end_txn(7, 1, true, NOW), Err(PRODUCER_FENCED));
        assert_eq!(
            m.add_partitions(7, 3, &[("t".into(), 0)], NOW),
            Err(PRODUCER_FENCED)
        );
        assert_eq!(
            fenced_for_version(PRODUCER_FENCED, 1, 2),
            INVALID_PRODUCER_EPOCH
        );
        assert_eq!(fenced_for_version(PRODUCER_FENCED, 2, 2), PRODUCER_FENCED);
    }

    #[test]
    fn kip_360_init_with_the_current_epoch_bumps_and_a_retry_is_idempotent() {
        let m = ready(
            fresh()
                .init_producer_id(None, 30_000, NOW, no_new_id)
                .unwrap(),
        );
        let m = ready(m.init_producer_id(None, 30_000, NOW, no_new_id).unwrap());
        assert_eq!(m.producer_epoch, 1);
        let bumped = ready(
            m.init_producer_id(Some((7, 1)), 30_000, NOW, no_new_id)
                .unwrap(),
        );
        assert_eq!((bumped.producer_epoch, bumped.last_producer_epoch), (2, 1));
        // The response was lost; the retry names epoch 1 again.
        let retried = ready(
            bumped
                .init_producer_id(Some((7, 1)), 30_000, NOW, no_new_id)
                .unwrap(),
        );
        assert_eq!(retried.producer_epoch, 2);
        // An older epoch is fenced; an unknown producer id too.
        assert_eq!(
            bumped.init_producer_id(Some((7, 0)), 30_000, NOW, no_new_id),
            Err(PRODUCER_FENCED)
        );
        assert_eq!(
            bumped.init_producer_id(Some((99, 2)), 30_000, NOW, no_new_id),
            Err(PRODUCER_FENCED)
        );
    }

    #[test]
    fn an_exhausted_epoch_rotates_to_a_new_producer_id() {
        let mut m = fresh();
        m.producer_epoch = i16::MAX - 1;
        let next = ready(m.init_producer_id(None, 30_000, NOW, || Ok(42)).unwrap());
        assert_eq!((next.producer_id, next.producer_epoch), (42, 0));
        assert_eq!(next.last_producer_id, 7);
        // Fencing at the last epoch still works; the retry then rotates.
        let mut m = ongoing(&ready(
            fresh().init_producer_id(None, 1, NOW, no_new_id).unwrap(),
        ));
        m.producer_epoch = i16::MAX - 1;
        let InitOutcome::FenceAndAbort(f) = m.init_producer_id(None, 1, NOW, no_new_id).unwrap()
        else {
            panic!("expected a fence")
        };
        assert_eq!(f.producer_epoch, i16::MAX);
        let r = ready(
            f.complete(NOW)
                .init_producer_id(None, 1, NOW, || Ok(43))
                .unwrap(),
        );
        assert_eq!((r.producer_id, r.producer_epoch), (43, 0));
    }

    #[test]
    fn timeouts_and_expiration() {
        let m = ongoing(&ready(
            fresh().init_producer_id(None, 100, NOW, no_new_id).unwrap(),
        ));
        assert!(!m.is_timed_out(NOW + 100));
        assert!(m.is_timed_out(NOW + 101));
        assert!(!m.is_expired(NOW + 10_000, 10));
        let done = match m.end_txn(7, 0, false, NOW).unwrap() {
            EndOutcome::Prepare(p) => p.complete(NOW),
            EndOutcome::AlreadyDone => panic!("not done yet"),
        };
        assert!(!done.is_timed_out(NOW + 10_000));
        assert!(done.is_expired(NOW + 10, 10));
        assert!(!done.is_expired(NOW + 9, 10));
    }
}
