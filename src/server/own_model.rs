//! Which model a `[[models]]` entry serves: a catalog model as published, or
//! a checkpoint of one's own, described by the checkpoint itself (its classes
//! are the rows of `fc.weight`), a timm `config.json` beside it, and the
//! entry, each later source winning over the earlier.
//!
//! Everything is checked here, before a replica starts, so a wrong label
//! count or a classifier of the wrong shape is a start-up error that names
//! the key and both numbers, not a replica failing in the background.

use std::path::Path;

use crate::config::{ModelConfig, WeightsSource};
use crate::hub::{ConfigJsonError, HubSettings, TimmConfig, TimmPretrainedCfg};
use crate::labels::read_label_file;
use crate::model::{numbered_labels, Architecture, ModelId, ModelSpec, PretrainedCfg, FEATURE_DIM};
use crate::pool::ResolvedWeights;
use crate::preprocess::{CropMode, Interpolation};
use crate::weights;

/// Classes of a random-weight model of one's own that names none.
const DEFAULT_NUM_CLASSES: usize = 1000;

/// Why an entry's model could not be described; each names the entry and key.
#[derive(Debug, thiserror::Error)]
#[error("models[{model}].{key}: {reason}")]
pub struct OwnModelError {
    /// The entry's id.
    pub model: String,
    /// The entry key (or the `config.json` key) at fault.
    pub key: String,
    pub reason: String,
}

/// The model `entry` serves. `weights` is its resolved checkpoint; `hub`
/// finds a Hub repo's `config.json`.
pub fn identify(
    entry: &ModelConfig,
    weights: &ResolvedWeights,
    hub: &HubSettings,
) -> Result<ModelId, OwnModelError> {
    let catalog = ModelId::parse(&entry.id);
    if let Some(id) = catalog {
        if !has_own_settings(entry) {
            return Ok(id);
        }
    }
    let error = |key: &str, reason: String| OwnModelError {
        model: entry.id.clone(),
        key: key.to_owned(),
        reason,
    };
    let config_json = match (&entry.weights, catalog) {
        (_, Some(_)) => Ok(None),
        (WeightsSource::File(path), None) => TimmConfig::beside(path),
        (WeightsSource::Hub(file), None) => TimmConfig::of_hub_repo(file, hub),
        _ => Ok(None),
    }
    .map_err(|e: ConfigJsonError| error("weights", e.to_string()))?
    .unwrap_or_default();

    let architecture = match (&entry.architecture, &config_json.architecture, catalog) {
        (Some(name), _, _) => parse_architecture(name).map_err(|r| error("architecture", r))?,
        (None, Some(name), _) => {
            parse_architecture(name).map_err(|r| error("architecture (from config.json)", r))?
        }
        (None, None, Some(id)) => id.architecture(),
        (None, None, None) => {
            return Err(error(
                "architecture",
                format!(
                "not set, and no config.json beside the weights names one; set it to one of: {}",
                Architecture::accepted_names().join(", ")
            ),
            ))
        }
    };

    let num_classes = match weights {
        ResolvedWeights::File(path) => {
            checkpoint_classes(path).map_err(|reason| error("weights", reason))?
        }
        ResolvedWeights::Random => entry
            .num_classes
            .or(config_json.num_classes)
            .unwrap_or(DEFAULT_NUM_CLASSES),
    };
    for (key, declared) in [
        ("num_classes", entry.num_classes),
        ("num_classes (from config.json)", config_json.num_classes),
    ] {
        if let Some(declared) = declared.filter(|&n| n != num_classes) {
            return Err(error(
                key,
                format!("{declared} classes, but the checkpoint's fc.weight has {num_classes}"),
            ));
        }
    }

    let labels = match (&entry.labels, config_json.label_names) {
        (Some(path), _) => {
            let labels = read_label_file(path)
                .map_err(|e| error("labels", format!("cannot read {}: {e}", path.display())))?;
            Some(checked_count(
                labels,
                num_classes,
                &path.display().to_string(),
            ))
            .transpose()
            .map_err(|r| error("labels", r))?
        }
        (None, Some(names)) => Some(checked_count(names, num_classes, "config.json label_names"))
            .transpose()
            .map_err(|r| error("label_names (from config.json)", r))?,
        (None, None) if catalog.is_some() && num_classes == DEFAULT_NUM_CLASSES => None,
        (None, None) => Some(numbered_labels(num_classes)),
    };

    let mut cfg = architecture.pretrained_cfg();
    apply_config_json(&mut cfg, &config_json.pretrained_cfg).map_err(|(key, reason)| {
        error(&format!("{key} (from config.json pretrained_cfg)"), reason)
    })?;
    apply_entry(&mut cfg, entry);
    cfg.num_classes = num_classes;
    let spec = ModelSpec {
        name: entry.id.clone().into(),
        architecture,
        cfg,
        labels,
    };
    tracing::info!(
        model = %entry.id,
        architecture = architecture.timm_architecture(),
        num_classes,
        input_size = cfg.input_size,
        crop_pct = cfg.crop_pct,
        crop_mode = cfg.crop_mode.timm_name(),
        interpolation = cfg.interpolation.timm_name(),
        "model of one's own described"
    );
    Ok(ModelId::custom(spec))
}

