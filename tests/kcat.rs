//! Interoperability with the `kcat` command-line client: metadata listing,
//! producing plain and keyed lines from stdin, and consuming with a format
//! string. kcat must be installed; the test fails (it does not skip) if it is
//! missing.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const KCAT_TIMEOUT: Duration = Duration::from_secs(30);

struct KcatOutput {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

fn kcat_path() -> String {
    let found = Command::new("sh")
        .arg("-c")
        .arg("command -v kcat")
        .output()
        .expect("run sh");
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        found.status.success() && !path.is_empty(),
        "kcat is not on PATH: install it (e.g. `apt-get install kcat`) to run the kcat interoperability tests"
    );
    path
}

/// Runs kcat with `args` and `stdin`, killing it if it exceeds KCAT_TIMEOUT.
fn kcat(args: &[&str], stdin: &str) -> KcatOutput {
    let mut child = Command::new(kcat_path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kcat");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).expect("write kcat stdin");
    drop(input);
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + KCAT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for kcat") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kcat {args:?} did not finish within {KCAT_TIMEOUT:?}; stderr:\n{}",
                err_reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    KcatOutput {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn kcat_ok(args: &[&str], stdin: &str) -> String {
    let out = kcat(args, stdin);
    assert!(
        out.status.success(),
        "kcat {args:?} exited with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[test]
fn kcat_lists_the_broker_and_topics() {
    kcat_path();
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "listed", 2);

    let listing = kcat_ok(&["-b", &bootstrap, "-L"], "");
    assert!(
        listing.contains(" 1 brokers:"),
        "one broker expected in:\n{listing}"
    );
    assert!(
        listing.contains(&format!(" at {bootstrap}")),
        "broker advertised at {bootstrap} expected in:\n{listing}"
    );
    assert!(
        listing.contains("topic \"listed\" with 2 partitions:"),
        "topic with 2 partitions expected in:\n{listing}"
    );
}

#[test]
fn kcat_produces_plain_and_keyed_lines_and_consumes_them_back() {
    kcat_path();
    let broker = TestBroker::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "lines", 1);

    kcat_ok(
        &["-P", "-b", &bootstrap, "-t", "lines"],
        "one\ntwo\nthree\n",
    );
    kcat_ok(
        &["-P", "-b", &bootstrap, "-t", "lines", "-K:"],
        "k1:v1\nk2:v2\n",
    );

    let consumed = kcat_ok(
        &[
            "-C",
            "-b",
            &bootstrap,
            "-t",
            "lines",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%k:%s:%o\n",
        ],
        "",
    );
    assert_eq!(consumed, ":one:0\n:two:1\n:three:2\nk1:v1:3\nk2:v2:4\n");
}
