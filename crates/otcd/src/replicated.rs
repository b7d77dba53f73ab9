//! `otcd serve --replication`: one node of a desk replicated over NATS JetStream (docs/operations.md).
//!
//! The node alternates between two phases, without restarting the process:
//! - **standby**: a small HTTP server (health, `/v1/admin/cluster`, the stale reads when configured to
//!   (`standby_reads.rs`), `503 not_leader` for everything else) while
//!   the node copies the stream into its own journal, re-executes every record into a live desk (the snapshot
//!   follower, `otcd_host::snapshot_follower::start_standby`, which also keeps the node's snapshots) and watches
//!   the lease; when the lease is free it takes it, copies the stream to its end, re-executes that tail, and
//!   becomes
//! - **leader**: the whole desk (`server::start_with`) over the replicated journal, started from the standby's
//!   live desk (no recovery: promotion costs the tail, not the history), until the lease is lost or an append
//!   is fenced (then it goes back to standby, its in-memory state discarded and recovered from its own journal,
//!   which only ever holds records the stream acknowledged) or the process is told to stop (then it releases
//!   the lease so a standby takes over at once).

use crate::server::{self, LeaderParts, ServeOptions};
use anyhow::Context;
use otcd_host::cluster::{ClusterStatus, LeaderInfo, Promotion, Role};
use otcd_host::secrets::MasterKey;
use otcd_host::snapshot_follower::{self, FollowerHandle, FollowerSettings, StandbyMemory};
use otcd_host::store::{OpenedDesk, RecoveryReport};
use otcd_http::cluster::StandbyReads;
use otcd_journal::{CheckpointLog, Journal};
use otcd_replication::follower::StreamFollower;
use otcd_replication::identity::{self, DeskIdentity};
use otcd_replication::journal::{ReplicatedJournal, Replication};
use otcd_replication::lease::Lease;
use otcd_replication::{Cluster, ReplicationSettings};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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
        let Some(promoted) = standby(&cluster, &options, &status, stop.clone()).await? else {
            return Ok(());
        };
        let lease = promoted.lease.clone();
        status.set_role(Role::Leader);
        tracing::info!(node_id = %settings.node_id, "took the lease; serving as the leader");
        let stopped = lead(&cluster, &options, &status, promoted, stop.clone()).await;
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

/// What a standby brings to its promotion.
struct Promoted {
    lease: Arc<Lease>,
    /// When the node took the lease.
    since: Instant,
    /// The live desk over the node's journal; `None` when the follower had stopped (the leader then recovers
    /// from the node's snapshots and journal, as a restarted desk does).
    opened: Option<OpenedDesk>,
}

/// A standby's state: its copy of the stream, the desk re-executed from it, and what the leader needs of the
/// data directory (opened once, when the standby starts).
struct StandbyNode {
    copy: StreamFollower,
    follower: FollowerHandle,
    master_key: MasterKey,
    checkpoints: CheckpointLog,
    lock: std::fs::File,
}

impl StandbyNode {
    /// Recovers the node's data directory (its newest snapshot plus its journal, all checks as at any start) and
    /// starts re-executing what the stream adds.
    async fn open(
        cluster: &Cluster,
        options: &ServeOptions,
        status: &Arc<ClusterStatus>,
        reads: &StandbyReads,
    ) -> anyhow::Result<Self> {
        let opened = server::open_store(options, Arc::new(otcd_host::clock::SystemClock)).await?;
        let requests = match cluster.settings.standby_reads {
            true => {
                let master_key = MasterKey::load_or_create(&options.data_dir.join("master.key"))?;
                Some(crate::standby_reads::start(&opened.desk, master_key, options, status.clone(), reads))
            }
            false => None,
        };
        let reader = opened.journal_reader();
        let OpenedDesk {
            desk,
            journal,
            snapshots,
            master_key,
            checkpoints,
            recovery: _,
            recent_signatures,
            lock,
            replayed_events,
            replayed_events_floor_seq,
        } = opened;
        let head = journal.durable_head();
        let copy = StreamFollower::new(journal, cluster.stream.clone(), status.clone());
        let memory = StandbyMemory {
            status: status.clone(),
            recent_signatures,
            events_max: options.event_retention.events_max,
            event_scope: crate::server::event_scope(options),
            replayed_events,
            replayed_events_floor_seq,
            reads: requests,
        };
        let settings = FollowerSettings { reader, snapshots, every_records: options.snapshot_every_records };
        let durable = status.clone();
        let follower = snapshot_follower::start_standby(desk, head, settings, memory, move || durable.applied_seq());
        Ok(Self { copy, follower, master_key, checkpoints, lock })
    }

