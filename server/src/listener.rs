//! The HTTP listener, with the limits `axum::serve` lacks: a header-read timeout (which also
//! bounds how long an idle keep-alive connection is kept: hyper starts it whenever it waits for
//! the next request head), a cap on open connections, and accept errors (EMFILE) that back off
//! instead of spinning. Half-sent requests were an unauthenticated way to exhaust the process's
//! file descriptors and starve `/healthz` (issue 14 item 3). The request timeout is a layer of
//! the router ([`crate::api::app`]), so that it also answers in `oneshot` tests.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connection limits of `pedigree serve` (flags in [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time a client has to send a complete request head, and the longest idle keep-alive.
    pub header_read_timeout: Duration,
    /// Connections open at once; beyond it a new connection is closed at once.
    pub max_connections: usize,
}

/// Serve `app` on `listener` until `shutdown` completes, then wait for open connections to
/// finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors (or a transient error): wait for some to close.
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            metrics::counter!("pedigree_connections_refused_total").increment(1);
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max = limits.max_connections,
                    "connection cap reached; closing new connections"
                );
            }
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
        // hyper's own replies to unparseable request heads get a JSON body (hyper_errors.rs).
        let io = TokioIo::new(crate::hyper_errors::JsonParseErrors::new(tcp));
        let conn = builder.serve_connection(io, TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
