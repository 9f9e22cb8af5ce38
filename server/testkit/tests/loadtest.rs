//! `pedigree-dev loadtest` end to end: the real binary against its in-process server.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pedigree-dev");

#[test]
fn loadtest_subcommand_reports_figures() {
    // Small and bounded: an in-process server on loopback, 20 connections, 300 requests.
    let mut cmd = Command::new(BIN);
    if let Some(p) = testkit::profiles::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let out = cmd
        .args([
            "loadtest",
            "--concurrency",
            "20",
            "--requests",
            "300",
            "--warmup",
            "20",
            "--max-secs",
            "30",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("requests/s") && stdout.contains("p50") && stdout.contains("p99"),
        "{stdout}"
    );
    assert!(stdout.contains("(0 errors"), "{stdout}");
    // open loop
    let mut cmd = Command::new(BIN);
    if let Some(p) = testkit::profiles::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let out = cmd
        .args([
            "loadtest",
            "--concurrency",
            "10",
            "--requests",
            "200",
            "--warmup",
            "10",
            "--rate",
            "500",
            "--max-secs",
            "30",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("open loop"));
}
