//! Serving HTTP until told to stop, then draining what is open for a bounded time.
//!
//! The accept loop is our own rather than `axum::serve`'s: a connection past a cap must be refused before any
//! work is spent on it (no task, no buffers, no HTTP parsing), and hyper's connection builder must be set up with
//! a header-read timeout and a bounded read buffer, which `axum::serve` does not expose.

use crate::app::{router, AppState};
use crate::connections::{ConnectionLimits, ConnectionPermit, GuardedStream};
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use tower_service::Service;

/// How long a stopping desk waits for open requests before closing them.
pub const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(3);

/// Serves `state` on `listener` until `shutdown` resolves, then finishes in-flight requests for at most
/// [`SHUTDOWN_DRAIN`] (a client that never completes its request must not keep the desk from stopping).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    let builder = http1_builder(&state.connections.limits);
    let (stopping, stop_requested) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::auth_failures::run(state.clone(), stop_requested.clone()));
    // Every connection task holds a sender; the drain waits until all of them are gone.
    let (open_connections, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was accepted: wait a little
                    // rather than spin.
                    state.connections.accept_failed(&error);
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = state.connections.admit(remote.ip()) else {
            // A reset, not an orderly close: no TIME_WAIT on the desk's side, and nothing more is read. (The
            // deprecation is about a non-zero linger blocking in drop; a zero linger never blocks.)
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(std::time::Duration::ZERO));
            drop(stream);
            continue;
        };
        // Small messages (stream pushes, short responses) must not wait for Nagle's algorithm and the peer's
        // delayed ACK (a ~40 ms stall per burst).
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            stream,
            remote,
            permit,
            app: app.clone(),
            builder: builder.clone(),
            idle_timeout: state.connections.limits.idle_timeout,
            stop_requested: stop_requested.clone(),
            open: open_connections.clone(),
        };
        tokio::spawn(connection.serve());
    }
    drop(listener);
    stopping.send_replace(true);
    drop(open_connections);
    if tokio::time::timeout(SHUTDOWN_DRAIN, all_closed.recv()).await.is_err() {
        tracing::warn!(
            drain_seconds = SHUTDOWN_DRAIN.as_secs(),
            "requests still open after the drain period; closing them"
        );
    }
    // Failures counted while draining: journaled before the desk flushes its journal and stops.
    crate::auth_failures::flush(&state);
    Ok(())
}

/// HTTP/1.1 with the limits: header-read timeout (which also ends an idle keep-alive connection) and a bounded
/// read buffer.
fn http1_builder(limits: &ConnectionLimits) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.read_buffer_bytes_max.max(8 * 1024));
    builder
}

/// One accepted connection and what it needs to be served.
struct Connection {
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    permit: ConnectionPermit,
    app: axum::Router,
    builder: hyper::server::conn::http1::Builder,
    idle_timeout: std::time::Duration,
    stop_requested: tokio::sync::watch::Receiver<bool>,
    open: tokio::sync::mpsc::Sender<()>,
}

impl Connection {
    /// Serves requests until the peer closes, a timeout fires, or the desk stops (then gracefully: the request
    /// in flight is answered). An upgraded WebSocket keeps the stream, and with it the permit, after this ends.
    async fn serve(self) {
        let Connection { stream, remote, permit, app, builder, idle_timeout, mut stop_requested, open } = self;
        let io = TokioIo::new(GuardedStream::new(stream, idle_timeout, permit));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            let mut app = app.clone();
            async move { app.call(request.map(Body::new)).await }
        });
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut stop_signalled = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, %remote, "connection ended with an error");
                    }
                    break;
                }
                _ = stop_requested.wait_for(|stopping| *stopping), if !stop_signalled => {
                    stop_signalled = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        drop(open);
    }
}
