//! A cluster of `vltava` processes on loopback, each started from its own
//! Kafka KRaft `server.properties` (combined broker and controller roles, a
//! PLAINTEXT and a CONTROLLER listener, its own data dir), as an operator
//! would write them for three Kafka nodes on one machine.

use std::path::PathBuf;

use super::TestBroker;

/// A node's ports and files.
pub struct Node {
    pub id: i32,
    pub kafka_port: u16,
    pub controller_port: u16,
    pub config: PathBuf,
    pub data_dir: PathBuf,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The running processes, by node (index = id - 1); `None` while stopped.
    pub brokers: Vec<Option<TestBroker>>,
    _dir: tempfile::TempDir,
}

/// Ports nobody listens on right now (bound to port 0 and released).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// A Kafka KRaft node's `server.properties`, plus `extra` lines.
pub fn server_properties(node: &Node, voters: &str, extra: &str) -> String {
    format!(
        "process.roles=broker,controller\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}\n\
         inter.broker.listener.name=PLAINTEXT\n\
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
        id = node.id,
        kafka = node.kafka_port,
        controller = node.controller_port,
        data = node.data_dir.display(),
    )
}

impl Cluster {
    /// Writes `n` nodes' files and starts them all, then waits until each
    /// is ready (a node is ready once a quorum of voters runs).
    pub fn start(n: usize, extra: &str) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("vltava-cluster-")
            .tempdir()
            .expect("temp dir");
        let ports = free_ports(2 * n);
        let nodes: Vec<Node> = (0..n)
            .map(|i| Node {
                id: i as i32 + 1,
                kafka_port: ports[2 * i],
                controller_port: ports[2 * i + 1],
                config: dir.path().join(format!("server-{}.properties", i + 1)),
                data_dir: dir.path().join(format!("data-{}", i + 1)),
            })
            .collect();
        let voters = nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        for node in &nodes {
            std::fs::write(&node.config, server_properties(node, &voters, extra))
                .expect("write server.properties");
        }
        let mut cluster = Cluster {
            brokers: nodes.iter().map(|_| None).collect(),
            nodes,
            _dir: dir,
        };
        for id in 1..=n as i32 {
            cluster.launch(id);
        }
        for b in cluster.brokers.iter_mut().flatten() {
            b.wait_ready();
        }
        cluster
    }

    fn launch(&mut self, id: i32) {
        let node = &self.nodes[(id - 1) as usize];
        let config = node.config.display().to_string();
        let broker = TestBroker::launch_raw(&["--config", &config]);
        self.brokers[(id - 1) as usize] = Some(broker);
    }

    /// The running node `id`.
    pub fn broker(&mut self, id: i32) -> &mut TestBroker {
        self.brokers[(id - 1) as usize]
            .as_mut()
            .unwrap_or_else(|| panic!("node {id} is not running"))
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
        if let Some(mut b) = self.brokers[(id - 1) as usize].take() {
            b.kill9();
        }
    }

    /// Starts a stopped node `id` again on its data dir and waits until ready.
    pub fn restart(&mut self, id: i32) {
        self.launch(id);
        self.broker(id).wait_ready();
    }
}
