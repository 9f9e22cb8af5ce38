//! Detection profiles: loading one from a file or the built-in one, fitting one from a
//! labelled dataset (`POST /v1/profiles/build` and `pedigree profile build FILE`), and keeping
//! every replica's profiles in step with the database ([`ProfileSync`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use detector::Profile;

use super::engine::Engine;
use super::{ServiceError, ServiceResult};
use crate::config::Config;
use crate::store::{now_ms, ProfileRecord, Store};

/// How often a replica looks for profiles saved or deleted through another one.
pub const PROFILE_POLL: Duration = Duration::from_secs(1);

/// Save an uploaded or fitted profile for every replica: its file under `DATA/profiles/`
/// (written aside, then renamed), its record and bytes in the database (one transaction, so
/// any replica can load it whatever its data directory), and this replica's engine.
pub async fn save(
    store: &dyn Store,
    engine: &Engine,
    config: &Config,
    name: &str,
    profile: Profile,
    bytes: Vec<u8>,
) -> ServiceResult<ProfileRecord> {
    let path = config.profiles_dir().join(format!("{name}.pdg"));
    let tmp = path.with_extension("pdg.tmp");
    tokio::fs::write(&tmp, &bytes).await?;
    tokio::fs::rename(&tmp, &path).await?;
    let meta = profile.meta();
    let rec = ProfileRecord {
        name: name.to_string(),
        upstream: meta.upstream.clone(),
        meta: serde_json::to_value(meta).map_err(|e| ServiceError::Internal(e.to_string()))?,
        path: Some(config.stored_path(&path)),
        builtin: false,
        created_ms: now_ms(),
    };
    store.save_profile(rec.clone(), bytes).await?;
    engine.insert(name, Arc::new(profile));
    Ok(rec)
}

/// A stored (not built-in) profile: from the database's copy of its file, else from its path
/// (servers before the copy wrote only the file).
pub async fn load_stored(
    store: &dyn Store,
    engine: &Engine,
    config: &Config,
    rec: &ProfileRecord,
) -> ServiceResult<Profile> {
    if let Some(bytes) = store.profile_file(&rec.name).await? {
        return engine.parse_profile(bytes).await;
    }
    let path = rec
        .path
        .as_deref()
        .ok_or_else(|| ServiceError::Internal(format!("profile `{}` has no file", rec.name)))?;
    engine.load_profile(config.resolve(path)).await
}

/// Keeps a replica's engine in step with the `profiles` table: loads the profiles saved through
/// another replica (new, or replaced: a newer `created_ms`) and drops the deleted ones.
#[derive(Default)]
pub struct ProfileSync {
    /// `created_ms` of each stored profile as last loaded (or found unloadable).
    seen: Mutex<HashMap<String, i64>>,
}

impl ProfileSync {
    /// One pass; returns how many profiles were loaded and removed.
    pub async fn sync(
        &self,
        store: &dyn Store,
        engine: &Engine,
        config: &Config,
    ) -> ServiceResult<(usize, usize)> {
        let recs: Vec<ProfileRecord> =
            store.list_profiles().await?.into_iter().filter(|r| !r.builtin).collect();
        let stale: Vec<ProfileRecord> = {
            let seen = self.seen.lock().expect("profile sync");
            recs.iter().filter(|r| seen.get(&r.name) != Some(&r.created_ms)).cloned().collect()
        };
        let mut loaded = 0;
        for rec in stale {
            match load_stored(store, engine, config, &rec).await {
                Ok(p) => {
                    engine.insert(&rec.name, Arc::new(p));
                    loaded += 1;
                }
                Err(e) => {
                    tracing::error!(profile = %rec.name, error = %e, "stored profile failed to load; skipped")
                }
            }
            // Marked seen either way: a file that does not parse is not retried every second.
            self.seen.lock().expect("profile sync").insert(rec.name.clone(), rec.created_ms);
        }
        let gone: Vec<String> = {
            let mut seen = self.seen.lock().expect("profile sync");
            let gone: Vec<String> =
                seen.keys().filter(|n| !recs.iter().any(|r| &r.name == *n)).cloned().collect();
            gone.iter().for_each(|n| {
                seen.remove(n);
            });
            gone
        };
        for name in &gone {
            engine.remove(name);
        }
        Ok((loaded, gone.len()))
    }

    /// Sync every [`PROFILE_POLL`] in the background (a database error is retried).
    pub fn watch(self: Arc<Self>, store: Arc<dyn Store>, engine: Arc<Engine>, config: Arc<Config>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROFILE_POLL).await;
                match self.sync(store.as_ref(), &engine, &config).await {
                    Ok((0, 0)) => {}
                    Ok((loaded, removed)) => {
                        tracing::info!(
                            loaded,
                            removed,
                            "profiles changed in the database; engine updated"
                        )
                    }
                    Err(e) => tracing::debug!(error = %e, "could not check for profile changes"),
                }
            }
        });
    }
}

/// The profile at `path`, or the built-in one; the error names the file.
pub fn load(path: Option<&Path>) -> ServiceResult<Profile> {
    match path {
        Some(p) => Profile::load(p)
            .map_err(|e| ServiceError::Invalid(format!("loading profile {}: {e}", p.display()))),
        None => Profile::builtin().map_err(|e| ServiceError::Invalid(e.to_string())),
    }
}

/// Fit a profile on labelled answers, split by the project's one policy
/// ([`datasets::assign_split`]: `Test` answers calibrate). `opts` says what to fit; its
/// `dataset` metadata becomes `source` and the split's counts.
pub fn fit_labelled(
    rows: &[datasets::LabelledAnswer],
    source: &str,
    mut opts: detector::FitOptions,
) -> ServiceResult<Profile> {
    let side = |split: datasets::Split| -> Vec<detector::LabeledText<'_>> {
        rows.iter()
            .filter(|r| r.split == split)
            .map(|r| detector::LabeledText {
                text: &r.text,
                model: &r.model,
                family: &r.family,
                dense: None,
                prompt: r.prompt.as_deref(),
            })
            .collect()
    };
    let (train, calib) = (side(datasets::Split::Train), side(datasets::Split::Test));
    opts.dataset = serde_json::json!({"source": source, "lines": rows.len(), "train": train.len(), "calib": calib.len()});
    Profile::fit(&train, &calib, &opts)
        .map_err(|e| ServiceError::Invalid(format!("profile fit failed: {e}")))
}
