//! `pedigree-dev`: the project's dev-only tools, outside the production binary.
//!
//! - `pedigree-dev replay-server`: replay recorded answers as an OpenAI-compatible endpoint;
//! - `pedigree-dev loadtest`: single-text `POST /v1/score` load at N connections (loopback only);
//! - `pedigree-dev replicas`: score load and job throughput through 1 and N replicas on one
//!   throwaway PostgreSQL.

mod loadtest;
mod replay;
mod replicas;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "pedigree-dev", version, about = "pedigree's dev-only tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load-test `POST /v1/score` (an in-process server by default).
    Loadtest(loadtest::LoadtestArgs),
    /// Serve a model's recorded answers as a local OpenAI-compatible chat API.
    ReplayServer(replay::ReplayArgs),
    /// Score load and job throughput through 1 and N replicas on one throwaway PostgreSQL.
    Replicas(replicas::ReplicasArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    server::logging::init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Loadtest(args) => loadtest::run(args).await,
            Command::ReplayServer(args) => replay::run(args).await,
            Command::Replicas(args) => replicas::run(args).await,
        }
    })
}
