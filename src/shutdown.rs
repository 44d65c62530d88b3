//! The broker-wide shutdown signal: `server.rs` holds the one `Shutdown`,
//! every task that must end with the broker (listeners, timers, the log
//! manager, checkpoints) holds a `Stopping` and returns once it resolves.

use tokio::sync::watch;

/// Signals every `Stopping` made from it.
pub struct Shutdown(watch::Sender<bool>);

/// A task's view of the signal; clones see the same signal.
#[derive(Clone)]
pub struct Stopping(watch::Receiver<bool>);

impl Shutdown {
    pub fn new() -> (Shutdown, Stopping) {
        let (tx, rx) = watch::channel(false);
        (Shutdown(tx), Stopping(rx))
    }

    /// Tells every task to stop.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Stopping {
    /// Resolves once shutdown is signalled (or the `Shutdown` is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has been signalled; for loops that check between steps.
    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal_and_a_dropped_sender_stops_too() {
        let (shutdown, stopping) = Shutdown::new();
        let mut a = stopping.clone();
        assert!(!a.is_stopping());
        shutdown.trigger();
        a.wait().await;
        assert!(stopping.is_stopping());

        let (shutdown, mut stopping) = Shutdown::new();
        drop(shutdown);
        stopping.wait().await;
        assert!(!stopping.is_stopping());
    }
}
