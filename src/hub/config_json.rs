//! A timm Hub repo's `config.json`: the architecture, classes and
//! `pretrained_cfg` a checkpoint was saved with (what `timm.models.
//! push_to_hf_hub` writes beside `model.safetensors`).
//!
//! Only the keys the server uses are read; the rest are ignored, since timm
//! adds keys between versions. Values are returned as written: which one
//! wins over the `[[models]]` entry, and whether it is in range, is the
//! caller's business.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{resolve, HubSettings};
use crate::config::HubFile;

/// The file's name, beside the weights locally and in a Hub repo.
pub const CONFIG_JSON: &str = "config.json";

/// The keys of `config.json` a served model takes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TimmConfig {
    /// timm's architecture name, e.g. `seresnext50_32x4d`.
    pub architecture: Option<String>,
    pub num_classes: Option<usize>,
    /// One name per class, in class order.
    pub label_names: Option<Vec<String>>,
    #[serde(default)]
    pub pretrained_cfg: TimmPretrainedCfg,
}

/// `pretrained_cfg`: the eval transform the weights expect.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TimmPretrainedCfg {
    /// `[channels, height, width]`.
    pub input_size: Option<[u32; 3]>,
    pub crop_pct: Option<f64>,
    pub crop_mode: Option<String>,
    pub interpolation: Option<String>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
}

/// Why a `config.json` that is there could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ConfigJsonError {
    pub path: PathBuf,
    pub reason: String,
}

impl TimmConfig {
    /// Parses the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigJsonError> {
        let error = |reason: String| ConfigJsonError {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(e.to_string()))
    }

    /// The `config.json` beside a local checkpoint, if there is one.
    pub fn beside(weights: &Path) -> Result<Option<Self>, ConfigJsonError> {
        let path = weights.with_file_name(CONFIG_JSON);
        if path.is_file() {
            Self::read(&path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The `config.json` of the Hub repo (and revision) `weights` came from:
    /// from the cache, or downloaded with the weights. A repo without one (or
    /// an offline cache that lacks it) gives `None`, as for a local file.
    pub fn of_hub_repo(
        weights: &HubFile,
        settings: &HubSettings,
    ) -> Result<Option<Self>, ConfigJsonError> {
        let file = HubFile {
            filename: CONFIG_JSON.to_owned(),
            ..weights.clone()
        };
        match resolve(&file, settings) {
            Ok(path) => Self::read(&path).map(Some),
            Err(error) => {
                tracing::warn!(%file, %error, "no config.json for these weights; the entry and the architecture's defaults apply");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{python_style_cache, settings, REPO};
    use super::*;

    const PETS: &str = r#"{
        "architecture": "seresnext50_32x4d",
        "num_classes": 3,
        "num_features": 2048,
        "label_names": ["cat", "dog", "rabbit"],
        "pretrained_cfg": {
            "tag": "pets",
            "input_size": [3, 288, 288],
            "crop_pct": 1.0,
            "crop_mode": "squash",
            "interpolation": "bilinear",
            "mean": [0.5, 0.5, 0.5],
            "std": [0.25, 0.25, 0.25],
            "num_classes": 3
        }
    }"#;

    fn pets() -> TimmConfig {
        TimmConfig {
            architecture: Some("seresnext50_32x4d".into()),
            num_classes: Some(3),
            label_names: Some(vec!["cat".into(), "dog".into(), "rabbit".into()]),
            pretrained_cfg: TimmPretrainedCfg {
                input_size: Some([3, 288, 288]),
                crop_pct: Some(1.0),
                crop_mode: Some("squash".into()),
                interpolation: Some("bilinear".into()),
                mean: Some([0.5; 3]),
                std: Some([0.25; 3]),
            },
        }
    }

    #[test]
    fn a_config_json_beside_local_weights_is_read_and_unknown_keys_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let weights = dir.path().join("pets.safetensors");
        assert_eq!(TimmConfig::beside(&weights).expect("none"), None);
        std::fs::write(dir.path().join(CONFIG_JSON), PETS).expect("write");
        assert_eq!(TimmConfig::beside(&weights).expect("read"), Some(pets()));
    }

    #[test]
    fn a_config_json_that_is_not_json_names_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join(CONFIG_JSON), "{\"num_classes\": \"three\"").expect("write");
        let message = TimmConfig::beside(&dir.path().join("w.pth"))
            .expect_err("invalid")
            .to_string();
        assert!(message.contains("config.json"), "{message}");
    }

    #[test]
    fn the_hub_repos_config_json_comes_from_the_cache() {
        let dir = tempfile::tempdir().expect("temp dir");
        let weights = HubFile::published(REPO);
        let offline = settings(dir.path(), true);
        assert_eq!(
            TimmConfig::of_hub_repo(&weights, &offline).expect("absent"),
            None
        );
        python_style_cache(dir.path(), "main", CONFIG_JSON, PETS.as_bytes());
        assert_eq!(
            TimmConfig::of_hub_repo(&weights, &offline).expect("cached"),
            Some(pets())
        );
    }
}
