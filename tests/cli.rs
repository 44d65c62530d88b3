//! End-to-end tests of the `vltava` client commands, the admin HTTP
//! listener's `/metrics`, and `server --config server.properties`, against
//! the real broker binary.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};

use common::*;
use rdkafka::admin::{ConfigSource, ResourceSpecifier};
use serde_json::Value;

/// Runs `vltava ARGS` with `input` on stdin; panics with its stderr on failure.
fn vltava(args: &[&str], input: &[u8]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vltava");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("vltava output");
    assert!(
        out.status.success(),
        "vltava {args:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// (committed, log end, lag) summed over the group's partitions, and each row checked.
fn group_totals(b: &str, group: &str) -> (i64, i64, i64) {
    let d = json(&vltava(
        &["group", "describe", group, "-b", b, "--format", "json"],
        b"",
    ));
    let rows = d["partitions"].as_array().expect("partitions");
    let mut totals = (0, 0, 0);
    for r in rows {
        let committed = r["committed_offset"].as_i64().unwrap_or(0);
        let end = r["log_end_offset"].as_i64().expect("log end");
        let lag = r["lag"].as_i64().unwrap_or(end);
        assert_eq!(lag, end - committed, "lag of {r}");
        totals = (totals.0 + committed, totals.1 + end, totals.2 + lag);
    }
    totals
}

#[test]
fn cli_produces_consumes_describes_group_lag_and_resets_offsets() {
    let broker = TestBroker::start_with(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let b = broker.bootstrap();
    let b = b.as_str();

    assert_eq!(
        vltava(&["topic", "create", "lines", "-p", "3", "-b", b], b""),
        "Created topic lines.\n"
    );
    let list = json(&vltava(
        &["topic", "list", "-b", b, "--format", "json"],
        b"",
    ));
    assert_eq!(
        list,
        json(r#"[{"name": "lines", "partitions": 3, "replication_factor": 1}]"#)
    );

    let input: String = (0..1000).map(|i| format!("key-{i}:value-{i}\n")).collect();
    vltava(&["produce", "lines", "-K", ":", "-b", b], input.as_bytes());

    // Read back without a group: every line exactly once.
    let out = vltava(
        &[
            "consume",
            "lines",
            "-o",
            "beginning",
            "-e",
            "-F",
            "key-value",
            "-K",
            ":",
            "-b",
            b,
        ],
        b"",
    );
    let got: Vec<&str> = out.lines().collect();
    let want: BTreeSet<&str> = input.lines().collect();
    assert_eq!(got.len(), 1000);
    assert_eq!(got.iter().copied().collect::<BTreeSet<_>>(), want);

    // The partitions' log end offsets add up to what was produced.
    let described = json(&vltava(
        &["topic", "describe", "lines", "-b", b, "--format", "json"],
        b"",
    ));
    let ends: Vec<i64> = described["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["log_end_offset"].as_i64().expect("offset"))
        .collect();
    assert_eq!(ends.len(), 3);
    assert_eq!(ends.iter().sum::<i64>(), 1000);

    // A group reads 600 records and commits exactly those: lag is the other 400.
    let out = vltava(
        &[
            "consume",
            "lines",
            "-g",
            "readers",
            "-o",
            "beginning",
            "-n",
            "600",
            "-b",
            b,
        ],
        b"",
    );
    assert_eq!(out.lines().count(), 600);
    assert_eq!(group_totals(b, "readers"), (600, 1000, 400));

    let listed = json(&vltava(
        &["group", "list", "-b", b, "--format", "json"],
        b"",
    ));
    assert!(
        listed
            .as_array()
            .expect("groups")
            .iter()
            .any(|g| g["group"] == "readers"),
        "{listed}"
    );

    // Dry run changes nothing; --execute moves every partition to the start.
    vltava(
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
            "-b",
            b,
        ],
        b"",
    );
    assert_eq!(group_totals(b, "readers"), (600, 1000, 400));
    let plan = vltava(
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "lines",
            "--to-earliest",
            "--execute",
            "-b",
            b,
        ],
        b"",
    );
    assert_eq!(
        plan,
        "GROUP    TOPIC  PARTITION  NEW-OFFSET\n\
         readers  lines  0          0\n\
         readers  lines  1          0\n\
         readers  lines  2          0\n"
    );
    assert_eq!(group_totals(b, "readers"), (0, 1000, 1000));

    // The group reads everything again, and its lag drops to zero.
    let out = vltava(&["consume", "lines", "-g", "readers", "-e", "-b", b], b"");
    let values: BTreeSet<String> = out.lines().map(str::to_string).collect();
    assert_eq!(values.len(), 1000);
    assert_eq!(values, (0..1000).map(|i| format!("value-{i}")).collect());
    assert_eq!(group_totals(b, "readers"), (1000, 1000, 0));

    assert_eq!(
        vltava(&["group", "delete", "readers", "-b", b], b""),
        "Deleted group readers.\n"
    );
    assert_eq!(
        vltava(&["topic", "delete", "lines", "-b", b], b""),
        "Deleted topic lines.\n"
    );
}

/// GETs `path` from the admin listener; returns (status line, body).
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

/// Parses the Prometheus text format strictly enough to catch mistakes:
/// every sample belongs to a family declared by HELP and TYPE, label values
/// are quoted, and values are numbers. Returns "name{labels}" → value.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("help name");
            assert!(helped.insert(name.to_string()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type line");
            assert!(helped.contains(name), "TYPE before HELP for {name}");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "unknown type {kind}"
            );
            assert!(
                types.insert(name.into(), kind.into()).is_none(),
                "second TYPE {name}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let name = series.split('{').next().expect("name");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels of {line:?}"));
                for pair in inner.split("\",") {
                    let (k, v) = pair
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("label {pair:?}"));
                    assert!(
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "label name {k}"
                    );
                    assert!(
                        !v.trim_end_matches('"').contains('"') || v.contains("\\\""),
                        "{line}"
                    );
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|base| types.get(*base).map(String::as_str) == Some("histogram"))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample {name} has no TYPE");
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate {series}"
        );
    }
    samples
}

