//! Weights from the Hugging Face Hub: `hf://<org>/<repo>[@<revision>][/<file>]`
//! resolved to a local file in the standard Hugging Face cache.
//!
//! - [`HubSettings`] says where the cache is and whether the Hub may be asked,
//!   from `[hub]` in the config and the environment variables huggingface_hub
//!   reads (`HF_HUB_CACHE`, `HF_HOME`, `HF_HUB_OFFLINE`, …); [`HubEnv`] is the
//!   one place they are read, so everything else is testable with plain values.
//! - [`resolve`] looks in the cache first ([`cache`]): a file that Python's
//!   huggingface_hub (or an earlier start) cached is used without a request.
//!   Only then, unless offline, hf-hub downloads it into the same cache, with
//!   a progress bar ([`progress`]).
//! - Every failure says what was looked for and how to provide the file
//!   without the Hub.
//!
//! Engine layer: no tch, no HTTP server; it runs at start-up, before any
//! replica loads.

pub mod cache;
mod config_json;
mod download;
pub mod progress;

pub use config_json::{ConfigJsonError, TimmConfig, TimmPretrainedCfg, CONFIG_JSON};

#[cfg(test)]
mod download_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::config::{HubConfig, HubFile};

/// Where Hub files are cached and whether the Hub may be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// The hub cache directory, holding `models--<org>--<repo>/`.
    pub cache_dir: PathBuf,
    /// Never touch the network; a file must already be cached.
    pub offline: bool,
    /// The Hub's base URL; `None` leaves it to hf-hub (`HF_ENDPOINT`, else
    /// `https://huggingface.co`). Tests point it at a local fake Hub.
    pub endpoint: Option<String>,
}

/// The environment variables that steer the Hugging Face cache, as read
/// once by [`HubEnv::from_process`]. Unset and empty are the same.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubEnv {
    /// `HF_HUB_CACHE`: the hub cache itself.
    pub hf_hub_cache: Option<PathBuf>,
    /// `HUGGINGFACE_HUB_CACHE`: its older name.
    pub huggingface_hub_cache: Option<PathBuf>,
    /// `HF_HOME`: the cache is `$HF_HOME/hub`.
    pub hf_home: Option<PathBuf>,
    /// `XDG_CACHE_HOME`: `HF_HOME` defaults to `$XDG_CACHE_HOME/huggingface`.
    pub xdg_cache_home: Option<PathBuf>,
    /// `HOME`: otherwise `~/.cache/huggingface`.
    pub home: Option<PathBuf>,
    /// `HF_HUB_OFFLINE`: `1`, `true`, `yes` or `on` (any case) forbids requests.
    pub hf_hub_offline: Option<String>,
}

impl HubEnv {
    /// Reads the variables from this process's environment: the only place
    /// the hub module looks at it (tests build a `HubEnv` by hand instead,
    /// since the environment is shared by every test thread).
    pub fn from_process() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Self {
            hf_hub_cache: path("HF_HUB_CACHE"),
            huggingface_hub_cache: path("HUGGINGFACE_HUB_CACHE"),
            hf_home: path("HF_HOME"),
            xdg_cache_home: path("XDG_CACHE_HOME"),
            home: path("HOME"),
            hf_hub_offline: std::env::var("HF_HUB_OFFLINE").ok(),
        }
    }

    /// The hub cache in huggingface_hub's order of precedence.
    fn cache_dir(&self) -> PathBuf {
        if let Some(cache) = self
            .hf_hub_cache
            .as_ref()
            .or(self.huggingface_hub_cache.as_ref())
        {
            return cache.clone();
        }
        let hf_home = match (&self.hf_home, &self.xdg_cache_home, &self.home) {
            (Some(hf_home), _, _) => hf_home.clone(),
            (None, Some(xdg), _) => xdg.join("huggingface"),
            (None, None, Some(home)) => home.join(".cache/huggingface"),
            // No HOME at all (a bare container): hf-hub falls back to /tmp too.
            (None, None, None) => PathBuf::from("/tmp/.cache/huggingface"),
        };
        hf_home.join("hub")
    }

    /// huggingface_hub's truthy values for `HF_HUB_OFFLINE`.
    fn offline(&self) -> bool {
        self.hf_hub_offline.as_deref().is_some_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
    }
}

