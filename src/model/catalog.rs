//! The three Gluon SE-ResNeXt architectures: their names, shape and the
//! pretrained configuration that their published weights were trained with.
//!
//! Everything that differs between the models lives here, so no input size,
//! crop percentage or normalization constant is scattered through the code.

use std::fmt;

use crate::preprocess::{CropMode, Interpolation, TransformSpec};

/// One of the three SE-ResNeXt networks timm publishes Gluon weights for:
/// the shape of a served model, whatever checkpoint fills it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Architecture {
    SeResNeXt50_32x4d,
    SeResNeXt101_32x4d,
    SeResNeXt101_64x4d,
}

/// How the network is shaped: what differs between the variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchSpec {
    /// Bottleneck blocks per stage: [3, 4, 6, 3] or [3, 4, 23, 3].
    pub blocks_per_stage: [usize; 4],
    /// Groups of the 3x3 convolution (ResNeXt's cardinality).
    pub cardinality: usize,
    /// Channels per group at the first stage (ResNeXt's "4d").
    pub base_width: usize,
}

/// The evaluation settings the published weights expect (timm's `pretrained_cfg`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainedCfg {
    /// Square side of the network input, in pixels.
    pub input_size: u32,
    /// Fraction of the resized image kept by the center crop (224 / 256).
    pub crop_pct: f64,
    /// Whether the resize keeps the aspect ratio (`center`) or not (`squash`).
    pub crop_mode: CropMode,
    /// Filter used to resize the short side to `input_size / crop_pct`.
    pub interpolation: Interpolation,
    /// Per-channel RGB mean subtracted after scaling pixels to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel RGB standard deviation divided out after the mean.
    pub std: [f32; 3],
    /// Width of the classifier head.
    pub num_classes: usize,
}

/// Channels out of the stem, and `planes` of the first stage (doubling per stage).
pub const STEM_CHANNELS: usize = 64;

/// Output channels are 4x `planes` in a bottleneck (timm's `expansion`).
pub const EXPANSION: usize = 4;

/// Values in an image embedding: the channels the last stage pools, before
/// the classifier (`fc`). The same for every SE-ResNeXt in the catalog, since
/// each ends its last stage at `8 · STEM_CHANNELS` planes times [`EXPANSION`].
pub const FEATURE_DIM: usize = STEM_CHANNELS * 8 * EXPANSION;

/// Channels of a bottleneck's grouped 3x3 convolution: timm's
/// `floor(planes * base_width / 64) * cardinality`.
pub fn bottleneck_width(planes: usize, base_width: usize, cardinality: usize) -> usize {
    planes * base_width / 64 * cardinality
}

impl ArchSpec {
    /// [`bottleneck_width`] for this variant.
    pub fn bottleneck_width(self, planes: usize) -> usize {
        bottleneck_width(planes, self.base_width, self.cardinality)
    }
}

