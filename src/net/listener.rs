//! The TCP listener: accepts connections and spawns one task for each, until
//! shutdown is signalled. Each listener has a name, and its connections are
//! told the brokers' endpoints of that name (Kafka's `advertised.listeners`).

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
    /// Its listener name: Metadata answers its connections with every
    /// broker's endpoint of this name.
    name: String,
}

impl Listener {
    pub async fn bind(name: &str, addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener {
            inner: TcpListener::bind(addr).await?,
            name: name.to_string(),
        })
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
                        connections.spawn(on_listener(self.name.clone(), serve));
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
