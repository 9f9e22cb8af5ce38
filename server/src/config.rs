//! `pedigree serve` configuration: every flag is also a `PEDIGREE_*` environment variable.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is logged and printed).
    #[arg(long, env = "PEDIGREE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub config: Config,
}

pub use crate::store::{DatabaseUrl, StoreArgs};

#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub store: StoreArgs,

    /// A profile file to use as the default profile instead of the built-in one.
    #[arg(long, env = "PEDIGREE_DEFAULT_PROFILE")]
    pub default_profile: Option<PathBuf>,

    /// Maximum request body size in bytes for JSON routes.
    #[arg(long, env = "PEDIGREE_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Maximum size in bytes of a job upload (streamed to disk, never held in memory).
    #[arg(long, env = "PEDIGREE_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,

    /// Maximum size in bytes of an uploaded profile file.
    #[arg(long, env = "PEDIGREE_MAX_PROFILE_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_profile_bytes: usize,

    /// Maximum number of texts in one score or add-samples request.
    #[arg(long, env = "PEDIGREE_MAX_TEXTS", default_value_t = 256)]
    pub max_texts: usize,

    /// Maximum length of one text (or prompt), in characters.
    #[arg(long, env = "PEDIGREE_MAX_TEXT_CHARS", default_value_t = 100_000)]
    pub max_text_chars: usize,

    /// Longest line of a job upload, in bytes; a longer line is that line's error (it is never
    /// held in memory whole).
    #[arg(long, env = "PEDIGREE_MAX_LINE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_line_bytes: usize,

    /// Admission limit: scoring requests in flight at once; beyond it requests get 429 at once.
    #[arg(long, env = "PEDIGREE_MAX_INFLIGHT", default_value_t = 512)]
    pub max_inflight: usize,

    /// Threads that run detector code at once (default: the number of CPUs).
    #[arg(long, env = "PEDIGREE_CPU_WORKERS")]
    pub cpu_workers: Option<usize>,

    /// Batch jobs that run at once.
    #[arg(long, env = "PEDIGREE_MAX_JOBS", default_value_t = 2)]
    pub max_jobs: usize,

    /// Lines a job scores and commits per transaction.
    #[arg(long, env = "PEDIGREE_JOB_CHUNK", default_value_t = 64)]
    pub job_chunk: usize,

    /// Pause between a job's chunks in milliseconds (leaves CPU to interactive scoring).
    #[arg(long, env = "PEDIGREE_JOB_PAUSE_MS", default_value_t = 0)]
    pub job_pause_ms: u64,

    /// Probe campaigns this replica sends at once (others wait for a free slot here or on
    /// another replica). 1–1000.
    #[arg(long, env = "PEDIGREE_MAX_CAMPAIGNS", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_campaigns: u64,

    /// This replica's name in job and campaign leases. Default: the host name and a hash of the data
    /// directory, stable across restarts, so a restarted replica takes its own jobs back at once.
    /// Replicas must have distinct ids (distinct data directories give them).
    #[arg(long, env = "PEDIGREE_REPLICA_ID")]
    pub replica_id: Option<String>,

    /// How long a job's or campaign's lease lasts unless renewed (renewed every third of it
    /// while it runs): after a replica dies, another resumes its jobs and campaigns this long
    /// after its last renewal. 1000–3600000.
    #[arg(long, env = "PEDIGREE_JOB_LEASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1000..=3_600_000))]
    pub job_lease_ms: u64,

    /// How often an idle replica looks for claimable jobs and campaigns (created on another
    /// replica, or whose lease expired), in milliseconds; those created here start at once.
    /// 50–600000.
    #[arg(long, env = "PEDIGREE_JOB_POLL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub job_poll_ms: u64,

    /// Score and audit jobs over an upload larger than this many bytes are cut into parts of
    /// about this size (at line starts), which any replica claims and runs: one large job is
    /// shared by all replicas. Audits of CSV, JSON-array or sampled input run whole.
    /// 4096–1099511627776 (1 TiB).
    #[arg(long, env = "PEDIGREE_JOB_PART_BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(4096..=1 << 40))]
    pub job_part_bytes: u64,

    /// Where job uploads are streamed (default `DATA/uploads`). Replicas on one PostgreSQL
    /// database must share it (a shared filesystem mounted at the same path on every replica),
    /// so that any replica can resume any job.
    #[arg(long, env = "PEDIGREE_UPLOADS_DIR")]
    pub uploads_dir: Option<PathBuf>,

    /// Seconds a key lookup stays cached (revocations by another process apply within this time).
    #[arg(long, env = "PEDIGREE_KEY_CACHE_SECS", default_value_t = 5)]
    pub key_cache_secs: u64,

    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, env = "PEDIGREE_SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,

    /// Days audit entries are kept (deleted hourly after that); 0 keeps them for ever.
    #[arg(long, env = "PEDIGREE_AUDIT_RETENTION_DAYS", default_value_t = 365)]
    pub audit_retention_days: u64,

    /// Seconds a client has to send a complete request head; also the longest a keep-alive
    /// connection stays open idle between requests (then it is closed).
    #[arg(long, env = "PEDIGREE_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,

    /// Seconds one request may take, body upload included (then 408); 0 disables it.
    #[arg(long, env = "PEDIGREE_REQUEST_TIMEOUT_SECS", default_value_t = 600)]
    pub request_timeout_secs: u64,

    /// Open connections at once; beyond it new connections are closed at once.
    #[arg(long, env = "PEDIGREE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
}

impl Config {
    /// Defaults with the given data directory (tests and embedding).
    /// A default configuration with these store options.
    pub fn with_store(store: StoreArgs) -> Config {
        Config { store: store.clone(), ..Config::with_data(&store.data) }
    }