    /// Re-executes the tail the follower has not reached and hands the live desk over as an opened data
    /// directory; `None` if the follower had stopped on an error.
    async fn hand_over(self) -> Option<OpenedDesk> {
        let StandbyNode { copy, follower, master_key, checkpoints, lock } = self;
        let journal = copy.into_journal();
        let durable = journal.durable_head();
        let started = Instant::now();
        let handed = tokio::task::spawn_blocking(move || follower.hand_over(durable)).await.ok().flatten()?;
        let recovery = RecoveryReport {
            snapshot_seq: handed.head.seq - handed.tail_records,
            replayed_records: handed.tail_records,
            head_seq: handed.head.seq,
            head_hash: handed.head.hash_hex(),
            torn_bytes_truncated: 0,
            elapsed: started.elapsed(),
        };
        tracing::info!(
            head_seq = recovery.head_seq,
            replayed_records = recovery.replayed_records,
            elapsed_ms = recovery.elapsed.as_millis() as u64,
            "the standby's live desk is handed to the leader"
        );
        Some(OpenedDesk {
            desk: handed.desk,
            journal,
            snapshots: handed.snapshots,
            master_key,
            checkpoints,
            recovery,
            recent_signatures: handed.recent_signatures,
            lock,
            replayed_events: handed.replayed_events,
            replayed_events_floor_seq: handed.replayed_events_floor_seq,
        })
    }

    /// A clean stop: the follower catches up and writes a last snapshot.
    async fn finish(self) {
        let journal = self.copy.into_journal();
        let durable = journal.durable_head();
        let follower = self.follower;
        let _ = tokio::task::spawn_blocking(move || follower.finish(durable)).await;
    }
}

/// Serves the standby's HTTP while following the stream; `Some` once this node holds the lease and its desk has
/// the whole stream, `None` when the process is told to stop.
async fn standby(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<Promoted>> {
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let reads = StandbyReads::default();
    let mut http =
        tokio::spawn(otcd_http::cluster::serve_standby(listener, status.clone(), reads.clone(), async move {
            let _ = http_stopped.await;
        }));
    let mut node = None;
    let outcome = tokio::select! {
        outcome = promote(cluster, options, status, &reads, &mut node) => outcome.map(Some),
        _ = stop.wait_for(|stop| *stop) => Ok(None),
    };
    if let Some(node) = node {
        node.finish().await; // stopped (or failed) while following: the node's last snapshot
    }
    let _ = http_stop.send(());
    // The leader binds the same address next: the standby's server must be gone (open keep-alive connections
    // are cut after a second).
    if tokio::time::timeout(Duration::from_secs(1), &mut http).await.is_err() {
        http.abort();
        let _ = http.await;
    }
    outcome
}

/// Follows until this node holds the lease, then hands its live desk over (still answering as a standby).
async fn promote(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    reads: &StandbyReads,
    node: &mut Option<StandbyNode>,
) -> anyhow::Result<Promoted> {
    let (lease, since) = follow(cluster, options, status, reads, node).await?;
    let opened = match node.take() {
        Some(node) => node.hand_over().await,
        None => None,
    };
    if opened.is_none() {
        tracing::warn!("the standby's follower had stopped; the leader recovers from its snapshots and journal");
    }
    Ok(Promoted { lease, since, opened })
}

async fn follow(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    reads: &StandbyReads,
    node: &mut Option<StandbyNode>,
) -> anyhow::Result<(Arc<Lease>, Instant)> {
    let settings = &cluster.settings;
    let node = match node {
        Some(node) => node,
        None => node.insert(StandbyNode::open(cluster, options, status, reads).await?),
    };
    let follower = &mut node.copy;
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
        let since = Instant::now();
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
        return Ok((lease, since));
    }
}

/// Runs the whole desk as the leader; true when the process was told to stop, false when it stepped down.
async fn lead(
    cluster: &Cluster,
    options: &ServeOptions,
    status: &Arc<ClusterStatus>,
    promoted: Promoted,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    let Promoted { lease, since, opened } = promoted;
    let live_state = opened.is_some();
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
        opened,
    };
    let desk = match server::start_with(options, Some(parts)).await {
        Ok(desk) => desk,
        Err(error) => {
            lease.give_up("the desk could not start");
            return Err(error.into());
        }
    };
    let promotion = Promotion {
        head_seq: desk.recovery().head_seq,
        replayed_records: desk.recovery().replayed_records,
        live_state,
        elapsed_ms: since.elapsed().as_millis() as u64,
    };
    tracing::info!(
        address = %desk.local_address(),
        replayed_records = promotion.replayed_records,
        live_state,
        promotion_ms = promotion.elapsed_ms,
        "otcd listening as the leader"
    );
    status.set_promotion(promotion);
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
