//! The `pedigree` binary: the command-line adapters over the `server` library (HTTP serving,
//! key management, detection, audits, membership tests, probe campaigns). These modules parse
//! flags, call one library or service function and print; `anyhow` lives here and nowhere in
//! the libraries.

mod cli;
mod corpus_audit;
mod detect;
mod membership;
mod probe;
mod serve;

use crate::cli::{Cli, Command};
use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    server::logging::init();
    match cli.command {
        // A closed pipe (`pedigree score … | head`) ends the command quietly, like other filters.
        Command::Detect(cmd) => quiet_broken_pipe(crate::detect::run(cmd)),
        Command::Membership(args) => quiet_broken_pipe(crate::membership::run(args)),
        Command::ServedLog(args) => quiet_broken_pipe(crate::membership::run_served_log(args)),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                match other {
                    Command::Serve(args) => crate::serve::serve(args).await,
                    Command::Keys(cmd) => crate::cli::run_keys(cmd).await,
                    Command::Probe(args) => crate::probe::run_probe(args).await,
                    Command::Detect(_) | Command::Membership(_) | Command::ServedLog(_) => {
                        unreachable!()
                    }
                }
            })
        }
    }
}

/// A closed pipe (`pedigree score … | head`) ends a filter command quietly, like other filters.
fn quiet_broken_pipe(r: anyhow::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(())
        }
        other => other,
    }
}
