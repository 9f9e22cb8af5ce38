//! The bench directory: `manifest.json` (models, their provenance labels, the prompt split)
//! plus `samples.jsonl` (one response per line). See `shared/datasets/README.md`.
//!
//! `BenchDir::load` validates up front (unknown models, overlapping splits) so that a method
//! evaluated on a broken bench fails loudly instead of reporting meaningless metrics.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};
use crate::format::Format;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// The provider whose signature is sought (e.g. `"openai"`).
    pub upstream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    pub models: BTreeMap<String, ModelInfo>,
    #[serde(default)]
    pub train_prompts: Vec<String>,
    #[serde(default)]
    pub test_prompts: Vec<String>,
}

/// What the manifest says about one model: a known `family`, or a `suspect` label (hidden from
/// methods; only the metrics may read it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<SuspectInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspectInfo {
    pub kind: SuspectKind,
    #[serde(default)]
    pub teacher: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspectKind {
    /// An unseen version of the upstream itself.
    Upstream,
    /// Trained on a teacher family's outputs.
    Student,
    /// Not trained on the upstream's outputs.
    Independent,
}

/// One line of `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub prompt_id: String,
    pub prompt: String,
    pub response: String,
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

/// A loaded, validated bench directory. Samples are kept in memory (a bench is a few tens of
/// MB; methods iterate over it many times).
#[derive(Debug, Clone)]
pub struct BenchDir {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub samples: Vec<Sample>,
    split_of: HashMap<String, Split>,
    by_model: HashMap<String, Vec<usize>>,
}

impl BenchDir {
    /// Loads `dir/manifest.json` and `dir/samples.jsonl` (or `samples.jsonl.gz`) and validates:
    /// every model has a `family` or a `suspect` label, every sample's model is in the
    /// manifest, and the train/test prompt sets are disjoint. The first malformed sample line
    /// aborts the load with its file:line error.
    pub fn load(dir: impl AsRef<Path>) -> Result<BenchDir> {
        let dir = dir.as_ref();
        let mpath = dir.join("manifest.json");
        let file = std::fs::File::open(&mpath).map_err(|e| DatasetError::io(&mpath, e))?;
        let manifest: Manifest = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| DatasetError::Invalid { path: mpath.clone(), message: e.to_string() })?;
        let invalid = |message: String| DatasetError::Invalid { path: mpath.clone(), message };

        for (name, info) in &manifest.models {
            if info.family.is_none() && info.suspect.is_none() {
                return Err(invalid(format!(
                    "model {name:?} has neither \"family\" nor \"suspect\""
                )));
            }
        }
        let mut split_of = HashMap::new();
        for p in &manifest.train_prompts {
            split_of.insert(p.clone(), Split::Train);
        }
        let mut overlap = BTreeSet::new();
        for p in &manifest.test_prompts {
            if split_of.insert(p.clone(), Split::Test) == Some(Split::Train) {
                overlap.insert(p.as_str());
            }
        }
        if !overlap.is_empty() {
            return Err(invalid(format!(
                "{} prompt(s) are in both train_prompts and test_prompts: {}",
                overlap.len(),
                preview(overlap.iter().copied())
            )));
        }