#[test]
fn metrics_count_exactly_what_was_produced_and_consumed() {
    let mut broker = TestBroker::start_with(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let admin = broker.admin_addr();
    let b = broker.bootstrap();
    let b = b.as_str();

    assert_eq!(
        http_get(admin, "/health"),
        ("HTTP/1.1 200 OK".into(), "ok\n".into())
    );

    vltava(&["topic", "create", "metered", "-p", "1", "-b", b], b"");
    let input: String = (0..100).map(|i| format!("record-{i}\n")).collect();
    vltava(&["produce", "metered", "-b", b], input.as_bytes());
    let out = vltava(
        &["consume", "metered", "-o", "beginning", "-e", "-b", b],
        b"",
    );
    assert_eq!(out, input);

    let (status, body) = http_get(admin, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let m = parse_prometheus(&body);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{body}"));
    assert_eq!(
        get("vltava_topic_messages_in_total{topic=\"metered\"}"),
        100.0
    );
    assert_eq!(
        get("vltava_topic_messages_out_total{topic=\"metered\"}"),
        100.0
    );
    assert_eq!(
        get("vltava_partition_log_end_offset{topic=\"metered\",partition=\"0\"}"),
        100.0
    );
    assert_eq!(
        get("vltava_partition_log_start_offset{topic=\"metered\",partition=\"0\"}"),
        0.0
    );
    let bytes_in = get("vltava_topic_bytes_in_total{topic=\"metered\"}");
    assert!(bytes_in > 100.0 * "record-00".len() as f64);
    assert_eq!(
        get("vltava_partition_size_bytes{topic=\"metered\",partition=\"0\"}"),
        bytes_in
    );
    assert_eq!(
        get("vltava_topic_bytes_out_total{topic=\"metered\"}"),
        bytes_in
    );
    // Every request counted has a latency observation, and +Inf holds them all.
    let produces = get("vltava_requests_total{api=\"Produce\"}");
    assert!(produces >= 1.0);
    assert_eq!(
        get("vltava_request_duration_seconds_count{api=\"Produce\"}"),
        produces
    );
    assert_eq!(
        get("vltava_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"}"),
        produces
    );
    assert!(get("vltava_fsync_duration_seconds_count") >= 1.0);
    assert!(get("vltava_connections_accepted_total") >= 1.0);

    // A group that read 40 of the 100 records lags by 60.
    let out = vltava(
        &[
            "consume",
            "metered",
            "-g",
            "meter",
            "-o",
            "beginning",
            "-n",
            "40",
            "-b",
            b,
        ],
        b"",
    );
    assert_eq!(out.lines().count(), 40);
    let (_, body) = http_get(admin, "/metrics");
    let m = parse_prometheus(&body);
    let labels = "{group=\"meter\",topic=\"metered\",partition=\"0\"}";
    assert_eq!(
        m.get(&format!("vltava_group_committed_offset{labels}")),
        Some(&40.0),
        "{body}"
    );
    assert_eq!(
        m.get(&format!("vltava_group_lag{labels}")),
        Some(&60.0),
        "{body}"
    );

    // Unknown paths are 404.
    assert_eq!(http_get(admin, "/nope").0, "HTTP/1.1 404 Not Found");
}

#[test]
fn kafka_server_properties_configure_the_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("kafka-logs");
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        format!(
            "# Apache Kafka KRaft broker\n\
             process.roles=broker,controller\n\
             node.id=7\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             controller.listener.names=CONTROLLER\n\
             log.dirs={}\n\
             num.partitions=4\n\
             log.retention.hours=48\n\
             num.network.threads=3\n\
             controller.quorum.voters=7@127.0.0.1:9093\n",
            logs.display()
        ),
    )
    .expect("write server.properties");
    let props = props.to_str().expect("utf-8 path");

    // --print-config shows each value with where it came from.
    let printed = vltava(&["server", "--config", props, "--print-config"], b"");
    let lines: Vec<String> = printed
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for want in [
        "listen = 127.0.0.1:0 # file (server.properties listeners)".to_string(),
        format!(
            "data-dir = {} # file (server.properties log.dirs)",
            logs.display()
        ),
        "node.id = 7 # file (server.properties node.id)".to_string(),
        "num.partitions = 4 # file (server.properties num.partitions)".to_string(),
        "log.retention.ms = 172800000 # file (server.properties log.retention.hours)".to_string(),
        "auto.create.topics.enable = true # default".to_string(),
        "listener CONTROLLER = 127.0.0.1:0 # file (server.properties listeners)".to_string(),
        "process.roles = broker,controller # file (server.properties process.roles)".to_string(),
        "controller.quorum.voters = 7@127.0.0.1:9093 # file (server.properties controller.quorum.voters)"
            .to_string(),
        "# ignored: num.network.threads (not known to vltava)".to_string(),
    ] {
        assert!(lines.contains(&want), "missing {want:?} in\n{printed}");
    }

    let broker = TestBroker::start_raw(&["--config", props]);
    let b = broker.bootstrap();
    assert!(
        logs.join("meta.properties").is_file(),
        "data dir is log.dirs"
    );
    let meta = std::fs::read_to_string(logs.join("meta.properties")).expect("meta.properties");
    assert!(meta.lines().any(|l| l == "node.id=7"), "{meta}");

    // A topic created without a partition count gets num.partitions.
    vltava(&["topic", "create", "defaults", "-b", &b], b"");
    assert_eq!(topic_partitions(&b, "defaults"), Some(vec![0, 1, 2, 3]));

    let admin = admin_client(&b);
    let configs = block_on(
        std::time::Duration::from_secs(10),
        admin.describe_configs([&ResourceSpecifier::Broker(7)], &admin_opts()),
    )
    .expect("describe configs");
    let resource = configs
        .into_iter()
        .next()
        .expect("one resource")
        .expect("broker configs");
    let retention = resource.get("log.retention.ms").expect("log.retention.ms");
    assert_eq!(retention.value.as_deref(), Some("172800000"));
    assert_ne!(retention.source, ConfigSource::Default);
    assert_eq!(
        resource
            .get("num.partitions")
            .and_then(|e| e.value.as_deref()),
        Some("4")
    );

    // Each ignored key is warned about once; the quorum's are not ignored.
    let stderr = broker.stderr();
    for key in ["process.roles", "controller.quorum.voters"] {
        assert!(
            !stderr
                .lines()
                .any(|l| l.contains("ignoring") && l.contains(key)),
            "{stderr}"
        );
    }
    let n = stderr
        .lines()
        .filter(|l| l.contains("ignoring") && l.contains("num.network.threads"))
        .count();
    assert_eq!(n, 1, "warnings about num.network.threads in\n{stderr}");
}

