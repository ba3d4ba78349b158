//! The decode rate's first sample, taken at start-up: admission estimates
//! whether a request can meet its deadline from the measured decode time per
//! megapixel, and with no sample yet it cannot refuse anything. Four heavy
//! requests arriving together on a fresh server were all accepted that way,
//! and three ended in 504 after 30 s of work. One photo-sized JPEG decoded
//! through the real preprocessing gives the estimate something to start
//! from; real images take over as they come (it is a moving average).

use std::sync::OnceLock;
use std::time::Instant;

use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;

use super::service::InferenceService;
use crate::preprocess;

/// The calibration image: 2048 x 1536 (3.1 Mpixel), a camera photo's order
/// of size, above the 1-Mpixel floor under which samples are not counted.
const SIDE: (u32, u32) = (2048, 1536);

/// A photo-like JPEG: smooth gradients with noise, at quality 90, so its
/// entropy decoding costs what a photograph's does (a flat image would
/// decode unrealistically fast).
fn photo_like_jpeg() -> Vec<u8> {
    let (width, height) = SIDE;
    let mut noise = 0x2545_F491_4F6C_DD1Du64;
    let mut rgb = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let jitter = (noise & 0x1f) as u32;
            rgb.push(((x * 255 / width + jitter) & 0xff) as u8);
            rgb.push(((y * 255 / height + jitter) & 0xff) as u8);
            rgb.push((((x + y) * 127 / (width + height) + jitter * 2) & 0xff) as u8);
        }
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(&rgb, width, height, ExtendedColorType::Rgb8)
        .expect("encoding an in-memory RGB image cannot fail");
    jpeg
}

impl InferenceService {
    /// Decodes and transforms one photo-sized JPEG as an upload would be,
    /// and records the time as a decode-rate sample. Blocking (tens of
    /// milliseconds): run it off the async reactor.
    pub fn calibrate_decoding(&self) {
        let Some(spec) = self.models.first().map(|model| model.transform_spec()) else {
            return;
        };
        // Encoded once per process (encoding costs more than the decode
        // it measures; test binaries start many servers).
        static JPEG: OnceLock<Vec<u8>> = OnceLock::new();
        let jpeg = JPEG.get_or_init(photo_like_jpeg);
        let started = Instant::now();
        if preprocess::prepare(jpeg, &spec, &self.decode_limits).is_ok() {
            let took = started.elapsed();
            let pixels = u64::from(SIDE.0) * u64::from(SIDE.1);
            self.decode_pool.record_sample(pixels, took);
            tracing::debug!(took_ms = took.as_secs_f64() * 1e3, "decode rate calibrated");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::{DecodeLimits, TransformSpec};

    #[test]
    fn the_calibration_image_decodes_through_the_real_preprocessing() {
        let jpeg = photo_like_jpeg();
        let spec: TransformSpec = crate::model::ModelId::SeResNeXt50_32x4d
            .pretrained_cfg()
            .transform_spec();
        let prepared =
            preprocess::prepare(&jpeg, &spec, &DecodeLimits::default()).expect("decodes");
        assert_eq!((prepared.width, prepared.height), (224, 224));
        // Photo-like, not flat: the crop's values spread.
        let (min, max) = prepared
            .rgb
            .iter()
            .fold((u8::MAX, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(max - min > 100, "{min}..{max}");
    }
}
