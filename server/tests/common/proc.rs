#![allow(dead_code)]
//! Spawning the real `pedigree` binary.

use std::path::Path;
use std::process::Stdio;

pub const BIN: &str = env!("CARGO_BIN_EXE_pedigree");

pub use testkit::proc::Server;

/// Start `pedigree serve --listen 127.0.0.1:0 --data DIR` and wait for its bound address.
pub fn start(data: &Path, envs: &[(&str, &str)]) -> Server {
    start_with_stderr(data, envs, Stdio::inherit())
}

/// [`start`] with the server's stderr (its logs) sent to `stderr`, e.g. a file to inspect.
pub fn start_with_stderr(data: &Path, envs: &[(&str, &str)], stderr: Stdio) -> Server {
    let profile = super::default_profile().map(|p| p.to_string_lossy().into_owned());
    let mut all: Vec<(&str, &str)> = Vec::new();
    if let Some(p) = &profile {
        all.push(("PEDIGREE_DEFAULT_PROFILE", p));
    }
    all.extend_from_slice(envs);
    testkit::proc::start(Path::new(BIN), data, &all, stderr).expect("start pedigree serve")
}

/// `pedigree keys create --data DIR --role ROLE`: the key is alone on the last line of stdout.
pub fn create_key(data: &Path, role: &str) -> String {
    create_key_env(data, role, &[])
}

/// [`create_key`] with environment variables (e.g. `PEDIGREE_DATABASE_URL`).
pub fn create_key_env(data: &Path, role: &str, envs: &[(&str, &str)]) -> String {
    testkit::proc::create_key(Path::new(BIN), data, role, envs).expect("keys create")
}
