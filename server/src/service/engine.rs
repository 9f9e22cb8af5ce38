//! The one place where the server calls the detector.
//!
//! Holds the loaded profiles as `Arc<Profile>`s and runs every CPU-bound call (scoring, verdicts,
//! profile parsing) on tokio's blocking pool, behind a semaphore sized to the CPU count, so the
//! async runtime never blocks and the CPU is never oversubscribed. A panic inside the detector
//! becomes a 500 for that request, never a crashed server.

use crate::service::{ServiceError, ServiceResult};
use detector::{Profile, TextScore, Verdict, VerdictOptions};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::Semaphore;

/// Names that always refer to the built-in profile.
pub const BUILTIN_ALIASES: &[&str] = &["builtin", "default"];

pub struct Engine {
    profiles: RwLock<BTreeMap<String, Arc<Profile>>>,
    builtin: Option<String>,
    builtin_error: Option<String>,
    cpu: Semaphore,
    /// The neural tier, loaded on first use by a profile that needs it; the error (missing
    /// weights, with the file and the fetch command) is kept and reported on every such use.
    neural: std::sync::OnceLock<Result<Arc<crate::service::neural::NeuralService>, String>>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

impl Engine {
    /// An engine with the built-in profile loaded (if the detector can provide it).
    pub fn new(cpu_workers: usize) -> Engine {
        Self::with_default(cpu_workers, None)
    }

    /// An engine whose default profile is the file `default_profile` when given, else the
    /// built-in profile.
    pub fn with_default(cpu_workers: usize, default_profile: Option<&std::path::Path>) -> Engine {
        let loaded = match default_profile {
            Some(path) => std::panic::catch_unwind(|| Profile::load(path)),
            None => std::panic::catch_unwind(Profile::builtin),
        };
        let (builtin, builtin_error, map) = match loaded {
            Ok(Ok(p)) => {
                let name = p.meta().name.clone();
                let mut m = BTreeMap::new();
                m.insert(name.clone(), Arc::new(p));
                (Some(name), None, m)
            }
            Ok(Err(e)) => {
                (None, Some(format!("built-in profile failed to load: {e}")), BTreeMap::new())
            }
            Err(p) => (
                None,
                Some(format!("built-in profile unavailable: {}", panic_message(&*p))),
                BTreeMap::new(),
            ),
        };
        if let Some(e) = &builtin_error {
            tracing::warn!("{e}");
        }
        Engine {
            profiles: RwLock::new(map),
            builtin,
            builtin_error,
            cpu: Semaphore::new(cpu_workers.max(1)),
            neural: std::sync::OnceLock::new(),
        }
    }

    pub fn builtin_name(&self) -> Option<&str> {
        self.builtin.as_deref()
    }

    /// Why the built-in profile is missing, if it is.
    pub fn builtin_error(&self) -> Option<&str> {
        self.builtin_error.as_deref()
    }

    pub fn names(&self) -> Vec<String> {
        self.profiles.read().expect("profiles lock").keys().cloned().collect()
    }

    /// Resolve a profile name (`None`, `builtin` or `default` = the built-in profile).
    pub fn resolve(&self, name: Option<&str>) -> ServiceResult<(String, Arc<Profile>)> {
        let name = match name {
            None => None,
            Some(n) if BUILTIN_ALIASES.contains(&n) => None,
            Some(n) => Some(n),
        };
        let name = match name {
            Some(n) => n.to_string(),
            None => match &self.builtin {
                Some(b) => b.clone(),
                None => {
                    return Err(ServiceError::Unavailable(
                        self.builtin_error.clone().unwrap_or_else(|| "no built-in profile".into()),
                    ))
                }
            },
        };
        let p = self.profiles.read().expect("profiles lock").get(&name).cloned();
        match p {
            Some(p) => Ok((name, p)),
            None => Err(ServiceError::NotFound(format!("profile `{name}`"))),
        }
    }

    pub fn insert(&self, name: &str, profile: Arc<Profile>) {
        self.profiles.write().expect("profiles lock").insert(name.to_string(), profile);
    }

    pub fn remove(&self, name: &str) -> bool {
        self.profiles.write().expect("profiles lock").remove(name).is_some()
    }