        let mut spath = dir.join("samples.jsonl");
        if !spath.exists() && dir.join("samples.jsonl.gz").exists() {
            spath = dir.join("samples.jsonl.gz");
        }
        let mut samples = Vec::new();
        let mut unknown: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        for rec in crate::open(&spath, Some(Format::Bench))? {
            let rec = rec?;
            // The bench converter guarantees these fields.
            let model = rec.model.unwrap_or_default();
            if !manifest.models.contains_key(&model) {
                unknown.entry(model.clone()).or_insert((rec.line, 0)).1 += 1;
            }
            samples.push(Sample {
                prompt_id: rec.id.unwrap_or_default(),
                prompt: rec.prompt.unwrap_or_default(),
                response: rec.text,
                model,
            });
        }
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|(m, (line, n))| format!("{m:?} ({n} samples, first at line {line})"))
                .collect();
            return Err(DatasetError::Invalid {
                path: spath,
                message: format!("models not in manifest.json: {}", list.join(", ")),
            });
        }
        let mut by_model: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in samples.iter().enumerate() {
            by_model.entry(s.model.clone()).or_default().push(i);
        }
        Ok(BenchDir { dir: dir.to_path_buf(), manifest, samples, split_of, by_model })
    }

    pub fn upstream(&self) -> &str {
        &self.manifest.upstream
    }

    /// Models with a known `family` (usable for profiles / reference), in name order.
    pub fn known_models(&self) -> Vec<&str> {
        self.manifest
            .models
            .iter()
            .filter(|(_, i)| i.family.is_some())
            .map(|(m, _)| m.as_str())
            .collect()
    }

    /// Known family of `model`, if any.
    pub fn family(&self, model: &str) -> Option<&str> {
        self.manifest.models.get(model)?.family.as_deref()
    }

    /// Suspect models (those with a `suspect` label), in name order.
    pub fn suspects(&self) -> Vec<&str> {
        self.manifest
            .models
            .iter()
            .filter(|(_, i)| i.suspect.is_some())
            .map(|(m, _)| m.as_str())
            .collect()
    }

    /// The hidden label of a suspect — for metrics only, never for a method's decisions.
    pub fn suspect_info(&self, model: &str) -> Option<&SuspectInfo> {
        self.manifest.models.get(model)?.suspect.as_ref()
    }

    /// Suspects of kind `upstream` (unseen versions of the upstream itself).
    pub fn upstream_suspects(&self) -> Vec<&str> {
        self.suspects()
            .into_iter()
            .filter(|m| self.suspect_info(m).is_some_and(|s| s.kind == SuspectKind::Upstream))
            .collect()
    }

    /// Positive suspect: a student whose teacher is the upstream.
    pub fn is_positive(&self, model: &str) -> bool {
        self.suspect_info(model).is_some_and(|s| {
            s.kind == SuspectKind::Student && s.teacher.as_deref() == Some(self.upstream())
        })
    }

    /// Negative suspect: any suspect whose teacher is not the upstream (independents and
    /// students of another teacher).
    pub fn is_negative(&self, model: &str) -> bool {
        self.suspect_info(model).is_some_and(|s| s.teacher.as_deref() != Some(self.upstream()))
    }

    pub fn positives(&self) -> Vec<&str> {
        self.suspects().into_iter().filter(|m| self.is_positive(m)).collect()
    }

    pub fn negatives(&self) -> Vec<&str> {
        self.suspects().into_iter().filter(|m| self.is_negative(m)).collect()
    }

    /// Students of any teacher (for `teacher_correct`).
    pub fn students(&self) -> Vec<&str> {
        self.suspects()
            .into_iter()
            .filter(|m| self.suspect_info(m).is_some_and(|s| s.kind == SuspectKind::Student))
            .collect()
    }

    /// Which split a prompt belongs to (`None` if in neither list).
    pub fn prompt_split(&self, prompt_id: &str) -> Option<Split> {
        self.split_of.get(prompt_id).copied()
    }

    /// Samples of `model` on prompts of `split`, in file order.
    pub fn samples_for(&self, model: &str, split: Split) -> Vec<&Sample> {
        self.by_model
            .get(model)
            .map(|idx| {
                idx.iter()
                    .map(|&i| &self.samples[i])
                    .filter(|s| self.prompt_split(&s.prompt_id) == Some(split))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// All samples of `model`, whatever the split.
    pub fn all_samples_for(&self, model: &str) -> Vec<&Sample> {
        self.by_model
            .get(model)
            .map(|idx| idx.iter().map(|&i| &self.samples[i]).collect())
            .unwrap_or_default()
    }
}

fn preview<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    let mut s = v.iter().take(5).map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ");
    if v.len() > 5 {
        s.push_str(&format!(", … ({} more)", v.len() - 5));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const MANIFEST: &str = r#"{
      "name": "tiny", "upstream": "acme",
      "models": {
        "ref-a":  {"family": "acme"},
        "ref-b":  {"family": "other"},
        "up-2":   {"suspect": {"kind": "upstream", "teacher": "acme"}},
        "stu-1":  {"suspect": {"kind": "student", "teacher": "acme"}},
        "stu-x":  {"suspect": {"kind": "student", "teacher": "other"}},
        "ind-1":  {"suspect": {"kind": "independent", "teacher": null}}
      },
      "train_prompts": ["p1", "p2"],
      "test_prompts": ["p3"]
    }"#;

    fn sample(pid: &str, model: &str) -> String {
        format!(
            "{{\"prompt_id\": \"{pid}\", \"prompt\": \"Q {pid}\", \"response\": \"A by {model}\", \"model\": \"{model}\"}}\n"
        )
    }

    fn make(manifest: &str, samples: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::File::create(d.path().join("manifest.json"))
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        std::fs::File::create(d.path().join("samples.jsonl"))
            .unwrap()
            .write_all(samples.as_bytes())
            .unwrap();
        d
    }

    fn all_samples() -> String {
        let mut s = String::new();
        for m in ["ref-a", "ref-b", "up-2", "stu-1", "stu-x", "ind-1"] {
            for p in ["p1", "p2", "p3"] {
                s.push_str(&sample(p, m));
            }
        }
        s
    }

    #[test]
    fn loads_and_labels() {
        let d = make(MANIFEST, &all_samples());
        let b = BenchDir::load(d.path()).unwrap();
        assert_eq!(b.samples.len(), 18);
        assert_eq!(b.known_models(), vec!["ref-a", "ref-b"]);
        assert_eq!(b.suspects(), vec!["ind-1", "stu-1", "stu-x", "up-2"]);
        assert_eq!(b.positives(), vec!["stu-1"]);
        assert_eq!(b.negatives(), vec!["ind-1", "stu-x"]);
        assert_eq!(b.upstream_suspects(), vec!["up-2"]);
        assert_eq!(b.students(), vec!["stu-1", "stu-x"]);
        assert!(!b.is_positive("up-2") && !b.is_negative("up-2"));
        assert!(!b.is_positive("ref-a") && !b.is_negative("ref-a"));
        assert_eq!(b.family("ref-b"), Some("other"));
        assert_eq!(b.prompt_split("p2"), Some(Split::Train));
        assert_eq!(b.prompt_split("p3"), Some(Split::Test));
        assert_eq!(b.prompt_split("p9"), None);
        let test = b.samples_for("stu-1", Split::Test);
        assert_eq!(test.len(), 1);
        assert_eq!(test[0].response, "A by stu-1");
        assert_eq!(test[0].prompt, "Q p3");
        assert_eq!(b.samples_for("ref-a", Split::Train).len(), 2);
        assert!(b.samples_for("nobody", Split::Train).is_empty());
        assert_eq!(b.all_samples_for("ind-1").len(), 3);
    }

    #[test]
    fn rejects_unknown_model() {
        let mut s = all_samples();
        s.push_str(&sample("p1", "ghost"));
        let d = make(MANIFEST, &s);
        let e = BenchDir::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("\"ghost\" (1 samples, first at line 19)"), "{e}");
    }

    #[test]
    fn rejects_overlapping_splits() {
        let m = MANIFEST.replace(r#"["p3"]"#, r#"["p3", "p1"]"#);
        let d = make(&m, &all_samples());
        let e = BenchDir::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("both train_prompts and test_prompts: \"p1\""), "{e}");
    }

    #[test]
    fn bad_sample_line_names_line_and_field() {
        let s = format!(
            "{}{}",
            sample("p1", "ref-a"),
            r#"{"prompt_id": "p2", "prompt": "Q", "response": 5, "model": "ref-a"}"#
        );
        let d = make(MANIFEST, &s);
        let e = BenchDir::load(d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with(r#"samples.jsonl:2: field "response": expected a string, found a number"#),
            "{e}"
        );
    }

    #[test]
    fn rejects_unlabelled_model() {
        let m = MANIFEST.replace(r#""ref-b":  {"family": "other"}"#, r#""ref-b": {}"#);
        let d = make(&m, &all_samples());
        let e = BenchDir::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("\"ref-b\" has neither"), "{e}");
    }
}
