//! A throwaway PostgreSQL cluster for the tests: one per test binary, started on first use, with a
//! fresh database per test.
//!
//! The cluster lives in a temporary directory (`initdb --auth=trust`) and listens on a unix socket
//! in that directory only (`listen_addresses = ''`): no TCP port is taken. The server is the child
//! of a watchdog shell that blocks reading a pipe whose only writer is the test process: when the
//! test process exits — normally, by a panic or by `kill -9` — the read returns, and the watchdog
//! stops the server (SIGQUIT, immediate shutdown), waits for it and removes the directory. So no
//! server outlives `cargo test`.
//!
//! PostgreSQL refuses to run as root: under uid 0, initdb and the server run as the `postgres`
//! system user (`setpriv`), which owns the temporary directory.
//!
//! The whole life of the cluster is in the watchdog shell ([`WATCHDOG`]): this process only
//! creates the directory, starts the watchdog and waits until the server is ready.
//!
//! Missing binaries FAIL the test (never skip it), naming `scripts/install-postgres.sh`.
//!
//! The server library's unit tests (`store::conformance`) and its integration tests share it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

const INSTALL_HINT: &str = "run scripts/install-postgres.sh (installs Debian's postgresql package)";

/// The running cluster of this test process.
pub struct Cluster {
    /// Directory of the unix socket (`.s.PGSQL.5432`).
    pub socket_dir: PathBuf,
    /// The temporary directory (data, socket, server log); removed by the watchdog.
    pub dir: PathBuf,
    pub log: PathBuf,
    /// Holding the watchdog's stdin open keeps the cluster up; it is closed when the process exits.
    _watchdog: Mutex<Child>,
}

/// One fresh database of the cluster.
pub struct PgDb {
    pub name: String,
    /// `postgres://postgres@localhost/NAME?host=SOCKET_DIR`
    pub url: String,
}

impl Cluster {
    /// URL of database `db` (as the superuser `postgres`; trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@localhost/{db}?host={}", self.socket_dir.display())
    }

    /// The same URL with a (ignored, under trust authentication) password, to check that the
    /// password is never printed.
    pub fn url_with_password(&self, db: &str, password: &str) -> String {
        format!("postgres://postgres:{password}@localhost/{db}?host={}", self.socket_dir.display())
    }

    /// The tail of the server log (for failure messages).
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

/// The cluster of this test process, started on first use (panics with an install hint if the
/// PostgreSQL server binaries are missing).
pub fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        start().unwrap_or_else(|e| panic!("starting a throwaway PostgreSQL cluster: {e}"))
    })
}

/// A new, empty database in the cluster.
pub async fn fresh_db() -> PgDb {
    use sqlx::Connection;
    static N: AtomicUsize = AtomicUsize::new(0);
    let c = tokio::task::spawn_blocking(cluster)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let name = format!("t{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let mut admin = sqlx::PgConnection::connect(&c.url("postgres"))
        .await
        .unwrap_or_else(|e| panic!("connecting to the test cluster: {e}\n{}", c.log_tail()));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let _ = admin.close().await;
    PgDb { url: c.url(&name), name }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false)
}

/// `initdb` and `postgres`: on PATH, else the newest `/usr/lib/postgresql/*/bin` (Debian's
/// layout, which is not on PATH).
fn find_bins() -> Result<(PathBuf, PathBuf), String> {
    let on_path = |name: &str| {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
    };
    if let (Some(i), Some(p)) = (on_path("initdb"), on_path("postgres")) {
        return Ok((i, p));
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, b)| b.join("initdb").is_file() && b.join("postgres").is_file())
        .collect();
    dirs.sort();
    match dirs.pop() {
        Some((_, b)) => Ok((b.join("initdb"), b.join("postgres"))),
        None => Err(format!(
            "the PostgreSQL server binaries (initdb, postgres) are not installed: neither on PATH nor in \
             /usr/lib/postgresql/*/bin. The PostgreSQL store tests need a real server: {INSTALL_HINT}"
        )),
    }
}

