//! Bytes → upright 8-bit RGB, the way `PIL.Image.open(..).convert("RGB")`
//! would see it (plus EXIF orientation, which PIL leaves to the caller).
//!
//! The format is sniffed from the magic bytes, never from the request's
//! content type: clients mislabel uploads all the time, and the bytes are
//! what the decoder has to cope with anyway.

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage};

use super::PreprocessError;

/// Upper bounds on what we agree to decode, checked against the dimensions in
/// the image HEADER, before any pixel buffer exists: a 100k x 100k PNG bomb
/// is a few hundred bytes on the wire and would otherwise cost 40 GB of RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    pub max_width: u32,
    pub max_height: u32,
    /// `width * height` cap; the real memory bound, since the per-side caps
    /// alone still allow 16384² = 268 MP.
    pub max_pixels: u64,
}

impl Default for DecodeLimits {
    /// 16384 per side is the largest size common encoders produce (WebP's
    /// hard limit is 16383, libjpeg-turbo's default 65500 is only seen in
    /// synthetic files) and still admits long panoramas. 50 MP admits every
    /// mainstream camera and phone photo (a 50 MP sensor is 8160 x 6120 =
    /// 49.9 MP) while bounding one decode to ~150 MB for 8-bit RGB and
    /// ~400 MB for the worst case (16-bit RGBA PNG, 8 bytes per pixel).
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 50_000_000,
        }
    }
}

impl DecodeLimits {
    /// `Ok` when an image of this size may be decoded.
    pub fn check(&self, width: u32, height: u32) -> Result<(), PreprocessError> {
        let pixels = u64::from(width) * u64::from(height);
        if width > self.max_width || height > self.max_height || pixels > self.max_pixels {
            return Err(PreprocessError::TooLarge {
                width,
                height,
                limit: *self,
            });
        }
        Ok(())
    }

    /// Allocation budget handed to the `image` crate as a second line of
    /// defence (it also bounds decoder-internal buffers such as PNG text
    /// chunks): the largest legal output (8 bytes per pixel, 16-bit RGBA) plus
    /// slack for decoder scratch space.
    fn image_crate_limits(&self) -> image::Limits {
        const DECODER_SCRATCH_BYTES: u64 = 64 << 20;
        let mut limits = image::Limits::default();
        // Width/height are deliberately NOT handed over: we check them
        // ourselves right after the header is parsed so the error can carry
        // the offending dimensions.
        limits.max_image_width = None;
        limits.max_image_height = None;
        limits.max_alloc = Some(
            self.max_pixels
                .saturating_mul(8)
                .saturating_add(DECODER_SCRATCH_BYTES),
        );
        limits
    }
}

/// Decode an upload into an upright 8-bit RGB image.
///
/// * Formats: JPEG (baseline, progressive), PNG (1-16 bit, gray, gray+alpha,
///   palette, RGB, RGBA), WebP, BMP, GIF (first frame).
/// * The EXIF orientation tag is applied, so a phone photo stored sideways
///   with orientation 6 comes out upright.
/// * Alpha is dropped without compositing (PIL's `convert("RGB")`), and
///   16-bit samples become 8-bit ones as in Pillow (see [`pillow_rgb`]).
/// * JPEG pixels are libjpeg-turbo's, as in Pillow.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = sniff_format(bytes)?;
    // zune-jpeg (as configured by `image`) happily returns a gray-filled
    // image for a truncated file; PIL refuses it ("image file is truncated"),
    // and so do we.
    if format == ImageFormat::Jpeg && !jpeg_reaches_end_marker(bytes) {
        return Err(PreprocessError::Corrupt {
            reason: "jpeg: truncated (no end-of-image marker)".to_owned(),
        });
    }
    // Decoders parse attacker-controlled bytes; should one of them have a
    // panicking bug, one bad upload must not take down a worker thread.
    panic::catch_unwind(AssertUnwindSafe(|| decode_format(bytes, format, limits))).unwrap_or_else(
        |_| {
            DECODER_PANICS.fetch_add(1, Ordering::Relaxed);
            Err(PreprocessError::Corrupt {
                reason: format!("{} decoder failed on malformed data", format_name(format)),
            })
        },
    )
}

