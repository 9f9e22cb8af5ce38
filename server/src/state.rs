//! Shared application state.

use crate::audit::AuditSink;
use crate::config::Config;
use crate::service::engine::Engine;
use crate::service::jobs::JobManager;
use crate::service::keys::KeyCache;
use crate::service::{ServiceError, ServiceResult};
use crate::store::{now_ms, ProfileRecord, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub engine: Arc<Engine>,
    pub audit: AuditSink,
    pub keys: Arc<KeyCache>,
    pub admission: Arc<Semaphore>,
    pub jobs: Arc<JobManager>,
    /// Probe campaigns running in the background.
    pub campaigns: Arc<crate::service::campaigns::CampaignManager>,
    pub metrics: PrometheusHandle,
    pub shutting_down: Arc<AtomicBool>,
}

impl AppState {
    /// Admission control: a permit, or `Overloaded` (429) at once when the server is at its
    /// limit of in-flight scoring requests (per replica).
    pub fn admit(&self) -> crate::service::ServiceResult<tokio::sync::OwnedSemaphorePermit> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("pedigree_rejected_total", "reason" => "admission").increment(1);
            crate::service::ServiceError::Overloaded
        })
    }
}

/// The process-wide Prometheus recorder (installed once; every app in the process renders it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0, 10.0,
                    ],
                )
                .expect("valid buckets");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Histogram samples are buffered until upkeep drains them into buckets: run it
            // periodically so memory stays bounded between scrapes.
            let h = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    h.run_upkeep();
                })
                .expect("spawn metrics upkeep thread");
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

impl AppState {
    /// Open the data directory (creating it) and the store it or `--database-url` selects
    /// ([`crate::store::open`]), migrate the database, load profiles, start the audit writer and
    /// resume unfinished jobs.
    pub async fn open(config: Config) -> ServiceResult<AppState> {
        for d in [config.store.data.clone(), config.uploads_dir(), config.profiles_dir()] {
            std::fs::create_dir_all(&d)
                .map_err(|e| ServiceError::Internal(format!("creating {}: {e}", d.display())))?;
        }
        let store = config.store.open().await?;
        Self::with_store(config, store).await
    }

    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> ServiceResult<AppState> {
        let engine =
            Arc::new(Engine::with_default(config.cpu_workers(), config.default_profile.as_deref()));
        if let Some(name) = engine.builtin_name() {
            let (_, p) = engine.resolve(Some(name))?;
            let meta = p.meta();
            store
                .upsert_profile(ProfileRecord {
                    name: name.to_string(),
                    upstream: meta.upstream.clone(),
                    meta: serde_json::to_value(meta)
                        .map_err(|e| ServiceError::Internal(e.to_string()))?,
                    path: None,
                    builtin: true,
                    created_ms: now_ms(),
                })
                .await?;
        }
        // Stored profiles now, then whatever another replica saves or deletes, every second.
        let profiles = Arc::new(crate::service::profiles::ProfileSync::default());
        profiles.sync(store.as_ref(), &engine, &config).await?;
        let audit = AuditSink::start(store.clone());
        AuditSink::start_retention(store.clone(), config.audit_retention_days);
        let jobs = Arc::new(JobManager::new(store.clone(), engine.clone(), &config));
        let campaigns = Arc::new(crate::service::campaigns::CampaignManager::new(
            store.clone(),
            engine.clone(),
            &config,
        ));
        let state = AppState {
            keys: Arc::new(KeyCache::new(Duration::from_secs(config.key_cache_secs))),
            admission: Arc::new(Semaphore::new(config.max_inflight)),
            config: Arc::new(config),
            store,
            engine,
            audit,
            jobs,
            campaigns,
            metrics: metrics_handle(),
            shutting_down: Arc::new(AtomicBool::new(false)),
        };
        state.remove_orphan_uploads().await;
        state.jobs.start().await?;
        state.campaigns.start().await?;
        // Revocations made through another replica or the CLI clear this replica's key cache
        // within a second (this replica's own clear it at once).
        state.keys.watch(state.store.clone());
        profiles.watch(state.store.clone(), state.engine.clone(), state.config.clone());
        Ok(state)
    }

    /// Delete upload files that no unfinished job needs (left by a crash during an upload, or
    /// by a job that finished just before a crash: finished jobs' uploads are deleted at once).
    async fn remove_orphan_uploads(&self) {
        let Ok(jobs) = self.store.unfinished_jobs().await else { return };
        let keep: std::collections::HashSet<std::ffi::OsString> = jobs
            .into_iter()
            .filter_map(|j| {
                j.input_path
                    .and_then(|p| std::path::Path::new(&p).file_name().map(|n| n.to_os_string()))
            })
            .collect();
        let Ok(entries) = std::fs::read_dir(self.config.uploads_dir()) else { return };
        for e in entries.flatten() {
            let p = e.path();
            // A shared uploads directory may hold a file another replica is streaming now (no
            // job row yet): only an orphan untouched for a day is swept there.
            let stale = || {
                e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(24 * 3600))
            };
            if p.is_file()
                && !keep.contains(&e.file_name())
                && (!self.config.shared_uploads() || stale())
            {
                tracing::info!(path = %p.display(), "removing orphaned upload");
                let _ = std::fs::remove_file(&p);
            }
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}
