//! Issue 14 item 13, against the real binary: a busy address is named in the error, logs that
//! are not a terminal carry no ANSI colour codes, and `profile --help` offers only what exists.

mod common;

use common::proc::BIN;
use std::process::Command;

#[test]
fn address_in_use_is_named_and_logs_have_no_ansi_codes() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", &addr, "--data"]).arg(dir.path()).env("RUST_LOG", "info");
    if let Some(p) = common::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains(&addr) && stderr.contains("cannot listen"), "{stderr}");
    assert!(stderr.contains("store opened"), "info logs were written: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escape codes in a non-terminal log: {stderr:?}");
}

#[test]
fn profile_help_lists_only_existing_subcommands() {
    let out = Command::new(BIN).args(["profile", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(out.status.success() && help.contains("build") && help.contains("show"), "{help}");
    assert!(!help.contains("export"), "{help}");
}
