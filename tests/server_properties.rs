//! `vltava server --config server.properties` where the file asks for what
//! Vltava does not do: TLS, SASL, an authorizer, replication, timed flushes
//! stop the start with one line naming the key; every listener in
//! `listeners` is opened and advertises its own endpoint; Kafka's KRaft
//! quickstart file starts unchanged.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::raw::RawClient;
use common::*;
use kafka_protocol::messages::MetadataRequest;

/// Runs `vltava server --config FILE` with `props` and expects it to refuse
/// to start: a non-zero exit within a deadline, and stderr (one line).
fn refused_start(props: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("server.properties");
    let data = dir.path().join("data");
    std::fs::write(&path, format!("log.dirs={}\n{props}", data.display())).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vltava"))
        .args(["server", "--admin-listen", "off", "--config"])
        .arg(&path)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vltava");
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vltava started with\n{props}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, not:\n{stderr}");
    assert!(
        !data.join("meta.properties").exists(),
        "nothing is written before the refusal"
    );
    stderr
}

#[test]
fn security_in_server_properties_stops_the_start_naming_the_key() {
    let cases = [
        (
            "listeners=SASL_SSL://127.0.0.1:0\n",
            "listeners: listener SASL_SSL uses security protocol SASL_SSL",
        ),
        (
            "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0\n",
            "listeners: listener SSL uses security protocol SSL",
        ),
        (
            "listeners=CLIENTS://127.0.0.1:0\nlistener.security.protocol.map=CLIENTS:SASL_PLAINTEXT\n",
            "listener.security.protocol.map: listener CLIENTS uses security protocol SASL_PLAINTEXT",
        ),
        (
            "ssl.keystore.location=/etc/kafka/broker.jks\n",
            "ssl.keystore.location=/etc/kafka/broker.jks: ",
        ),
        ("sasl.enabled.mechanisms=PLAIN\n", "sasl.enabled.mechanisms=PLAIN: "),
        (
            "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required;\n",
            "listener.name.sasl_ssl.plain.sasl.jaas.config=",
        ),
        (
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer: ",
        ),
    ];
    for (props, named) in cases {
        let stderr = refused_start(&format!("listeners=PLAINTEXT://127.0.0.1:0\n{props}"));
        assert!(
            stderr.starts_with("error: ") && stderr.contains(named),
            "{props}: {stderr}"
        );
    }
    // The file: every security listener and an authorizer. The first
    // offending key in the file is named.
    let stderr = refused_start(
        "listeners=SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0\n\
         authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n",
    );
    assert!(
        stderr.contains("authorizer.class.name=") && stderr.contains("no TLS, SASL"),
        "{stderr}"
    );
}

#[test]
fn durability_settings_vltava_cannot_honour_stop_the_start() {
    for (props, named) in [
        (
            "log.flush.interval.messages=1\n",
            "configuration log.flush.interval.messages",
        ),
        (
            "log.flush.interval.ms=1000\n",
            "configuration log.flush.interval.ms",
        ),
        ("delete.topic.enable=false\n", "delete.topic.enable=false: "),
    ] {
        let stderr = refused_start(props);
        assert!(stderr.contains(named), "{props}: {stderr}");
    }
}

/// The `listener=NAME address=HOST:PORT` lines the broker logs at start.
fn logged_listener(broker: &TestBroker, name: &str) -> SocketAddr {
    let stderr = broker.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("serves the Kafka API") && l.contains(&format!("listener={name} ")))
        .unwrap_or_else(|| panic!("no listener {name} in\n{stderr}"));
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .expect("address field");
    addr.parse().expect("address parses")
}

/// The brokers Metadata lists on a connection to `addr`: (id, host, port).
fn metadata_brokers(addr: SocketAddr) -> Vec<(i32, String, i32)> {
    let mut client = RawClient::connect(addr);
    let response = client.send(12, &MetadataRequest::default().with_topics(Some(vec![])));
    response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect()
}

