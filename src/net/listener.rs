//! The TCP listener: accepts connections and spawns one task for each, until
//! shutdown is signalled.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::connection;
use crate::broker::Broker;
use crate::logging::{client_warnings, SUMMARY_INTERVAL};

/// A bound listener, ready to accept.
pub struct Listener {
    inner: TcpListener,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listener> {
        Ok(Listener {
            inner: TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Accepts until `shutdown` turns true, then aborts open connections.
    pub async fn run(self, broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
        let mut connections = JoinSet::new();
        let mut summary = tokio::time::interval(SUMMARY_INTERVAL);
        let mut closed = 0u64;
        loop {
            tokio::select! {
                accepted = self.inner.accept() => match accepted {
                    Ok((stream, peer)) => {
                        connections.spawn(connection::serve(stream, peer, broker.clone()));
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
                _ = stopped(&mut shutdown) => break,
            }
        }
        connections.shutdown().await;
        client_warnings().summarise();
    }
}

/// Resolves once the shutdown flag is set (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
