//! Fault injection: a cluster under partitions, crashes, pauses and full
//! disks, with client workloads whose history is checked for anomalies.
//! See docs/FAULTS.md.

#[allow(dead_code)]
mod common;
#[path = "faults/mod.rs"]
mod faults;
