//! Producer id allocation for InitProducerId: ids are handed out from blocks
//! whose upper bound is made durable before the first id of the block is
//! given, so an id is never reused after a crash or restart (Kafka's
//! ProducerIdManager, with the block recorded in a local file instead of the
//! controller's metadata log).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use parking_lot::Mutex;

use super::metadata::write_atomic;

/// Ids reserved per durable write.
const BLOCK_SIZE: i64 = 1000;
const FILE_NAME: &str = "vltava-producer-ids";

struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids; never the same one twice for one data directory.
pub struct ProducerIdManager {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIdManager {
    /// Reads the end of the last reserved block (0 on a new data directory).
    pub fn open(data_dir: &Path) -> anyhow::Result<ProducerIdManager> {
        let path = data_dir.join(FILE_NAME);
        let next = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(ProducerIdManager {
            path,
            block: Mutex::new(Block { next, end: next }),
        })
    }

    /// The next unused producer id.
    pub fn allocate(&self) -> anyhow::Result<i64> {
        let mut block = self.block.lock();
        if block.next >= block.end {
            let end = block
                .end
                .checked_add(BLOCK_SIZE)
                .context("producer ids exhausted")?;
            write_atomic(&self.path, format!("next.block.start={end}\n").as_bytes())?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

fn parse(text: &str) -> anyhow::Result<i64> {
    let Some(value) = text.trim().strip_prefix("next.block.start=") else {
        bail!("expected next.block.start=N");
    };
    let next: i64 = value.parse().context("next.block.start is not a number")?;
    if next < 0 {
        bail!("next.block.start is negative");
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), 0);
        assert_eq!(ids.allocate().unwrap(), 1);
        drop(ids);
        // A restart (or crash) skips the rest of the reserved block.
        let ids = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), 1000);
        for expected in 1001..2001 {
            assert_eq!(ids.allocate().unwrap(), expected);
        }
        drop(ids);
        let ids = ProducerIdManager::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), 3000);
    }

    #[test]
    fn a_damaged_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "garbage").unwrap();
        assert!(ProducerIdManager::open(dir.path()).is_err());
    }
}
