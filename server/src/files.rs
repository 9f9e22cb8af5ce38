//! Files that hold users' data are created owner-only (`0600`): job uploads here, the SQLite
//! database and its `-wal` / `-shm` files in the store crate (`store::sqlite`).

use std::path::Path;

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
