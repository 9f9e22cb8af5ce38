//! What the detector's benches share: their corpus.

/// Up to 2,000 real responses from `../shared/datasets/alpaca-eval-dev/samples.jsonl` (read in
/// place, never copied into the repo) when present, otherwise synthetic list-heavy texts.
pub fn texts() -> Vec<String> {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/alpaca-eval-dev/samples.jsonl");
    if let Ok(s) = std::fs::read_to_string(path) {
        return s
            .lines()
            .step_by(6)
            .take(2000)
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["response"].as_str().map(str::to_string))
            .collect();
    }
    eprintln!("bench data not found at {path}; using synthetic texts");
    (0..2000).map(|i| format!("Here are some tips number {i}:\n\n1. **Sleep** well. However, it is important to note that rest matters.\n2. Eat well and drink water.\n").repeat(6)).collect()
}