impl HubSettings {
    /// `[hub]` over the environment: a configured `cache_dir` wins over the
    /// variables; offline is on when either the config or `HF_HUB_OFFLINE`
    /// says so (an operator's "no network" must not be undone by a file).
    pub fn new(config: &HubConfig, env: &HubEnv) -> Self {
        let cache_dir = if config.cache_dir.as_os_str().is_empty() {
            env.cache_dir()
        } else {
            config.cache_dir.clone()
        };
        Self {
            cache_dir,
            offline: config.offline || env.offline(),
            endpoint: None,
        }
    }

    /// [`HubSettings::new`] with this process's environment.
    pub fn from_config(config: &HubConfig) -> Self {
        Self::new(config, &HubEnv::from_process())
    }
}

/// Why a Hub file could not be made local.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Offline, and not in the cache.
    #[error(
        "{file} is not in the Hugging Face cache, and offline mode (HF_HUB_OFFLINE or \
         hub.offline) forbids asking the Hub. {}",
        how_to_provide(file, cache_dir)
    )]
    NotCachedOffline {
        /// What was asked for.
        file: HubFile,
        /// The cache that was searched.
        cache_dir: PathBuf,
    },
    /// The Hub could not be reached (DNS, connection, timeout, 5xx), and the
    /// cache does not hold the file.
    #[error(
        "cannot reach the Hugging Face Hub to download {file} ({reason}), and it is not \
         cached. {}",
        how_to_provide(file, cache_dir)
    )]
    Unreachable {
        /// What was asked for.
        file: HubFile,
        /// The cache that was searched.
        cache_dir: PathBuf,
        /// The transport error's root cause, e.g. a failed DNS lookup.
        reason: String,
    },
    /// The Hub answered but would not give the file: no such repo, revision
    /// or file, or it needs a token (`HF_TOKEN`).
    #[error("the Hugging Face Hub did not serve {file}: {reason}")]
    Refused {
        /// What was asked for.
        file: HubFile,
        /// hf-hub's error with its causes.
        reason: String,
    },
}

/// The two ways to serve a Hub file without the Hub, with exact paths.
fn how_to_provide(file: &HubFile, cache_dir: &Path) -> String {
    let basename = file.filename.rsplit('/').next().unwrap_or(&file.filename);
    let revision = if file.revision == HubFile::DEFAULT_REVISION {
        String::new()
    } else {
        format!(" --revision {}", file.revision)
    };
    format!(
        "Looked for {}. To serve it without the Hub, either (a) run `hf download {} {}{revision}` \
         (Python huggingface_hub) where the Hub is reachable and copy the cache it fills to {} \
         (or point hub.cache_dir / HF_HOME at it), or (b) download the file and set \
         `weights = \"/path/to/{basename}\"` in the config.",
        cache::expected_location(cache_dir, file),
        file.repo_id,
        file.filename,
        cache_dir.display(),
    )
}

/// The local path of `file`: from the cache when it is there (no request at
/// all), else downloaded into the cache unless offline.
pub fn resolve(file: &HubFile, settings: &HubSettings) -> Result<PathBuf, HubError> {
    if let Some(path) = cache::cached_path(&settings.cache_dir, file) {
        tracing::info!(%file, path = %path.display(), "weights found in the Hugging Face cache");
        return Ok(path);
    }
    if settings.offline {
        return Err(HubError::NotCachedOffline {
            file: file.clone(),
            cache_dir: settings.cache_dir.clone(),
        });
    }
    tracing::info!(
        %file,
        cache_dir = %settings.cache_dir.display(),
        "weights not cached; downloading from the Hugging Face Hub"
    );
    let path = download::download(file, settings)?;
    tracing::info!(%file, path = %path.display(), "weights downloaded");
    Ok(path)
}
