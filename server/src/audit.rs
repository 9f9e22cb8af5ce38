//! The audit log writer: entries are queued on a bounded channel and written in batches by one
//! background task, so recording never adds a database round-trip to a request. `flush()` waits
//! until everything queued so far is durable (used by the audit query and on shutdown).

use crate::store::{AuditEntry, Store};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Handlers attach this to a response (`resp.extensions_mut().insert(..)`) to add details
/// (counts, ids) to the audit entry of their request.
#[derive(Clone, Debug)]
pub struct AuditDetail(pub serde_json::Value);

enum Msg {
    Entry(AuditEntry),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<Msg>,
    failed_auth: Arc<crate::audit_window::FailedAuthWindow>,
}

impl AuditSink {
    /// Start the writer task on the current runtime.
    pub fn start(store: Arc<dyn Store>) -> AuditSink {
        let (tx, mut rx) = mpsc::channel::<Msg>(16_384);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut acks = Vec::new();
            while let Some(m) = rx.recv().await {
                let push = |m: Msg,
                            batch: &mut Vec<AuditEntry>,
                            acks: &mut Vec<oneshot::Sender<()>>| match m
                {
                    Msg::Entry(e) => batch.push(e),
                    Msg::Flush(a) => acks.push(a),
                };
                push(m, &mut batch, &mut acks);
                while batch.len() < 1024 {
                    match rx.try_recv() {
                        Ok(m) => push(m, &mut batch, &mut acks),
                        Err(_) => break,
                    }
                }
                if !batch.is_empty() {
                    if let Err(e) = store.append_audit(std::mem::take(&mut batch)).await {
                        tracing::error!(error = %e, "failed to write audit log entries");
                    }
                }
                for a in acks.drain(..) {
                    let _ = a.send(());
                }
            }
        });
        AuditSink { tx, failed_auth: Default::default() }
    }

    /// Record a failed authentication, aggregated: per route, the first failure of each
    /// [`crate::audit_window::WINDOW_MS`] window is written, and the ones after it are counted
    /// and written as one `{"reason": "unauthenticated", "aggregated": N}` entry when the next
    /// window starts (2,000 × 401 used to add 2,000 rows).
    pub async fn record_failed_auth(&self, entry: AuditEntry) {
        for e in self.failed_auth.admit(entry) {
            self.record(e).await;
        }
    }

    /// Delete entries older than `days` days, now and every hour (`days = 0`: keep all).
    pub fn start_retention(store: Arc<dyn Store>, days: u64) {
        if days == 0 {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let before = crate::store::now_ms().saturating_sub((days * 86_400_000) as i64);
                match store.prune_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, days, "audit entries past retention"),
                    Err(e) => tracing::warn!(error = %e, "audit retention failed"),
                }
            }
        });
    }

    /// Queue an entry (waits only if the queue is full: backpressure instead of unbounded memory).
    pub async fn record(&self, entry: AuditEntry) {
        if self.tx.send(Msg::Entry(entry)).await.is_err() {
            tracing::error!("audit writer is gone; entry dropped");
        }
    }

    /// Wait until every entry queued before this call is written.
    pub async fn flush(&self) {
        let (a, r) = oneshot::channel();
        if self.tx.send(Msg::Flush(a)).await.is_ok() {
            let _ = r.await;
        }
    }
}
