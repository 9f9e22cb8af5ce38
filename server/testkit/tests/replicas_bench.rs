//! `pedigree-dev replicas` end to end, tiny: 1 and 2 replicas of the real `pedigree` binary (the
//! one Cargo built beside `pedigree-dev`) on the throwaway PostgreSQL cluster.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_pedigree-dev");

#[test]
fn replicas_bench_reports_both_counts_and_their_ratios() {
    let pedigree = Path::new(BIN).with_file_name("pedigree");
    assert!(pedigree.is_file(), "{} not built", pedigree.display());
    let mut cmd = Command::new(BIN);
    if let Some(p) = testkit::profiles::default_profile() {
        cmd.env("PEDIGREE_DEFAULT_PROFILE", p);
    }
    let out = cmd
        .args(["replicas", "--replicas", "1,2", "--jobs", "3", "--lines", "40"])
        .args([
            "--requests",
            "200",
            "--concurrency",
            "4",
            "--audit-mb",
            "1",
            "--part-bytes",
            "131072",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0]["audit"]["texts"].as_u64().unwrap() > 5000, "the CLI baseline: {stdout}");
    for (row, n) in lines[1..3].iter().zip([1, 2]) {
        assert_eq!(row["replicas"], n, "{row}");
        assert_eq!(row["score_errors"], 0, "{row}");
        assert_eq!(row["score_requests"], 200, "{row}");
        assert_eq!(row["job_lines"], 120.0, "{row}");
        assert!(row["job_lines_per_second"].as_f64().unwrap() > 0.0, "{row}");
        // 1 MiB in parts of 128 KiB, merged into the CLI's summary (the bench checks it).
        assert_eq!(row["audit"]["parts"], 8, "{row}");
        assert_eq!(row["audit"]["same_as_cli"], true, "{row}");
    }
    assert_eq!(lines[3]["ratios"][0]["score_rps_ratio"], 1.0, "{stdout}");
    assert!(lines[3]["ratios"][1]["job_lines_per_second_ratio"].as_f64().unwrap() > 0.0);
    assert!(lines[3]["ratios"][1]["audit_speedup"].as_f64().unwrap() > 0.0);
    // Out-of-range counts are refused by the argument parser.
    let bad = Command::new(BIN).args(["replicas", "--replicas", "0"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--replicas"));
}
