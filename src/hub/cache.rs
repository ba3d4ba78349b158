//! The on-disk layout of the Hugging Face Hub cache, read without the network.
//!
//! Python's huggingface_hub (and hf-hub) store a model repo's files as
//!
//! ```text
//! <cache>/models--<org>--<repo>/
//!     refs/<branch or tag>          one line: the commit it pointed at
//!     blobs/<etag>                  the bytes (the etag is the SHA-256 for LFS files)
//!     snapshots/<commit>/<file>     a symlink into blobs/ (a copy on Windows)
//! ```
//!
//! Reading that layout ourselves lets start-up find a cached file without a
//! round trip to the Hub (hf-hub asks the Hub whether a branch moved before
//! it trusts the cache), so a cached model starts offline and fast.

use std::path::{Path, PathBuf};

use crate::config::HubFile;

/// `<cache>/models--<org>--<repo>`: where everything of one model repo lives.
pub fn repo_dir(cache_dir: &Path, repo_id: &str) -> PathBuf {
    cache_dir.join(format!("models--{}", repo_id.replace('/', "--")))
}

/// The cached copy of `file`, if the cache holds it: the snapshot path (a
/// symlink into `blobs/`) for the commit its revision names. A dangling
/// symlink (an interrupted copy of a cache) counts as not cached.
pub fn cached_path(cache_dir: &Path, file: &HubFile) -> Option<PathBuf> {
    let repo = repo_dir(cache_dir, &file.repo_id);
    let commit = if is_commit_hash(&file.revision) {
        file.revision.clone()
    } else {
        let text = std::fs::read_to_string(repo.join("refs").join(&file.revision)).ok()?;
        text.trim().to_owned()
    };
    if !is_single_path_part(&commit) {
        return None;
    }
    let path = repo.join("snapshots").join(commit).join(&file.filename);
    path.is_file().then_some(path)
}

/// Where `file` would have to be for [`cached_path`] to find it, in words
/// a person can act on.
pub fn expected_location(cache_dir: &Path, file: &HubFile) -> String {
    let repo = repo_dir(cache_dir, &file.repo_id);
    let snapshots = repo.join("snapshots");
    if is_commit_hash(&file.revision) {
        snapshots
            .join(&file.revision)
            .join(&file.filename)
            .display()
            .to_string()
    } else {
        format!(
            "{}, with <commit> written in {}",
            snapshots.join("<commit>").join(&file.filename).display(),
            repo.join("refs").join(&file.revision).display()
        )
    }
}

/// A full 40-hex git commit id, which names a snapshot directly.
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A ref file's content must name one directory under `snapshots/`, never a
/// path that leaves it.
fn is_single_path_part(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\'])
}
