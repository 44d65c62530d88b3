//! The controller quorum on its own, three voters on loopback: they elect an
//! active controller, apply every proposal in one order wherever it was made,
//! carry on when the active controller is lost, and a voter that comes back
//! catches up from the log or, when the log it missed is purged, a snapshot.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use uuid::Uuid;
use vltava::metadata::records::TopicRecord;
use vltava::metadata::{
    MetadataImage, MetadataQuorum, MetadataRecord, ProposeError, QuorumConfig, Refused,
};

const WAIT: Duration = Duration::from_secs(30);

struct Cluster {
    _dir: tempfile::TempDir,
    voters: BTreeMap<u64, String>,
    snapshot_every: u64,
    nodes: BTreeMap<u64, Option<MetadataQuorum>>,
}

impl Cluster {
    async fn start(n: u64, snapshot_every: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listeners.insert(id, l);
        }
        let voters: BTreeMap<u64, String> = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().unwrap().to_string()))
            .collect();
        let mut cluster = Cluster {
            _dir: dir,
            voters,
            snapshot_every,
            nodes: BTreeMap::new(),
        };
        for (id, listener) in listeners {
            let q = cluster.start_node(id, listener).await;
            cluster.nodes.insert(id, Some(q));
        }
        cluster
    }

    fn dir(&self, id: u64) -> PathBuf {
        self._dir.path().join(format!("node-{id}"))
    }

    async fn start_node(&self, id: u64, listener: TcpListener) -> MetadataQuorum {
        let mut config = QuorumConfig::new(id, self.voters.clone(), self.dir(id));
        config.snapshot_every = self.snapshot_every;
        config.election_timeout = Duration::from_millis(500);
        MetadataQuorum::start(config, Some(listener)).await.unwrap()
    }

    async fn restart(&mut self, id: u64) {
        let addr: SocketAddr = self.voters[&id].parse().unwrap();
        let listener = TcpListener::bind(addr).await.unwrap();
        let q = self.start_node(id, listener).await;
        self.nodes.insert(id, Some(q));
    }

    async fn stop(&mut self, id: u64) {
        let q = self.nodes.get_mut(&id).unwrap().take().unwrap();
        q.shutdown().await;
    }

    fn node(&self, id: u64) -> &MetadataQuorum {
        self.nodes[&id].as_ref().unwrap()
    }

    fn running(&self) -> impl Iterator<Item = &MetadataQuorum> {
        self.nodes.values().flatten()
    }

    /// Proposes a topic named `name` through node `via`.
    async fn create(&self, via: u64, name: &str) -> u64 {
        let record = MetadataRecord::Topic(TopicRecord {
            id: Uuid::new_v4(),
            name: name.into(),
        });
        self.node(via).propose(vec![record], WAIT).await.unwrap()
    }

    /// Every running node's image once it has applied `index`.
    async fn images_at(&self, index: u64) -> Vec<Arc<MetadataImage>> {
        let mut images = Vec::new();
        for q in self.running() {
            let mut rx = q.subscribe();
            let image = tokio::time::timeout(WAIT, rx.wait_for(|i| i.offset >= index))
                .await
                .unwrap()
                .unwrap()
                .clone();
            images.push(image);
        }
        images
    }

    async fn leader(&self, asking: u64) -> u64 {
        self.node(asking).wait_for_leader(WAIT).await.unwrap()
    }

    /// The active controller once every running node names the same one (a
    /// voter can name the leader of an earlier term for a moment).
    async fn agreed_leader(&self) -> u64 {
        let mut receivers: Vec<_> = self.running().map(|q| q.raft_metrics().unwrap()).collect();
        let agreed = async {
            loop {
                let leaders: Vec<Option<u64>> = receivers
                    .iter()
                    .map(|rx| rx.borrow().current_leader)
                    .collect();
                if leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]) {
                    return leaders[0].unwrap();
                }
                let changes = receivers.iter_mut().map(|rx| Box::pin(rx.changed()));
                futures::future::select_all(changes).await.0.unwrap();
            }
        };
        tokio::time::timeout(WAIT, agreed).await.unwrap()
    }
}

fn topic_names(image: &MetadataImage) -> Vec<String> {
    image.topics().map(|t| t.name.clone()).collect()
}

