//! A cluster of `vltava` processes on loopback, each started from its own
//! Kafka KRaft `server.properties` (combined broker and controller roles, a
//! PLAINTEXT and a CONTROLLER listener, its own data dir), as an operator
//! would write them for three Kafka nodes on one machine.
//!
//! The reference run: with `VLTAVA_CLUSTER_KAFKA_LIBS` naming the jars of an
//! Apache Kafka (`tests/compat/kafka-reference.sh fetch` puts them in
//! `/tmp/vltava-kafka-ref-4.4.0/libs`), the same files start Kafka JVMs
//! instead (each data dir formatted first with one cluster id, as Kafka
//! requires), so the same tests check Kafka's behaviour.

use std::path::PathBuf;

use super::TestBroker;

/// A node's ports and files.
pub struct Node {
    pub id: i32,
    /// `process.roles`: `broker,controller`, `broker` or `controller`.
    pub roles: &'static str,
    pub kafka_port: u16,
    pub controller_port: u16,
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The running processes, by node (index = id - 1); `None` while stopped.
    brokers: Vec<Option<Process>>,
    /// Apache Kafka's jars, for the reference run.
    kafka_libs: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

enum Process {
    Vltava(TestBroker),
    Kafka(KafkaNode),
}

/// An Apache Kafka JVM of the reference run.
struct KafkaNode {
    child: std::process::Child,
    log: PathBuf,
}

impl Drop for KafkaNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The cluster id the reference run formats every Kafka data dir with.
const KAFKA_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

fn java(libs: &std::path::Path, log4j: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new("java");
    cmd.args([
        "-Xms256m",
        "-Xmx600m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
    ])
    .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
    .arg("-cp")
    .arg(format!("{}/*", libs.display()));
    cmd
}

/// Ports nobody listens on right now (bound to port 0 and released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// A Kafka KRaft node's `server.properties`, plus `extra` lines (in which
/// `{node.id}` stands for the node's id, e.g. `broker.rack=rack-{node.id}`):
/// the listeners its roles need (PLAINTEXT for a broker, CONTROLLER for a
/// controller).
pub fn server_properties(node: &Node, voters: &str, extra: &str) -> String {
    let extra = extra.replace("{node.id}", &node.id.to_string());
    let listeners = match node.roles {
        "controller" => format!(
            "listeners=CONTROLLER://127.0.0.1:{}\n",
            node.controller_port
        ),
        "broker" => format!(
            "listeners=PLAINTEXT://127.0.0.1:{kafka}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}\n\
             inter.broker.listener.name=PLAINTEXT\n",
            kafka = node.kafka_port
        ),
        _ => format!(
            "listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}\n\
             inter.broker.listener.name=PLAINTEXT\n",
            kafka = node.kafka_port,
            controller = node.controller_port
        ),
    };
    format!(
        "process.roles={roles}\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         {listeners}\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs={data}\n\
         num.partitions=1\n\
         default.replication.factor=1\n\
         offsets.topic.replication.factor=1\n\
         transaction.state.log.replication.factor=1\n\
         transaction.state.log.min.isr=1\n\
         min.insync.replicas=1\n\
         {extra}",
        roles = node.roles,
        id = node.id,
        data = node.data_dir.display(),
    )
}

impl Cluster {
    /// Writes `n` nodes' files and starts them all, then waits until each
    /// is ready (a node is ready once a quorum of voters runs).
    pub fn start(n: usize, extra: &str) -> Cluster {
        Cluster::start_roles(&vec!["broker,controller"; n], extra)
    }

    /// `start` with each node's `process.roles`; the voters are the nodes
    /// with the controller role.
    pub fn start_roles(roles: &[&'static str], extra: &str) -> Cluster {
        let n = roles.len();
        let dir = tempfile::Builder::new()
            .prefix("vltava-cluster-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(2 * n);
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                id: i as i32 + 1,
                roles: roles[i],
                kafka_port: ports[2 * i],
                controller_port: ports[2 * i + 1],
                config: dir.path().join(format!("server-{}.properties", i + 1)),
                data_dir: dir.path().join(format!("data-{}", i + 1)),
            })
            .collect();
        let voters = nodes
            .iter()
            .filter(|n| n.roles.contains("controller"))
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        for node in &nodes {
            std::fs::write(&node.config, server_properties(node, &voters, extra))
                .expect("write server.properties");
        }
        let kafka_libs = std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS").map(PathBuf::from);
        let mut cluster = Cluster {
            brokers: nodes.iter().map(|_| None).collect(),
            nodes,
            kafka_libs,
            _dir: dir,
        };
        if let Some(libs) = &cluster.kafka_libs {
            for node in &cluster.nodes {
                let status = java(libs, &cluster.log4j(node.id))
                    .args([
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        KAFKA_CLUSTER_ID,
                        "-c",
                    ])
                    .arg(&node.config)
                    .stdout(std::process::Stdio::null())
                    .status()
                    .expect("run Kafka's StorageTool");
                assert!(status.success(), "formatting node {}", node.id);
            }
        }
        for id in 1..=n as i32 {
            cluster.launch(id);
        }
        for id in 1..=n as i32 {
            cluster.wait_ready(id);
        }
        cluster
    }