    /// Run a CPU-bound closure on the blocking pool, at most `cpu_workers` at a time.
    pub async fn run_cpu<T, F>(&self, f: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let _permit = self
            .cpu
            .acquire()
            .await
            .map_err(|_| ServiceError::Unavailable("engine is shutting down".into()))?;
        match tokio::task::spawn_blocking(f).await {
            Ok(v) => Ok(v),
            Err(e) if e.is_panic() => {
                let msg = panic_message(&*e.into_panic());
                Err(ServiceError::Internal(format!("detector failed: {msg}")))
            }
            Err(e) => Err(ServiceError::Internal(format!("detector task failed: {e}"))),
        }
    }

    /// The neural service, loading it on first use (off the async runtime).
    async fn neural(
        &self,
        profile: &Profile,
    ) -> ServiceResult<Arc<crate::service::neural::NeuralService>> {
        if self.neural.get().is_none() {
            let loaded = tokio::task::spawn_blocking(|| {
                crate::service::neural::NeuralService::load()
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| ServiceError::Internal(format!("loading the neural tier: {e}")))?;
            let _ = self.neural.set(loaded);
        }
        match self.neural.get().expect("set above") {
            Ok(n) => Ok(n.clone()),
            Err(e) => Err(ServiceError::Unavailable(format!(
                "profile {:?} needs the neural tier(s) {:?}, which this server cannot run: {e}",
                profile.meta().name,
                profile.neural_tiers()
            ))),
        }
    }

    /// Score texts (with optional prompts) against a profile; profiles with neural tiers get
    /// their embeddings from the neural service first.
    pub async fn score(
        &self,
        profile: Arc<Profile>,
        items: Vec<(String, Option<String>)>,
    ) -> ServiceResult<Vec<TextScore>> {
        let dense = if profile.neural_tiers().is_empty() {
            None
        } else {
            let neural = self.neural(&profile).await?;
            let texts: Vec<String> = items.iter().map(|(t, _)| t.clone()).collect();
            Some(neural.embed(&texts).await.map_err(|e| match e {
                models::ModelError::Overloaded { .. } => ServiceError::Overloaded,
                other => ServiceError::Internal(format!("neural tier: {other}")),
            })?)
        };
        self.run_cpu(move || {
            let refs: Vec<(&str, Option<&str>)> =
                items.iter().map(|(t, p)| (t.as_str(), p.as_deref())).collect();
            match (&dense, refs.as_slice()) {
                // one lexical text: no parallel batch machinery
                (None, [(t, p)]) => Ok(vec![profile.score(t, *p)]),
                _ => profile.score_batch_with(&refs, dense.as_deref()),
            }
        })
        .await?
        .map_err(|e| ServiceError::Invalid(e.to_string()))
    }

    /// The set-level verdict from stored scores.
    pub async fn verdict(
        &self,
        profile: Arc<Profile>,
        scores: Vec<TextScore>,
        opts: VerdictOptions,
    ) -> ServiceResult<Verdict> {
        self.run_cpu(move || profile.verdict(&scores, &opts)).await
    }

    /// Parse an uploaded profile file.
    pub async fn parse_profile(&self, bytes: Vec<u8>) -> ServiceResult<Profile> {
        self.run_cpu(move || Profile::from_bytes(&bytes))
            .await?
            .map_err(|e| ServiceError::Invalid(format!("not a valid profile: {e}")))
    }

    /// Load a stored profile file.
    pub async fn load_profile(&self, path: std::path::PathBuf) -> ServiceResult<Profile> {
        self.run_cpu(move || Profile::load(&path))
            .await?
            .map_err(|e| ServiceError::Internal(format!("stored profile failed to load: {e}")))
    }

    /// Fit a lexical profile from a labelled dataset file (profile_build jobs): the format and
    /// the split policy are `datasets::labelled`'s, the same as `pedigree profile build`'s.
    pub async fn build_profile(
        &self,
        dataset: std::path::PathBuf,
        params: crate::service::jobs::ProfileBuildParams,
    ) -> ServiceResult<Profile> {
        self.run_cpu(move || build_profile_blocking(&dataset, &params)).await?
    }
}

fn build_profile_blocking(
    dataset: &std::path::Path,
    params: &crate::service::jobs::ProfileBuildParams,
) -> ServiceResult<Profile> {
    let rows = datasets::read_labelled(dataset).map_err(|e| match e {
        // The upload's path on the server is no business of the API client's.
        datasets::DatasetError::Parse { line, message, .. } => {
            ServiceError::Invalid(format!("dataset line {line}: {message}"))
        }
        e => ServiceError::Internal(format!("dataset: {e}")),
    })?;
    let opts =
        detector::FitOptions::lexical(&params.name, &params.upstream, serde_json::Value::Null);
    crate::service::profiles::fit_labelled(&rows, "upload", opts)
}
