//! `vltava log verify DIR`: scrubs a stopped broker's data directory (or one
//! partition directory) offline through `log::scrub`, printing each problem
//! with its file and byte position. It reads only; it never starts a broker.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Check every segment's batches (length, magic, offsets, CRC-32C) and
    /// indexes; exit non-zero if anything is wrong. Never modifies DIR.
    ///
    /// Examples:
    ///   vltava log verify /var/lib/vltava
    ///   vltava log verify /var/lib/vltava/orders-3
    #[command(verbatim_doc_comment)]
    Verify {
        /// A data directory, or one partition directory in it
        dir: PathBuf,
    },
}

pub fn run(cmd: LogCommand) -> anyhow::Result<()> {
    let LogCommand::Verify { dir } = cmd;
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    let report =
        crate::log::scrub::scrub(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for problem in &report.problems {
        println!("{problem}");
    }
    let n = report.problems.len();
    println!(
        "checked {} {}, {} {}, {} {}: {n} {}",
        report.partitions,
        plural(report.partitions as u64, "partition"),
        report.segments,
        plural(report.segments as u64, "segment"),
        report.batches,
        plural(report.batches, "batch"),
        plural(n as u64, "problem"),
    );
    if n > 0 {
        bail!("{n} {} in {}", plural(n as u64, "problem"), dir.display());
    }
    Ok(())
}

fn plural(n: u64, noun: &str) -> String {
    match (n, noun) {
        (1, _) => noun.to_string(),
        (_, "batch") => "batches".to_string(),
        _ => format!("{noun}s"),
    }
}
