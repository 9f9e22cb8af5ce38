//! `pedigree audit`: placeholder, being written.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Profile file (default: the built-in profile).
    #[arg(long, env = "PEDIGREE_PROFILE")]
    pub profile: Option<PathBuf>,
    /// The corpus to audit (any format the datasets crate reads).
    pub corpus: PathBuf,
}

pub fn run(a: AuditArgs) -> anyhow::Result<()> {
    let _ = a;
    anyhow::bail!("audit is not implemented yet")
}
