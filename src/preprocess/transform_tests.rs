//! Tests for `transform`: the size/offset arithmetic against values printed
//! by Python (timm 1.0.31 / torchvision 0.26), and the pixel output against a
//! straightforward full-resize-then-crop reference.

use image::{Rgb, RgbImage};

use super::*;

fn spec(input_size: u32, crop_pct: f64) -> TransformSpec {
    TransformSpec {
        input_size,
        crop_pct,
        crop_mode: CropMode::Center,
        interpolation: Interpolation::Bicubic,
    }
}

#[test]
fn scale_size_matches_math_floor() {
    // math.floor(input_size / crop_pct) in Python.
    for (input_size, crop_pct, expected) in [
        (224, 0.875, 256),
        (288, 0.95, 303),
        (320, 1.0, 320),
        (256, 0.9, 284),
        (224, 0.9, 248),
    ] {
        assert_eq!(spec(input_size, crop_pct).scale_size(), expected);
    }
}

#[test]
fn resized_size_matches_torchvision() {
    // torchvision _compute_resized_output_size(size=[256]), as (w, h).
    for ((w, h), expected) in [
        ((640, 480), (341, 256)),
        ((500, 333), (384, 256)),
        ((333, 500), (256, 384)),
        ((1, 10_000), (256, 2_560_000)),
        ((256, 256), (256, 256)),
        ((1023, 767), (341, 256)),
        ((4032, 3024), (341, 256)),
        ((3024, 4032), (256, 341)),
        ((257, 1000), (256, 996)),
        ((999, 1000), (256, 256)),
    ] {
        assert_eq!(resized_size(w, h, 256), Some(expected), "{w}x{h}");
    }
    assert_eq!(resized_size(0, 5, 256), None);
    assert_eq!(resized_size(1, u32::MAX, 256), None);
}

#[test]
fn center_crop_offset_rounds_half_to_even() {
    // int(round((n - 224) / 2.0)) in Python.
    for (len, expected) in [
        (224, 0),
        (225, 0),
        (226, 1),
        (227, 2),
        (228, 2),
        (229, 2),
        (256, 16),
        (257, 16),
        (258, 17),
        (259, 18),
    ] {
        assert_eq!(center_crop_offset(len, 224), expected, "len {len}");
    }
}

#[test]
fn invalid_specs_are_rejected() {
    let image = RgbImage::new(8, 8);
    for bad in [
        spec(0, 0.875),
        spec(224, 0.0),
        spec(224, -1.0),
        spec(224, f64::NAN),
    ] {
        let err = transform(&image, &bad).unwrap_err();
        assert_eq!(err.error_type(), "preprocess_failed", "{bad:?}");
    }
}

#[test]
fn interpolation_parses_timm_names() {
    assert_eq!(
        Interpolation::from_timm_name("bicubic"),
        Some(Interpolation::Bicubic)
    );
    assert_eq!(
        Interpolation::from_timm_name("bilinear"),
        Some(Interpolation::Bilinear)
    );
    assert_eq!(Interpolation::from_timm_name("lanczos"), None);
}

fn textured(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            ((x * 37 + y * 11) % 256) as u8,
            ((x * y) % 251) as u8,
            (((x / 7) + (y / 5)) * 40 % 256) as u8,
        ])
    })
}

/// The naive pipeline, as PIL runs it: resize the whole image (both passes,
/// horizontal first), then cut the crop out.
fn full_resize_then_crop(image: &RgbImage, spec: &TransformSpec) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let (rw, rh) = match spec.crop_mode {
        CropMode::Center => resized_size(w, h, spec.scale_size()).unwrap(),
        CropMode::Squash => (spec.scale_size(), spec.scale_size()),
    };
    let columns = AxisTaps::new(w, rw, 0, rw, spec.interpolation);
    let rows = AxisTaps::new(h, rh, 0, rh, spec.interpolation);
    let mut resized = vec![0u8; rw as usize * rh as usize * 3];
    resample_rgb(
        image.as_raw(),
        w as usize,
        &columns,
        &rows,
        &mut ResampleScratch::default(),
        &mut resized,
    );
    let crop = spec.input_size;
    let (left, top) = (center_crop_offset(rw, crop), center_crop_offset(rh, crop));
    let row_bytes = rw as usize * 3;
    let mut out = Vec::new();
    for row in resized
        .chunks_exact(row_bytes)
        .skip(top as usize)
        .take(crop as usize)
    {
        out.extend_from_slice(&row[left as usize * 3..(left + crop) as usize * 3]);
    }
    out
}

