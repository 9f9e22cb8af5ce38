//! Detection subcommands of the `pedigree` CLI: `profile build`, `score`, `verdict`, `bench`, `audit`.
//! (Owned by the detection engineer; `main.rs` flattens [`DetectCommand`] into the CLI.)

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Placeholder while the detection commands are being written.
    #[command(hide = true)]
    DetectPlaceholder,
}

pub fn run(cmd: DetectCommand) -> anyhow::Result<()> {
    match cmd {
        DetectCommand::DetectPlaceholder => Ok(()),
    }
}
