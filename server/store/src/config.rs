//! Where the store lives (`--data` / `--database-url`): the store's own small configuration,
//! flattened into the server's `Config` and into the CLI subcommands that open the store.

use clap::Args;
use std::path::PathBuf;

/// Where the store lives: `--data` / `--database-url`, shared by `pedigree serve` (flattened into
/// [`Config`]) and the CLI subcommands that open the store without serving (`keys`, `probe`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Data directory: SQLite database (unless --database-url), uploads, stored profiles. Created if missing.
    #[arg(long, env = "PEDIGREE_DATA", default_value = "pedigree-data")]
    pub data: PathBuf,

    /// PostgreSQL URL for the store, e.g. postgres://user:password@host:5432/pedigree or
    /// postgres:///pedigree?host=/run/postgresql (unix socket). Unset: the embedded SQLite database
    /// under --data. Uploads and profile files stay under --data either way.
    #[arg(long, env = "PEDIGREE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<DatabaseUrl>,
}

impl StoreArgs {
    /// The embedded SQLite database's file under `--data`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data.join("pedigree.sqlite")
    }

    /// Open the store these options select ([`super::open`]); the error names the store
    /// (password redacted). Used by `serve` and by the CLI subcommands.
    pub async fn open(&self) -> Result<std::sync::Arc<dyn super::Store>, super::StoreError> {
        let what = super::describe(self);
        let store = super::open(self)
            .await
            .map_err(|e| super::StoreError::Config(format!("opening the store ({what}): {e}")))?;
        tracing::info!(store = %what, "store opened");
        Ok(store)
    }
}

/// A database URL. It may hold a password, so `Debug` and `Display` show it redacted
/// ([`DatabaseUrl::redacted`]); only [`DatabaseUrl::expose`] gives the URL itself (to connect).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password (for connecting only: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `postgres://` or `postgresql://` (case-insensitive scheme).
    pub fn is_postgres(&self) -> bool {
        let s = self.0.trim_start().to_ascii_lowercase();
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// The URL with the password of its user-info and of any `password` / `sslpassword` query
    /// parameter replaced by `***`. Something that does not look like a URL is hidden entirely.
    pub fn redacted(&self) -> String {
        let s = self.0.trim();
        let Some(i) = s.find("://") else { return "<database URL hidden>".to_string() };
        let (scheme, rest) = (&s[..i + 3], &s[i + 3..]);
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(auth_end);
        let authority = match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.find(':') {
                    Some(c) => format!("{}:***{host}", &userinfo[..c]),
                    None => authority.to_string(),
                }
            }
            None => authority.to_string(),
        };
        let (path_query, fragment) = match tail.find('#') {
            Some(h) => tail.split_at(h),
            None => (tail, ""),
        };
        let path_query = match path_query.split_once('?') {
            Some((path, query)) => {
                let params: Vec<String> = query
                    .split('&')
                    .map(|kv| match kv.split_once('=') {
                        Some((k, _))
                            if k.eq_ignore_ascii_case("password")
                                || k.eq_ignore_ascii_case("sslpassword") =>
                        {
                            format!("{k}=***")
                        }
                        _ => kv.to_string(),
                    })
                    .collect();
                format!("{path}?{}", params.join("&"))
            }
            None => path_query.to_string(),
        };
        format!("{scheme}{authority}{path_query}{fragment}")
    }
}

/// Never fails: an unsupported URL is refused by `store::open`, whose message shows it redacted
/// (a clap parse error would print the value, password included).
impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(DatabaseUrl(s.to_string()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}
