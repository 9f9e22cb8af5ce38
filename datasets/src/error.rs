//! The crate's single error type.
//!
//! Every variant carries the path it concerns: a corpus reader is usually run over many files
//! (a FastChat directory, a bench dir), and an error that does not say *which* file is useless.

use std::fmt;
use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading corpora, bench directories or computing metrics.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or read (not found, permission, truncated gzip, …).
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// One record (line, array element or CSV row) is malformed. Readers yield this for the bad
    /// record and then carry on with the next one, so the caller decides whether to stop or skip.
    /// `field` is `None` when the record is not even valid JSON/UTF-8.
    #[error("{}", fmt_parse(path, *line, field.as_deref(), message))]
    Parse { path: PathBuf, line: u64, field: Option<String>, message: String },

    /// A CSV column named on the command line is not in the header.
    #[error("{}: no column {column:?} (available columns: {})", path.display(), fmt_list(available))]
    MissingColumn { path: PathBuf, column: String, available: Vec<String> },

    /// A format name given on the command line is not one we know.
    #[error("unknown format {name:?} (expected one of: jsonl, alpaca-eval, fastchat, sharegpt, openai-chat, csv:COLUMN[:PROMPT_COLUMN], bench)")]
    UnknownFormat { name: String },

    /// `detect_format` could not tell what the file is; the message says what it saw.
    #[error("{}: cannot detect the format: {message}", path.display())]
    Detect { path: PathBuf, message: String },

    /// A bench directory is inconsistent (unknown model, overlapping splits, bad manifest).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

fn fmt_parse(path: &std::path::Path, line: u64, field: Option<&str>, message: &str) -> String {
    match field {
        Some(f) => format!("{}:{line}: field {f:?}: {message}", path.display()),
        None => format!("{}:{line}: {message}", path.display()),
    }
}

fn fmt_list(items: &[String]) -> String {
    struct L<'a>(&'a [String]);
    impl fmt::Display for L<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, s) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{s:?}")?;
            }
            Ok(())
        }
    }
    L(items).to_string()
}

impl DatasetError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DatasetError::Io { path: path.into(), source }
    }

    pub(crate) fn parse(
        path: impl Into<PathBuf>,
        line: u64,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        DatasetError::Parse {
            path: path.into(),
            line,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// Line (1-based) of the offending record, when the error is about one record.
    pub fn line(&self) -> Option<u64> {
        match self {
            DatasetError::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// True for errors that concern a single record; the reader can go on after them.
    /// Callers that want "skip bad lines" semantics can filter on this.
    pub fn is_record_error(&self) -> bool {
        matches!(self, DatasetError::Parse { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_names_file_line_and_field() {
        let e = DatasetError::parse("corpus.jsonl", 17, Some("text"), "expected a string");
        assert_eq!(e.to_string(), r#"corpus.jsonl:17: field "text": expected a string"#);
        let e = DatasetError::parse("corpus.jsonl", 3, None, "invalid JSON");
        assert_eq!(e.to_string(), "corpus.jsonl:3: invalid JSON");
        assert_eq!(e.line(), Some(3));
        assert!(e.is_record_error());
    }

    #[test]
    fn missing_column_lists_available() {
        let e = DatasetError::MissingColumn {
            path: "a.csv".into(),
            column: "body".into(),
            available: vec!["id".into(), "text".into()],
        };
        assert_eq!(e.to_string(), r#"a.csv: no column "body" (available columns: "id", "text")"#);
    }
}
