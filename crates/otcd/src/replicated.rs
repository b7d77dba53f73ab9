//! `otcd serve --replication`: one node of a desk replicated over NATS JetStream (docs/operations.md).
//!
//! The node alternates between two phases, without restarting the process:
//! - **standby**: a small HTTP server (health, `/v1/admin/cluster`, `503 not_leader` for everything else) while
//!   the node copies the stream into its own journal and watches the lease; when the lease is free it takes it,
//!   copies the stream to its end, and becomes
//! - **leader**: the whole desk (`server::start_with`) over the replicated journal, until the lease is lost or
//!   an append is fenced (then it goes back to standby, its in-memory state discarded and recovered from its
//!   own journal, which only ever holds records the stream acknowledged) or the process is told to stop (then
//!   it releases the lease so a standby takes over at once).

use crate::server::{self, LeaderParts, ServeOptions};
use anyhow::Context;
use otcd_host::cluster::{ClusterStatus, LeaderInfo, Role};
use otcd_journal::{FileJournal, JournalOptions};
use otcd_replication::follower::StreamFollower;
use otcd_replication::identity::{self, DeskIdentity};
use otcd_replication::journal::{ReplicatedJournal, Replication};
use otcd_replication::lease::Lease;
use otcd_replication::{Cluster, ReplicationSettings};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub async fn serve(
    options: ServeOptions,
    settings: ReplicationSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    settings.check().map_err(anyhow::Error::msg)?;
    let cluster = Cluster::connect(&settings).await?;
    check_keys(&cluster, &options.data_dir).await?;
    let status = Arc::new(ClusterStatus::new(settings.node_id.clone(), settings.advertise.clone()));
    let (stop_sender, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        stop_sender.send_replace(true);
    });
    tracing::info!(node_id = %settings.node_id, stream = %settings.stream, "replicated desk node starting as standby");
    loop {
        let Some(lease) = standby(&cluster, &options, &status, stop.clone()).await? else {
            return Ok(());
        };
        status.set_role(Role::Leader);
        tracing::info!(node_id = %settings.node_id, "took the lease; serving as the leader");
        let stopped = lead(&cluster, &options, &status, lease.clone(), stop.clone()).await;
        status.set_role(Role::Standby);
        if stopped? {
            lease.release().await;
            return Ok(());
        }
        tracing::warn!("stepped down; following the stream as a standby");
    }
}

/// The desk's keys: the first node of a new desk makes them (as a new data directory does) and publishes their
/// fingerprints; every other node must have been given copies (otcd_replication::identity).
async fn check_keys(cluster: &Cluster, data_dir: &Path) -> anyhow::Result<()> {
    let stream_seq = cluster.last_seq().await?;
    let mut local = DeskIdentity::of_data_dir(data_dir)?;
    if local.is_none() && stream_seq == 0 && identity::published(&cluster.identity_bucket).await?.is_none() {
        std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
        otcd_host::secrets::MasterKey::load_or_create(&data_dir.join("master.key"))?;
        otcd_host::audit::load_or_create_signing_key(data_dir)?;
        local = DeskIdentity::of_data_dir(data_dir)?;
    }
    identity::check(&cluster.identity_bucket, local.as_ref(), stream_seq).await?;
    Ok(())
}

/// Serves the standby's HTTP while following the stream; `Some(lease)` once this node holds the lease and has
/// the whole stream in its journal, `None` when the process is told to stop.
async fn standby(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Arc<Lease>>> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut http = tokio::spawn(otcd_http::cluster::serve_standby(listener, status.clone(), async move {
        let _ = http_stopped.await;
    }));
    let outcome = tokio::select! {
        outcome = follow(cluster, options, status) => outcome.map(Some),
        _ = stop.wait_for(|stop| *stop) => Ok(None),
    };
    let _ = http_stop.send(());
    // The leader binds the same address next: the standby's server must be gone (open keep-alive connections
    // are cut after a second).
    if tokio::time::timeout(Duration::from_secs(1), &mut http).await.is_err() {
        http.abort();
        let _ = http.await;
    }
    outcome
}

