use clap::Parser;
use server::cli::{Cli, Command};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    server::serve::init_logging();
    match cli.command {
        // A closed pipe (`pedigree score … | head`) ends the command quietly, like other filters.
        Command::Detect(cmd) => quiet_broken_pipe(server::cli_detect::run(cmd)),
        Command::Membership(args) => quiet_broken_pipe(server::cli_membership::run(args)),
        Command::ServedLog(args) => quiet_broken_pipe(server::cli_membership::run_served_log(args)),
        other => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(async move {
                match other {
                    Command::Serve(args) => server::serve::serve(args).await,
                    Command::Keys(cmd) => server::cli::run_keys(cmd).await,
                    Command::Loadtest(args) => server::loadtest::run(args).await,
                    Command::Probe(args) => server::probe::cli::run_probe(args).await,
                    Command::ReplayServer(args) => server::probe::cli::run_replay(args).await,
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
