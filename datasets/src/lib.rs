//! Corpus readers, the bench directory format and the bench protocol's metrics for pedigree.
//!
//! * [`open`] / [`detect_format`] stream [`TextRecord`]s out of JSONL, AlpacaEval,
//!   FastChat, ShareGPT, OpenAI chat logs, CSV and bench files (`.gz` too) without loading
//!   them whole; bad records become per-record errors naming file, line and field.
//! * [`bench`](mod@bench) loads and validates a bench directory (`manifest.json` + `samples.jsonl`).
//! * [`served`] reads served logs and answer files (any format above with a prompt) for the
//!   membership test: prompt matching, account filter, per-account summary.
//! * [`metrics`] implements the protocol's metrics (AUROC, TPR@FPR, suspect-level AUROC) and
//!   the comparison against the published baseline.
//!
//! ```no_run
//! use std::path::Path;
//! // Detect the format, stream records, skip (but report) bad ones.
//! let mut records = datasets::open(Path::new("outputs.jsonl.gz"), None)?;
//! let total = records.total_bytes();
//! for rec in records.by_ref() {
//!     match rec {
//!         Ok(r) => println!("{:?} {}", r.model, r.text.len()),
//!         Err(e) if e.is_record_error() => eprintln!("skipping: {e}"),
//!         Err(e) => return Err(e),
//!     }
//! }
//! eprintln!("read {} of {:?} bytes", records.bytes_read(), total);
//!
//! // Bench protocol.
//! let bench = datasets::BenchDir::load("../shared/datasets/alpaca-eval-dev")?;
//! for m in bench.suspects() {
//!     let test = bench.samples_for(m, datasets::Split::Test);
//!     println!("{m}: {} test responses, positive={}", test.len(), bench.is_positive(m));
//! }
//! let auc = datasets::metrics::auroc(&[0.9, 0.8], &[0.1, 0.85]);
//! assert_eq!(auc, 0.75);
//! # Ok::<(), datasets::DatasetError>(())
//! ```

pub mod bench;
mod error;
mod format;
pub mod labelled;
pub mod metrics;
mod reader;
pub mod served;
mod source;

pub use bench::{BenchDir, Manifest, ModelInfo, Sample, Split, SuspectInfo, SuspectKind};
pub use error::{DatasetError, Result};
pub use format::{detect_format, Format};
pub use labelled::{assign_split, read_labelled, LabelledAnswer};
pub use reader::{open, open_part, splits_at_lines, RecordIter, TextRecord};
pub use served::{normalize_prompt, read_answers, summarize, AccountSummary, ServedAnswer};
