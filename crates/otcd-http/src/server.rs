//! Serving HTTP until told to stop, then draining what is open for a bounded time.

use crate::app::{router, AppState};
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;

/// How long a stopping desk waits for open requests before closing them.
pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves `state` on `listener` until `shutdown` resolves, then finishes in-flight requests for at most
/// [`SHUTDOWN_DRAIN`] (a client that never completes its request must not keep the desk from stopping).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (stopping, mut stop_requested) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        stopping.send_replace(true);
    };
    // Small messages (stream pushes, short responses) must not wait for Nagle's algorithm and the peer's
    // delayed ACK (a ~40 ms stall per burst).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream: &mut tokio::net::TcpStream| {
        let _ = stream.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(signal).into_future();
    let drain_deadline = async move {
        let _ = stop_requested.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
    };
    tokio::select! {
        served = server => served,
        () = drain_deadline => {
            tracing::warn!(drain_seconds = SHUTDOWN_DRAIN.as_secs(), "requests still open after the drain period; closing them");
            Ok(())
        }
    }
}
