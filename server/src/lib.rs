//! The pedigree server library: the HTTP API and dashboard (adapters), the service layer
//! (`service`: suspects, verdicts, jobs, audits, campaigns, membership), and the store. The
//! command-line adapters are the `pedigree` binary's own modules (`src/bin/pedigree/`).

pub mod api;
pub mod audit;
pub mod audit_window;
pub mod auth;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod files;
pub mod hyper_errors;
pub mod ids;
pub mod limits;
pub mod listener;
pub mod logging;
pub mod metrics_labels;
pub mod report;
pub mod service;
pub mod state;
/// The store (its own crate, `server/store`), re-exported so `server::store::…` keeps naming it.
pub use store;

pub use api::app;
pub use config::Config;
pub use state::AppState;
