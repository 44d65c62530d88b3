//! Fault injection: a three-node cluster, each node in its own network
//! namespace, under partitions, packet loss, slow links, kill -9, pauses,
//! a full disk and rolling restarts, while producers and consumers record a
//! history that the checker then reads for lost, duplicated and
//! inconsistent records and the other anomaly classes (docs/FAULTS.md).
//!
//! The short run (every nemesis once, fixed seed) runs in CI. The long runs
//! are `scripts/faults.sh` (the ignored `long_run` test). With
//! `VLTAVA_CLUSTER_KAFKA_LIBS` naming Apache Kafka's jars, both run three
//! Kafka JVMs from the same `server.properties` instead: the reference.

mod common;
#[path = "faults/mod.rs"]
mod faults;
#[path = "faults/harness_tests.rs"]
mod harness_tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::admin::{NewTopic, TopicReplication};

use faults::checker::{self, Anomaly, Report};
use faults::history::{Client, History, Isolation};
use faults::nemesis::{self, Nemesis};
use faults::net::Net;
use faults::nodes::{Flavor, Nodes};
use faults::workload::{self, Spec, Workload};
use faults::Rng;

/// Every node's settings beyond the listeners: Kafka's names, as an
/// operator would write them for a durable three-node cluster.
const SERVER: &str = "default.replication.factor=3\n\
                      min.insync.replicas=2\n\
                      offsets.topic.replication.factor=3\n\
                      transaction.state.log.replication.factor=3\n\
                      transaction.state.log.min.isr=2\n\
                      unclean.leader.election.enable=false\n\
                      group.initial.rebalance.delay.ms=0\n";

const TOPIC: &str = "faults";
const PARTITIONS: i32 = 4;
/// The node whose data dir is a small filesystem the disk nemesis fills.
const SMALL_DISK_NODE: i32 = 3;

/// How long the cluster may take to converge (every partition led, full
/// ISR everywhere) after a fault heals, and the clients to work again.
const CONVERGE: Duration = Duration::from_secs(90);
const RECOVER: Duration = Duration::from_secs(60);

/// One run's plan.
struct Plan {
    /// Nemeses in the order they fire; each fires `rounds` times.
    nemeses: Vec<Nemesis>,
    rounds: usize,
    /// How long each fault lasts before it heals: a whole number of
    /// seconds in this range, drawn per fault from the seed.
    fault: (u64, u64),
    /// Quiet time after the clients recovered, before the next fault.
    quiet: Duration,
    seed: u64,
    label: String,
}

/// What a run leaves: the checker's report, and where the history went.
struct Outcome {
    report: Report,
    dir: PathBuf,
    faults: usize,
}

fn spec(bootstrap: String) -> Spec {
    Spec {
        bootstrap,
        topic: TOPIC.into(),
        partitions: PARTITIONS,
        producers: vec![
            Client::PlainProducer,
            Client::IdempotentProducer,
            Client::IdempotentProducer,
            Client::TransactionalProducer,
        ],
        consumers: vec![
            Client::AssignedConsumer(Isolation::ReadUncommitted),
            Client::AssignedConsumer(Isolation::ReadCommitted),
            Client::SubscribedConsumer(Isolation::ReadCommitted),
            Client::SubscribedConsumer(Isolation::ReadCommitted),
        ],
        send_interval: Duration::from_millis(10),
        group: "faults-group".into(),
    }
}

fn create_topic(bootstrap: &str) {
    let admin = common::admin_client(bootstrap);
    let topic = NewTopic::new(TOPIC, PARTITIONS, TopicReplication::Fixed(3))
        .set("min.insync.replicas", "2");
    let results = common::block_on(
        Duration::from_secs(30),
        admin.create_topics([&topic], &common::admin_opts()),
    )
    .expect("create topic");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}

