//! Runs a broker: opens the data directory, binds the listener, announces
//! readiness, checkpoints periodically (and, under `--durability fsync`, the
//! recovery points as the flusher advances them), and shuts down cleanly on SIGTERM or
//! SIGINT (stop accepting, fsync every log, write checkpoints).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use crate::admin::AdminListener;
use crate::broker::{Broker, Startup};
use crate::config::BrokerConfig;
use crate::metadata::records::Endpoint;
use crate::net::Listener;
use crate::shutdown::{Shutdown, Stopping};

/// Where the admin HTTP listener (`/metrics`, `/health`) binds.
#[derive(Debug, Clone, Copy)]
pub struct AdminListen {
    pub addr: SocketAddr,
    /// Set explicitly: failing to bind stops the broker. The default address
    /// only warns, so several brokers can run on one host.
    pub explicit: bool,
}

/// A Kafka listener besides the first (`listeners` in server.properties).
/// It serves the Kafka API like the first and advertises its own endpoint.
#[derive(Debug, Clone)]
pub struct ExtraListener {
    pub name: String,
    pub addr: SocketAddr,
    /// `None`: the bound address.
    pub advertised: Option<(String, u16)>,
    /// Named in `controller.listener.names`. With other voters it carries
    /// the quorum's RPCs; a lone voter has no quorum to serve, so it serves
    /// the Kafka API too (its port is taken, as the operator configured).
    pub controller: bool,
}