fn write_props(dir: &Path, props: &str) -> String {
    let path = dir.join("server.properties");
    std::fs::write(&path, props).expect("write server.properties");
    path.to_str().expect("utf-8 path").to_string()
}

#[test]
fn every_listener_serves_metadata_advertising_its_own_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let props = write_props(
        dir.path(),
        &format!(
            "node.id=5\n\
             listeners=PLAINTEXT://127.0.0.1:0,SECOND://127.0.0.1:0,THIRD://127.0.0.1:0\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECOND:PLAINTEXT,THIRD:PLAINTEXT\n\
             advertised.listeners=THIRD://third.example.com:19093\n\
             log.dirs={}\n",
            dir.path().join("data").display()
        ),
    );
    let broker = TestBroker::start_raw(&["--config", &props]);
    let first = broker.addr();
    let second = logged_listener(&broker, "SECOND");
    let third = logged_listener(&broker, "THIRD");
    assert_ne!(first.port(), second.port());
    assert_eq!(
        metadata_brokers(first),
        vec![(5, "127.0.0.1".to_string(), i32::from(first.port()))]
    );
    assert_eq!(
        metadata_brokers(second),
        vec![(5, "127.0.0.1".to_string(), i32::from(second.port()))]
    );
    assert_eq!(
        metadata_brokers(third),
        vec![(5, "third.example.com".to_string(), 19093)]
    );
    // The first listener still serves clients end to end.
    create_topic(&broker.bootstrap(), "through-first", 1);
    assert_eq!(
        topic_partitions(&broker.bootstrap(), "through-first"),
        Some(vec![0])
    );
}

#[test]
fn kafkas_kraft_quickstart_server_properties_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Kafka 4.x's config/server.properties, with ephemeral ports on
    // 127.0.0.1 and a temporary log.dirs (tests run side by side).
    let props = write_props(
        dir.path(),
        &format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=localhost:9093\n\
             listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0\n\
             inter.broker.listener.name=PLAINTEXT\n\
             advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL\n\
             num.network.threads=3\n\
             num.io.threads=8\n\
             socket.send.buffer.bytes=102400\n\
             socket.receive.buffer.bytes=102400\n\
             socket.request.max.bytes=104857600\n\
             log.dirs={}\n\
             num.partitions=1\n\
             num.recovery.threads.per.data.dir=1\n\
             offsets.topic.replication.factor=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             log.retention.hours=168\n\
             log.segment.bytes=1073741824\n\
             log.retention.check.interval.ms=300000\n",
            dir.path().join("kraft-combined-logs").display()
        ),
    );
    let broker = TestBroker::start_raw(&["--config", &props]);
    assert!(dir
        .path()
        .join("kraft-combined-logs/meta.properties")
        .is_file());
    let controller = logged_listener(&broker, "CONTROLLER");
    assert!(broker
        .stderr()
        .contains("controller listener serves the Kafka API"));
    // Each listener advertises its advertised.listeners entry.
    assert_eq!(
        metadata_brokers(broker.addr()),
        vec![(1, "localhost".to_string(), 9092)]
    );
    assert_eq!(
        metadata_brokers(controller),
        vec![(1, "localhost".to_string(), 9093)]
    );
}

/// `replica.selector.class` changes where consumers read, so a class
/// Vltava does not implement stops the start rather than being ignored.
#[test]
fn a_replica_selector_vltava_does_not_implement_stops_the_start() {
    let stderr = refused_start(
        "listeners=PLAINTEXT://127.0.0.1:0\nreplica.selector.class=com.example.NearestSelector\n",
    );
    assert_eq!(
        stderr.trim_end(),
        "error: Invalid value com.example.NearestSelector for configuration \
         replica.selector.class: Class com.example.NearestSelector cannot be found: \
         Vltava runs no Java plugins; it implements \
         org.apache.kafka.common.replica.LeaderSelector and \
         org.apache.kafka.common.replica.RackAwareReplicaSelector"
    );
}