/// Where a run keeps its history and report.
fn run_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/faults")
        .join(format!(
            "{}-{label}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        ));
    std::fs::create_dir_all(&dir).expect("create run dir");
    dir
}

/// Copies the nodes' logs into the run's directory when the run ends,
/// also when it fails.
struct KeepLogs {
    from: PathBuf,
    to: PathBuf,
}

impl Drop for KeepLogs {
    fn drop(&mut self) {
        let _ = std::fs::create_dir_all(&self.to);
        if let Ok(entries) = std::fs::read_dir(&self.from) {
            for e in entries.flatten() {
                let _ = std::fs::copy(e.path(), self.to.join(e.file_name()));
            }
        }
    }
}

/// Starts the cluster, runs the workload through every fault of `plan`,
/// heals, reads everything back and checks the history.
fn run(plan: &Plan) -> Outcome {
    let flavor = Flavor::from_env();
    let net = Net::create(3);
    let mut nodes = Nodes::start(&net, flavor, SERVER, Some(SMALL_DISK_NODE));
    let dir = run_dir(&plan.label);
    // Dropped before the nodes, so their logs are still there to keep.
    let _logs = KeepLogs {
        from: nodes.logs_dir().to_path_buf(),
        to: dir.join("logs"),
    };
    let bootstrap = nodes.bootstrap();
    create_topic(&bootstrap);
    nodes
        .wait_converged(TOPIC, PARTITIONS, CONVERGE)
        .unwrap_or_else(|e| panic!("the new cluster did not converge: {e}"));

    let history = History::new();
    let spec = spec(bootstrap);
    let mut rng = Rng::new(plan.seed);
    let workload = Workload::start(&spec, &history, plan.seed);
    workload
        .wait_for_progress(&spec, (0, 0, 0), RECOVER)
        .unwrap_or_else(|e| panic!("the workload never started: {e}"));

    let mut fired = 0;
    for round in 0..plan.rounds {
        for &nemesis in &plan.nemeses {
            let fault = nemesis::inject(nemesis, &mut nodes, &net, &mut rng, TOPIC, &history);
            fired += 1;
            let (shortest, longest) = plan.fault;
            let secs = shortest + rng.below(longest - shortest + 1);
            std::thread::sleep(Duration::from_secs(secs));
            if let Err(e) = nemesis::heal(fault, &mut nodes, &net, &history) {
                panic!("round {round}, {}: healing failed: {e}", nemesis.name());
            }
            let healed = workload.progress.snapshot();
            let converged = Instant::now();
            if let Err(e) = nodes.wait_converged(TOPIC, PARTITIONS, CONVERGE) {
                panic!(
                    "round {round}, {}: the cluster did not converge after healing: {e}",
                    nemesis.name()
                );
            }
            if let Err(e) = workload.wait_for_progress(&spec, healed, RECOVER) {
                panic!(
                    "round {round}, {}: the clients did not recover after healing: {e}",
                    nemesis.name()
                );
            }
            eprintln!(
                "faults: {} healed; converged and clients working after {:?}",
                nemesis.name(),
                converged.elapsed()
            );
            std::thread::sleep(plan.quiet);
        }
    }

    workload.stop();
    nemesis::heal_all(&mut nodes, &net, &history)
        .unwrap_or_else(|e| panic!("healing everything at the end: {e}"));
    nodes
        .wait_converged(TOPIC, PARTITIONS, CONVERGE)
        .unwrap_or_else(|e| panic!("the cluster did not converge at the end: {e}"));
    if let Err(e) = workload::final_reads(&spec, &history, Duration::from_secs(180)) {
        let _ = history.write(&dir.join("history.jsonl"));
        panic!("final reads: {e} (history in {})", dir.display());
    }

    history
        .write(&dir.join("history.jsonl"))
        .expect("write history");
    let ops = history.ops();
    let report = checker::check(&ops);
    std::fs::write(dir.join("report.txt"), report.to_string()).expect("write report");
    eprintln!(
        "faults: {} ({} faults) history and report in {}\n{report}",
        plan.label,
        fired,
        dir.display()
    );
    Outcome {
        report,
        dir,
        faults: fired,
    }
}

/// A report in one line: what was acknowledged and read, and every class
/// with findings.
fn one_line(report: &Report) -> String {
    let s = &report.stats;
    let found: Vec<String> = Anomaly::ALL
        .iter()
        .filter(|a| report.count(**a) > 0)
        .map(|a| format!("{}={}", a.name(), report.count(*a)))
        .collect();
    format!(
        "acknowledged={} committed={} aborted={} reads={}\t{}",
        s.acknowledged,
        s.committed,
        s.aborted,
        s.reads,
        if found.is_empty() {
            "none".to_string()
        } else {
            found.join(" ")
        }
    )
}

/// The CI run: every nemesis once, in a fixed order with a fixed seed.
#[test]
fn every_nemesis_once_loses_duplicates_and_reorders_nothing() {
    let plan = Plan {
        nemeses: Nemesis::ALL.to_vec(),
        rounds: 1,
        fault: (10, 10),
        quiet: Duration::from_secs(2),
        seed: 17,
        label: format!("short-{}", Flavor::from_env().name()),
    };
    let outcome = run(&plan);
    assert_eq!(outcome.faults, Nemesis::ALL.len());
    let unexpected = outcome.report.unexpected();
    assert!(
        unexpected.is_empty(),
        "anomalies {unexpected:?} (history in {}):\n{}",
        outcome.dir.display(),
        outcome.report
    );
}

/// A long run (`scripts/faults.sh`): each nemesis of `VLTAVA_FAULTS_NEMESES`
/// (comma-separated names, or `all`) on a fresh cluster for
/// `VLTAVA_FAULTS_MINUTES` minutes of fault/heal cycles, seed
/// `VLTAVA_FAULTS_SEED`. Appends one line per nemesis to
/// `target/faults/results.tsv`.
#[test]
#[ignore = "long: run by scripts/faults.sh"]
fn long_run() {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
    let names = var("VLTAVA_FAULTS_NEMESES", "all");
    let nemeses: Vec<Nemesis> = if names == "all" {
        Nemesis::ALL.to_vec()
    } else {
        names
            .split(',')
            .map(|n| Nemesis::parse(n.trim()).unwrap_or_else(|| panic!("no nemesis {n:?}")))
            .collect()
    };
    let minutes: u64 = var("VLTAVA_FAULTS_MINUTES", "20").parse().expect("minutes");
    let seed: u64 = var("VLTAVA_FAULTS_SEED", "1").parse().expect("seed");
    let flavor = Flavor::from_env().name();
    let results = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/faults/results.tsv");
    for nemesis in nemeses {
        let started = Instant::now();
        // One cycle is a fault of 10–20 s, recovery, and 5 s of quiet:
        // about 30 s.
        let cycles = (minutes * 60 / 30).max(1) as usize;
        let plan = Plan {
            nemeses: vec![nemesis],
            rounds: cycles,
            fault: match var("VLTAVA_FAULTS_FAULT_SECS", "").parse() {
                Ok(secs) => (secs, secs),
                Err(_) => (10, 20),
            },
            quiet: Duration::from_secs(5),
            seed,
            label: format!("long-{flavor}-{}", nemesis.name()),
        };
        // A run that does not converge or recover is a result too: noted,
        // and the next nemesis runs.
        let line = match std::panic::catch_unwind(|| run(&plan)) {
            Ok(outcome) => format!(
                "{flavor}\t{}\t{seed}\t{:.1}\t{}\t{}\t{}\n",
                nemesis.name(),
                started.elapsed().as_secs_f64() / 60.0,
                outcome.faults,
                one_line(&outcome.report),
                outcome.dir.display()
            ),
            Err(panic) => format!(
                "{flavor}\t{}\t{seed}\t{:.1}\t-\tfailed: {}\n",
                nemesis.name(),
                started.elapsed().as_secs_f64() / 60.0,
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("panic")
                    .replace('\n', " ")
            ),
        };
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("append results");
        eprint!("faults: {line}");
    }
}