#[test]
fn completions_and_help_with_examples_for_every_command() {
    assert!(vltava(&["completions", "bash"], b"").contains("_vltava()"));
    assert!(vltava(&["completions", "zsh"], b"").starts_with("#compdef vltava"));
    assert!(vltava(&["completions", "fish"], b"").contains("complete -c vltava"));
    for cmd in [
        &["server"][..],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["topic", "add-partitions"],
        &["topic", "alter-config"],
        &["produce"],
        &["consume"],
        &["group", "list"],
        &["group", "describe"],
        &["group", "delete"],
        &["group", "reset-offsets"],
        &["cluster", "info"],
        &["bench", "produce"],
        &["bench", "consume"],
        &["bench", "e2e"],
        &["completions"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let help = vltava(&args, b"");
        assert!(
            help.contains("Example"),
            "no examples in `vltava {cmd:?} --help`:\n{help}"
        );
    }
}

#[test]
fn cluster_info_reports_the_broker_and_cluster_id() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    let info = json(&vltava(
        &["cluster", "info", "-b", &b, "--format", "json"],
        b"",
    ));
    assert_eq!(info["brokers"][0]["id"], 1);
    assert_eq!(info["brokers"][0]["port"], broker.addr().port());
    assert_eq!(info["controller_id"], 1);
    let apis = info["brokers"][0]["api_versions"]
        .as_array()
        .expect("api versions");
    let range = |name: &str| {
        apis.iter().find(|a| a["api"] == name).map(|a| {
            (
                a["min"].as_i64().unwrap_or(-1),
                a["max"].as_i64().unwrap_or(-1),
            )
        })
    };
    assert_eq!(range("Produce(0)"), Some((3, 13)));
    assert_eq!(range("Fetch(1)"), Some((4, 18)));
    assert_eq!(range("ApiVersions(18)"), Some((0, 4)));
    let meta = std::fs::read_to_string(broker.data_dir().join("meta.properties")).expect("meta");
    let id = meta
        .lines()
        .find_map(|l| l.strip_prefix("cluster.id="))
        .expect("cluster.id");
    assert_eq!(info["cluster_id"], id);
}

