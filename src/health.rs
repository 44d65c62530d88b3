//! Whether the data directory takes writes, for `/health` and `/metrics`.
//!
//! Recorded where the log is written (`broker/partition.rs`: appends and
//! fsyncs); read by `admin.rs`. The latest outcome wins: a failed write makes
//! the broker degraded, with the reason, until a write succeeds again. It
//! never decides anything for the broker.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::LazyLock;

use parking_lot::Mutex;

/// The outcome of the latest write to the data directory.
#[derive(Default)]
pub struct StorageHealth {
    failing: AtomicBool,
    reason: Mutex<String>,
    failures: AtomicU64,
}

static GLOBAL: LazyLock<StorageHealth> = LazyLock::new(StorageHealth::default);

/// The broker's storage health (one broker per process).
pub fn global() -> &'static StorageHealth {
    &GLOBAL
}

impl StorageHealth {
    /// A write (append or fsync) failed; `what` says where and why.
    pub fn write_failed(&self, what: impl std::fmt::Display) {
        *self.reason.lock() = what.to_string();
        self.failing.store(true, Ordering::Release);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A write succeeded: the data directory takes writes again.
    pub fn write_succeeded(&self) {
        // A load first: the common case (healthy) writes nothing shared.
        if self.failing.load(Ordering::Acquire) {
            self.failing.store(false, Ordering::Release);
        }
    }

    /// Why the broker is degraded, if the latest write failed.
    pub fn degraded(&self) -> Option<String> {
        self.failing
            .load(Ordering::Acquire)
            .then(|| self.reason.lock().clone())
    }

    /// Writes that failed since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_degrades_until_a_write_succeeds() {
        let h = StorageHealth::default();
        assert_eq!(h.degraded(), None);
        h.write_failed("t-0: No space left on device (os error 28)");
        assert_eq!(
            h.degraded().as_deref(),
            Some("t-0: No space left on device (os error 28)")
        );
        h.write_succeeded();
        assert_eq!(h.degraded(), None);
        assert_eq!(h.failures(), 1);
    }
}
