//! The cluster's processes: one combined broker and controller per
//! namespace of a [`Net`], Vltava's release binary or Apache Kafka's JVM
//! from the same Kafka KRaft `server.properties`. Starts, kills, stops,
//! pauses and restarts them; asks them (with short timeouts, never
//! panicking) who leads; fills the one small disk. Never changes the network.
//!
//! Every process is started as `ip netns exec NS SERVER …`, which execs the
//! server in place: the child's pid is the server's, so SIGKILL and SIGSTOP
//! hit the server itself (checked at every start).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    DescribeQuorumRequest, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::net::{must, run, Net};

/// Size of the small disk (a loop-mounted ext4 filesystem).
pub const SMALL_DISK_MIB: u64 = 256;
/// The Kafka listener's port on every node's address.
pub const KAFKA_PORT: u16 = 9092;
/// The controller listener's port.
pub const CONTROLLER_PORT: u16 = 9093;
/// Vltava's admin HTTP port (`/metrics`, `/health`).
pub const ADMIN_PORT: u16 = 9644;

/// How long a start may take to become ready.
const VLTAVA_READY: Duration = Duration::from_secs(60);
const KAFKA_READY: Duration = Duration::from_secs(120);
/// How long a node may take to exit after SIGTERM before it is SIGKILLed.
const TERM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGKILLed process may take to be reaped.
const KILL_TIMEOUT: Duration = Duration::from_secs(20);
/// A probe's connect and read timeouts.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Each run's temp dir starts so (it holds an `owner` file with the pid).
const RUN_DIR_PREFIX: &str = "vltava-faults-";

/// The cluster id every Kafka data dir is formatted with.
const KAFKA_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

/// Which server the nodes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    Vltava,
    /// Apache Kafka, from the jars in this directory.
    Kafka(PathBuf),
}

impl Flavor {
    /// Kafka when `VLTAVA_CLUSTER_KAFKA_LIBS` names its jars, else Vltava.
    pub fn from_env() -> Flavor {
        match std::env::var_os("VLTAVA_CLUSTER_KAFKA_LIBS") {
            Some(libs) if !libs.is_empty() => Flavor::Kafka(PathBuf::from(libs)),
            _ => Flavor::Vltava,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Flavor::Vltava => "Vltava",
            Flavor::Kafka(_) => "Apache Kafka",
        }
    }
}

/// One node's files and process.
struct Node {
    id: i32,
    ns: String,
    ip: Ipv4Addr,
    config: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// How many times it was started (numbers its log files).
    starts: u32,
    /// Vltava: fires once the ready line was printed.
    ready: Option<mpsc::Receiver<()>>,
}

/// The loop-mounted filesystem under one node's data dir.
struct SmallDisk {
    id: i32,
    image: PathBuf,
    mount: PathBuf,
}

/// The running cluster. Dropping it kills every process (resuming paused
/// ones first) and unmounts the small disk.
pub struct Nodes {
    flavor: Flavor,
    nodes: Vec<Node>,
    disk: Option<SmallDisk>,
    logs: PathBuf,
    /// Dropped last: config, logs, data dirs, the disk image.
    dir: tempfile::TempDir,
}

/// A node's `server.properties`: combined roles, a PLAINTEXT and a
/// CONTROLLER listener on its address, replication factor 3 (or n when
/// fewer) with min.insync.replicas 2 for every topic, internal ones
/// included; then `extra` (in which `{node.id}` stands for the node id;
/// a later line wins).
pub fn server_properties(
    id: i32,
    ip: Ipv4Addr,
    voters: &str,
    n: i32,
    data: &Path,
    extra: &str,
) -> String {
    let rf = n.min(3);
    let min_isr = rf.min(2);
    format!(
        "process.roles=broker,controller\n\
         node.id={id}\n\
         controller.quorum.voters={voters}\n\
         listeners=PLAINTEXT://{ip}:{KAFKA_PORT},CONTROLLER://{ip}:{CONTROLLER_PORT}\n\
         advertised.listeners=PLAINTEXT://{ip}:{KAFKA_PORT}\n\
         inter.broker.listener.name=PLAINTEXT\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
         log.dirs={data}\n\
         num.partitions=1\n\
         default.replication.factor={rf}\n\
         offsets.topic.replication.factor={rf}\n\
         transaction.state.log.replication.factor={rf}\n\
         transaction.state.log.min.isr={min_isr}\n\
         min.insync.replicas={min_isr}\n\
         {extra}\n",
        data = data.display(),
        extra = extra.replace("{node.id}", &id.to_string()),
    )
}

