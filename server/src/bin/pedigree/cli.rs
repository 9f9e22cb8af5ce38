//! The `pedigree` command line.

use clap::{Parser, Subcommand};
use server::config::{ServeArgs, StoreArgs};
use server::store::Role;

#[derive(Debug, Parser)]
#[command(
    name = "pedigree",
    version,
    about = "Tells an AI API provider which rival models were trained on its model's outputs."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (built-in profile and an embedded SQLite store by default; PostgreSQL
    /// with --database-url).
    Serve(ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run a probe campaign against a suspect's OpenAI-compatible chat API; prints a JSON summary
    /// alone on the last line of stdout. Re-running the same command resumes it.
    Probe(crate::probe::ProbeArgs),
    /// The served-output membership test: did the suspect train on the answers we served?
    /// Prints the JSON report alone on the last line of stdout.
    Membership(crate::membership::MembershipArgs),
    /// Summarise a served log per account (answers, distinct prompts, time span) as JSON lines.
    ServedLog(crate::membership::ServedLogArgs),
    #[command(flatten)]
    Detect(crate::detect::DetectCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints it alone on the last line of stdout (it is stored only as a hash).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long, value_enum)]
        role: Role,
        /// A name to recognise the key by in the audit log.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (ids, names, roles; never the keys).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        id: String,
    },
}

pub async fn run_keys(cmd: KeysCommand) -> anyhow::Result<()> {
    match cmd {
        KeysCommand::Create { store: args, role, name } => {
            let store = args.open().await?;
            let name = name.unwrap_or_else(|| format!("{}-key", role.as_str()));
            let (rec, key) = server::auth::create_key(store.as_ref(), &name, role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            store.close().await?;
            println!(
                "created key {} (name `{}`, role {}); it is shown only once:",
                rec.id,
                rec.name,
                rec.role.as_str()
            );
            println!("{key}");
        }
        KeysCommand::List { store: args } => {
            let store = args.open().await?;
            for k in store.list_keys().await? {
                let state = if k.revoked_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{}", k.id, k.role.as_str(), state, k.name);
            }
            store.close().await?;
        }
        KeysCommand::Revoke { store: args, id } => {
            let store = args.open().await?;
            let ok = store.revoke_key(&id).await?;
            store.close().await?;
            if !ok {
                anyhow::bail!("no active key `{id}`");
            }
            println!("revoked {id}");
        }
    }
    Ok(())
}
