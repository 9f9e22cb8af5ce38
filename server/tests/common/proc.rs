#![allow(dead_code)]
//! Spawning the real `pedigree` binary.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_pedigree");

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `pedigree serve --listen 127.0.0.1:0 --data DIR` and wait for its bound address.
pub fn start(data: &Path, envs: &[(&str, &str)]) -> Server {
    start_with_stderr(data, envs, Stdio::inherit())
}

/// [`start`] with the server's stderr (its logs) sent to `stderr`, e.g. a file to inspect.
pub fn start_with_stderr(data: &Path, envs: &[(&str, &str)], stderr: Stdio) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(stderr);
    if let Some(p) = super::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn pedigree serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(l)) = lines.next() {
            if let Some(a) = l.strip_prefix("listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(60)).expect("server did not report its address");
    Server { child, base }
}

/// `pedigree keys create --data DIR --role ROLE`: the key is alone on the last line of stdout.
pub fn create_key(data: &Path, role: &str) -> String {
    create_key_env(data, role, &[])
}

/// [`create_key`] with environment variables (e.g. `PEDIGREE_DATABASE_URL`).
pub fn create_key_env(data: &Path, role: &str, envs: &[(&str, &str)]) -> String {
    let out = Command::new(BIN)
        .args(["keys", "create", "--role", role, "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .output()
        .expect("run keys create");
    assert!(out.status.success(), "keys create failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().expect("no output").to_string();
    assert!(last.starts_with("pdg_") && last.len() == 36, "last line is not a key: {stdout:?}");
    last
}
