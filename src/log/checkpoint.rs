//! Kafka's text checkpoint files (recovery-point-offset-checkpoint,
//! log-start-offset-checkpoint, ...): version line, count line, entries.
//! Writes are atomic (tmp + fsync + rename + dir fsync); it knows nothing of logs.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use super::error::{IoContext, LogError};

const VERSION: &str = "0";

/// Reads a checkpoint; a missing file is an empty map, a malformed one an error.
pub fn read_checkpoint(path: &Path) -> Result<HashMap<(String, i32), i64>, LogError> {
    let Some(lines) = read_entry_lines(path)? else {
        return Ok(HashMap::new());
    };
    let mut map = HashMap::new();
    for line in lines {
        let mut fields = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed(path, &format!("bad entry line {line:?}")));
        };
        let partition: i32 = partition
            .parse()
            .map_err(|_| malformed(path, &format!("bad partition in {line:?}")))?;
        let offset: i64 = offset
            .parse()
            .map_err(|_| malformed(path, &format!("bad offset in {line:?}")))?;
        if topic.is_empty() {
            return Err(malformed(path, &format!("empty topic in {line:?}")));
        }
        map.insert((topic.to_string(), partition), offset);
    }
    Ok(map)
}

/// The entry lines of a checkpoint file in Kafka's text layout (version `0`,
/// entry count, one line per entry), after checking the version and that
/// exactly that many entries follow. `None` when the file does not exist.
pub(crate) fn read_entry_lines(path: &Path) -> Result<Option<Vec<String>>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Err(malformed(path, "not valid UTF-8"))
        }
        Err(e) => return Err(LogError::io_at(path, e)),
    };
    let mut lines = text.lines();
    match lines.next() {
        Some(v) if v.trim() == VERSION => {}
        Some(v) => return Err(malformed(path, &format!("unsupported version line {v:?}"))),
        None => return Err(malformed(path, "empty file")),
    }
    let count: usize = match lines.next().map(|l| l.trim().parse::<usize>()) {
        Some(Ok(n)) => n,
        _ => return Err(malformed(path, "missing or bad entry count")),
    };
    let mut entries = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| malformed(path, &format!("expected {count} entries, found {i}")))?;
        entries.push(line.to_string());
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(malformed(path, &format!("more than {count} entries")));
    }
    Ok(Some(entries))
}

fn malformed(path: &Path, what: &str) -> LogError {
    LogError::Corrupt(format!("malformed checkpoint {}: {what}", path.display()))
}

/// Atomically replaces the checkpoint at `path` with `entries`.
pub fn write_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> Result<(), LogError> {
    let lines: Vec<String> = entries
        .iter()
        .map(|(topic, partition, offset)| format!("{topic} {partition} {offset}"))
        .collect();
    write_entry_lines(path, &lines)
}

/// Atomically replaces the file at `path` with a checkpoint of `lines` in
/// Kafka's text layout: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_entry_lines(path: &Path, lines: &[String]) -> Result<(), LogError> {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    {
        let mut f = File::create(&tmp).at(&tmp)?;
        f.write_all(text.as_bytes()).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsyncs a directory so that renames and new entries in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let entries = vec![
            ("orders".to_string(), 0, 42),
            ("orders".to_string(), 1, 7),
            ("__consumer_offsets".to_string(), 13, 0),
        ];
        write_checkpoint(&path, &entries).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n3\norders 0 42\norders 1 7\n__consumer_offsets 13 0\n"
        );
        let map = read_checkpoint(&path).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map[&("orders".to_string(), 1)], 7);
        assert_eq!(map[&("__consumer_offsets".to_string(), 13)], 0);
        write_checkpoint(&path, &[]).unwrap();
        assert!(read_checkpoint(&path).unwrap().is_empty());
        assert!(!dir
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
    }

    #[test]
    fn missing_checkpoint_reads_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_checkpoint(&dir.path().join("nope"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_checkpoint_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        for bad in [
            "",
            "1\n0\n",
            "0\nx\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt 0\n",
            "0\n1\nt zero 1\n",
            "0\n1\nt 0 1 extra\n",
            "0\n1\nt 0 1\nt 1 2\n",
        ] {
            fs::write(&path, bad).unwrap();
            assert!(
                matches!(read_checkpoint(&path), Err(LogError::Corrupt(_))),
                "accepted {bad:?}"
            );
        }
    }
}
