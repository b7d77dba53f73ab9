//! The HTTP face of a replicated desk (docs/operations.md): `GET /v1/admin/cluster` on every node, and the
//! standby's whole server, which refuses everything else with `503 not_leader` naming the leader's address
//! (or `503 unavailable` while no node holds the lease).

use crate::problem::ApiError;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use otcd_host::cluster::{ClusterStatus, ClusterView};
use std::future::Future;
use std::sync::Arc;

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

/// The standby's router.
pub fn standby_router(status: Arc<ClusterStatus>) -> Router {
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
        .fallback(|State(status): State<Arc<ClusterStatus>>| async move { not_leader(&status) })
        .with_state(status)
}

/// Serves the standby's router on `listener` until `shutdown` resolves.
pub async fn serve_standby(
    listener: tokio::net::TcpListener,
    status: Arc<ClusterStatus>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, standby_router(status)).with_graceful_shutdown(shutdown).await
}
