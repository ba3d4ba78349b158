//! The one network call: hf-hub downloads a file into the cache.
//!
//! hf-hub writes the same layout as Python's huggingface_hub (blob, snapshot
//! symlink, `refs/<revision>`), so the next start finds the file through
//! [`super::cache::cached_path`] without asking the Hub again. Its blocking
//! client runs the transfer on its own runtime thread, so start-up code may
//! call this from inside the server's tokio runtime.

use std::error::Error;
use std::path::{Path, PathBuf};

use hf_hub::progress::Progress;
use hf_hub::{HFClientBuilder, HFError};

use super::progress::DownloadProgress;
use super::{HubError, HubSettings};
use crate::config::HubFile;

/// Downloads `file` into the settings' cache and returns its snapshot path.
pub(super) fn download(file: &HubFile, settings: &HubSettings) -> Result<PathBuf, HubError> {
    let classify = |error: HFError| classify_error(error, file, &settings.cache_dir);
    let mut builder = HFClientBuilder::new().cache_dir(&settings.cache_dir);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint(endpoint.clone());
    }
    let client = builder.build_sync().map_err(classify)?;
    // `HubFile` parsing guarantees `<org>/<repo>`.
    let (owner, name) = file
        .repo_id
        .split_once('/')
        .unwrap_or(("", file.repo_id.as_str()));
    let label = format!("{}/{}", file.repo_id, file.filename);
    client
        .model(owner, name)
        .download_file()
        .filename(file.filename.clone())
        .revision(file.revision.clone())
        .progress(Progress::new(DownloadProgress::new(label)))
        .send()
        .map_err(classify)
}

/// Transport failures (no DNS, no route, timeouts, the Hub's 5xx) mean "the
/// Hub cannot be reached", which the user fixes by providing the file another
/// way; anything else is the Hub's answer about this repo or file.
fn classify_error(error: HFError, file: &HubFile, cache_dir: &Path) -> HubError {
    let unreachable = match &error {
        HFError::Request { .. } => true,
        HFError::Http { context } => context.status.is_server_error(),
        _ => false,
    };
    if unreachable {
        HubError::Unreachable {
            file: file.clone(),
            cache_dir: cache_dir.to_owned(),
            reason: root_cause(&error),
        }
    } else {
        HubError::Refused {
            file: file.clone(),
            reason: error_chain(&error),
        }
    }
}

/// The innermost cause: for a transport error the only informative part
/// ("failed to lookup address information", "connection refused"), where
/// the outer layers repeat the URL.
fn root_cause(error: &dyn Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// An error and its causes on one line: reqwest's own message ("error
/// sending request") says nothing until its cause ("dns error: …") follows.
fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