    /// A log4j2 config writing node `id`'s Kafka log beside its files.
    fn log4j(&self, id: i32) -> PathBuf {
        let node = &self.nodes[(id - 1) as usize];
        let path = node.config.with_extension("log4j2.properties");
        let log = node.config.with_extension("log");
        std::fs::write(
            &path,
            format!(
                "status = error\nappender.file.type = File\nappender.file.name = FILE\n\
                 appender.file.fileName = {}\nappender.file.append = true\n\
                 appender.file.layout.type = PatternLayout\n\
                 appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
                 rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n",
                log.display()
            ),
        )
        .expect("write log4j2.properties");
        path
    }

    fn launch(&mut self, id: i32) {
        let node = &self.nodes[(id - 1) as usize];
        let process = match &self.kafka_libs {
            None => {
                let config = node.config.display().to_string();
                Process::Vltava(TestBroker::launch_raw(&["--config", &config]))
            }
            Some(libs) => {
                let log = node.config.with_extension("log");
                let _ = std::fs::remove_file(&log);
                let child = java(libs, &self.log4j(id))
                    .arg("kafka.Kafka")
                    .arg(&node.config)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("start Kafka");
                Process::Kafka(KafkaNode { child, log })
            }
        };
        self.brokers[(id - 1) as usize] = Some(process);
    }

    fn wait_ready(&mut self, id: i32) {
        match self.brokers[(id - 1) as usize].as_mut() {
            Some(Process::Vltava(b)) => b.wait_ready(),
            Some(Process::Kafka(k)) => {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
                while !std::fs::read_to_string(&k.log)
                    .unwrap_or_default()
                    .contains("Kafka Server started")
                {
                    assert!(
                        k.child.try_wait().expect("wait").is_none(),
                        "Kafka node {id} exited"
                    );
                    assert!(
                        std::time::Instant::now() < deadline,
                        "Kafka node {id} not ready"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
            None => panic!("node {id} is not running"),
        }
    }

    /// The running Vltava node `id` (not in the reference run).
    pub fn broker(&mut self, id: i32) -> &mut TestBroker {
        match self.brokers[(id - 1) as usize].as_mut() {
            Some(Process::Vltava(b)) => b,
            _ => panic!("node {id} is not a running Vltava"),
        }
    }

    /// `host:port` of node `id`'s PLAINTEXT listener.
    pub fn addr(&self, id: i32) -> std::net::SocketAddr {
        let port = self.nodes[(id - 1) as usize].kafka_port;
        std::net::SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// `bootstrap.servers` naming every node.
    pub fn bootstrap(&self) -> String {
        (1..=self.nodes.len() as i32)
            .map(|id| self.addr(id).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// SIGKILLs node `id`.
    pub fn kill9(&mut self, id: i32) {
        match self.brokers[(id - 1) as usize].take() {
            Some(Process::Vltava(mut b)) => b.kill9(),
            Some(Process::Kafka(k)) => drop(k),
            None => {}
        }
    }

    /// SIGTERMs node `id` and waits until it exits (Kafka's controlled
    /// shutdown, then the clean one).
    pub fn stop(&mut self, id: i32) {
        match self.brokers[(id - 1) as usize].take() {
            Some(Process::Vltava(mut b)) => {
                let status = b.terminate();
                assert!(status.success(), "node {id} exited with {status}");
            }
            Some(Process::Kafka(mut k)) => {
                let pid = k.child.id().to_string();
                let sent = std::process::Command::new("kill")
                    .args(["-TERM", &pid])
                    .status()
                    .expect("kill -TERM");
                assert!(sent.success());
                let status = k.child.wait().expect("wait for Kafka");
                assert!(status.success() || status.code() == Some(143), "{status}");
            }
            None => {}
        }
    }

    /// Sends signal `sig` (`STOP`, `CONT`, …) to node `id`'s process.
    pub fn signal(&mut self, id: i32, sig: &str) {
        let pid = match self.brokers[(id - 1) as usize].as_mut() {
            Some(Process::Vltava(b)) => b.pid().expect("running"),
            Some(Process::Kafka(k)) => k.child.id(),
            None => panic!("node {id} is not running"),
        };
        let sent = std::process::Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "kill -{sig} {pid}");
    }

    /// Starts a stopped node `id` again on its data dir and waits until ready.
    pub fn restart(&mut self, id: i32) {
        self.launch(id);
        self.wait_ready(id);
    }
}

/// FindCoordinator's key types.
pub const GROUP: i8 = 0;
pub const TRANSACTION: i8 = 1;

/// The broker FindCoordinator (asked at `addr`) names for `key` of
/// `key_type`, once one is available: Kafka creates the coordinators'
/// topic at the first ask and answers COORDINATOR_NOT_AVAILABLE meanwhile;
/// a node still loading answers COORDINATOR_LOAD_IN_PROGRESS.
pub fn find_coordinator(addr: std::net::SocketAddr, key: &str, key_type: i8) -> i32 {
    use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let found = super::raw::RawClient::connect(addr).send(
            3,
            &FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(key.to_string()))
                .with_key_type(key_type),
        );
        if found.error_code == 0 {
            return found.node_id.0;
        }
        assert!(
            [COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE].contains(&found.error_code),
            "FindCoordinator for {key}: {found:?}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no coordinator for {key}: {found:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
