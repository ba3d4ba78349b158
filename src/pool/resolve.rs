//! Turns a model's configured [`WeightsSource`] into something a replica can
//! load, at start-up and before any replica starts: Hub sources become a
//! local file (cached or downloaded), local files must exist, and a release
//! file name's SHA-256 prefix must match its bytes.
//!
//! Doing this first means a missing or wrong file is a clear start-up error
//! (the process exits non-zero) rather than a replica failing minutes later,
//! and replicas never touch the network.

use std::path::{Path, PathBuf};

use crate::config::{HubFile, WeightsSource};
use crate::hub::{self, HubError, HubSettings};
use crate::model::ModelId;
use crate::weights::{self, ReleaseHashError};

/// Weights a replica can load without further lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedWeights {
    /// A local checkpoint that exists (and matched its name's hash, if any).
    File(PathBuf),
    /// Seeded random initialisation, explicitly configured.
    Random,
}

/// Why a model's weights could not be made local; every message names the
/// model and where its published weights can be had.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A configured local file is not there.
    #[error(
        "weight file {} for model {id} not found. Download the published weights from \
         {sources} and place the file at that path (or set `weights` in the config).",
        path.display()
    )]
    Missing {
        id: String,
        path: PathBuf,
        sources: String,
    },
    /// The Hub file is neither cached nor downloadable.
    #[error("weights for model {id}: {source} The published weights: {sources}.")]
    Hub {
        id: String,
        /// Boxed: its messages carry paths and keep `Result`s small.
        source: Box<HubError>,
        sources: String,
    },
    /// The file is not the release file its name promises.
    #[error("weights for model {id}: {source}. Download it again from {sources}.")]
    Hash {
        id: String,
        source: ReleaseHashError,
        sources: String,
    },
}

/// Resolves `weights` for catalog model `id`; `hub` says where the Hugging
/// Face cache is and whether the Hub may be asked. Blocks while downloading.
pub fn resolve_weights(
    id: ModelId,
    weights: &WeightsSource,
    hub: &HubSettings,
) -> Result<ResolvedWeights, ResolveError> {
    let source = Source {
        model: id.name(),
        published: Some(published_file(id)),
        sources: id.weights_sources(),
    };
    resolve(&source, weights, hub)
}

/// Resolves the weights of `[[models]]` entry `model`, whose id is not in the
/// catalog: there are no published weights to fall back to or point at.
pub fn resolve_own_weights(
    model: &str,
    weights: &WeightsSource,
    hub: &HubSettings,
) -> Result<ResolvedWeights, ResolveError> {
    let source = Source {
        model,
        published: None,
        sources: "wherever your checkpoint is kept (the path or hf:// URL in `weights`)".into(),
    };
    resolve(&source, weights, hub)
}

/// Whose weights are resolved, for the fallback and the messages.
struct Source<'a> {
    model: &'a str,
    /// The default `weights`: the catalog model's published Hub file.
    published: Option<HubFile>,
    /// Where the weights can be had, for error messages.
    sources: String,
}

fn resolve(
    source: &Source<'_>,
    weights: &WeightsSource,
    hub: &HubSettings,
) -> Result<ResolvedWeights, ResolveError> {
    let path = match (weights, &source.published) {
        (WeightsSource::Random, _) => return Ok(ResolvedWeights::Random),
        (WeightsSource::Pretrained, Some(published)) => fetch(source, published, hub)?,
        (WeightsSource::Hub(file), _) => fetch(source, file, hub)?,
        (WeightsSource::File(path), _) if path.is_file() => path.clone(),
        (WeightsSource::File(path), _) => {
            return Err(ResolveError::Missing {
                id: source.model.to_owned(),
                path: path.clone(),
                sources: source.sources.clone(),
            })
        }
        (WeightsSource::Pretrained, None) => {
            unreachable!(
                "this is a bug: config validation requires weights for a model of one's own"
            )
        }
    };
    verify_name_hash(source, &path)?;
    Ok(ResolvedWeights::File(path))
}

/// What "no `weights` key" means for `id`: timm's `model.safetensors` in
/// `timm/<timm name>`, the same file the Hub's model card links.
pub fn published_file(id: ModelId) -> HubFile {
    HubFile::published(format!("timm/{}", id.timm_name()))
}

fn fetch(model: &Source<'_>, file: &HubFile, hub: &HubSettings) -> Result<PathBuf, ResolveError> {
    hub::resolve(file, hub).map_err(|source| ResolveError::Hub {
        id: model.model.to_owned(),
        source: Box::new(source),
        sources: model.sources.clone(),
    })
}

fn verify_name_hash(model: &Source<'_>, path: &Path) -> Result<(), ResolveError> {
    let checked = weights::verify_release_hash(path).map_err(|source| ResolveError::Hash {
        id: model.model.to_owned(),
        source,
        sources: model.sources.clone(),
    })?;
    if checked {
        tracing::info!(model = model.model, path = %path.display(), "weight file matches the SHA-256 in its name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_hub(cache_dir: &Path) -> HubSettings {
        HubSettings {
            cache_dir: cache_dir.to_owned(),
            offline: true,
            endpoint: None,
        }
    }

    #[test]
    fn random_and_existing_files_resolve_as_they_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub = offline_hub(dir.path());
        let id = ModelId::SeResNeXt50_32x4d;
        assert_eq!(
            resolve_weights(id, &WeightsSource::Random, &hub).expect("random"),
            ResolvedWeights::Random
        );
        let path = dir.path().join("model.safetensors");
        std::fs::write(&path, b"x").expect("write");
        assert_eq!(
            resolve_weights(id, &WeightsSource::File(path.clone()), &hub).expect("file"),
            ResolvedWeights::File(path)
        );
    }

    #[test]
    fn missing_and_mismatched_files_name_the_file_and_the_published_weights() {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub = offline_hub(dir.path());
        let id = ModelId::SeResNeXt50_32x4d;
        let missing = dir.path().join("not-here-90cf2d6e.pth");
        let message = resolve_weights(id, &WeightsSource::File(missing.clone()), &hub)
            .expect_err("missing")
            .to_string();
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("gluon_seresnext50_32x4d-90cf2d6e.pth"),
            "{message}"
        );

        let wrong = dir.path().join("gluon_seresnext50_32x4d-90cf2d6e.pth");
        std::fs::write(&wrong, b"not the release file").expect("write");
        let message = resolve_weights(id, &WeightsSource::File(wrong), &hub)
            .expect_err("hash mismatch")
            .to_string();
        assert!(message.contains("starts with 90cf2d6e"), "{message}");
        assert!(
            message.contains("Download it again from https://github.com"),
            "{message}"
        );
    }

    #[test]
    fn the_default_is_the_ids_published_hub_file() {
        assert_eq!(
            published_file(ModelId::SeResNeXt101_64x4d).to_string(),
            "hf://timm/seresnext101_64x4d.gluon_in1k"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let message = resolve_weights(
            ModelId::SeResNeXt101_32x4d,
            &WeightsSource::Pretrained,
            &offline_hub(dir.path()),
        )
        .expect_err("empty cache, offline")
        .to_string();
        assert!(message.starts_with("weights for model gluon_seresnext101_32x4d: hf://timm/seresnext101_32x4d.gluon_in1k"), "{message}");
        assert!(
            message.contains("models--timm--seresnext101_32x4d.gluon_in1k"),
            "{message}"
        );
        assert!(
            message.contains("gluon_seresnext101_32x4d-cf52900d.pth"),
            "{message}"
        );
    }
}
