//! Transactions (exactly-once): the transaction coordinator, the metadata
//! state machine of one transactional id, and their durable records in
//! `__transaction_state`.
//!
//! Sits beside `group/` in the broker-state layer: called by `api/`, writes
//! through partitions of the internal topic and transaction markers through
//! the partitions of each transaction, never touches sockets.

pub mod coordinator;
pub mod metadata;
pub mod records;

pub use coordinator::{TransactionCoordinator, TxnConfig, TRANSACTION_STATE_TOPIC};
