//! Dev-only tools of pedigree, kept out of the production library and binary (issue 15):
//!
//! - [`replay`]: a fault-injecting OpenAI-compatible chat server replaying recorded answers
//!   (`pedigree-dev replay-server`, and the integration tests' fake endpoint);
//! - [`pg`]: the tests' throwaway PostgreSQL cluster (one per test binary, a database per test);
//! - [`proc`]: spawning the real `pedigree` binary (`serve` on port 0, `keys create`);
//! - [`profiles`]: a synthetic corpus and profile for builds without a built-in profile;
//! - the `pedigree-dev` binary: `replay-server`, `loadtest` (a `/v1/score` load generator) and
//!   `replicas` (score load and job throughput through 1 and 3 replicas on one PostgreSQL).

pub mod pg;
pub mod proc;
pub mod profiles;
pub mod replay;

/// What the testkit's library functions can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Dataset(#[from] datasets::DatasetError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The caller asked for something the inputs cannot give (an unknown model, say).
    #[error("{0}")]
    Usage(String),
}

pub type Result<T> = std::result::Result<T, Error>;
