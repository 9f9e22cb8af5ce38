//! Aggregation of failed-authentication audit entries: anyone can send requests without a key,
//! so one row per 401 let an anonymous client grow the audit table without bound.

use crate::store::AuditEntry;
use std::collections::HashMap;
use std::sync::Mutex;

/// Length of one aggregation window, per route.
pub const WINDOW_MS: i64 = 60_000;

#[derive(Default)]
pub struct FailedAuthWindow {
    /// Action (`METHOD /route/template`, a bounded set) → (window start, failures not written).
    windows: Mutex<HashMap<String, (i64, u64)>>,
}

impl FailedAuthWindow {
    /// The entries to write for this failure: itself when it opens a window (preceded by the
    /// summary of the previous window when that one suppressed anything), else none.
    pub fn admit(&self, entry: AuditEntry) -> Vec<AuditEntry> {
        // Plain arithmetic under the lock; a poisoned lock holds valid counts.
        let mut w = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = w.entry(entry.action.clone()).or_insert((i64::MIN, 0));
        if entry.at_ms.saturating_sub(slot.0) < WINDOW_MS {
            slot.1 += 1;
            return vec![];
        }
        let (start, suppressed) = std::mem::replace(slot, (entry.at_ms, 0));
        drop(w);
        let mut out = Vec::new();
        if suppressed > 0 {
            out.push(AuditEntry {
                detail: serde_json::json!({
                    "reason": "unauthenticated",
                    "aggregated": suppressed,
                    "window_start_ms": start,
                    "window_ms": WINDOW_MS,
                }),
                ..entry.clone()
            });
        }
        out.push(entry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(at_ms: i64, action: &str) -> AuditEntry {
        AuditEntry {
            id: 0,
            at_ms,
            key_id: None,
            role: None,
            action: action.into(),
            target: "/v1/x".into(),
            detail: serde_json::json!({"reason": "unauthenticated"}),
            status: 401,
        }
    }

    #[test]
    fn failures_are_written_once_per_window_and_counted() {
        let w = FailedAuthWindow::default();
        let written: usize = (0..2000).map(|i| w.admit(e(1_000 + i, "POST /v1/score")).len()).sum();
        assert_eq!(written, 1, "one row for 2000 failures within a window");
        assert_eq!(w.admit(e(5, "POST /v1/jobs")).len(), 1, "routes have their own windows");
        let next = w.admit(e(1_000 + WINDOW_MS, "POST /v1/score"));
        assert_eq!(next.len(), 2);
        assert_eq!(next[0].detail["aggregated"], 1999);
        assert_eq!(next[1].detail["reason"], "unauthenticated");
    }
}