#[test]
fn topic_alter_config_sets_deletes_and_refuses_bad_values() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    vltava(&["topic", "create", "altered", "-p", "1", "-b", &b], b"");
    let configs = |b: &str| {
        json(&vltava(
            &["topic", "describe", "altered", "-b", b, "--format", "json"],
            b"",
        ))["configs"]
            .clone()
    };
    vltava(
        &[
            "topic",
            "alter-config",
            "altered",
            "--set",
            "retention.ms=3600000",
            "--set",
            "cleanup.policy=compact",
            "-b",
            &b,
        ],
        b"",
    );
    assert_eq!(
        configs(&b),
        serde_json::json!({"cleanup.policy": "compact", "retention.ms": "3600000"})
    );
    vltava(
        &[
            "topic",
            "alter-config",
            "altered",
            "--delete",
            "cleanup.policy",
            "-b",
            &b,
        ],
        b"",
    );
    assert_eq!(configs(&b), serde_json::json!({"retention.ms": "3600000"}));

    // An invalid value is refused by the broker and nothing changes.
    let out = Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args([
            "topic",
            "alter-config",
            "altered",
            "--set",
            "retention.ms=soon",
            "-b",
            &b,
        ])
        .output()
        .expect("run vltava");
    assert!(
        !out.status.success(),
        "an invalid value must fail the command"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did not apply"), "stderr: {stderr}");
    assert_eq!(configs(&b), serde_json::json!({"retention.ms": "3600000"}));
}