/// Width and height from the image header alone (no pixel buffer), or
/// `None` when the bytes are not a supported image or the header does not
/// parse; [`decode`] then reports why. For costing work before it runs: the
/// decode scheduler counts pixels in flight against a budget.
pub fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let format = sniff_format(bytes).ok()?;
    panic::catch_unwind(AssertUnwindSafe(|| {
        ImageReader::with_format(Cursor::new(bytes), format)
            .into_decoder()
            .ok()
            .map(|decoder| decoder.dimensions())
    }))
    .ok()
    .flatten()
}

/// Decoder panics caught by [`decode`] since the process started.
static DECODER_PANICS: AtomicU64 = AtomicU64::new(0);

/// How many times a decoder panicked and [`decode`] turned it into a
/// `Corrupt` error. The safety net keeps a worker alive, but every catch is a
/// decoder bug: the fuzz replay asserts that this stays zero, so a saved
/// crash input cannot pass just because the net caught it.
pub fn caught_decoder_panics() -> u64 {
    DECODER_PANICS.load(Ordering::Relaxed)
}

fn decode_format(
    bytes: &[u8],
    format: ImageFormat,
    limits: &DecodeLimits,
) -> Result<RgbImage, PreprocessError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits.image_crate_limits());
    // Parses the header only; no pixel buffer is allocated yet.
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, format))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(PreprocessError::Corrupt {
            reason: format!("image has zero size ({width}x{height})"),
        });
    }
    limits.check(width, height)?;
    // A broken EXIF block must not cost the user their prediction: fall back
    // to the stored orientation, as a browser would.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    // JPEG pixels come from libjpeg-turbo, as in Pillow; the `image` crate
    // has only read the header and the EXIF orientation.
    let rgb = if format == ImageFormat::Jpeg {
        drop(decoder);
        super::jpeg_turbo::decode_rgb(bytes, limits)?
    } else {
        let decoded =
            DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, format))?;
        // Convert before rotating: the RGB8 buffer is the smallest one.
        pillow_rgb(decoded)
    };
    let mut upright = DynamicImage::ImageRgb8(rgb);
    upright.apply_orientation(orientation);
    Ok(upright.into_rgb8())
}

/// `convert("RGB")` of what Pillow's decoders make of the same file.
///
/// 8-bit images convert as the `image` crate does. 16-bit ones do not:
/// Pillow keeps the high byte of 16-bit colour and gray+alpha samples
/// (`v >> 8`), and opens 16-bit gray as mode `I;16`, whose conversion to RGB
/// clips at 255 (so most of such an image turns white). That is what timm
/// feeds the model, so it is what we feed it too.
fn pillow_rgb(decoded: DynamicImage) -> RgbImage {
    let (width, height) = (decoded.width(), decoded.height());
    let from_samples = |samples: Vec<u8>| {
        RgbImage::from_raw(width, height, samples).expect("three samples per pixel")
    };
    let high_byte = |v: u16| (v >> 8) as u8;
    match decoded {
        DynamicImage::ImageLuma16(gray) => from_samples(
            gray.pixels()
                .flat_map(|p| [p.0[0].min(255) as u8; 3])
                .collect(),
        ),
        DynamicImage::ImageLumaA16(gray) => {
            from_samples(gray.pixels().flat_map(|p| [high_byte(p.0[0]); 3]).collect())
        }
        DynamicImage::ImageRgb16(rgb) => {
            from_samples(rgb.into_raw().into_iter().map(high_byte).collect())
        }
        DynamicImage::ImageRgba16(rgba) => from_samples(
            rgba.pixels()
                .flat_map(|p| [p.0[0], p.0[1], p.0[2]].map(high_byte))
                .collect(),
        ),
        // Alpha dropped, as Pillow's `rgba2rgb`; the `image` crate's own
        // conversion goes through its colour-space machinery and cost ~4 %
        // of a small PNG's whole preprocessing.
        DynamicImage::ImageRgba8(rgba) => from_samples(drop_alpha(rgba.into_raw())),
        other => other.into_rgb8(),
    }
}

