//! The real binary on PostgreSQL (`--database-url` / `PEDIGREE_DATABASE_URL`), against the
//! throwaway cluster of `common/pg.rs`: CLI keys, suspects, samples, a verdict, what lands in the
//! database, and that the URL's password is never printed. (The kill -9 crash-resume test on
//! PostgreSQL is in crash_resume.rs; the store's own behaviour in `store::conformance`.)

mod common;

use common::proc::{create_key_env, start_with_stderr, BIN};
use common::{pg, sample_text};
use serde_json::json;
use sqlx::Connection;
use std::process::{Command, Stdio};

const PASSWORD: &str = "hunter2-not-to-be-printed";

#[tokio::test]
async fn real_server_on_postgres_end_to_end() {
    let db = pg::fresh_db().await;
    // Trust authentication ignores the password: it is there to check that it is never shown.
    let url = pg::cluster().url_with_password(&db.name, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let env = [("PEDIGREE_DATABASE_URL", url.as_str())];
    let analyst = create_key_env(dir.path(), "analyst", &env);
    let viewer = create_key_env(dir.path(), "viewer", &env);
    // The flag works as well as the environment variable.
    let out = Command::new(BIN)
        .args(["keys", "list", "--database-url", &url, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);

    let log_path = dir.path().join("serve.log");
    let mut srv = start_with_stderr(
        dir.path(),
        &[env[0], ("RUST_LOG", "info")],
        Stdio::from(std::fs::File::create(&log_path).unwrap()),
    );
    let c = reqwest::Client::new();
    let base = srv.base.clone();
    assert_eq!(c.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let r = c
        .post(format!("{base}/v1/suspects"))
        .bearer_auth(&analyst)
        .json(&json!({"name": "rival-pg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let sus = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let samples: Vec<_> =
        (0..30).map(|i| json!({"text": sample_text(2 * i + 1), "source": "crawl"})).collect();
    let r = c
        .post(format!("{base}/v1/suspects/{sus}/samples"))
        .bearer_auth(&analyst)
        .json(&samples)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["added"], 30);
    // Dedup by content hash, as on SQLite.
    let again = json!([{"text": sample_text(1)}, {"text": sample_text(100)}]);
    let r = c
        .post(format!("{base}/v1/suspects/{sus}/samples"))
        .bearer_auth(&analyst)
        .json(&again)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!((v["added"].as_u64(), v["duplicates"].as_u64()), (Some(1), Some(1)), "{v}");

    let r = c
        .get(format!("{base}/v1/suspects/{sus}/verdict?top=3"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["n"], 31);
    assert!(
        v["p_value"].is_number() && v["strength"].is_number() && v["decision"].is_string(),
        "{v}"
    );
    assert!(!v["top_evidence"].as_array().unwrap().is_empty(), "{v}");
    let list: serde_json::Value = c
        .get(format!("{base}/v1/suspects"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let s = &list["suspects"][0];
    assert_eq!((s["id"].as_str(), s["samples"].as_u64()), (Some(sus.as_str()), Some(31)));
    assert!(s["verdict"].is_object(), "the verdict is cached in PostgreSQL: {list}");
    let r = c
        .get(format!("{base}/v1/suspects/{sus}/samples?limit=2&offset=1"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    let page: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        page["samples"][0]["text"],
        sample_text(3),
        "samples page in insertion order: {page}"
    );
    // An encoded NUL in a path or query value is a 422 naming it (PostgreSQL cannot compare with
    // it: a 500 before the check).
    for path in ["/v1/suspects/a%00b", "/v1/suspects?q=%00"] {
        let r = c.get(format!("{base}{path}")).bearer_auth(&viewer).send().await.unwrap();
        assert_eq!(r.status(), 422, "{path}");
        assert!(r.text().await.unwrap().contains("NUL"), "{path}");
    }

    // Graceful shutdown flushes the audit log into PostgreSQL.
    assert!(Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert!(srv.child.wait().unwrap().success());

    // Everything is in the database, nothing in a SQLite file.
    assert!(!dir.path().join("pedigree.sqlite").exists());
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    assert_eq!(count("SELECT COUNT(*) FROM api_keys").fetch_one(&mut conn).await.unwrap(), 2);
    assert_eq!(count("SELECT COUNT(*) FROM samples").fetch_one(&mut conn).await.unwrap(), 31);
    assert_eq!(
        count("SELECT COUNT(*) FROM suspects WHERE verdict IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        1
    );
    let audited = count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'POST /v1/suspects%'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(audited, 3, "suspect creation and two sample uploads audited");
    let migrations = count("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/store/migrations-pg"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "sql"))
        .count();
    assert_eq!(migrations as usize, files, "every PostgreSQL migration applied");
    assert_eq!(
        files, 8,
        "0001 init, 0002 campaigns, 0003 secret hosts + rate ceilings, 0004 served logs, 0005 job leases, 0006 campaign leases + rate slots, 0007 job parts, 0008 profile files"
    );

    // The log says which store it opened, with the password redacted.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("store opened") && log.contains("postgres://postgres:***@localhost/"),
        "{log}"
    );
    assert!(!log.contains(PASSWORD), "the password was logged: {log}");
}

#[test]
fn a_bad_database_url_fails_without_printing_its_password() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("postgres://postgres:{PASSWORD}@localhost/nope?host=/nonexistent-pedigree-dir"),
        format!("mysql://root:{PASSWORD}@localhost/nope"),
    ] {
        let out = Command::new(BIN)
            .args(["keys", "list", "--data"])
            .arg(dir.path())
            .env("PEDIGREE_DATABASE_URL", &url)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}: {stderr}");
        assert!(
            stderr.contains(":***@localhost/nope"),
            "the error names the (redacted) URL: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "the password was printed: {stderr}");
        // `--help` never shows the value of the environment variable.
        let help = Command::new(BIN)
            .args(["serve", "--help"])
            .env("PEDIGREE_DATABASE_URL", &url)
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        assert!(help.contains("--database-url") && !help.contains(PASSWORD), "{help}");
    }
    assert!(!dir.path().join("pedigree.sqlite").exists(), "a bad URL never falls back to SQLite");
}

/// Issue 14's PostgreSQL migration (0003: secret hosts, allowlist rate ceilings) on a database
/// made by the schema before it (0001 + 0002) that already holds a secret and an allowlist
/// entry: both survive, the secret is bound to no host (it must be stored again with `hosts`
/// before use) and the entry has no ceiling; the real binary reads them back.
#[tokio::test]
async fn migration_0003_upgrades_a_database_with_secrets() {
    let db = pg::fresh_db().await;
    let old = tempfile::tempdir().unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/store/migrations-pg");
    for f in ["0001_init.sql", "0002_campaigns.sql"] {
        std::fs::copy(format!("{src}/{f}"), old.path().join(f)).unwrap();
    }
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::migrate::Migrator::new(old.path()).await.unwrap().run(&mut conn).await.unwrap();
    sqlx::query("INSERT INTO secrets (name, value, created_ms) VALUES ('OLD', 'sk-old-1', 1)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO allowlist (entry, note, created_ms) VALUES ('api.example:443', 'n', 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let env = [("PEDIGREE_DATABASE_URL", db.url.as_str())];
    let admin = create_key_env(dir.path(), "admin", &env); // opens the store: migrates
    let hosts: String = sqlx::query_scalar("SELECT hosts FROM secrets WHERE name = 'OLD'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(hosts, "");
    let ceiling: Option<f64> = sqlx::query_scalar(
        "SELECT max_rate_per_sec FROM allowlist WHERE entry = 'api.example:443'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(ceiling, None);
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, 8, "0001–0008: the upgrade applies the later migrations too");

    let srv = start_with_stderr(dir.path(), &env, Stdio::inherit());
    let c = reqwest::Client::new();
    let get = |path: &str| c.get(format!("{}{path}", srv.base)).bearer_auth(&admin).send();
    let secrets: serde_json::Value = get("/v1/secrets").await.unwrap().json().await.unwrap();
    let s = secrets.to_string();
    assert!(s.contains("\"OLD\"") && !s.contains("sk-old-1"), "{s}");
    let allow: serde_json::Value = get("/v1/allowlist").await.unwrap().json().await.unwrap();
    assert!(allow.to_string().contains("api.example:443"), "{allow}");
    // Re-binding the old secret works on the migrated schema.
    let r = c
        .post(format!("{}/v1/secrets", srv.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "OLD", "value": "sk-old-2", "hosts": ["api.example:443"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hosts: String = sqlx::query_scalar("SELECT hosts FROM secrets WHERE name = 'OLD'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(hosts, "api.example:443");
}
