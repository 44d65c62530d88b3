//! A broker-only node's view of the metadata log (`process.roles=broker`):
//! not a voter, it fetches the image from the controllers, as Kafka's
//! brokers fetch `__cluster_metadata`, and sends its proposals and
//! heartbeats to the active controller.
//!
//! The fetch is a long poll (`Request::FetchImage`): a voter answers once
//! its image is past the observer's, with the whole image as records (the
//! content of a snapshot), the active controller and its term.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

use super::image::MetadataImage;
use super::network::{Peer, Request, Response};

/// How long a voter holds a fetch with nothing new.
pub const FETCH_WAIT: Duration = Duration::from_secs(5);

/// What the observer learnt of the quorum from its last fetch.
pub struct Observer {
    voters: BTreeMap<u64, String>,
    /// (active controller, its term), as the last answer said.
    leader: Mutex<(Option<u64>, u64)>,
    /// The voter to ask next when no controller is known.
    next: Mutex<usize>,
}

impl Observer {
    pub fn new(voters: BTreeMap<u64, String>) -> Self {
        Self {
            voters,
            leader: Mutex::new((None, 0)),
            next: Mutex::new(0),
        }
    }

    pub fn leader(&self) -> Option<u64> {
        self.leader.lock().0
    }

    pub fn term(&self) -> u64 {
        self.leader.lock().1
    }

    /// The address to ask: the active controller's, else the voters' in turn.
    pub fn target(&self) -> String {
        if let Some(addr) = self.leader().and_then(|l| self.voters.get(&l)) {
            return addr.clone();
        }
        let mut next = self.next.lock();
        *next = next.wrapping_add(1);
        let i = *next % self.voters.len().max(1);
        self.voters.values().nth(i).cloned().unwrap_or_default()
    }

    /// The controller asked did not answer as the leader: ask around.
    pub fn forget_leader(&self) {
        self.leader.lock().0 = None;
    }

    /// Fetches the image whenever it changes and publishes it on `images`,
    /// until the task is aborted.
    pub async fn follow(self: Arc<Self>, images: watch::Sender<Arc<MetadataImage>>) {
        loop {
            let after = images.borrow().offset;
            let target = self.target();
            let answer = Peer::new(target)
                .call(&Request::FetchImage { after }, FETCH_WAIT * 2)
                .await;
            match answer {
                Ok(Response::Image {
                    offset,
                    leader,
                    term,
                    records,
                }) => {
                    *self.leader.lock() = (leader, term);
                    if let Some(records) = records.filter(|_| offset > after) {
                        let mut image = MetadataImage::default();
                        image.apply_all(&records);
                        image.offset = offset;
                        images.send_replace(Arc::new(image));
                    }
                }
                _ => {
                    self.forget_leader();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}