/// Runs `vltava ARGS` and returns (exit code, stdout, stderr), success or not.
fn vltava_status(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run vltava");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn consume_starts_at_the_beginning_or_the_groups_offset_and_tails_with_o_end() {
    let broker = TestBroker::start_with(&["--override", "group.initial.rebalance.delay.ms=0"]);
    let b = broker.bootstrap();
    let b = b.as_str();
    vltava(&["topic", "create", "__debezium-heartbeat.x", "-b", b], b"");
    let t = "__debezium-heartbeat.x";
    vltava(&["produce", t, "-b", b], b"one\ntwo\nthree\n");

    // No -o: from the beginning, as kcat and rpk do.
    assert_eq!(
        vltava(&["consume", t, "-e", "-b", b], b""),
        "one\ntwo\nthree\n"
    );
    // -o end on a topic nobody writes to: nothing.
    assert_eq!(vltava(&["consume", t, "-o", "end", "-e", "-b", b], b""), "");

    // With a group: from the beginning the first time (no committed offset),
    // then from what the group committed.
    let group = ["consume", t, "-g", "beats", "-e", "-b", b];
    assert_eq!(vltava(&group, b""), "one\ntwo\nthree\n");
    vltava(&["produce", t, "-b", b], b"four\n");
    assert_eq!(vltava(&group, b""), "four\n");
    assert_eq!(vltava(&group, b""), "");

    // An ordinary topic despite its `__`: listed with the others.
    assert_eq!(
        json(&vltava(
            &["topic", "list", "-b", b, "--format", "json"],
            b""
        )),
        json(r#"[{"name": "__debezium-heartbeat.x", "partitions": 1, "replication_factor": 1}]"#)
    );
}

#[test]
fn every_client_command_fails_with_one_line_when_no_broker_answers() {
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = closed.local_addr().expect("address").to_string();
    drop(closed);
    let a = address.as_str();
    let commands: [&[&str]; 9] = [
        &["topic", "create", "x", "-b", a],
        &["topic", "list", "-b", a],
        &["produce", "x", "-b", a],
        &["consume", "x", "-e", "-b", a],
        &["consume", "x", "-g", "g", "-b", a],
        &["group", "list", "-b", a],
        &["group", "describe", "g", "-b", a],
        &["cluster", "info", "-b", a],
        &["bench", "produce", "--records", "1", "-b", a],
    ];
    for args in commands {
        let (code, stdout, stderr) = vltava_status(args);
        assert_eq!(
            (code, stdout.as_str(), stderr.as_str()),
            (
                Some(1),
                "",
                format!("error: no broker answers at {a}: connection refused\n").as_str()
            ),
            "vltava {args:?}"
        );
    }
}

#[test]
fn topic_describe_shows_each_partitions_leader_epoch() {
    let broker = TestBroker::start();
    let b = broker.bootstrap();
    vltava(&["topic", "create", "described", "-p", "2", "-b", &b], b"");
    vltava(
        &["produce", "described", "-b", &b, "-p", "1"],
        b"one\ntwo\n",
    );
    let table = vltava(&["topic", "describe", "described", "-b", &b], b"");
    assert_eq!(
        table,
        "Topic: described  Partitions: 2\n\
         PARTITION  LEADER  LEADER-EPOCH  REPLICAS  ISR  LOG-START-OFFSET  LOG-END-OFFSET\n\
         0          1       0             1         1    0                 0\n\
         1          1       0             1         1    0                 2\n"
    );
    let described = json(&vltava(
        &[
            "topic",
            "describe",
            "described",
            "-b",
            &b,
            "--format",
            "json",
        ],
        b"",
    ));
    let epochs: Vec<i64> = described["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| p["leader_epoch"].as_i64().expect("leader_epoch"))
        .collect();
    assert_eq!(epochs, vec![0, 0]);
}

/// Partitions whose ISR is smaller than their replicas, as node `addr`'s
/// Metadata has them: (topic, partition).
fn under_replicated(addr: SocketAddr) -> Vec<(String, i32)> {
    use kafka_protocol::messages::MetadataRequest;
    let all = MetadataRequest::default().with_topics(None);
    let m = common::raw::RawClient::connect(addr).send(12, &all);
    let mut out: Vec<(String, i32)> = m
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            t.partitions
                .iter()
                .filter(|p| p.isr_nodes.len() < p.replica_nodes.len())
                .map(move |p| (name.clone(), p.partition_index))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn cluster_info_counts_under_replicated_partitions() {
    use common::cluster::Cluster;
    let mut cluster = Cluster::start(
        3,
        "broker.session.timeout.ms=3000\nbroker.heartbeat.interval.ms=500\n",
    );
    let b = cluster.addr(1).to_string();
    vltava(
        &["topic", "create", "spread", "-p", "2", "-r", "3", "-b", &b],
        b"",
    );
    let info = |b: &str| vltava(&["cluster", "info", "-b", b], b"");
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("Under-replicated partitions:"))
            .map(str::to_string)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !under_replicated(cluster.addr(1)).is_empty() {
        assert!(std::time::Instant::now() < deadline, "never all in sync");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        line(&info(&b)).as_deref(),
        Some("Under-replicated partitions: 0")
    );

    // Node 3 dies: once fenced it leaves both partitions' ISRs.
    cluster.kill9(3);
    let spread = |u: &[(String, i32)]| u.iter().filter(|(t, _)| t == "spread").count();
    let mut seen = under_replicated(cluster.addr(1));
    while spread(&seen) < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "ISRs never shrank: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        seen = under_replicated(cluster.addr(1));
    }
    let want = format!("Under-replicated partitions: {}", seen.len());
    assert_eq!(line(&info(&b)), Some(want), "{seen:?}");
    let reported = json(&vltava(
        &["cluster", "info", "-b", &b, "--format", "json"],
        b"",
    ));
    assert_eq!(reported["under_replicated_partitions"], seen.len());
}
