//! Labelled answers for fitting a profile, and the project's one split policy.
//!
//! A labelled dataset is JSONL, one answer a line:
//! `{"text": "…", "model": "gpt-4o", "family": "openai", "prompt": "…", "split": "train"|"calib"}`.
//!
//! **Split policy** (every profile build, CLI or HTTP, goes through [`assign_split`]): an explicit
//! label wins — a line's `split` (`train`; `calib`, `calibration` or `test`), or a bench
//! directory's `train_prompts` / `test_prompts` lists, which label whole prompts. Without a
//! label, a hash of the prompt (of the text when there is no prompt) sends ~30% of prompts to
//! calibration, so that calibration never sees a training prompt and the same prompt always
//! lands on the same side, whichever file or run it comes from.

use crate::bench::Split;
use crate::error::{DatasetError, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::BufRead;
use std::path::Path;

/// One labelled answer, with the side of the split it is on (`Test` = calibration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledAnswer {
    pub text: String,
    pub model: String,
    pub family: String,
    pub prompt: Option<String>,
    pub split: Split,
}

#[derive(Deserialize)]
struct Line {
    text: String,
    model: String,
    family: String,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    split: Option<String>,
}

/// The split of an answer: its explicit `label` if any, else by a hash of the prompt (or text).
/// An unknown label is an error (`Err` holds the message).
pub fn assign_split(
    label: Option<&str>,
    prompt: Option<&str>,
    text: &str,
) -> std::result::Result<Split, String> {
    match label {
        Some("train") => Ok(Split::Train),
        Some("calib" | "calibration" | "test") => Ok(Split::Test),
        Some(other) => Err(format!("unknown split `{other}` (train, calib)")),
        None => {
            let key = prompt.unwrap_or(text);
            Ok(if Sha256::digest(key.as_bytes())[0] % 10 >= 7 { Split::Test } else { Split::Train })
        }
    }
}

/// Read a labelled dataset; the first bad line is an error naming its number.
pub fn read_labelled(path: &Path) -> Result<Vec<LabelledAnswer>> {
    let io = |source| DatasetError::Io { path: path.to_path_buf(), source };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| DatasetError::Parse {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            field: None,
            message,
        };
        let row: Line = serde_json::from_str(&line)
            .map_err(|e| bad(format!("{e} (expected {{\"text\", \"model\", \"family\"}})")))?;
        let split =
            assign_split(row.split.as_deref(), row.prompt.as_deref(), &row.text).map_err(bad)?;
        rows.push(LabelledAnswer {
            text: row.text,
            model: row.model,
            family: row.family,
            prompt: row.prompt,
            split,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_win_and_the_hash_keeps_a_prompt_on_one_side() {
        assert_eq!(assign_split(Some("train"), Some("p"), "t"), Ok(Split::Train));
        assert_eq!(assign_split(Some("calibration"), Some("p"), "t"), Ok(Split::Test));
        assert!(assign_split(Some("dev"), None, "t").unwrap_err().contains("unknown split `dev`"));
        // Same prompt, different answers: same side.
        for i in 0..50 {
            let p = format!("prompt {i}");
            assert_eq!(
                assign_split(None, Some(&p), "one answer"),
                assign_split(None, Some(&p), "another answer")
            );
        }
        // About 30% calibration over many prompts.
        let calib = (0..2000)
            .filter(|i| assign_split(None, Some(&format!("q{i}")), "").unwrap() == Split::Test)
            .count();
        assert!((500..700).contains(&calib), "{calib} of 2000 in calibration");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.jsonl");
        std::fs::write(
            &p,
            "{\"text\":\"a\",\"model\":\"m\",\"family\":\"f\",\"split\":\"train\"}\n\n{\"text\":\"b\"}\n",
        )
        .unwrap();
        let e = read_labelled(&p).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("expected"), "{e}");
        std::fs::write(&p, "{\"text\":\"a\",\"model\":\"m\",\"family\":\"f\",\"split\":\"x\"}\n")
            .unwrap();
        let e = read_labelled(&p).unwrap_err().to_string();
        assert!(e.contains("unknown split `x`"), "{e}");
        std::fs::write(&p, "{\"text\":\"a\",\"model\":\"m\",\"family\":\"f\",\"prompt\":\"q\"}\n")
            .unwrap();
        let rows = read_labelled(&p).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].split, assign_split(None, Some("q"), "a").unwrap());
    }
}