async fn follow(cluster: &Cluster, options: &ServeOptions, status: &Arc<ClusterStatus>) -> anyhow::Result<Arc<Lease>> {
    let settings = &cluster.settings;
    let directory = otcd_host::store::journal_dir(&options.data_dir);
    let journal = tokio::task::spawn_blocking(move || {
        FileJournal::open(&directory, JournalOptions::default(), u64::MAX, None, |_, _| Ok(()))
    })
    .await
    .expect("opening the journal does not panic")?
    .0;
    let mut follower = StreamFollower::new(journal, cluster.stream.clone(), status.clone());
    let me = LeaderInfo { node_id: settings.node_id.clone(), advertise: settings.advertise.clone() };
    let lease = Lease::new(cluster.lease_bucket.clone(), me, settings.lease, settings.renew_every);
    let mut first = true;
    loop {
        // The lease first: a new standby names its leader at once.
        if !std::mem::take(&mut first) {
            follower.follow_for(settings.renew_every).await?;
        }
        match lease.holder().await {
            Ok(Some(leader)) => {
                status.set_leader(Some(leader));
                continue;
            }
            Ok(None) => status.set_leader(None),
            Err(error) => {
                tracing::warn!(%error, "cannot read the lease");
                status.set_leader(None);
                continue;
            }
        }
        match lease.try_acquire().await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot take the lease");
                continue;
            }
        }
        tokio::spawn(lease.clone().keep_renewed());
        // The old leader stopped publishing before its entry expired: the stream's end now is final until this
        // node appends.
        let end = match cluster.last_seq().await {
            Ok(end) => end,
            Err(error) => {
                tracing::warn!(%error, "cannot read the stream's end; giving the lease back");
                lease.release().await;
                continue;
            }
        };
        status.set_stream_seq(end);
        follower.catch_up_to(end).await?;
        drop(follower.into_journal());
        return Ok(lease);
    }
}

/// Runs the whole desk as the leader; true when the process was told to stop, false when it stepped down.
async fn lead(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    lease: Arc<Lease>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let gate = Arc::new(AtomicBool::new(true));
    let replication = Replication {
        runtime: tokio::runtime::Handle::current(),
        jetstream: cluster.jetstream.clone(),
        stream: cluster.stream.clone(),
        subject: cluster.settings.subject(),
        lease: lease.clone(),
        status: status.clone(),
        gate: gate.clone(),
        append_seconds: prometheus_client::metrics::histogram::Histogram::new(otcd_host::metrics::latency_buckets()),
    };
    let parts = LeaderParts {
        journal: Box::new(move |local, metrics| {
            metrics.register(
                "replication_append_seconds",
                "Time from a group's first publish to JetStream to its last acknowledgement",
                replication.append_seconds.clone(),
            );
            Box::new(ReplicatedJournal::new(local, replication))
        }),
        write_gate: gate,
        cluster: status.clone(),
    };
    let desk = match server::start_with(options, Some(parts)).await {
        Ok(desk) => desk,
        Err(error) => {
            lease.give_up("the desk could not start");
            return Err(error.into());
        }
    };
    tracing::info!(address = %desk.local_address(), "otcd listening as the leader");
    let stopped = Arc::new(AtomicBool::new(false));
    let stop_flag = stopped.clone();
    let mut lost = lease.lost();
    let signal = async move {
        tokio::select! {
            _ = lost.wait_for(|lost| *lost) => {}
            _ = stop.wait_for(|stop| *stop) => stop_flag.store(true, Ordering::Release),
        }
    };
    desk.serve(signal).await?;
    let stopped = stopped.load(Ordering::Acquire);
    if !stopped {
        lease.give_up("the desk stopped");
    }
    Ok(stopped)
}
