//! `/health` and `/metrics` while the data directory's disk is full: 503
//! `degraded` with the reason and `vltava_storage_writable 0`, back to `ok`
//! once a write succeeds again. The full disk is a small tmpfs mounted for
//! the test (needs root, as CI runs; skipped with a notice otherwise).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when not root (mounting needs it).
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("vltava-full-")
            .tempdir()
            .expect("temp dir");
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs failed: {status}");
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a broker still holding files cannot keep the mount alive.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect admin listener");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body split");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

fn writable_gauge(admin: SocketAddr) -> String {
    let (_, body) = http_get(admin, "/metrics");
    body.lines()
        .find(|l| l.starts_with("vltava_storage_writable "))
        .unwrap_or_else(|| panic!("no vltava_storage_writable in\n{body}"))
        .to_string()
}

/// Fills the file system holding `dir` with one file until it is full.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    let chunk = vec![0xAAu8; 64 * 1024];
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling: {e}"),
        }
    }
    // Whatever is left of a block: a byte at a time.
    while f.write(&[0]).is_ok_and(|n| n == 1) {}
    path
}

fn produce_one(bootstrap: &str, value: &str) -> Outcome {
    let mut config = producer_config(bootstrap);
    // KAFKA_STORAGE_ERROR is retriable: fail at the first one.
    config
        .set("retries", "0")
        .set("message.timeout.ms", "10000");
    let msg = Out {
        value: value.to_string(),
        partition: Some(0),
        ..Out::default()
    };
    produce_all(&config, "full", &[msg], Duration::from_secs(20))
        .pop()
        .expect("one outcome")
}

#[test]
fn health_is_degraded_while_the_disk_is_full_and_ok_again_after() {
    let Some(tmpfs) = Tmpfs::mount("64m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let data = tmpfs.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path").to_string();
    let mut broker = TestBroker::start_raw(&["--listen", "127.0.0.1:0", "--data-dir", &data_arg]);
    let admin = broker.admin_addr();
    let b = broker.bootstrap();
    create_topic(&b, "full", 1);
    assert!(produce_one(&b, "before").is_ok());
    assert_eq!(
        http_get(admin, "/health"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert_eq!(writable_gauge(admin), "vltava_storage_writable 1");

    let filler = fill(tmpfs.path());
    // A record larger than what is left of a page makes the append fail.
    let big = "x".repeat(100_000);
    match produce_one(&b, &big) {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError)) => {}
        other => panic!("expected KAFKA_STORAGE_ERROR on a full disk, got {other:?}"),
    }
    let (status, body) = http_get(admin, "/health");
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert!(
        body.starts_with("degraded: writes to the data directory fail: appending to full-0: ")
            && body.contains("No space left on device")
            && body.ends_with('\n')
            && body.lines().count() == 1,
        "{body:?}"
    );
    assert_eq!(writable_gauge(admin), "vltava_storage_writable 0");

    std::fs::remove_file(filler).expect("remove filler");
    assert!(produce_one(&b, &big).is_ok());
    assert_eq!(
        http_get(admin, "/health"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );
    assert_eq!(writable_gauge(admin), "vltava_storage_writable 1");
    broker.kill9();
}
