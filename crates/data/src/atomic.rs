//! Atomic file writes: a reader sees either the old file or the complete new one.
//!
//! The bytes go to a temporary file in the destination's folder (so the final rename stays
//! on one file system), which is flushed and synced before it is renamed over the
//! destination. On any error the temporary file is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{DataError, Result};

/// Writes `bytes` to `path` atomically.
///
/// # Errors
///
/// [`DataError::Io`] when the temporary file cannot be created, written, synced or renamed.
///
/// # Example
///
/// ```
/// # fn main() -> handgrad_data::Result<()> {
/// let dir = std::env::temp_dir();
/// handgrad_data::atomic::write_atomic(&dir.join("handgrad-doc-example.txt"), b"hello")?;
/// # Ok(())
/// # }
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| {
        file.write_all(bytes).map_err(|e| DataError::io("write", path, e))
    })
}

/// Writes `path` atomically with a closure that fills the temporary file.
///
/// The file is renamed into place only when `fill` returns `Ok`, so a closure can also
/// reject what it wrote (a checksum that does not match, say) and leave `path` untouched.
///
/// # Errors
///
/// The closure's error, or [`DataError::Io`] when creating, syncing or renaming fails.
pub fn write_atomic_with<T>(path: &Path, fill: impl FnOnce(&mut File) -> Result<T>) -> Result<T> {
    let temp_path = temporary_path(path)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp_path)
        .map_err(|e| DataError::io("create", path, e))?;

    // Errors name the destination: the temporary file is an implementation detail, and it is
    // removed again below.
    let outcome = fill(&mut file).and_then(|value| {
        file.flush().map_err(|e| DataError::io("flush", path, e))?;
        file.sync_all().map_err(|e| DataError::io("sync", path, e))?;
        drop(file);
        fs::rename(&temp_path, path).map_err(|e| DataError::io("replace", path, e))?;
        Ok(value)
    });

    match outcome {
        Ok(value) => {
            sync_parent(path);
            Ok(value)
        }
        Err(error) => {
            // The file may already be gone if the rename itself failed halfway.
            let _ = fs::remove_file(&temp_path);
            Err(error)
        }
    }
}

/// Builds a fresh temporary name beside `path`, unique within and across processes.
fn temporary_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);

    let Some(name) = path.file_name() else {
        let error = io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name");
        return Err(DataError::io("write", path, error));
    };
    let serial = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp_name = format!(".{}.{}.{}.tmp", name.to_string_lossy(), std::process::id(), serial);
    Ok(path.with_file_name(temp_name))
}

/// Syncs the folder so the rename itself survives a crash.
///
/// Best effort: some platforms cannot open a folder for syncing, and the data is already
/// safe in the renamed file.
fn sync_parent(path: &Path) {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::file_names;

    #[test]
    fn write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();

        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(file_names(dir.path()), vec!["out.bin".to_string()]);
    }

    #[test]
    fn failed_fill_keeps_old_file_and_removes_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        write_atomic(&path, b"old").unwrap();

        let result: Result<()> = write_atomic_with(&path, |file| {
            file.write_all(b"partial").unwrap();
            Err(DataError::Network { message: "simulated failure".into() })
        });

        assert!(result.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(file_names(dir.path()), vec!["out.bin".to_string()]);
    }

    #[test]
    fn missing_folder_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent/out.bin");
        let error = write_atomic(&path, b"x").unwrap_err();

        assert!(matches!(error, DataError::Io { action: "create", .. }), "{error}");
        assert!(error.to_string().contains("absent/out.bin"), "{error}");
    }

    #[test]
    fn folder_destination_names_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        let error = write_atomic(&path, b"x").unwrap_err();

        assert!(matches!(error, DataError::Io { action: "replace", .. }), "{error}");
        assert!(error.to_string().contains(&format!("replace {}:", path.display())), "{error}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }
}