/// Every running node has applied exactly the same records up to `index`,
/// and they name these topics.
async fn agree(cluster: &Cluster, index: u64, topics: &[&str]) {
    let images = cluster.images_at(index).await;
    // Wait on every node for the same offset: the last entry may be a blank
    // one a new leader appends, so compare at the highest offset any has.
    let top = images.iter().map(|i| i.offset).max().unwrap();
    let images = cluster.images_at(top).await;
    let first = topic_names(&images[0]);
    assert_eq!(first, topics);
    for image in &images[1..] {
        if image.offset == images[0].offset {
            assert_eq!(**image, *images[0]);
        }
        assert_eq!(topic_names(image), topics);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_agree_and_carry_on_without_the_active_controller() {
    let mut cluster = Cluster::start(3, 10_000).await;

    // Proposals through every node, leader or not, land in one order.
    let mut last = 0;
    for (via, name) in [(1, "t1"), (2, "t2"), (3, "t3")] {
        let index = cluster.create(via, name).await;
        assert!(index > last, "{index} after {last}");
        last = index;
    }
    agree(&cluster, last, &["t1", "t2", "t3"]).await;
    let first = cluster.agreed_leader().await;

    // A batch that no longer fits is refused alike wherever it is proposed,
    // the leader or a follower forwarding it.
    for via in 1..=3 {
        let again = MetadataRecord::Topic(TopicRecord {
            id: Uuid::new_v4(),
            name: "t2".into(),
        });
        match cluster.node(via).propose(vec![again], WAIT).await {
            Err(ProposeError::Refused(Refused::TopicExists(name))) => assert_eq!(name, "t2"),
            other => panic!("through node {via}: {other:?}"),
        }
    }

    // Lose the active controller: another takes over and proposals go on.
    cluster.stop(first).await;
    let survivor = (1..=3).find(|id| *id != first).unwrap();
    let index = cluster.create(survivor, "t4").await;
    let second = cluster.agreed_leader().await;
    assert_ne!(second, first);
    agree(&cluster, index, &["t1", "t2", "t3", "t4"]).await;

    // The old one comes back as a follower and catches up from the log.
    cluster.restart(first).await;
    let index = cluster.create(first, "t5").await;
    agree(&cluster, index, &["t1", "t2", "t3", "t4", "t5"]).await;
    assert!(!cluster.dir(first).join("snapshot").exists());
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_that_missed_purged_entries_catches_up_from_a_snapshot() {
    let mut cluster = Cluster::start(3, 5).await;
    let leader = cluster.agreed_leader().await;
    let behind = (1..=3).find(|id| *id != leader).unwrap();
    let first = cluster.create(leader, "t0").await;
    cluster.images_at(first).await;
    cluster.stop(behind).await;

    let names: Vec<String> = (1..=20).map(|i| format!("t{i}")).collect();
    let mut last = 0;
    for name in &names {
        last = cluster.create(leader, name).await;
    }
    // The leader has snapshotted and purged beyond what `behind` holds.
    let mut metrics = cluster.node(leader).raft_metrics().unwrap();
    let purged = tokio::time::timeout(
        WAIT,
        metrics.wait_for(|m| m.purged.is_some_and(|p| p.index > first)),
    )
    .await
    .unwrap()
    .unwrap()
    .purged
    .unwrap()
    .index;

    cluster.restart(behind).await;
    let mut expected = vec!["t0"];
    expected.extend(names.iter().map(String::as_str));
    expected.sort();
    agree(&cluster, last, &expected).await;
    let snapshot = cluster
        .node(behind)
        .raft_metrics()
        .unwrap()
        .borrow()
        .snapshot;
    assert!(
        snapshot.is_some_and(|s| s.index >= purged),
        "{snapshot:?} below {purged}"
    );
    for id in 1..=3 {
        cluster.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_keeps_its_records_across_a_restart() {
    let mut cluster = Cluster::start(1, 10_000).await;
    assert_eq!(cluster.leader(1).await, 1);
    let index = cluster.create(1, "orders").await;
    agree(&cluster, index, &["orders"]).await;
    cluster.stop(1).await;

    cluster.restart(1).await;
    assert_eq!(cluster.leader(1).await, 1);
    agree(&cluster, index, &["orders"]).await;
    let index = cluster.create(1, "payments").await;
    agree(&cluster, index, &["orders", "payments"]).await;
    cluster.stop(1).await;
}
