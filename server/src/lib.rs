//! The pedigree server: HTTP API, CLI, storage, jobs.

pub mod api;
pub mod audit;
pub mod audit_window;
pub mod auth;
pub mod cli;
pub mod cli_audit;
pub mod cli_detect;
pub mod cli_membership;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod files;
pub mod hyper_errors;
pub mod ids;
pub mod jobs;
pub mod limits;
pub mod listener;
pub mod loadtest;
pub mod metrics_labels;
pub mod neural;
pub mod probe;
pub mod report;
pub mod serve;
pub mod service;
pub mod state;
pub mod store;

pub use api::app;
pub use config::Config;
pub use state::AppState;