    pub fn with_data(data: impl Into<PathBuf>) -> Config {
        Config {
            store: StoreArgs { data: data.into(), database_url: None },
            default_profile: None,
            max_body_bytes: 8 * 1024 * 1024,
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            max_profile_bytes: 256 * 1024 * 1024,
            max_texts: 256,
            max_text_chars: 100_000,
            max_line_bytes: 4 * 1024 * 1024,
            max_inflight: 512,
            cpu_workers: None,
            max_jobs: 2,
            job_chunk: 64,
            job_pause_ms: 0,
            max_campaigns: 16,
            replica_id: None,
            job_lease_ms: 30_000,
            job_poll_ms: 1000,
            job_part_bytes: 64 * 1024 * 1024,
            uploads_dir: None,
            key_cache_secs: 5,
            shutdown_grace_secs: 20,
            audit_retention_days: 365,
            header_read_timeout_secs: 10,
            request_timeout_secs: 600,
            max_connections: 1024,
        }
    }

    pub fn cpu_workers(&self) -> usize {
        self.cpu_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
            .max(1)
    }

    /// How a file under the data directory is recorded in the store: relative to the data
    /// directory, so the directory can be moved or named differently on the next start.
    pub fn stored_path(&self, p: &std::path::Path) -> String {
        p.strip_prefix(&self.store.data).unwrap_or(p).to_string_lossy().into_owned()
    }

    /// The file a stored path refers to.
    pub fn resolve(&self, stored: &str) -> PathBuf {
        let p = std::path::Path::new(stored);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.store.data.join(p)
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.store.sqlite_path()
    }
    pub fn uploads_dir(&self) -> PathBuf {
        self.uploads_dir.clone().unwrap_or_else(|| self.store.data.join("uploads"))
    }

    /// Whether uploads may be shared with other replicas (`--uploads-dir` given): then only
    /// old orphans are swept at start-up, never a file another replica may be writing.
    pub fn shared_uploads(&self) -> bool {
        self.uploads_dir.is_some()
    }

    /// This replica's lease owner name (see `--replica-id`).
    pub fn replica_id(&self) -> String {
        if let Some(id) = self.replica_id.as_deref().filter(|s| !s.trim().is_empty()) {
            return id.trim().to_string();
        }
        use sha2::{Digest, Sha256};
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let data =
            std::fs::canonicalize(&self.store.data).unwrap_or_else(|_| self.store.data.clone());
        let hash = Sha256::digest(data.to_string_lossy().as_bytes());
        format!("{host}-{}", &hex::encode(hash)[..8])
    }
    pub fn profiles_dir(&self) -> PathBuf {
        self.store.data.join("profiles")
    }
}

#[cfg(test)]
mod tests {
    use super::{DatabaseUrl, ServeArgs};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, String> {
        let argv = std::iter::once("pedigree").chain(args.iter().copied());
        Cli::try_parse_from(argv).map(|c| c.serve).map_err(|e| e.to_string())
    }

    #[test]
    fn lease_and_poll_intervals_are_range_checked() {
        let ok = parse(&["--job-lease-ms", "1000", "--job-poll-ms", "600000"]).expect("in range");
        assert_eq!((ok.config.job_lease_ms, ok.config.job_poll_ms), (1000, 600_000));
        let d = parse(&[]).expect("defaults");
        assert_eq!((d.config.job_lease_ms, d.config.job_poll_ms), (30_000, 1000));
        assert_eq!(d.config.max_campaigns, 16);
        assert_eq!(d.config.job_part_bytes, 64 << 20);
        assert_eq!(parse(&["--job-part-bytes", "4096"]).unwrap().config.job_part_bytes, 4096);
        // A lease shorter than a second would expire between renewals of a busy replica; one
        // over an hour would leave a dead replica's jobs stuck for that long; a poll under 50 ms
        // is a busy loop on the database.
        for (flag, v) in [
            ("--job-lease-ms", "999"),
            ("--job-lease-ms", "3600001"),
            ("--job-poll-ms", "49"),
            ("--job-poll-ms", "600001"),
            ("--job-poll-ms", "-1"),
            ("--max-campaigns", "0"),
            ("--max-campaigns", "1001"),
            ("--job-part-bytes", "4095"),
            ("--job-part-bytes", "1099511627777"),
        ] {
            let arg = format!("{flag}={v}");
            let e = parse(&[&arg]).err().unwrap_or_else(|| panic!("{arg} accepted"));
            assert!(e.contains(flag) && e.contains(v), "{flag} {v}: {e}");
        }
    }

    #[test]
    fn database_urls_are_redacted() {
        let r = |u: &str| DatabaseUrl::new(u).redacted();
        assert_eq!(
            r("postgres://alice:s3cr%40t@db.example:5432/pedigree"),
            "postgres://alice:***@db.example:5432/pedigree"
        );
        assert_eq!(
            r("postgres://alice@db/p?sslmode=require"),
            "postgres://alice@db/p?sslmode=require"
        );
        assert_eq!(
            r("postgresql://db/p?user=a&password=pw&host=/run/pg"),
            "postgresql://db/p?user=a&password=***&host=/run/pg"
        );
        assert_eq!(r("postgres://a:b@c@host/db#frag"), "postgres://a:***@host/db#frag");
        assert_eq!(r("host=db password=pw"), "<database URL hidden>");
        let u = DatabaseUrl::new("postgres://u:hunter2@h/d");
        assert!(!format!("{u:?} {u}").contains("hunter2"));
        assert_eq!(u.expose(), "postgres://u:hunter2@h/d");
        assert!(u.is_postgres() && DatabaseUrl::new("PostgreSQL://h/d").is_postgres());
        assert!(!DatabaseUrl::new("mysql://h/d").is_postgres());
    }
}
