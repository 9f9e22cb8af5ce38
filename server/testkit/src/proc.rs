//! Spawning the real `pedigree` binary: `pedigree serve` on port 0 (its bound address read from
//! stdout) and `pedigree keys create`. Used by the integration tests (with Cargo's path to the
//! binary) and by `pedigree-dev replicas` (with the binary beside it).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `pedigree serve`; killed (SIGKILL) and reaped when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `BIN serve --listen 127.0.0.1:0 --data DIR` with `envs`, its stderr sent to `stderr`, and
/// wait (up to a minute) for its bound address.
pub fn start(
    bin: &Path,
    data: &Path,
    envs: &[(&str, &str)],
    stderr: Stdio,
) -> crate::Result<Server> {
    let mut cmd = Command::new(bin);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(Ok(l)) = lines.next() {
            if let Some(a) = l.strip_prefix("listening on ") {
                let _ = tx.send(a.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base) => Ok(Server { child, base }),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(crate::Error::Usage(format!("{} serve did not report its address", bin.display())))
        }
    }
}

/// `BIN keys create --data DIR --role ROLE` with `envs`: the key, alone on stdout's last line.
pub fn create_key(
    bin: &Path,
    data: &Path,
    role: &str,
    envs: &[(&str, &str)],
) -> crate::Result<String> {
    let out = Command::new(bin)
        .args(["keys", "create", "--role", role, "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().last() {
        Some(k) if out.status.success() && k.starts_with("pdg_") && k.len() == 36 => Ok(k.into()),
        _ => Err(crate::Error::Usage(format!(
            "keys create failed ({}): {stdout:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))),
    }
}
