//! The HTTP face of a replicated desk (docs/operations.md): `GET /v1/admin/cluster` on every node, and the
//! standby's whole server, which refuses everything else with `503 not_leader` naming the leader's address
//! (or `503 unavailable` while no node holds the lease).
//!
//! A standby configured to serve stale reads (`replication_standby_reads`) answers the reads of
//! [`STANDBY_READ_ROUTES`] too, signed as on the leader, from the desk it re-executes: the whole HTTP application
//! over read-only services ([`StandbyReads`]), behind a filter that lets only those GETs through. Each answer
//! carries `OTC-Node-Role: standby` and `OTC-Executed-Seq`, the seq its desk had at least reached.

use crate::app::AppState;
use crate::problem::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use otcd_host::cluster::{ClusterStatus, ClusterView};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// The endpoints (as the router names them) a standby answers with `GET` when it serves stale reads: reads of the
/// desk's own state (accounts, balances, the ledger, orders, trades, quotes, withdrawals, clients, keys, limits,
/// alerts and the audit trail), which the standby's desk holds as of a recent seq. Everything that needs the
/// leader's live services is left out: prices and the stream (market data), reports and the trade log (the
/// reports projection), sanctions screening (the lists), webhooks (the delivery worker), reconciliation and
/// custody (the rails), hedging (the venues), and the console.
pub const STANDBY_READ_ROUTES: &[&str] = &[
    "/openapi.json",
    "/v1/instruments",
    "/v1/assets",
    "/v1/account",
    "/v1/balances",
    "/v1/ledger",
    "/v1/orders",
    "/v1/orders/{order_id}",
    "/v1/trades",
    "/v1/quotes/{quote_id}",
    "/v1/withdrawals",
    "/v1/withdrawals/{withdrawal_id}",
    "/v1/destinations",
    "/v1/admin/clients",
    "/v1/admin/clients/{client_id}",
    "/v1/admin/keys",
    "/v1/admin/tiers",
    "/v1/admin/trading",
    "/v1/admin/jurisdictions",
    "/v1/admin/alerts",
    "/v1/admin/audit/events",
    "/v1/admin/withdrawals",
    "/v1/admin/destinations",
    "/v1/admin/settlements",
    "/v1/admin/desk/positions",
];

/// Response header: this answer came from a standby.
pub const NODE_ROLE_HEADER: &str = "otc-node-role";
/// Response header: the standby's desk had executed at least every record up to this seq when it answered.
pub const EXECUTED_SEQ_HEADER: &str = "otc-executed-seq";

/// A standby's read-only application, set once its desk is live (never, when the node serves no reads). Until
/// then, and for everything [`STANDBY_READ_ROUTES`] does not list, the standby answers `503 not_leader`.
#[derive(Clone, Default)]
pub struct StandbyReads(Arc<OnceLock<Router>>);

impl StandbyReads {
    /// Starts answering reads with `state`, whose services read the standby's desk (`EngineHandle::for_standby`).
    pub fn serve(&self, state: AppState, status: Arc<ClusterStatus>) {
        let reads = crate::app::router(state).layer(middleware::from_fn_with_state(status, only_stale_reads));
        if self.0.set(reads).is_err() {
            tracing::warn!("the standby's reads were already being served");
        }
    }

    fn router(&self) -> Option<Router> {
        self.0.get().cloned()
    }
}

/// Lets through only the `GET`s of [`STANDBY_READ_ROUTES`], and marks their answers as a standby's.
async fn only_stale_reads(State(status): State<Arc<ClusterStatus>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    let allowed = request.method() == Method::GET && route.is_some_and(|route| STANDBY_READ_ROUTES.contains(&route));
    if !allowed {
        return not_leader(&status);
    }
    let executed_seq = status.executed_seq();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(NODE_ROLE_HEADER, HeaderValue::from_static("standby"));
    headers.insert(EXECUTED_SEQ_HEADER, HeaderValue::from(executed_seq));
    response
}

/// `GET /v1/admin/cluster`: this node's role, the leader, and how far this node has applied the stream.
///
/// Unauthenticated like `/readyz`, which load balancers and operators poll: a standby has no desk loaded to
/// check a signature against, and the answer holds node names and sequence numbers only.
pub async fn cluster_view(status: &ClusterStatus) -> Json<ClusterView> {
    Json(status.view())
}

/// What a standby answers to anything but health, readiness and the cluster view.
pub fn not_leader(status: &ClusterStatus) -> Response {
    let Some(leader) = status.leader().filter(|leader| leader.node_id != status.node_id) else {
        return ApiError::unavailable("no node holds the desk's lease right now (failover or no NATS quorum)", 1)
            .into_response();
    };
    let error = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_leader",
        format!("this node is a standby; the leader is {} at {}", leader.node_id, leader.advertise),
    );
    let mut problem = serde_json::to_value(error.to_problem()).expect("problems serialize");
    problem["leader"] = serde_json::json!({"node_id": leader.node_id, "advertise": leader.advertise});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(problem)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
    response
}

/// The replication lines of `/metrics` (leader and standby): lease state, applied and stream seq, lag.
pub fn metrics_text(status: &ClusterStatus) -> String {
    let view = status.view();
    let leader = u8::from(view.role == otcd_host::cluster::Role::Leader);
    let gauges = [
        ("replication_leader", "1 while this node holds the lease and serves, 0 on a standby", leader as u64),
        ("replication_applied_seq", "The newest record in this node's own journal", view.applied_seq),
        ("replication_stream_seq", "The newest record of the replicated journal this node has seen", view.stream_seq),
        ("replication_lag_records", "Records on the stream this node has not applied yet", view.lag_records),
        ("replication_executed_seq", "The newest record re-executed into this node's desk state", view.executed_seq),
    ];
    let mut text = String::new();
    for (name, help, value) in gauges {
        text.push_str(&format!("# HELP otcd_{name} {help}.\n# TYPE otcd_{name} gauge\notcd_{name} {value}\n"));
    }
    text
}

/// The standby's router: health, readiness (never ready), metrics and the cluster view of its own, then the stale
/// reads once [`StandbyReads::serve`] was called, and `503 not_leader` for everything else.
pub fn standby_router(status: Arc<ClusterStatus>, reads: StandbyReads) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok", "role": "standby"})) }))
        .route("/readyz", get(|State(status): State<Arc<ClusterStatus>>| async move { not_leader(&status) }))
        .route(
            "/metrics",
            get(|State(status): State<Arc<ClusterStatus>>| async move {
                ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics_text(&status))
            }),
        )
        .route(
            "/v1/admin/cluster",
            get(|State(status): State<Arc<ClusterStatus>>| async move { cluster_view(&status).await }),
        )
        .fallback(|State(status): State<Arc<ClusterStatus>>, request: Request| async move {
            match reads.router() {
                Some(mut reads) => tower_service::Service::call(&mut reads, request).await.into_response(),
                None => not_leader(&status),
            }
        })
        .with_state(status)
}

/// Serves the standby's router on `listener` until `shutdown` resolves.
pub async fn serve_standby(
    listener: tokio::net::TcpListener,
    status: Arc<ClusterStatus>,
    reads: StandbyReads,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // With the peer's address: signed reads check the key's IP allow-list and rate limits by address.
    let app = standby_router(status, reads).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
