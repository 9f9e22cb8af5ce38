use clap::Parser;
use server::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    server::serve::init_logging();
    match cli.command {
        Command::Detect(cmd) => server::cli_detect::run(cmd),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                match other {
                    Command::Serve(args) => server::serve::serve(args).await,
                    Command::Keys(cmd) => server::cli::run_keys(cmd).await,
                    Command::Loadtest(args) => server::loadtest::run(args).await,
                    Command::Detect(_) => unreachable!(),
                }
            })
        }
    }
}