/// Runs until a shutdown signal; returns after the clean shutdown.
pub async fn run(
    config: BrokerConfig,
    admin: Option<AdminListen>,
    listen_name: String,
    more_listeners: Vec<ExtraListener>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (is_broker, is_controller) = config.roles().map_err(anyhow::Error::msg)?;
    if !is_broker {
        return run_controller(config).await;
    }
    let listen = config.listen;
    let clustered = config.voters().map_err(anyhow::Error::msg)?.len() > 1;
    // The listeners are bound first: the broker registers their endpoints.
    let listener = Listener::bind(&listen_name, listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let bound = listener.local_addr()?;
    let (host, port) = config
        .advertised
        .clone()
        .unwrap_or((bound.ip().to_string(), bound.port()));
    let mut endpoints = vec![Endpoint {
        listener: listen_name,
        host,
        port,
    }];
    let mut controller = None;
    let mut extra = Vec::new();
    for l in more_listeners {
        if l.controller && (clustered || !is_controller) {
            if !is_controller {
                // A broker-only node reaches the controllers at their addresses.
                continue;
            }
            if controller.is_none() {
                let bound = tokio::net::TcpListener::bind(l.addr)
                    .await
                    .with_context(|| {
                        format!("binding controller listener {} at {}", l.name, l.addr)
                    })?;
                tracing::info!(listener = %l.name, address = %l.addr, "controller listener serves the metadata quorum");
                controller = Some(bound);
            }
            continue;
        }
        let listener = Listener::bind(&l.name, l.addr)
            .await
            .with_context(|| format!("binding listener {} at {}", l.name, l.addr))?;
        let addr = listener.local_addr()?;
        let (host, port) = l.advertised.unwrap_or((addr.ip().to_string(), addr.port()));
        endpoints.push(Endpoint {
            listener: l.name.clone(),
            host,
            port,
        });
        extra.push((l.name, l.controller, addr, listener));
    }
    if clustered && is_controller && controller.is_none() {
        // No CONTROLLER listener named: this node's own entry among the voters.
        let voters = config.voters().map_err(anyhow::Error::msg)?;
        let own = &voters[&config.node_id()];
        let bound = tokio::net::TcpListener::bind(own).await.with_context(|| {
            format!("binding the controller address {own} (controller.quorum.voters)")
        })?;
        controller = Some(bound);
    }
    let startup = Startup {
        controller,
        endpoints,
    };
    let broker = Broker::start(config, startup)
        .await
        .context("opening the broker")?;
    let broker = Arc::new(broker);

    let admin_listener = match admin {
        None => None,
        Some(a) => match AdminListener::bind(a.addr).await {
            Ok(l) => Some(l),
            Err(e) if !a.explicit => {
                tracing::warn!(address = %a.addr, error = %e, "admin listener not started");
                None
            }
            Err(e) => return Err(e).with_context(|| format!("binding admin listener {}", a.addr)),
        },
    };
    let admin_bound = match &admin_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    let (shutdown, stopping) = Shutdown::new();
    let admin_serving =
        admin_listener.map(|l| tokio::spawn(l.run(broker.clone(), stopping.clone())));
    let serving = tokio::spawn(listener.run(broker.clone(), stopping.clone()));
    let mut extra_serving = Vec::new();
    let mut extra_bound = Vec::new();
    for (name, controller, addr, listener) in extra {
        extra_serving.push(tokio::spawn(listener.run(broker.clone(), stopping.clone())));
        if controller {
            tracing::info!(listener = %name, address = %addr,
                "controller listener serves the Kafka API (one node: no KRaft quorum)");
        } else {
            tracing::info!(listener = %name, address = %addr, "listener serves the Kafka API");
        }
        extra_bound.push((name, addr));
    }
    let checkpoints = tokio::spawn(checkpoint_loop(broker.clone(), stopping.clone()));
    let recovery_points = broker
        .fsync_on_ack()
        .then(|| tokio::spawn(recovery_point_loop(broker.clone(), stopping.clone())));
    let log_manager = tokio::spawn(crate::broker::log_manager::run(
        broker.clone(),
        stopping.clone(),
    ));
    let txn_timers = tokio::spawn(
        broker
            .txns
            .clone()
            .run_timers(broker.clone(), stopping.clone()),
    );
    let following = tokio::spawn(broker.clone().follow_metadata(stopping.clone()));
    let heartbeats = tokio::spawn(broker.clone().heartbeats(stopping.clone()));
    let isr_checks = tokio::spawn(broker.clone().check_isr(stopping.clone()));
    let group_timers = tokio::spawn(broker.groups.clone().run_timers(stopping));
    tracing::info!(
        address = %bound,
        cluster_id = %broker.cluster_id,
        node_id = broker.node_id,
        durability = ?broker.config.durability,
        ready_in_ms = started.elapsed().as_millis() as u64,
        "vltava broker ready"
    );
    // Before the ready line: a SIGTERM sent as soon as it is read must
    // find the handler, not the default action (exit without shutdown).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    // Scripts and tests wait for this exact line on stdout.
    println!("vltava listening on {bound}");
    for (name, addr) in &extra_bound {
        println!("vltava listening on {addr} ({name})");
    }
    if let Some(addr) = admin_bound {
        println!("vltava admin listening on {addr}");
    }

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    broker.controlled_shutdown().await;
    shutdown.trigger();
    let _ = serving.await;
    for s in extra_serving {
        let _ = s.await;
    }
    if let Some(a) = admin_serving {
        let _ = a.await;
    }
    let _ = checkpoints.await;
    if let Some(r) = recovery_points {
        let _ = r.await;
    }
    let _ = group_timers.await;
    let _ = following.await;
    let _ = heartbeats.await;
    let _ = isr_checks.await;
    broker.stop_replication();
    let _ = txn_timers.await;
    let _ = log_manager.await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .context("shutting down")??;
    broker.stop_metadata().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// A controller-only node (`process.roles=controller`): its part in the
/// metadata quorum on its controller address (its entry in
/// `controller.quorum.voters`), and no Kafka listener, until SIGTERM/SIGINT.
async fn run_controller(config: BrokerConfig) -> anyhow::Result<()> {
    let voters = config.voters().map_err(anyhow::Error::msg)?;
    let node_id = config.node_id();
    let own = voters
        .get(&node_id)
        .context("a controller is one of controller.quorum.voters")?;
    let listener = tokio::net::TcpListener::bind(own)
        .await
        .with_context(|| format!("binding the controller address {own}"))?;
    let bound = listener.local_addr()?;
    let (metadata, cluster_id) = crate::broker::open_metadata(&config, Some(listener)).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tracing::info!(address = %bound, cluster_id = %cluster_id, node_id, "vltava controller ready");
    println!("vltava controller listening on {bound}");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    metadata.shutdown().await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// Writes the checkpoint files every `log.flush.offset.checkpoint.interval.ms`.
async fn checkpoint_loop(broker: Arc<Broker>, mut stopping: Stopping) {
    let period = Duration::from_millis(broker.config.checkpoint_interval_ms().max(100));
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait() => return,
        }
        let b = broker.clone();
        match tokio::task::spawn_blocking(move || b.write_checkpoints()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "writing checkpoints failed"),
            Err(e) => tracing::warn!(error = %e, "checkpoint task failed"),
        }
    }
}

/// Under `--durability fsync`: rewrites the recovery-point checkpoint after
/// the flusher made more data durable, at most every
/// [`RECOVERY_POINT_MIN_INTERVAL`](crate::broker::RECOVERY_POINT_MIN_INTERVAL)
/// (advances in between are coalesced into the next write), so a restart
/// after a crash validates only the unflushed tail.
async fn recovery_point_loop(broker: Arc<Broker>, mut stopping: Stopping) {
    loop {
        tokio::select! {
            _ = broker.durable_advanced() => {}
            _ = stopping.wait() => return,
        }
        let b = broker.clone();
        match tokio::task::spawn_blocking(move || b.write_recovery_points()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "writing the recovery-point checkpoint failed")
            }
            Err(e) => tracing::warn!(error = %e, "recovery-point checkpoint task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::broker::RECOVERY_POINT_MIN_INTERVAL) => {}
            _ = stopping.wait() => return,
        }
    }
}