/// timm's `make_divisible(channels / 16, 8, round_limit=0)`: the SE width.
pub fn se_reduced_channels(channels: usize) -> usize {
    let divisor = 8;
    let value = channels as f64 / 16.0;
    let rounded = ((value + divisor as f64 / 2.0) as usize / divisor) * divisor;
    rounded.max(divisor)
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The three architectures, in the catalog's order.
pub const ALL_ARCHITECTURES: [Architecture; 3] = [
    Architecture::SeResNeXt50_32x4d,
    Architecture::SeResNeXt101_32x4d,
    Architecture::SeResNeXt101_64x4d,
];

impl Architecture {
    /// Resolves a catalog id (`gluon_seresnext50_32x4d`), one of timm's names
    /// (`seresnext50_32x4d.gluon_in1k`, with or without the `timm/` prefix)
    /// or timm's bare architecture name (`seresnext50_32x4d`, what a Hub
    /// repo's `config.json` says).
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.strip_prefix("timm/").unwrap_or(name);
        ALL_ARCHITECTURES.into_iter().find(|arch| {
            arch.name() == name || arch.timm_name() == name || arch.timm_architecture() == name
        })
    }

    /// Every name [`Self::parse`] accepts, for an error that lists them.
    pub fn accepted_names() -> Vec<&'static str> {
        ALL_ARCHITECTURES
            .into_iter()
            .flat_map(|arch| [arch.timm_architecture(), arch.name(), arch.timm_name()])
            .collect()
    }

    /// timm's architecture name (`seresnext50_32x4d`), as `config.json` has it.
    pub fn timm_architecture(self) -> &'static str {
        match self {
            Self::SeResNeXt50_32x4d => "seresnext50_32x4d",
            Self::SeResNeXt101_32x4d => "seresnext101_32x4d",
            Self::SeResNeXt101_64x4d => "seresnext101_64x4d",
        }
    }

    /// The canonical id used in URLs, configs and responses.
    pub fn name(self) -> &'static str {
        match self {
            Self::SeResNeXt50_32x4d => "gluon_seresnext50_32x4d",
            Self::SeResNeXt101_32x4d => "gluon_seresnext101_32x4d",
            Self::SeResNeXt101_64x4d => "gluon_seresnext101_64x4d",
        }
    }

    /// timm's current name, which is also the Hugging Face Hub repo `timm/<name>`.
    pub fn timm_name(self) -> &'static str {
        match self {
            Self::SeResNeXt50_32x4d => "seresnext50_32x4d.gluon_in1k",
            Self::SeResNeXt101_32x4d => "seresnext101_32x4d.gluon_in1k",
            Self::SeResNeXt101_64x4d => "seresnext101_64x4d.gluon_in1k",
        }
    }

    /// The original release file name; its 8-hex suffix starts the file's SHA-256.
    pub fn release_file(self) -> &'static str {
        match self {
            Self::SeResNeXt50_32x4d => "gluon_seresnext50_32x4d-90cf2d6e.pth",
            Self::SeResNeXt101_32x4d => "gluon_seresnext101_32x4d-cf52900d.pth",
            Self::SeResNeXt101_64x4d => "gluon_seresnext101_64x4d-f9926f93.pth",
        }
    }

    /// Where the published weights can be downloaded, for error messages.
    pub fn weights_sources(self) -> String {
        format!(
            "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-pretrained/{} \
             or model.safetensors from https://huggingface.co/timm/{}",
            self.release_file(),
            self.timm_name()
        )
    }

    /// The network's shape.
    pub fn arch(self) -> ArchSpec {
        match self {
            Self::SeResNeXt50_32x4d => ArchSpec {
                blocks_per_stage: [3, 4, 6, 3],
                cardinality: 32,
                base_width: 4,
            },
            Self::SeResNeXt101_32x4d => ArchSpec {
                blocks_per_stage: [3, 4, 23, 3],
                cardinality: 32,
                base_width: 4,
            },
            Self::SeResNeXt101_64x4d => ArchSpec {
                blocks_per_stage: [3, 4, 23, 3],
                cardinality: 64,
                base_width: 4,
            },
        }
    }

    /// The evaluation settings of the published weights (identical for all
    /// three Gluon variants, as in timm's `_cfg`).
    pub const fn pretrained_cfg(self) -> PretrainedCfg {
        GLUON_CFG
    }
}

/// timm's `_cfg` of the three Gluon models.
const GLUON_CFG: PretrainedCfg = PretrainedCfg {
    input_size: 224,
    crop_pct: 0.875,
    crop_mode: CropMode::Center,
    interpolation: Interpolation::Bicubic,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    num_classes: 1000,
};

impl PretrainedCfg {
    /// The preprocessing that reproduces timm's eval transform for this model.
    pub fn transform_spec(&self) -> TransformSpec {
        TransformSpec {
            input_size: self.input_size,
            crop_pct: self.crop_pct,
            crop_mode: self.crop_mode,
            interpolation: self.interpolation,
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn se_width_matches_timm_make_divisible() {
        // timm: make_divisible(c / 16, 8, round_limit=0.) for the four stage widths.
        assert_eq!(se_reduced_channels(256), 16);
        assert_eq!(se_reduced_channels(512), 32);
        assert_eq!(se_reduced_channels(1024), 64);
        assert_eq!(se_reduced_channels(2048), 128);
        assert_eq!(se_reduced_channels(64), 8);
    }

    #[test]
    fn architectures_parse_from_every_name_timm_uses() {
        for arch in ALL_ARCHITECTURES {
            assert_eq!(Architecture::parse(arch.name()), Some(arch));
            assert_eq!(Architecture::parse(arch.timm_name()), Some(arch));
            assert_eq!(Architecture::parse(arch.timm_architecture()), Some(arch));
            assert_eq!(
                Architecture::parse(&format!("timm/{}", arch.timm_name())),
                Some(arch)
            );
        }
        assert_eq!(Architecture::parse("resnet50"), None);
        assert_eq!(Architecture::accepted_names().len(), 9);
    }

    #[test]
    fn release_file_names_start_with_the_model_id() {
        for id in ALL_ARCHITECTURES {
            assert!(id.release_file().starts_with(id.name()));
        }
    }
}