impl Nodes {
    /// Writes every node's files, puts node `small_disk`'s data dir on a
    /// [`SMALL_DISK_MIB`] ext4 filesystem, formats (Kafka), starts every
    /// node in its namespace and waits until each is ready. Panics (with
    /// the node's log) when one does not become ready.
    pub fn start(net: &Net, flavor: Flavor, extra: &str, small_disk: Option<i32>) -> Nodes {
        if let Flavor::Kafka(libs) = &flavor {
            assert!(
                libs.is_dir(),
                "VLTAVA_CLUSTER_KAFKA_LIBS={}: no such directory of Kafka jars \
                 (`tests/compat/kafka-reference.sh fetch` puts them in /tmp/vltava-kafka-ref-4.4.0/libs)",
                libs.display()
            );
        }
        sweep_dead_runs();
        let dir = tempfile::Builder::new()
            .prefix(RUN_DIR_PREFIX)
            .tempdir()
            .expect("temp dir for the fault nodes");
        std::fs::write(dir.path().join("owner"), std::process::id().to_string())
            .expect("write the run dir's owner");
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("create logs dir");
        let ids = net.ids();
        let voters = ids
            .iter()
            .map(|id| format!("{id}@{}:{CONTROLLER_PORT}", net.ip(*id)))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Nodes {
            flavor,
            nodes: Vec::new(),
            disk: None,
            logs,
            dir,
        };
        if let Some(id) = small_disk {
            assert!(ids.contains(&id), "small_disk: no node {id}");
            nodes.mount_small_disk(id);
        }
        for &id in &ids {
            let data_dir = match &nodes.disk {
                Some(disk) if disk.id == id => disk.mount.join("data"),
                _ => nodes.dir.path().join(format!("data-{id}")),
            };
            std::fs::create_dir_all(&data_dir).expect("create data dir");
            let config = nodes.dir.path().join(format!("server-{id}.properties"));
            let text =
                server_properties(id, net.ip(id), &voters, ids.len() as i32, &data_dir, extra);
            std::fs::write(&config, text).expect("write server.properties");
            nodes.nodes.push(Node {
                id,
                ns: net.ns(id),
                ip: net.ip(id),
                config,
                data_dir,
                child: None,
                paused: false,
                starts: 0,
                ready: None,
            });
        }
        if let Flavor::Kafka(libs) = &nodes.flavor {
            for node in &nodes.nodes {
                let out = java(libs, &nodes.log4j(node.id, 0))
                    .args([
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        KAFKA_CLUSTER_ID,
                        "-c",
                    ])
                    .arg(&node.config)
                    .output()
                    .expect("run Kafka's StorageTool (is java installed?)");
                assert!(
                    out.status.success(),
                    "formatting node {}: {}{}",
                    node.id,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        for &id in &ids {
            nodes.launch(id);
        }
        for &id in &ids {
            if let Err(e) = nodes.wait_ready(id) {
                panic!("{e}");
            }
        }
        nodes
    }

    pub fn flavor(&self) -> &Flavor {
        &self.flavor
    }

    /// The node ids, 1..=n.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Node `id`'s Kafka listener.
    pub fn addr(&self, id: i32) -> SocketAddr {
        SocketAddr::from((self.node(id).ip, KAFKA_PORT))
    }

    /// Node `id`'s admin HTTP listener (Vltava only).
    pub fn admin_addr(&self, id: i32) -> SocketAddr {
        SocketAddr::from((self.node(id).ip, ADMIN_PORT))
    }

    /// `bootstrap.servers` naming every node.
    pub fn bootstrap(&self) -> String {
        self.ids()
            .into_iter()
            .map(|id| self.addr(id).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `id`'s data dir (stable across restarts).
    pub fn data_dir(&self, id: i32) -> &Path {
        &self.node(id).data_dir
    }

    /// The node whose data dir is on the small disk.
    pub fn small_disk(&self) -> Option<i32> {
        self.disk.as_ref().map(|d| d.id)
    }

    /// Node `id`'s process id while it runs.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).child.as_ref().map(Child::id)
    }

    /// Whether node `id`'s process is alive (a paused one is).
    pub fn running(&mut self, id: i32) -> bool {
        let node = self.node_mut(id);
        match node.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                node.child = None;
                node.paused = false;
                false
            }
            None => false,
        }
    }

    /// Whether node `id` is stopped by SIGSTOP.
    pub fn paused(&self, id: i32) -> bool {
        self.node(id).paused
    }

    /// SIGKILLs node `id` and reaps it (nothing when it is not running).
    pub fn kill9(&mut self, id: i32) {
        let node = self.node_mut(id);
        node.paused = false;
        node.ready = None;
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            if wait_bounded(&mut child, KILL_TIMEOUT).is_none() {
                eprintln!(
                    "faults: node {id} (pid {}) not reaped {KILL_TIMEOUT:?} after SIGKILL",
                    child.id()
                );
            }
        }
    }

    /// SIGTERMs node `id` (resuming it first when paused) and waits for it to
    /// exit: its exit status, or an error when it did not exit within
    /// [`TERM_TIMEOUT`] (it is SIGKILLed then). `Ok` when it was not running.
    pub fn terminate(&mut self, id: i32) -> Result<Option<ExitStatus>, String> {
        if !self.running(id) {
            return Ok(None);
        }
        self.resume(id);
        let node = self.node_mut(id);
        node.ready = None;
        let Some(mut child) = node.child.take() else {
            return Ok(None);
        };
        signal(child.id(), libc::SIGTERM);
        match wait_bounded(&mut child, TERM_TIMEOUT) {
            Some(status) => Ok(Some(status)),
            None => {
                let _ = child.kill();
                let _ = wait_bounded(&mut child, KILL_TIMEOUT);
                Err(format!(
                    "node {id} did not exit within {TERM_TIMEOUT:?} of SIGTERM; SIGKILLed it"
                ))
            }
        }
    }

    /// Starts node `id` again on its data dir and waits until it is ready.
    pub fn start_node(&mut self, id: i32) -> Result<(), String> {
        if self.running(id) {
            return Err(format!("start_node({id}): it is running"));
        }
        self.launch(id);
        self.wait_ready(id)
    }

    /// SIGSTOPs node `id`; false when it is not running.
    pub fn pause(&mut self, id: i32) -> bool {
        if !self.running(id) {
            return false;
        }
        let node = self.node_mut(id);
        if let Some(child) = &node.child {
            let pid = child.id();
            signal(pid, libc::SIGSTOP);
            node.paused = true;
            // The signal is delivered asynchronously: wait until every
            // thread of the process is stopped, so the fault is in place
            // when this returns.
            let deadline = Instant::now() + Duration::from_secs(5);
            while !all_threads_stopped(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        true
    }

    /// SIGCONTs node `id`; false when it was not paused.
    pub fn resume(&mut self, id: i32) -> bool {
        let node = self.node_mut(id);
        if !node.paused {
            return false;
        }
        node.paused = false;
        if let Some(child) = &node.child {
            signal(child.id(), libc::SIGCONT);
        }
        true
    }

    /// The leader of `topic`-`partition` and its leader epoch, from the node
    /// answering with the highest epoch (every running, unpaused node is
    /// asked Metadata with short timeouts); `None` when none names one.
    pub fn leader_and_epoch(&self, topic: &str, partition: i32) -> Option<(i32, i32)> {
        let answers = self.ask_all(|addr| metadata(addr, topic));
        answers
            .into_iter()
            .filter_map(|(_, m)| m.ok())
            .filter_map(|m| {
                let t = m.topics.iter().find(|t| t.error_code == 0)?;
                let p = t
                    .partitions
                    .iter()
                    .find(|p| p.partition_index == partition && p.error_code == 0)?;
                (p.leader_id.0 >= 0).then_some((p.leader_epoch, p.leader_id.0))
            })
            .max()
            .map(|(epoch, leader)| (leader, epoch))
    }

    /// The leader of `topic`-`partition` (see [`Nodes::leader_and_epoch`]).
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.leader_and_epoch(topic, partition).map(|(l, _)| l)
    }

    /// The active KRaft controller and its epoch: DescribeQuorum of
    /// `__cluster_metadata-0` to every running, unpaused node (a Kafka
    /// broker forwards it to the controller), the highest epoch wins.
    pub fn controller_and_epoch(&self) -> Option<(i32, i32)> {
        let answers = self.ask_all(describe_quorum);
        answers
            .into_iter()
            .filter_map(|(_, q)| q.ok())
            .filter(|(leader, _)| *leader >= 0)
            .max_by_key(|(_, epoch)| *epoch)
    }

    /// The active KRaft controller (see [`Nodes::controller_and_epoch`]).
    pub fn controller(&self) -> Option<i32> {
        self.controller_and_epoch().map(|(c, _)| c)
    }

    /// Waits until every node runs unpaused and every node's Metadata shows
    /// `partitions` partitions of `topic`, each with a leader and an ISR of
    /// all its replicas, the same leader and leader epoch everywhere.
    pub fn wait_converged(
        &mut self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<(), String> {
        self.wait_converged_inner(topic, Some(partitions), timeout)
    }

    /// `wait_converged` taking the partition count the nodes report.
    pub(crate) fn wait_converged_inner(
        &mut self,
        topic: &str,
        partitions: Option<i32>,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let why = match self.converged(topic, partitions) {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                return Err(format!("{topic} not converged within {timeout:?}: {why}"));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// One look at whether `topic` converged; what is missing if not.
    fn converged(&mut self, topic: &str, partitions: Option<i32>) -> Result<(), String> {
        for id in self.ids() {
            if !self.running(id) {
                return Err(format!("node {id} is not running"));
            }
            if self.paused(id) {
                return Err(format!("node {id} is paused"));
            }
        }
        // partition -> (leader, epoch) as the first node saw it.
        let mut seen: BTreeMap<i32, (i32, i32, i32)> = BTreeMap::new();
        for (id, answer) in self.ask_all(|addr| metadata(addr, topic)) {
            let m = answer.map_err(|e| format!("node {id}: {e}"))?;
            let t = m
                .topics
                .first()
                .ok_or_else(|| format!("node {id}: no topic in its Metadata"))?;
            if t.error_code != 0 {
                return Err(format!("node {id}: {topic} error {}", t.error_code));
            }
            let expected = partitions.unwrap_or(t.partitions.len() as i32);
            if t.partitions.len() as i32 != expected {
                return Err(format!(
                    "node {id}: {} partitions of {topic}, expected {expected}",
                    t.partitions.len()
                ));
            }
            for p in &t.partitions {
                let index = p.partition_index;
                let replicas: BTreeSet<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
                let isr: BTreeSet<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
                if p.error_code != 0 || p.leader_id.0 < 0 {
                    return Err(format!(
                        "node {id}: {topic}-{index} has no leader (error {})",
                        p.error_code
                    ));
                }
                if replicas.is_empty() || isr != replicas {
                    return Err(format!(
                        "node {id}: {topic}-{index} ISR {isr:?} of replicas {replicas:?}"
                    ));
                }
                let view = (p.leader_id.0, p.leader_epoch, id);
                let first = *seen.entry(index).or_insert(view);
                if (first.0, first.1) != (view.0, view.1) {
                    return Err(format!(
                        "{topic}-{index}: node {} sees leader {} epoch {}, node {id} leader {} epoch {}",
                        first.2, first.0, first.1, view.0, view.1
                    ));
                }
            }
        }
        Ok(())
    }

    /// `f` of every running, unpaused node's address, asked in parallel.
    fn ask_all<T: Send>(
        &self,
        f: impl Fn(SocketAddr) -> Result<T, String> + Sync,
    ) -> Vec<(i32, Result<T, String>)> {
        let targets: Vec<(i32, SocketAddr)> = self
            .nodes
            .iter()
            .filter(|n| n.child.is_some() && !n.paused)
            .map(|n| (n.id, SocketAddr::from((n.ip, KAFKA_PORT))))
            .collect();
        let f = &f;
        std::thread::scope(|s| {
            let asks: Vec<_> = targets
                .iter()
                .map(|(id, addr)| (*id, s.spawn(move || f(*addr))))
                .collect();
            asks.into_iter()
                .map(|(id, ask)| {
                    let answer = ask.join().unwrap_or_else(|_| Err("probe panicked".into()));
                    (id, answer)
                })
                .collect()
        })
    }

    /// Fills node `id`'s small disk with a filler file until the
    /// filesystem refuses (ENOSPC); the bytes written.
    pub fn fill_disk(&self, id: i32) -> Result<u64, String> {
        let filler = self.filler(id)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&filler)
            .map_err(|e| format!("open {}: {e}", filler.display()))?;
        let mut written = 0u64;
        // Big writes first, then single blocks for the last few; again
        // after an fsync, which may free reservations.
        for _round in 0..3 {
            for chunk in [1 << 20, 4096, 1024] {
                let block = vec![0x5au8; chunk];
                loop {
                    match file.write(&block) {
                        Ok(0) => break,
                        Ok(k) => written += k as u64,
                        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                        Err(e) => return Err(format!("write {}: {e}", filler.display())),
                    }
                }
            }
            let _ = file.sync_all();
            if self.available_bytes(id)? == 0 {
                break;
            }
        }
        Ok(written)
    }

    /// Removes the filler file from node `id`'s small disk.
    pub fn free_disk(&self, id: i32) -> Result<(), String> {
        let filler = self.filler(id)?;
        match std::fs::remove_file(&filler) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("remove {}: {e}", filler.display())),
        }
    }

    /// Whether node `id`'s small disk holds a filler file.
    pub fn disk_filled(&self, id: i32) -> bool {
        self.filler(id).map(|f| f.exists()).unwrap_or(false)
    }

    /// Bytes available on the filesystem of node `id`'s data dir.
    pub fn available_bytes(&self, id: i32) -> Result<u64, String> {
        statvfs(&self.node(id).data_dir).map(|(avail, _)| avail)
    }

    /// Bytes used on the filesystem of node `id`'s data dir.
    pub fn used_bytes(&self, id: i32) -> Result<u64, String> {
        statvfs(&self.node(id).data_dir).map(|(avail, total)| total - avail)
    }

    fn filler(&self, id: i32) -> Result<PathBuf, String> {
        match &self.disk {
            Some(disk) if disk.id == id => Ok(disk.mount.join("filler")),
            _ => Err(format!(
                "node {id} has no small disk (Nodes::start's small_disk)"
            )),
        }
    }

    /// The last `lines` lines of node `id`'s log of its latest start.
    pub fn log_tail(&self, id: i32, lines: usize) -> String {
        let node = self.node(id);
        let start = node.starts;
        let mut text = String::new();
        if matches!(self.flavor, Flavor::Kafka(_)) {
            text.push_str(&tail(&read_lossy(&self.log_path(id, start, "log")), lines));
            text.push('\n');
        }
        text.push_str(&tail(
            &read_lossy(&self.log_path(id, start, "stderr")),
            lines,
        ));
        format!(
            "---- node {id} ({}, start #{start}), last {lines} lines ----\n{}\n---- end of node {id} ----",
            self.flavor.name(),
            text.trim()
        )
    }

    /// The directory holding every node's logs.
    pub fn logs_dir(&self) -> &Path {
        &self.logs
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn log_path(&self, id: i32, start: u32, kind: &str) -> PathBuf {
        self.logs.join(format!("node-{id}.{start}.{kind}"))
    }

    /// A log4j2 config writing node `id`'s Kafka log of start `start`.
    fn log4j(&self, id: i32, start: u32) -> PathBuf {
        let path = self.logs.join(format!("log4j2-{id}.{start}.properties"));
        std::fs::write(
            &path,
            format!(
                "status = error\nappender.file.type = File\nappender.file.name = FILE\n\
                 appender.file.fileName = {}\nappender.file.append = true\n\
                 appender.file.layout.type = PatternLayout\n\
                 appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
                 rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FILE\n",
                self.log_path(id, start, "log").display()
            ),
        )
        .expect("write log4j2.properties");
        path
    }

    /// Starts node `id`'s process in its namespace, without waiting.
    fn launch(&mut self, id: i32) {
        let start = self.node(id).starts + 1;
        let stderr = File::create(self.log_path(id, start, "stderr")).expect("create stderr log");
        let stdout_path = self.log_path(id, start, "stdout");
        let node = self.node(id);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &node.ns]);
        let vltava = match &self.flavor {
            Flavor::Vltava => {
                cmd.arg(env!("CARGO_BIN_EXE_vltava"))
                    .arg("server")
                    .arg("--config")
                    .arg(&node.config)
                    .arg("--admin-listen")
                    .arg(format!("{}:{ADMIN_PORT}", node.ip))
                    .env("NO_COLOR", "1")
                    .stdout(Stdio::piped());
                if std::env::var_os("RUST_LOG").is_none() {
                    cmd.env("RUST_LOG", "info");
                }
                true
            }
            Flavor::Kafka(libs) => {
                let log4j = self.log4j(id, start);
                let mut java = java(libs, &log4j);
                java.arg("kafka.Kafka").arg(&node.config);
                cmd.arg(java.get_program()).args(java.get_args());
                cmd.stdout(File::create(&stdout_path).expect("create stdout log"));
                false
            }
        };
        cmd.stdin(Stdio::null()).stderr(stderr);
        let mut child = cmd.spawn().expect("spawn `ip netns exec` (run as root)");
        let node = self.node_mut(id);
        node.starts = start;
        node.paused = false;
        node.ready = None;
        if vltava {
            let stdout = child.stdout.take().expect("child stdout");
            let (tx, rx) = mpsc::channel();
            node.ready = Some(rx);
            // Copies stdout to its file, says when the ready line came, and
            // keeps draining so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut file = File::create(&stdout_path).ok();
                let mut reader = BufReader::new(stdout);
                let mut line = String::new();
                while matches!(reader.read_line(&mut line), Ok(k) if k > 0) {
                    if line.starts_with("vltava listening on ") {
                        let _ = tx.send(());
                    }
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(line.as_bytes());
                    }
                    line.clear();
                }
            });
        }
        node.child = Some(child);
    }

    /// Waits until launched node `id` is ready: Vltava's ready line, or
    /// `Kafka Server started` in Kafka's log. Kills it when it is not.
    fn wait_ready(&mut self, id: i32) -> Result<(), String> {
        let (limit, kafka) = match self.flavor {
            Flavor::Vltava => (VLTAVA_READY, false),
            Flavor::Kafka(_) => (KAFKA_READY, true),
        };
        let deadline = Instant::now() + limit;
        let log = self.log_path(id, self.node(id).starts, "log");
        let outcome = loop {
            let node = self.node_mut(id);
            let Some(child) = node.child.as_mut() else {
                break Err("it is not running".to_string());
            };
            if let Ok(Some(status)) = child.try_wait() {
                node.child = None;
                break Err(format!("it exited with {status}"));
            }
            let ready = if kafka {
                read_lossy(&log).contains("Kafka Server started")
            } else {
                node.ready.as_ref().is_some_and(|rx| rx.try_recv().is_ok())
            };
            if ready {
                break Ok(child.id());
            }
            if Instant::now() >= deadline {
                break Err(format!("not ready within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let why = match outcome {
            Ok(pid) => {
                // `ip netns exec` must have exec'd the server in place.
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                let name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
                let expected = if kafka { "java" } else { "vltava" };
                if name.as_deref() == Some(expected) {
                    return Ok(());
                }
                format!("its pid {pid} runs {exe:?}, not {expected}")
            }
            Err(why) => why,
        };
        self.kill9(id);
        Err(format!(
            "node {id} (start #{}) did not become ready: {why}\n{}",
            self.node(id).starts,
            self.log_tail(id, 60)
        ))
    }

    /// Creates, formats and mounts node `id`'s small disk.
    fn mount_small_disk(&mut self, id: i32) {
        let image = self.dir.path().join(format!("disk-{id}.img"));
        let mount = self.dir.path().join(format!("disk-{id}"));
        File::create(&image)
            .and_then(|f| f.set_len(SMALL_DISK_MIB << 20))
            .expect("create the disk image");
        std::fs::create_dir_all(&mount).expect("create the mount point");
        let (image_s, mount_s) = (image.display().to_string(), mount.display().to_string());
        // No blocks reserved for root: the servers run as root, and a full
        // disk must be full for them too.
        must(&["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", &image_s]);
        must(&["mount", "-o", "loop", &image_s, &mount_s]);
        self.disk = Some(SmallDisk { id, image, mount });
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for id in self.ids() {
                eprintln!("{}", self.log_tail(id, 80));
            }
        }
        for id in self.ids() {
            self.resume(id);
            self.kill9(id);
        }
        if let Some(disk) = self.disk.take() {
            let mount = disk.mount.display().to_string();
            if let Err(e) = run(&["umount", &mount]) {
                eprintln!("faults: {e}; unmounting lazily");
                let _ = run(&["umount", "-l", &mount]);
            }
            // `mount -o loop` detaches on unmount; make sure.
            let image = disk.image.display().to_string();
            let attached = run(&["losetup", "-j", &image]).unwrap_or_default();
            for line in attached.lines() {
                if let Some(dev) = line.split(':').next() {
                    let _ = run(&["losetup", "-d", dev]);
                }
            }
        }
    }
}

/// Unmounts the small disks of runs whose process died (killed before
/// their `Drop` could run) and removes their directories.
fn sweep_dead_runs() {
    let tmp = std::env::temp_dir();
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for entry in entries.flatten() {
        let path = entry.path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(RUN_DIR_PREFIX));
        let owner = std::fs::read_to_string(path.join("owner"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let Some(owner) = owner.filter(|_| named) else {
            continue;
        };
        if owner == std::process::id() || super::net::alive(owner) {
            continue;
        }
        let prefix = format!("{}/", path.display());
        for mount in mounts.lines().filter_map(|l| l.split_whitespace().nth(1)) {
            if mount.starts_with(&prefix) {
                eprintln!("faults: unmounting {mount}, left by a dead run");
                let _ = run(&["umount", "-l", mount]);
            }
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// A Kafka JVM's command line up to the main class.
fn java(libs: &Path, log4j: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.args([
        "-Xms256m",
        "-Xmx512m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
    ])
    .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
    .arg("-cp")
    .arg(format!("{}/*", libs.display()));
    cmd
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; the pid is our own child,
    // not yet reaped (so not reused).
    unsafe { libc::kill(pid as i32, sig) };
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => return None,
        }
    }
}

/// (available, total) bytes of the filesystem holding `path`.
fn statvfs(path: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid C string and a zeroed out-struct statvfs(3) fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let frsize = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * frsize, st.f_blocks as u64 * frsize))
}

fn read_lossy(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One request to `addr` on a fresh connection, with `timeout` for the
/// connect and for each read and write; never panics.
pub fn ask<R: Request>(
    addr: SocketAddr,
    version: i16,
    req: &R,
    timeout: Duration,
) -> Result<R::Response, String> {
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("{addr}: {what}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| fail("connect", &e))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| fail("timeouts", &e))?;
    let correlation_id = 1;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("vltava-faults")));
    let mut payload = BytesMut::new();
    header
        .encode(&mut payload, R::header_version(version))
        .map_err(|e| fail("encode header", &e))?;
    req.encode(&mut payload, version)
        .map_err(|e| fail("encode", &e))?;
    let mut frame = (payload.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&payload);
    stream.write_all(&frame).map_err(|e| fail("write", &e))?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).map_err(|e| fail("read", &e))?;
    let len = i32::from_be_bytes(len);
    if !(0..100_000_000).contains(&len) {
        return Err(fail("response length", &len));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).map_err(|e| fail("read", &e))?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| fail("decode header", &e))?;
    if header.correlation_id != correlation_id {
        return Err(fail("correlation id", &header.correlation_id));
    }
    R::Response::decode(&mut body, version).map_err(|e| fail("decode", &e))
}

