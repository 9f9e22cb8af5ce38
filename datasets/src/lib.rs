//! Corpus readers, the bench directory format and the bench protocol's metrics for pedigree.
//!
//! * [`open`] / [`detect_format`] stream [`TextRecord`]s out of JSONL, AlpacaEval,
//!   FastChat, ShareGPT, OpenAI chat logs, CSV and bench files (`.gz` too) without loading
//!   them whole; bad records become per-record errors naming file, line and field.
//! * [`bench`] loads and validates a bench directory (`manifest.json` + `samples.jsonl`).
//! * [`metrics`] implements the protocol's metrics (AUROC, TPR@FPR, suspect-level AUROC) and
//!   the comparison against the published baseline.

pub mod bench;
mod error;
mod format;
pub mod metrics;
mod reader;
mod source;

pub use bench::{BenchDir, Manifest, ModelInfo, Sample, Split, SuspectInfo, SuspectKind};
pub use error::{DatasetError, Result};
pub use format::{detect_format, Format};
pub use reader::{open, RecordIter, TextRecord};
