//! Image preprocessing: raw request bytes in, a model-ready 8-bit RGB crop out.
//!
//! This reproduces timm's eval transform (`transforms_imagenet_eval` with the
//! default `crop_mode="center"`) as applied to a PIL image opened with
//! `Image.open(..).convert("RGB")`:
//!
//! 1. decode + EXIF orientation + convert to 8-bit RGB ([`decode`]),
//! 2. resize the short side to `floor(input_size / crop_pct)` with PIL's
//!    antialiased filter, long side as torchvision computes it, then
//!    center-crop `input_size` with torchvision's rounding ([`transform`]).
//!
//! Float conversion and mean/std normalization are deliberately NOT done
//! here: the engine does them on the tensor (possibly on the GPU), so this
//! module stays free of any libtorch dependency and hands over compact `u8`s.

mod decode;
mod jpeg_turbo;
mod pil_resample;
mod transform;

// Builders of hostile image files, for the unit tests and (with the
// `fuzzing` feature, which the integration tests turn on) the bad-input corpus.
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod test_support;

pub use decode::{caught_decoder_panics, decode, header_dimensions, DecodeLimits};
pub use transform::{
    center_crop_offset, resized_size, transform, CropMode, Interpolation, TransformSpec,
};

/// The model-ready crop: `height` rows of `width` RGB pixels, row-major
/// (HWC), 8 bits per channel, not normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, `R, G, B` per pixel.
    pub rgb: Vec<u8>,
}

/// Why an upload could not be turned into a model input.
///
/// Variants map one-to-one onto HTTP statuses (see [`PreprocessError::error_type`])
/// so the server can answer without string matching.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreprocessError {
    /// The request body had no bytes at all (HTTP 400).
    #[error("request body is empty")]
    Empty,
    /// The bytes are not one of the formats we decode: TIFF, SVG, HEIC, AVIF
    /// or simply unrecognized (HTTP 415).
    #[error("unsupported image format: {format}")]
    UnsupportedFormat { format: String },
    /// The bytes claim a supported format but cannot be decoded: truncated,
    /// corrupt, zero-sized (HTTP 422).
    #[error("invalid image: {reason}")]
    Corrupt { reason: String },
    /// The header announces an image larger than [`DecodeLimits`] allow; it
    /// was rejected before any pixel buffer was allocated (HTTP 413).
    #[error(
        "image is {width}x{height}, larger than the allowed {}x{} and {} pixels",
        limit.max_width,
        limit.max_height,
        limit.max_pixels
    )]
    TooLarge {
        width: u32,
        height: u32,
        limit: DecodeLimits,
    },
    /// The [`TransformSpec`] itself is unusable (e.g. `crop_pct <= 0`) or the
    /// resizer refused its arguments: a server-side bug, not the client's
    /// fault (HTTP 500).
    #[error("preprocessing failed: {reason}")]
    Transform { reason: String },
}

impl PreprocessError {
    /// A stable machine-readable token for API error bodies and metrics
    /// labels; unlike the `Display` text it never changes with details.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Empty => "empty_body",
            Self::UnsupportedFormat { .. } => "unsupported_media_type",
            Self::Corrupt { .. } => "invalid_image",
            Self::TooLarge { .. } => "image_too_large",
            Self::Transform { .. } => "preprocess_failed",
        }
    }
}

/// Decode `bytes` and apply the eval transform described by `spec`.
///
/// This is the serving hot path: the decoded image is resized straight from
/// the decoder's buffer into the output crop, with no intermediate full-size
/// resized image.
pub fn prepare(
    bytes: &[u8],
    spec: &TransformSpec,
    limits: &DecodeLimits,
) -> Result<PreparedImage, PreprocessError> {
    // Validate the spec first so a misconfigured model fails before we spend
    // time decoding a large upload.
    spec.validate()?;
    let image = decode(bytes, limits)?;
    transform(&image, spec)
}

#[cfg(test)]
mod tests {
    use super::test_support::encode;
    use super::*;

    fn spec_224() -> TransformSpec {
        TransformSpec {
            input_size: 224,
            crop_pct: 0.875,
            crop_mode: CropMode::Center,
            interpolation: Interpolation::Bicubic,
        }
    }

    #[test]
    fn error_types_are_stable_tokens() {
        let too_large = PreprocessError::TooLarge {
            width: 1,
            height: 1,
            limit: DecodeLimits::default(),
        };
        assert_eq!(PreprocessError::Empty.error_type(), "empty_body");
        let unsupported = PreprocessError::UnsupportedFormat {
            format: "tiff".into(),
        };
        assert_eq!(unsupported.error_type(), "unsupported_media_type");
        let corrupt = PreprocessError::Corrupt { reason: "x".into() };
        assert_eq!(corrupt.error_type(), "invalid_image");
        assert_eq!(too_large.error_type(), "image_too_large");
        assert!(too_large.to_string().contains("1x1"));
    }

    #[test]
    fn prepare_produces_a_224_crop_from_a_jpeg() {
        let source = image::RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let jpeg = encode(
            &image::DynamicImage::ImageRgb8(source),
            image::ImageFormat::Jpeg,
        );
        let prepared = prepare(&jpeg, &spec_224(), &DecodeLimits::default()).unwrap();
        assert_eq!((prepared.width, prepared.height), (224, 224));
        assert_eq!(prepared.rgb.len(), 224 * 224 * 3);
        assert_eq!(header_dimensions(&jpeg), Some((640, 480)));
    }

    #[test]
    fn header_dimensions_need_a_parseable_header() {
        let png = encode(
            &image::DynamicImage::new_rgb8(7, 3),
            image::ImageFormat::Png,
        );
        assert_eq!(header_dimensions(&png), Some((7, 3)));
        assert_eq!(header_dimensions(&png[..12]), None);
        assert_eq!(header_dimensions(b"not an image"), None);
        assert_eq!(header_dimensions(&[]), None);
    }

    #[test]
    fn prepare_rejects_a_bad_spec_before_decoding() {
        let spec = TransformSpec {
            crop_pct: 0.0,
            ..spec_224()
        };
        let err = prepare(b"not even an image", &spec, &DecodeLimits::default()).unwrap_err();
        assert_eq!(err.error_type(), "preprocess_failed");
    }

    #[test]
    fn prepare_propagates_decode_errors() {
        let err = prepare(&[], &spec_224(), &DecodeLimits::default()).unwrap_err();
        assert_eq!(err, PreprocessError::Empty);
    }
}
