//! `pedigree serve`: bind, serve, shut down gracefully on SIGTERM / ctrl-c.

use server::api::app;
use server::config::ServeArgs;
use server::state::AppState;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let state = AppState::open(args.config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %args.config.store.data.display(), profiles = ?state.engine.names(), "pedigree listening");
    // One machine-readable line on stdout (tests and scripts read the bound port from it).
    println!("listening on http://{addr}");
    let grace = Duration::from_secs(args.config.shutdown_grace_secs);
    let st = state.clone();
    let limits = server::listener::ConnLimits {
        header_read_timeout: Duration::from_secs(args.config.header_read_timeout_secs.max(1)),
        max_connections: args.config.max_connections,
    };
    server::listener::serve(listener, app(state.clone()), limits, async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        st.shutting_down.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            tracing::warn!("grace period over; exiting with requests still in flight");
            std::process::exit(0);
        });
    })
    .await?;
    // Running jobs stop after their current chunk, campaigns after their probes in flight, and
    // their leases are given back at once: another replica (or this one, restarted) resumes
    // them (jobs from their cursors, campaigns from their pending probes).
    let grace = Duration::from_secs(5);
    tokio::join!(state.jobs.shutdown(grace), state.campaigns.shutdown(grace));
    state.audit.flush().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
