//! Tests for `decode`: every supported format and pixel layout, EXIF
//! orientation, 16-bit conversion as in Pillow, alpha handling, and every error path.

use image::{
    DynamicImage, GrayAlphaImage, GrayImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, RgbImage,
    Rgba, RgbaImage,
};

use super::*;
use crate::preprocess::test_support::{
    encode, ihdr, jpeg_with_orientation, palette_png, png_chunk, zlib_stored, PNG_SIGNATURE,
    PROGRESSIVE_JPEG,
};

fn limits() -> DecodeLimits {
    DecodeLimits::default()
}

fn decode_ok(bytes: &[u8]) -> RgbImage {
    decode(bytes, &limits()).unwrap()
}

/// Left half red, right half blue, optionally with a bottom half of a third
/// color so orientation changes are visible.
fn halves(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

fn assert_close(actual: &Rgb<u8>, expected: [u8; 3], tolerance: u8) {
    for (a, e) in actual.0.iter().zip(expected) {
        assert!(a.abs_diff(e) <= tolerance, "{actual:?} vs {expected:?}");
    }
}

#[test]
fn baseline_jpeg_decodes() {
    let jpeg = encode(&DynamicImage::ImageRgb8(halves(64, 32)), ImageFormat::Jpeg);
    let image = decode_ok(&jpeg);
    assert_eq!(image.dimensions(), (64, 32));
    assert_close(image.get_pixel(4, 16), [255, 0, 0], 8);
    assert_close(image.get_pixel(60, 16), [0, 0, 255], 8);
}

#[test]
fn grayscale_jpeg_decodes_to_rgb() {
    let gray = GrayImage::from_pixel(16, 16, Luma([90]));
    let image = decode_ok(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Jpeg));
    let pixel = image.get_pixel(8, 8);
    assert_eq!(pixel[0], pixel[1]);
    assert_eq!(pixel[1], pixel[2]);
    assert_close(pixel, [90, 90, 90], 2);
}

#[test]
fn progressive_jpeg_decodes() {
    let image = decode_ok(PROGRESSIVE_JPEG);
    assert_eq!(image.dimensions(), (16, 16));
    assert_close(image.get_pixel(2, 2), [255, 0, 0], 8);
    assert_close(image.get_pixel(13, 2), [0, 0, 255], 8);
}

#[test]
fn exif_orientation_6_rotates_clockwise() {
    // Stored 64 wide x 32 tall, red left / blue right. Orientation 6 means
    // "rotate 90° clockwise to display": the left side ends up on top.
    let jpeg = encode(&DynamicImage::ImageRgb8(halves(64, 32)), ImageFormat::Jpeg);
    let image = decode_ok(&jpeg_with_orientation(&jpeg, 6));
    assert_eq!(image.dimensions(), (32, 64));
    assert_close(image.get_pixel(16, 4), [255, 0, 0], 8);
    assert_close(image.get_pixel(16, 60), [0, 0, 255], 8);
}

#[test]
fn exif_orientation_1_is_left_alone() {
    let jpeg = encode(&DynamicImage::ImageRgb8(halves(64, 32)), ImageFormat::Jpeg);
    let image = decode_ok(&jpeg_with_orientation(&jpeg, 1));
    assert_eq!(image.dimensions(), (64, 32));
    assert_close(image.get_pixel(4, 16), [255, 0, 0], 8);
}

#[test]
fn png_8bit_rgb_is_lossless() {
    let source = RgbImage::from_fn(7, 5, |x, y| Rgb([x as u8 * 30, y as u8 * 50, 7]));
    let png = encode(&DynamicImage::ImageRgb8(source.clone()), ImageFormat::Png);
    assert_eq!(decode_ok(&png), source);
}

#[test]
fn png_rgba_drops_alpha_without_compositing() {
    // PIL's convert("RGB") keeps the stored color even where alpha is 0.
    let source = RgbaImage::from_fn(4, 4, |x, _| Rgba([200, 100, 50, (x * 60) as u8]));
    let png = encode(&DynamicImage::ImageRgba8(source), ImageFormat::Png);
    let image = decode_ok(&png);
    assert!(image.pixels().all(|p| p.0 == [200, 100, 50]));
}