/// The watchdog: a shell that owns the cluster's whole life, so that nothing of it outlives the
/// test process, even one killed with -9 halfway through `initdb`. It initialises the cluster,
/// runs the server as its child (a background job: stdin is /dev/null, so the server never holds
/// the pipe), then blocks reading its stdin, a pipe whose only writer is the test process. EOF
/// means the test process is gone: it stops the server (SIGQUIT: immediate shutdown), waits for
/// it and removes the directory. Linux only (`/proc`, `setpriv`, `env --default-signal`).
const WATCHDOG: &str = r#"
trap '' INT HUP
as_owner() { if [ -n "$PG_AS_POSTGRES" ]; then setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; else "$@"; fi; }
init() {
  as_owner "$PG_INITDB" -D "$PG_DIR/data" --auth=trust -U postgres -E UTF8 --locale=C --no-sync --no-instructions "$@" \
    >>"$PG_DIR/initdb.log" 2>&1
}
[ -z "$PG_AS_POSTGRES" ] || chown -R postgres: "$PG_DIR"
# ICU en-US as the databases' default collation when this PostgreSQL has it, so that the tests
# notice an ORDER BY that depends on the locale (the schema pins "C" where it sorts).
if { init --locale-provider=icu --icu-locale=en-US || { rm -rf "$PG_DIR/data"; init; }; } && cat >>"$PG_DIR/data/postgresql.conf" <<EOF
# pedigree tests: a unix socket only, no durability needed
listen_addresses = ''
unix_socket_directories = '$PG_DIR/sock'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 300
shared_buffers = 32MB
EOF
then
  # A simple command (not a function) in the background, so that $! is the server's own pid
  # (env and setpriv exec). A background job starts with SIGQUIT ignored; `env --default-signal`
  # undoes that, so a SIGQUIT that comes before the server has set its handler still ends it.
  if [ -n "$PG_AS_POSTGRES" ]; then
    env --default-signal=QUIT setpriv --reuid=postgres --regid=postgres --init-groups -- \
      "$PG_POSTGRES" -D "$PG_DIR/data" >>"$PG_DIR/postgres.log" 2>&1 </dev/null &
  else
    env --default-signal=QUIT "$PG_POSTGRES" -D "$PG_DIR/data" >>"$PG_DIR/postgres.log" 2>&1 </dev/null &
  fi
  pg=$!
  read -r _
  # Until it is gone: SIGQUIT (immediate shutdown), repeated because one sent between the fork
  # and the exec of env is ignored; SIGKILL after 10 s.
  state() { s=$(cat "/proc/$pg/stat" 2>/dev/null) || { echo X; return; }; s=${s##*) }; echo "${s%% *}"; }
  n=0
  while :; do
    case "$(state)" in X|Z) break ;; esac
    if [ "$n" -lt 100 ]; then kill -QUIT "$pg" 2>/dev/null; else kill -KILL "$pg" 2>/dev/null; fi
    n=$((n + 1))
    sleep 0.1
  done
  wait "$pg"
else
  : >"$PG_DIR/initdb.failed"
  read -r _
fi
rm -rf "$PG_DIR"
"#;

fn start() -> Result<Cluster, String> {
    let (initdb, postgres) = find_bins()?;
    let root = is_root();
    if root
        && !Command::new("id")
            .args(["-u", "postgres"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        return Err(format!(
            "running as root and there is no `postgres` user to run the server as: {INSTALL_HINT}"
        ));
    }
    // Unix socket paths are limited to ~107 bytes: keep the directory short.
    let base = std::env::temp_dir();
    let base = if base.as_os_str().len() <= 40 { base } else { PathBuf::from("/tmp") };
    let dir = tempfile::Builder::new()
        .prefix("pedigree-pg-")
        .tempdir_in(&base)
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    let (data, socket_dir, log) = (dir.join("data"), dir.join("sock"), dir.join("postgres.log"));
    if let Err(e) = std::fs::create_dir(&socket_dir) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!("{}: {e}", socket_dir.display()));
    }
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .env("PG_DIR", &dir)
        .env("PG_INITDB", &initdb)
        .env("PG_POSTGRES", &postgres)
        .env("PG_AS_POSTGRES", if root { "1" } else { "" })
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            let _ = std::fs::remove_dir_all(&dir);
            format!("spawning the watchdog shell: {e}")
        })?;
    // Ready when postmaster.pid says so (its 8th line, as `pg_ctl start -w` checks) and the
    // socket exists.
    let t0 = std::time::Instant::now();
    loop {
        let status = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if status.lines().nth(7).is_some_and(|l| l.trim() == "ready")
            && socket_dir.join(".s.PGSQL.5432").exists()
        {
            break;
        }
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let failed = dir.join("initdb.failed").exists()
            || read("postgres.log").contains("FATAL")
            || watchdog.try_wait().ok().flatten().is_some();
        if failed || t0.elapsed() > std::time::Duration::from_secs(120) {
            let why = format!(
                "the throwaway PostgreSQL cluster did not start:\n{}{}",
                read("initdb.log"),
                read("postgres.log")
            );
            drop(watchdog.stdin.take()); // stops the server (if any) and removes the directory
            let _ = watchdog.wait();
            return Err(why);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(Cluster { socket_dir, dir, log, _watchdog: Mutex::new(watchdog) })
}