#[test]
fn windowed_resize_matches_full_resize_then_crop() {
    for (w, h) in [
        (640, 480),
        (333, 500),
        (1023, 767),
        (300, 300),
        (257, 1000),
        (100, 80),
    ] {
        for interpolation in [Interpolation::Bicubic, Interpolation::Bilinear] {
            let spec = TransformSpec {
                interpolation,
                ..spec(224, 0.875)
            };
            let image = textured(w, h);
            let prepared = transform(&image, &spec).unwrap();
            assert_eq!((prepared.width, prepared.height), (224, 224));
            let reference = full_resize_then_crop(&image, &spec);
            // Output samples do not depend on each other: the window is
            // the same bytes as the full resize.
            assert!(
                prepared.rgb == reference,
                "{w}x{h} {interpolation:?}: the window differs from the full resize"
            );
        }
    }
}

#[test]
fn image_already_at_scale_size_is_cropped_without_resampling() {
    let image = textured(256, 300);
    // 256 wide: resized to (256, int(256*300/256)) = (256, 300), no filtering.
    let prepared = transform(&image, &spec(224, 0.875)).unwrap();
    let (left, top) = (16, center_crop_offset(300, 224));
    for y in 0..224 {
        for x in 0..224 {
            let offset = (y * 224 + x) as usize * 3;
            let expected = image.get_pixel(x + left, y + top).0;
            assert_eq!(prepared.rgb[offset..offset + 3], expected);
        }
    }
}

#[test]
fn tiny_and_extreme_images_still_give_a_full_crop() {
    for (w, h) in [(1, 1), (3, 2), (1, 10_000), (10_000, 1)] {
        let prepared = transform(&textured(w, h), &spec(224, 0.875)).unwrap();
        assert_eq!(prepared.rgb.len(), 224 * 224 * 3, "{w}x{h}");
    }
    let uniform = RgbImage::from_pixel(1, 1, Rgb([10, 200, 30]));
    let prepared = transform(&uniform, &spec(224, 0.875)).unwrap();
    assert!(prepared.rgb.chunks_exact(3).all(|p| p == [10, 200, 30]));
}

#[test]
fn smaller_than_crop_is_zero_padded_like_torchvision() {
    // crop_pct > 1: scale size floor(224 / 1.2) = 186 < 224. A 300x200 image
    // becomes 279x186: cropped to 224 horizontally, padded vertically by
    // (224 - 186) // 2 = 19 rows on top and 19 below.
    let white = RgbImage::from_pixel(300, 200, Rgb([255, 255, 255]));
    let prepared = transform(&white, &spec(224, 1.2)).unwrap();
    assert_eq!((prepared.width, prepared.height), (224, 224));
    let row = |y: usize| &prepared.rgb[y * 224 * 3..(y + 1) * 224 * 3];
    for y in (0..19).chain(205..224) {
        assert!(row(y).iter().all(|&v| v == 0), "row {y} should be padding");
    }
    for y in 19..205 {
        assert!(row(y).iter().all(|&v| v >= 254), "row {y} should be image");
    }
}

#[test]
fn squash_resizes_both_sides_to_the_scale_size_then_crops() {
    // A 400x100 strip, squashed to 256x256 and cropped to 224: the crop
    // sees the whole width, unlike the center mode's 224 of 1024 columns.
    let image = textured(400, 100);
    let squash = TransformSpec {
        crop_mode: CropMode::Squash,
        ..spec(224, 0.875)
    };
    let full = full_resize_then_crop(&image, &squash);
    let ours = transform(&image, &squash).expect("transform");
    assert_eq!((ours.width, ours.height), (224, 224));
    assert_eq!(ours.rgb, full);
    let center = transform(&image, &spec(224, 0.875)).expect("transform");
    assert_ne!(center.rgb, ours.rgb);
}