/// RGBA samples without their alpha, in place: no second buffer to
/// allocate and clear. Four pixels at a time as fixed-size arrays, which the
/// compiler turns into one byte shuffle; pixel by pixel it stays a scalar
/// loop. Each group is read whole before its 12 bytes are written, and the
/// writes never pass the reads.
fn drop_alpha(mut samples: Vec<u8>) -> Vec<u8> {
    let pixels = samples.len() / 4;
    let groups = pixels / 4;
    for group in 0..groups {
        let input: [u8; 16] = samples[group * 16..group * 16 + 16]
            .try_into()
            .expect("four pixels");
        let picked: [u8; 12] = std::array::from_fn(|i| input[i / 3 * 4 + i % 3]);
        samples[group * 12..group * 12 + 12].copy_from_slice(&picked);
    }
    for pixel in groups * 4..pixels {
        samples.copy_within(pixel * 4..pixel * 4 + 3, pixel * 3);
    }
    samples.truncate(pixels * 3);
    samples
}

/// Identify the container from its magic bytes. Anything that is not one of
/// the five supported formats becomes `UnsupportedFormat`, named as precisely
/// as we can so the client learns what to convert from.
fn sniff_format(bytes: &[u8]) -> Result<ImageFormat, PreprocessError> {
    match image::guess_format(bytes) {
        Ok(
            format @ (ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Gif),
        ) => Ok(format),
        Ok(other) => Err(PreprocessError::UnsupportedFormat {
            format: format_name(other),
        }),
        Err(_) => Err(PreprocessError::UnsupportedFormat {
            format: sniff_unsupported_name(bytes).to_owned(),
        }),
    }
}

/// Best-effort names for common uploads the `image` crate does not know.
fn sniff_unsupported_name(bytes: &[u8]) -> &'static str {
    // ISO-BMFF (HEIF family): size, "ftyp", major brand.
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return match &bytes[8..12] {
            b"avif" | b"avis" => "avif",
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1" => "heic",
            _ => "unknown",
        };
    }
    if bytes.starts_with(b"%PDF") {
        return "pdf";
    }
    let head = &bytes[..bytes.len().min(4096)];
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let first_non_space = text.iter().position(|b| !b.is_ascii_whitespace());
    if first_non_space.is_some_and(|i| text[i] == b'<') {
        let lowercase = text.to_ascii_lowercase();
        if lowercase.windows(4).any(|w| w == b"<svg") {
            return "svg";
        }
    }
    "unknown"
}

/// Walk the JPEG marker structure and report whether it reaches the EOI
/// marker, i.e. whether the file is complete.
///
/// Segments with a length field (APPn — including an EXIF thumbnail with its
/// own EOI — DQT, DHT, SOF, SOS headers, ...) are skipped whole. Everything
/// else is scanned for the next `0xFF`: inside entropy-coded data `0xFF` is
/// always followed by `0x00` (byte stuffing) or an RSTn marker, so the first
/// `FF D9` found that way is the real end of the image. Stray bytes between
/// segments are tolerated, as libjpeg does.
fn jpeg_reaches_end_marker(bytes: &[u8]) -> bool {
    const EOI: u8 = 0xD9;
    let mut i = 2; // past SOI, which sniffing already matched
    loop {
        while i < bytes.len() && bytes[i] != 0xFF {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&marker) = bytes.get(i) else {
            return false;
        };
        i += 1;
        match marker {
            EOI => return true,
            // Stuffed zero, RSTn, TEM and a repeated SOI carry no length.
            0x00 | 0x01 | 0xD0..=0xD8 => {}
            _ => {
                let Some(length) = bytes.get(i..i + 2) else {
                    return false;
                };
                let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return false;
                }
                i += length;
            }
        }
    }
}

fn format_name(format: ImageFormat) -> String {
    format!("{format:?}").to_ascii_lowercase()
}

fn map_image_error(error: ImageError, format: ImageFormat) -> PreprocessError {
    let name = format_name(format);
    match error {
        // A valid file using a feature the decoder lacks (e.g. 12-bit or
        // arithmetic-coded JPEG): the client can fix it by re-encoding.
        ImageError::Unsupported(e) => PreprocessError::UnsupportedFormat {
            format: format!("{name} ({e})"),
        },
        // Only reachable through the allocation budget, which is sized so
        // that any image passing `DecodeLimits::check` fits: a file that
        // still needs more is malformed, not merely large.
        ImageError::Limits(e) => PreprocessError::Corrupt {
            reason: format!("{name}: decoder exceeded its memory budget ({e})"),
        },
        // I/O errors on an in-memory cursor only mean "ran out of bytes".
        ImageError::IoError(e) => PreprocessError::Corrupt {
            reason: format!("{name}: truncated or unreadable ({e})"),
        },
        other => PreprocessError::Corrupt {
            reason: format!("{name}: {other}"),
        },
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