/// Metadata (v12) of `topic` from `addr`.
pub fn metadata(addr: SocketAddr, topic: &str) -> Result<MetadataResponse, String> {
    let req = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(false);
    ask(addr, 12, &req, PROBE_TIMEOUT)
}

/// DescribeQuorum (v1) of `__cluster_metadata-0` from `addr`: the active
/// controller and its epoch.
pub fn describe_quorum(addr: SocketAddr) -> Result<(i32, i32), String> {
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let r = ask(addr, 1, &req, PROBE_TIMEOUT)?;
    if r.error_code != 0 {
        return Err(format!("{addr}: DescribeQuorum error {}", r.error_code));
    }
    let p = r
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| format!("{addr}: DescribeQuorum without a partition"))?;
    if p.error_code != 0 {
        return Err(format!(
            "{addr}: DescribeQuorum partition error {}",
            p.error_code
        ));
    }
    Ok((p.leader_id.0, p.leader_epoch))
}

/// Whether every thread of `pid` is in state `T` (stopped by a signal), as
/// `/proc/<pid>/task/*/stat` shows it.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat"))
            .ok()
            .and_then(|stat| {
                // The state follows the command name, which is in parentheses.
                let after = stat.rsplit_once(')')?.1;
                after.split_whitespace().next().map(|state| state == "T")
            })
            .unwrap_or(false)
    })
}
