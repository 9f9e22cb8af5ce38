//! Process logging, shared by the `pedigree` and `pedigree-dev` binaries.

/// Structured logs on stderr: text by default, JSON with `PEDIGREE_LOG_FORMAT=json`;
/// level from `RUST_LOG` (default `info`).
pub fn init() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("PEDIGREE_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Colours only on a terminal: a log file or journald gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = if json { b.json().try_init() } else { b.try_init() };
}
