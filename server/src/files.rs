//! Files that hold secrets or users' data are created owner-only (`0600`): the SQLite database
//! (secrets, key hashes, samples) and its `-wal` / `-shm` files, and job uploads.

use std::path::Path;

/// Create `path` owner-only if it is missing, and tighten it (and its `-wal` / `-shm` files,
/// whose mode SQLite copies from the database file when it creates them) if it exists.
pub fn restrict_sqlite_files(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)?;
        }
        let mut names = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            names.push(p.into());
        }
        for p in names.iter().filter(|p| p.exists()) {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// A new file, owner-only, for writing (job uploads).
pub async fn create_private(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut o = tokio::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    o.mode(0o600);
    o.open(path).await
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn uploads_are_owner_only_and_never_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("u.jsonl");
        drop(super::create_private(&p).await.unwrap());
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        assert!(super::create_private(&p).await.is_err(), "an existing file is not reused");
    }
}