#[test]
fn dropping_alpha_keeps_every_pixel_in_order_whatever_the_count() {
    for pixels in [0usize, 1, 3, 4, 7, 8, 13] {
        let rgba: Vec<u8> = (0..pixels * 4).map(|i| (i * 37 % 251) as u8).collect();
        let expected: Vec<u8> = rgba
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        assert_eq!(drop_alpha(rgba), expected, "{pixels} pixels");
    }
}

#[test]
fn png_gray_and_gray_alpha_replicate_luma() {
    let gray = GrayImage::from_fn(3, 3, |x, y| Luma([(x * 3 + y) as u8 * 20]));
    let image = decode_ok(&encode(
        &DynamicImage::ImageLuma8(gray.clone()),
        ImageFormat::Png,
    ));
    for (x, y, pixel) in image.enumerate_pixels() {
        let luma = gray.get_pixel(x, y)[0];
        assert_eq!(pixel.0, [luma, luma, luma]);
    }
    let gray_alpha = GrayAlphaImage::from_pixel(3, 3, LumaA([77, 0]));
    let png = encode(&DynamicImage::ImageLumaA8(gray_alpha), ImageFormat::Png);
    assert!(decode_ok(&png).pixels().all(|p| p.0 == [77, 77, 77]));
}

/// 16-bit samples and the 8-bit value Pillow 13 gives for them after
/// `convert("RGB")` (printed by the venv's Pillow from the same PNGs): colour
/// and gray+alpha keep the high byte; plain gray (mode `I;16`) clips at 255.
const SIXTEEN_BIT_SAMPLES: [u16; 8] = [65535, 0, 257, 257 * 128, 257 * 254, 200, 511, 300];
const PILLOW_HIGH_BYTE: [u8; 8] = [255, 0, 1, 128, 254, 0, 1, 1];
const PILLOW_GRAY_CLIPPED: [u8; 8] = [255, 0, 255, 255, 255, 200, 255, 255];

#[test]
fn png_16bit_colour_and_gray_alpha_keep_the_high_byte_as_pillow_does() {
    let width = SIXTEEN_BIT_SAMPLES.len() as u32;
    let sample = |x: u32| SIXTEEN_BIT_SAMPLES[x as usize];
    let rgb16: ImageBuffer<Rgb<u16>, Vec<u16>> =
        ImageBuffer::from_fn(width, 1, |x, _| Rgb([sample(x); 3]));
    let rgba16: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(width, 1, |x, _| {
        Rgba([sample(x), sample(x), sample(x), 1234])
    });
    let gray_alpha16: ImageBuffer<LumaA<u16>, Vec<u16>> =
        ImageBuffer::from_fn(width, 1, |x, _| LumaA([sample(x), 1234]));
    for image in [
        DynamicImage::ImageRgb16(rgb16),
        DynamicImage::ImageRgba16(rgba16),
        DynamicImage::ImageLumaA16(gray_alpha16),
    ] {
        let decoded = decode_ok(&encode(&image, ImageFormat::Png));
        for (x, expected) in PILLOW_HIGH_BYTE.iter().enumerate() {
            assert_eq!(decoded.get_pixel(x as u32, 0).0, [*expected; 3], "{x}");
        }
    }
}

#[test]
fn png_16bit_gray_clips_at_255_as_pillow_does() {
    let width = SIXTEEN_BIT_SAMPLES.len() as u32;
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(width, 1, |x, _| Luma([SIXTEEN_BIT_SAMPLES[x as usize]]));
    let decoded = decode_ok(&encode(
        &DynamicImage::ImageLuma16(gray16),
        ImageFormat::Png,
    ));
    for (x, expected) in PILLOW_GRAY_CLIPPED.iter().enumerate() {
        assert_eq!(decoded.get_pixel(x as u32, 0).0, [*expected; 3], "{x}");
    }
}

#[test]
fn png_1bit_gray_expands_to_black_and_white() {
    // 8 pixels in one byte, MSB first: 1010_0000.
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend(ihdr(8, 1, 1, 0));
    png.extend(png_chunk(b"IDAT", &zlib_stored(&[0, 0b1010_0000])));
    png.extend(png_chunk(b"IEND", &[]));
    let image = decode_ok(&png);
    let first: Vec<u8> = image.pixels().map(|p| p[0]).take(4).collect();
    assert_eq!(first, [255, 0, 255, 0]);
}

