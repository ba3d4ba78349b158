//! Finding and opening libonnxruntime, once per process.
//!
//! The library is opened at run time (ort's `load-dynamic`), so a machine
//! without it still serves libtorch models; only a model configured for this
//! engine needs it, and then a missing or too-old library is one clear
//! start-up error that names every place looked in, never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::environment::Environment;

/// The library file's name on this platform (`libonnxruntime.so`).
const LIBRARY_NAME: &str = "libonnxruntime.so";

/// Where the build found the `onnxruntime` wheel's library (build.rs).
const BUILD_TIME_LIBRARY: Option<&str> = option_env!("SERESNEXT_ORT_DYLIB");

/// The process's ONNX Runtime environment, or why there is none. Kept once
/// made: ort allows one environment per process.
static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

/// Why ONNX Runtime could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot load ONNX Runtime (libonnxruntime >= 1.22, as in the onnxruntime==1.31.1 wheel): {tried}. \
     Install the wheel (make venv), or name the library with [onnxruntime] library in the config or ORT_DYLIB_PATH"
)]
pub struct RuntimeError {
    /// Each place looked in, with what went wrong there.
    tried: String,
}

/// The places to try, in order: the configured path alone when there is one;
/// otherwise `ORT_DYLIB_PATH`, a copy beside the executable (`lib/` or next to
/// it, as the container and the GPU bundle ship it), the wheel found at build
/// time, and last the system loader's search path.
pub fn candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    if let Some(path) = configured {
        return vec![path.to_owned()];
    }
    let mut paths = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|path| !path.is_empty()) {
        paths.push(PathBuf::from(path));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        paths.push(dir.join("lib").join(LIBRARY_NAME));
        paths.push(dir.join(LIBRARY_NAME));
    }
    if let Some(path) = BUILD_TIME_LIBRARY {
        paths.push(PathBuf::from(path));
    }
    paths.push(PathBuf::from(LIBRARY_NAME));
    paths
}

/// The process's environment, opening the library on first use. Failures are
/// not remembered, so a later call (say, with a corrected path) tries again.
pub fn environment(configured: Option<&Path>) -> Result<Environment, RuntimeError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = slot.as_ref() {
        return Ok(environment.clone());
    }
    let mut tried = Vec::new();
    for path in candidates(configured) {
        // A bare name goes to the system loader; a path must exist, or
        // ort would look for it beside the executable instead.
        let bare = path.components().count() == 1;
        if !bare && !path.exists() {
            tried.push(format!("{} (not found)", path.display()));
            continue;
        }
        match ort::init_from(&path) {
            Ok(builder) => {
                let environment = builder
                    .with_name("seresnext-serve")
                    .with_telemetry(false)
                    .build()
                    .map_err(|error| RuntimeError {
                        tried: format!("{}: {error}", path.display()),
                    })?;
                tracing::info!(library = %path.display(), "ONNX Runtime loaded");
                *slot = Some(environment.clone());
                return Ok(environment);
            }
            Err(error) => tried.push(error.to_string()),
        }
    }
    Err(RuntimeError {
        tried: tried.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_path_is_the_only_candidate() {
        let path = Path::new("/opt/ort/libonnxruntime.so.1.31.1");
        assert_eq!(candidates(Some(path)), [path.to_owned()]);
    }

    #[test]
    fn without_one_the_system_search_path_comes_last() {
        let paths = candidates(None);
        assert_eq!(paths.last(), Some(&PathBuf::from(LIBRARY_NAME)));
        let beside = std::env::current_exe()
            .expect("exe")
            .parent()
            .expect("dir")
            .join("lib")
            .join(LIBRARY_NAME);
        assert!(paths.contains(&beside), "{paths:?}");
    }
}