/// Whether the entry says anything a catalog model's spec would not.
fn has_own_settings(entry: &ModelConfig) -> bool {
    entry.architecture.is_some()
        || entry.labels.is_some()
        || entry.num_classes.is_some()
        || entry.input_size.is_some()
        || entry.crop_pct.is_some()
        || entry.crop_mode.is_some()
        || entry.interpolation.is_some()
        || entry.mean.is_some()
        || entry.std.is_some()
}

fn parse_architecture(name: &str) -> Result<Architecture, String> {
    Architecture::parse(name).ok_or_else(|| {
        format!(
            "unknown architecture {name:?}; accepted: {}",
            Architecture::accepted_names().join(", ")
        )
    })
}

/// The classes of a checkpoint: the rows of `fc.weight` (`[classes, 2048]`),
/// which `fc.bias` (`[classes]`) must agree with.
fn checkpoint_classes(path: &Path) -> Result<usize, String> {
    let checkpoint = weights::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let shape_of = |key: &str| {
        checkpoint.get(key).map(|t| t.shape.clone()).ok_or_else(|| {
            format!(
                "{} has no {key:?}: not a timm SE-ResNeXt classifier checkpoint",
                path.display()
            )
        })
    };
    let weight = shape_of("fc.weight")?;
    let classes = match weight[..] {
        [classes, features] if features == FEATURE_DIM && classes > 0 => classes,
        _ => {
            return Err(format!(
                "fc.weight has shape {weight:?}; expected [num_classes, {FEATURE_DIM}]"
            ))
        }
    };
    let bias = shape_of("fc.bias")?;
    if bias != [classes] {
        return Err(format!(
            "fc.bias has shape {bias:?} but fc.weight {weight:?}: expected [{classes}]"
        ));
    }
    Ok(classes)
}

fn checked_count(labels: Vec<String>, classes: usize, what: &str) -> Result<Vec<String>, String> {
    if labels.len() == classes {
        Ok(labels)
    } else {
        Err(format!(
            "{what} has {} labels but the checkpoint has {classes} classes (fc.weight): one label per class",
            labels.len()
        ))
    }
}

/// `config.json`'s `pretrained_cfg` over the architecture's defaults; a value
/// out of the served range is an error naming its key.
fn apply_config_json(
    cfg: &mut PretrainedCfg,
    json: &TimmPretrainedCfg,
) -> Result<(), (&'static str, String)> {
    if let Some([channels, height, width]) = json.input_size {
        let range = crate::config::INPUT_SIZE_RANGE;
        if channels != 3 || height != width || !range.contains(&height) {
            return Err((
                "input_size",
                format!(
                    "[{channels}, {height}, {width}]: only [3, N, N] with N in {}..={} is served",
                    range.start(),
                    range.end()
                ),
            ));
        }
        cfg.input_size = height;
    }
    if let Some(pct) = json.crop_pct {
        if !(pct > 0.0 && pct <= 1.0) {
            return Err(("crop_pct", format!("{pct} is outside (0, 1]")));
        }
        cfg.crop_pct = pct;
    }
    if let Some(mode) = &json.crop_mode {
        cfg.crop_mode = CropMode::from_timm_name(mode).ok_or((
            "crop_mode",
            format!("{mode:?}: expected \"center\" or \"squash\""),
        ))?;
    }
    if let Some(filter) = &json.interpolation {
        cfg.interpolation = Interpolation::from_timm_name(filter).ok_or((
            "interpolation",
            format!("{filter:?}: expected \"bicubic\" or \"bilinear\""),
        ))?;
    }
    if let Some(mean) = json.mean {
        cfg.mean = mean;
    }
    if let Some(std) = json.std {
        if !std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Err(("std", format!("{std:?}: each must be above 0")));
        }
        cfg.std = std;
    }
    Ok(())
}

/// The entry's keys, which config validation has range-checked, over all.
fn apply_entry(cfg: &mut PretrainedCfg, entry: &ModelConfig) {
    if let Some(size) = entry.input_size {
        cfg.input_size = size;
    }
    if let Some(pct) = entry.crop_pct {
        cfg.crop_pct = pct;
    }
    if let Some(mode) = entry
        .crop_mode
        .as_deref()
        .and_then(CropMode::from_timm_name)
    {
        cfg.crop_mode = mode;
    }
    if let Some(filter) = entry
        .interpolation
        .as_deref()
        .and_then(Interpolation::from_timm_name)
    {
        cfg.interpolation = filter;
    }
    if let Some(mean) = entry.mean {
        cfg.mean = mean;
    }
    if let Some(std) = entry.std {
        cfg.std = std;
    }
}

#[cfg(test)]
#[path = "own_model_tests.rs"]
mod tests;
