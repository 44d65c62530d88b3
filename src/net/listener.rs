//! The TCP listener: accepts connections and spawns one task for each, until
//! shutdown is signalled. Each listener may advertise its own endpoint
//! (Kafka's `advertised.listeners` per listener name).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::connection;
use crate::broker::{on_listener, Broker};
use crate::logging::{client_warnings, SUMMARY_INTERVAL};
use crate::shutdown::Stopping;

/// A bound listener, ready to accept.
pub struct Listener {
    inner: TcpListener,
    /// What Metadata tells clients of this listener; `None`: the broker's endpoint.
    advertised: Option<(String, u16)>,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener {
            inner: TcpListener::bind(addr).await?,
            advertised: None,
        })
    }

    /// Makes connections of this listener see `host:port` as the broker's endpoint.
    pub fn advertising(self, host: String, port: u16) -> Listener {
        Listener {
            advertised: Some((host, port)),
            ..self
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts until shutdown, then aborts open connections.
    pub async fn run(self, broker: Arc<Broker>, mut stopping: Stopping) {
        let mut connections = JoinSet::new();
        let mut summary = tokio::time::interval(SUMMARY_INTERVAL);
        let mut closed = 0u64;
        loop {
            tokio::select! {
                accepted = self.inner.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let serve = connection::serve(stream, peer, broker.clone());
                        match &self.advertised {
                            Some(e) => connections.spawn(on_listener(e.clone(), serve)),
                            None => connections.spawn(serve),
                        };
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly
                        // instead of spinning on the same error.
                        let local = std::net::IpAddr::from([0, 0, 0, 0]);
                        if client_warnings().admit(local, "accept failed") {
                            tracing::warn!(error = %e, "accept failed");
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => closed += 1,
                _ = summary.tick() => {
                    client_warnings().summarise();
                    if closed > 0 {
                        // Memory of closed connections goes back to the OS.
                        crate::alloc::release_free_memory();
                        closed = 0;
                    }
                }
                _ = stopping.wait() => break,
            }
        }
        connections.shutdown().await;
        client_warnings().summarise();
    }
}
