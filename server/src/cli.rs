//! The `pedigree` command line.

use crate::config::{Config, ServeArgs};
use crate::store::{Role, SqliteStore, Store};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "pedigree", version, about = "Tells an AI API provider which rival models were trained on its model's outputs.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (built-in profile and an embedded SQLite store by default).
    Serve(ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Load-test `POST /v1/score` on loopback and print p50/p99 latency and requests/s.
    Loadtest(crate::loadtest::LoadtestArgs),
    /// Run a probe campaign against a suspect's OpenAI-compatible chat API; prints a JSON summary
    /// alone on the last line of stdout. Re-running the same command resumes it.
    Probe(crate::probe::cli::ProbeArgs),
    /// Serve a benchmark model's recorded answers as a local OpenAI-compatible chat API.
    ReplayServer(crate::probe::cli::ReplayArgs),
    #[command(flatten)]
    Detect(crate::cli_detect::DetectCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it alone on the last line of stdout (it is stored only as a hash).
    Create {
        #[arg(long, env = "PEDIGREE_DATA", default_value = "pedigree-data")]
        data: PathBuf,
        #[arg(long, value_enum)]
        role: Role,
        /// A name to recognise the key by in the audit log.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (ids, names, roles; never the keys).
    List {
        #[arg(long, env = "PEDIGREE_DATA", default_value = "pedigree-data")]
        data: PathBuf,
    },
    /// Revoke a key by id.
    Revoke {
        #[arg(long, env = "PEDIGREE_DATA", default_value = "pedigree-data")]
        data: PathBuf,
        id: String,
    },
}

async fn open_store(data: &std::path::Path) -> anyhow::Result<SqliteStore> {
    std::fs::create_dir_all(data)?;
    Ok(SqliteStore::open(&Config::with_data(data).db_path()).await?)
}

pub async fn run_keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { data, role, name } => {
            let store = open_store(&data).await?;
            let name = name.unwrap_or_else(|| format!("{}-key", role.as_str()));
            let (rec, key) = crate::auth::create_key(&store, &name, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            store.close().await;
            println!("created key {} (name `{}`, role {}); it is shown only once:", rec.id, rec.name, rec.role.as_str());
            println!("{key}");
        }
        KeysCommand::List { data } => {
            let store = open_store(&data).await?;
            for k in store.list_keys().await? {
                let state = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{}", k.id, k.role.as_str(), state, k.name);
            }
            store.close().await;
        }
        KeysCommand::Revoke { data, id } => {
            let store = open_store(&data).await?;
            let ok = store.revoke_key(&id).await?;
            store.close().await;
            if !ok {
                anyhow::bail!("no active key `{id}`");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
