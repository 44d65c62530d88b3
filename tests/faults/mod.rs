//! The fault-injection harness (Jepsen-style): a cluster of release-binary
//! nodes, each in its own network namespace on one bridge; nemeses that
//! partition, slow, kill, pause and fill the disks of those nodes; client
//! workloads that record every send, acknowledgement and poll in a history;
//! and a checker that reads the history for anomalies.
//!
//! Used by `tests/faults.rs` (the short CI run and the long runs).

#![allow(dead_code)]

pub mod checker;
pub mod history;
pub mod nemesis;
pub mod net;
pub mod nodes;
pub mod workload;

/// A small deterministic random source (SplitMix64): a run's seed fixes
/// every choice the nemesis and the workloads make.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