#[test]
fn palette_png_decodes_with_and_without_transparency() {
    let palette = [[10, 20, 30], [200, 150, 100], [0, 255, 0]];
    let indices = [0, 1, 2, 1, 0, 2];
    for alphas in [&[][..], &[0, 128][..]] {
        let png = palette_png(3, 2, &palette, alphas, &indices);
        let image = decode_ok(&png);
        assert_eq!(image.dimensions(), (3, 2));
        for (pixel, &index) in image.pixels().zip(&indices) {
            // Transparent entries keep their palette color, as in PIL.
            assert_eq!(pixel.0, palette[index as usize]);
        }
    }
}

#[test]
fn bmp_gif_and_lossless_webp_decode() {
    let source = RgbImage::from_fn(6, 4, |x, y| {
        if (x + y) % 2 == 0 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let dynamic = DynamicImage::ImageRgb8(source.clone());
    // BMP and lossless WebP are exact; GIF is exact for a 2-color image.
    let bmp = encode(&dynamic, ImageFormat::Bmp);
    let webp = encode(&dynamic, ImageFormat::WebP);
    let gif = encode(
        &DynamicImage::ImageRgba8(dynamic.to_rgba8()),
        ImageFormat::Gif,
    );
    for (name, bytes) in [("bmp", bmp), ("webp", webp), ("gif", gif)] {
        assert_eq!(decode_ok(&bytes), source, "{name}");
    }
}

#[test]
fn empty_body_is_its_own_error() {
    assert_eq!(decode(&[], &limits()), Err(PreprocessError::Empty));
}

fn unsupported_name(bytes: &[u8]) -> String {
    match decode(bytes, &limits()) {
        Err(PreprocessError::UnsupportedFormat { format }) => format,
        other => panic!("expected UnsupportedFormat, got {other:?}"),
    }
}

#[test]
fn unknown_and_unsupported_formats_are_named() {
    let random: Vec<u8> = (0u32..512)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(unsupported_name(&random), "unknown");
    assert_eq!(unsupported_name(b"II*\0\x08\0\0\0\0\0\0\0"), "tiff");
    assert_eq!(unsupported_name(b"MM\0*\0\0\0\x08\0\0\0\0"), "tiff");
    let svg = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    assert_eq!(unsupported_name(svg), "svg");
    assert_eq!(
        unsupported_name(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic"),
        "heic"
    );
    assert_eq!(
        unsupported_name(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1"),
        "avif"
    );
    assert_eq!(unsupported_name(b"%PDF-1.7\n"), "pdf");
    assert_eq!(unsupported_name(b"hello"), "unknown");
}

fn assert_corrupt(bytes: &[u8]) {
    match decode(bytes, &limits()) {
        Err(PreprocessError::Corrupt { .. }) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn truncated_files_are_corrupt() {
    let noisy = RgbImage::from_fn(64, 64, |x, y| Rgb([(x * 7 + y) as u8, (x * y) as u8, 3]));
    let dynamic = DynamicImage::ImageRgb8(noisy);
    for format in [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Bmp,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&dynamic, format);
        for keep in [30, bytes.len() / 4, bytes.len() / 2] {
            assert_corrupt(&bytes[..keep]);
        }
    }
    // JPEG is checked structurally, so even the last byte counts; a PNG cut
    // inside its IEND chunk is refused by the png crate.
    let jpeg = encode(&dynamic, ImageFormat::Jpeg);
    assert_corrupt(&jpeg[..jpeg.len() - 1]);
    let png = encode(&dynamic, ImageFormat::Png);
    assert_corrupt(&png[..png.len() - 10]);
    assert_corrupt(&PROGRESSIVE_JPEG[..PROGRESSIVE_JPEG.len() / 2]);
    // Only a signature: the format is recognized, the content is missing.
    assert_corrupt(&PNG_SIGNATURE);
    assert_corrupt(&[0xFF, 0xD8, 0xFF]);
}

#[test]
fn zero_sized_images_are_corrupt() {
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend(ihdr(0, 10, 8, 2));
    png.extend(png_chunk(b"IDAT", &zlib_stored(&[])));
    png.extend(png_chunk(b"IEND", &[]));
    assert_corrupt(&png);
}

/// A PNG whose IHDR announces `width` x `height` 16-bit RGBA, followed by a
/// tiny IDAT: what a decompression bomb looks like before inflation.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut png = PNG_SIGNATURE.to_vec();
    png.extend(ihdr(width, height, 16, 6));
    png.extend(png_chunk(b"IDAT", &zlib_stored(&[0; 16])));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

#[test]
fn huge_png_header_is_rejected_before_allocating() {
    // 100000² RGBA16 would need 80 GB; if anything allocated the pixel
    // buffer this test would abort or crawl instead of returning at once.
    let started = std::time::Instant::now();
    let err = decode(&png_header_only(100_000, 100_000), &limits()).unwrap_err();
    assert_eq!(
        err,
        PreprocessError::TooLarge {
            width: 100_000,
            height: 100_000,
            limit: limits(),
        }
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn each_limit_is_enforced_on_its_own() {
    let too_large = |w: u32, h: u32| match decode(&png_header_only(w, h), &limits()) {
        Err(PreprocessError::TooLarge { width, height, .. }) => (width, height) == (w, h),
        _ => false,
    };
    assert!(too_large(16_385, 1), "width");
    assert!(too_large(1, 16_385), "height");
    assert!(too_large(10_000, 5_001), "pixels");
    let small_limits = DecodeLimits {
        max_width: 5,
        max_height: 5,
        max_pixels: 25,
    };
    let png = encode(&DynamicImage::ImageRgb8(halves(6, 2)), ImageFormat::Png);
    assert!(matches!(
        decode(&png, &small_limits),
        Err(PreprocessError::TooLarge {
            width: 6,
            height: 2,
            ..
        })
    ));
}

#[test]
fn mangled_inputs_never_panic() {
    // Calls the decoder directly, without the catch_unwind safety net, so a
    // panic would fail the test instead of being masked.
    let noisy = RgbImage::from_fn(24, 16, |x, y| Rgb([(x * 11) as u8, (y * 13) as u8, 90]));
    let dynamic = DynamicImage::ImageRgb8(noisy);
    let mut fixtures: Vec<Vec<u8>> = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Bmp,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ]
    .iter()
    .map(|&format| encode(&dynamic, format))
    .collect();
    fixtures.push(PROGRESSIVE_JPEG.to_vec());
    // A flipped header byte can announce a big image; keep each try cheap.
    let small_limits = DecodeLimits {
        max_width: 4096,
        max_height: 4096,
        max_pixels: 1 << 20,
    };
    for bytes in &fixtures {
        let format = sniff_format(bytes).unwrap();
        for keep in (1..bytes.len()).step_by(7) {
            let _ = decode_format(&bytes[..keep], format, &small_limits);
        }
        for position in (0..bytes.len()).step_by(5) {
            let mut mangled = bytes.clone();
            mangled[position] ^= 0xA5;
            let _ = decode_format(&mangled, format, &small_limits);
        }
    }
}

#[test]
fn jpeg_end_marker_walk_skips_segments_and_tolerates_trailing_data() {
    let jpeg = encode(&DynamicImage::ImageRgb8(halves(16, 16)), ImageFormat::Jpeg);
    assert!(jpeg_reaches_end_marker(&jpeg));
    assert!(jpeg_reaches_end_marker(PROGRESSIVE_JPEG));
    // Data after EOI (some cameras append it) is fine.
    let mut trailing = jpeg.clone();
    trailing.extend_from_slice(b"\0\0garbage\xFF");
    assert!(decode(&trailing, &limits()).is_ok());
    // An FF D9 inside an APP segment (an EXIF thumbnail's EOI) is not the end.
    let mut fake_end = jpeg[..2].to_vec();
    fake_end.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0xFF, 0xD9]);
    fake_end.extend_from_slice(&jpeg[2..jpeg.len() - 2]);
    assert!(!jpeg_reaches_end_marker(&fake_end));
}
