//! Test support: locating the shared fixture folder that sits beside the repository, and
//! listing the files that a write left in a folder.
//!
//! Tests in every handgrad crate read real data (the MNIST test set, numpy pickles) from a
//! folder named `shared/` next to the repository root, as in
//!
//! ```text
//! work/
//!   main/      <- the repository (cargo runs tests with the crate folder as working folder)
//!   shared/    <- found by searching upward
//! ```
//!
//! A test that needs the folder calls [`shared_dir`]; when it returns `None` the test prints
//! a skip line and returns. Setting `HANDGRAD_REQUIRE_SHARED=1` (as CI does) turns the
//! absence into a panic so that no test is skipped silently. This module is meant for tests
//! only and is the one place in this crate that panics on purpose.

use std::env;
use std::path::{Path, PathBuf};

/// Environment variable naming the shared folder explicitly.
pub const SHARED_ENV: &str = "HANDGRAD_SHARED";

/// Environment variable that, when set to `1`, makes a missing shared folder a panic.
pub const REQUIRE_ENV: &str = "HANDGRAD_REQUIRE_SHARED";

/// Returns the sorted names of the entries of `dir`, for tests that check which files a write
/// left behind.
///
/// # Panics
///
/// Panics when `dir` or one of its entries cannot be read.
pub fn file_names(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|error| {
        panic!("cannot list {}: {error}", dir.display());
    });
    let mut names: Vec<String> = entries
        .map(|entry| entry.expect("readable folder entry").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    names
}

/// Returns the shared fixture folder, or `None` when it cannot be found.
///
/// Looks first at `$HANDGRAD_SHARED`, then for a folder `shared/` containing `data/` or
/// `fixtures/` in the current working folder and each of its ancestors (see
/// [`find_shared_from`]).
///
/// # Panics
///
/// Panics when the folder is not found and `HANDGRAD_REQUIRE_SHARED=1`, or when
/// `HANDGRAD_SHARED` names something that is not a folder while the variable is required.
pub fn shared_dir() -> Option<PathBuf> {
    let found = match env::var_os(SHARED_ENV) {
        Some(value) => Some(PathBuf::from(value)).filter(|dir| dir.is_dir()),
        None => env::current_dir().ok().and_then(|start| find_shared_from(&start)),
    };
    if found.is_none() && is_required() {
        panic!(
            "the shared fixture folder is required ({REQUIRE_ENV}=1) but was not found: \
             set {SHARED_ENV} to its path or place it beside the repository as `shared/`"
        );
    }
    found
}

/// Returns `shared_dir()/relative` when the shared folder exists, else `None`.
///
/// # Panics
///
/// As [`shared_dir`], and also when the folder is required but `relative` is missing in it.
pub fn shared_file(relative: &str) -> Option<PathBuf> {
    let path = shared_dir()?.join(relative);
    if path.exists() {
        return Some(path);
    }
    if is_required() {
        panic!("{REQUIRE_ENV}=1 but {} does not exist", path.display());
    }
    None
}

/// Searches `start` and its ancestors for a child folder `shared/` that contains `data/`
/// or `fixtures/`, and returns the first one found.
pub fn find_shared_from(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|candidate| candidate.join("data").is_dir() || candidate.join("fixtures").is_dir())
}

/// Reports whether `HANDGRAD_REQUIRE_SHARED=1` is set.
pub fn is_required() -> bool {
    env::var(REQUIRE_ENV).is_ok_and(|value| value == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_shared_in_ancestor() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("shared/fixtures")).unwrap();
        let start = root.path().join("repo/crates/data");
        std::fs::create_dir_all(&start).unwrap();

        assert_eq!(find_shared_from(&start), Some(root.path().join("shared")));
    }

    #[test]
    fn ignores_shared_without_markers() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("shared/other")).unwrap();

        assert_eq!(find_shared_from(root.path()), None);
    }
}
