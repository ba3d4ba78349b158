//! Pixel parity with Pillow: every image written by
//! scripts/fixtures/make_pixel_fixtures.py (JPEG at several qualities and
//! subsamplings, progressive, gray and CMYK JPEG, PNG palette/16-bit/alpha,
//! WebP, BMP, GIF) decodes to Pillow's `convert("RGB")` bytes, and its
//! 224² crop is timm's `Resize(256, bicubic)` + `CenterCrop(224)` output.
//!
//! Run with `--nocapture` to see the measured differences per image.

use serde::Deserialize;

use crate::support::fixtures_dir;
use seresnext_serve::model::ModelId;
use seresnext_serve::preprocess::{self, DecodeLimits};

#[derive(Deserialize)]
struct PixelManifest {
    libjpeg_turbo_version: String,
    images: Vec<PixelImage>,
}

#[derive(Deserialize)]
struct PixelImage {
    file: String,
    width: u32,
    height: u32,
    rgb: String,
    crop: String,
}

/// How two 8-bit buffers differ: the share of equal samples and the largest
/// difference.
#[derive(Debug, Clone, Copy)]
struct SampleDiff {
    identical: f64,
    max: u8,
}

fn compare(ours: &[u8], pillow: &[u8]) -> SampleDiff {
    assert_eq!(ours.len(), pillow.len(), "buffer sizes differ");
    let equal = ours.iter().zip(pillow).filter(|(a, b)| a == b).count();
    let max = ours
        .iter()
        .zip(pillow)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    SampleDiff {
        identical: equal as f64 / ours.len().max(1) as f64,
        max,
    }
}

fn pixel_manifest() -> (std::path::PathBuf, PixelManifest) {
    let dir = fixtures_dir().join("pixels");
    let text = std::fs::read_to_string(dir.join("manifest.json"))
        .unwrap_or_else(|e| panic!("{}: {e}; run `make fixtures`", dir.display()));
    (dir, serde_json::from_str(&text).expect("pixel manifest"))
}

#[test]
fn decoded_pixels_and_crops_are_pillows() {
    let (dir, manifest) = pixel_manifest();
    assert!(manifest.images.len() >= 40, "too few fixture images");
    eprintln!("Pillow's libjpeg-turbo: {}", manifest.libjpeg_turbo_version);
    let spec = ModelId::SeResNeXt50_32x4d.pretrained_cfg().transform_spec();
    let mut failures = Vec::new();
    for image in &manifest.images {
        let bytes = std::fs::read(dir.join(&image.file)).unwrap();
        let decoded = preprocess::decode(&bytes, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", image.file));
        assert_eq!(
            decoded.dimensions(),
            (image.width, image.height),
            "{}",
            image.file
        );
        let decode = compare(
            decoded.as_raw(),
            &std::fs::read(dir.join(&image.rgb)).unwrap(),
        );
        let prepared = preprocess::prepare(&bytes, &spec, &DecodeLimits::default()).unwrap();
        let crop = compare(
            &prepared.rgb,
            &std::fs::read(dir.join(&image.crop)).unwrap(),
        );
        eprintln!(
            "{:40} decode {:8.4}% equal, max {:3} | crop {:8.4}% equal, max {:3}",
            image.file,
            100.0 * decode.identical,
            decode.max,
            100.0 * crop.identical,
            crop.max
        );
        // The bar: at least 99.9 % of the crop's samples identical,
        // none off by more than one level.
        if crop.identical < 0.999 || crop.max > 1 {
            failures.push(format!("{}: crop {crop:?}, decode {decode:?}", image.file));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
