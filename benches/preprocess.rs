//! Decode + resize + crop per image (`preprocess::prepare`), the CPU work a
//! request costs before the model: the fixture photos as they come (small
//! JPEG and PNG), and a 12-megapixel phone-sized JPEG made from one of them.
//!
//! `cargo bench --bench preprocess` (needs `make fixtures`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use seresnext_serve::model::ModelId;
use seresnext_serve::preprocess::{self, DecodeLimits};

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("SERESNEXT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/fixtures"));
    let path = dir.join("photos").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run `make fixtures`", path.display()))
}

/// A 4032x3024 JPEG at quality 90 (a phone camera's size), upscaled from a
/// fixture photo with a fine texture added so it does not compress like a
/// blur.
fn phone_sized_jpeg() -> Vec<u8> {
    let photo = image::load_from_memory(&fixture("chelsea.jpg")).unwrap();
    let mut large = photo
        .resize_exact(4032, 3024, FilterType::Triangle)
        .to_rgb8();
    for (x, y, pixel) in large.enumerate_pixels_mut() {
        let grain = ((x * 7 + y * 13) % 9) as u8;
        pixel.0 = pixel.0.map(|v| v.saturating_add(grain));
    }
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&large)
        .unwrap();
    jpeg
}

fn preprocess(c: &mut Criterion) {
    let spec = ModelId::SeResNeXt50_32x4d.pretrained_cfg().transform_spec();
    let limits = DecodeLimits::default();
    let mut group = c.benchmark_group("prepare");
    let images = [
        ("chelsea_451x300.jpg", fixture("chelsea.jpg")),
        (
            "astronaut_512x512_progressive.jpg",
            fixture("astronaut_progressive.jpg"),
        ),
        ("logo_rgba.png", fixture("logo_rgba.png")),
        ("phone_4032x3024.jpg", phone_sized_jpeg()),
    ];
    for (name, bytes) in &images {
        group.throughput(Throughput::Elements(1));
        group.bench_function(*name, |b| {
            b.iter(|| preprocess::prepare(black_box(bytes), &spec, &limits).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, preprocess);
criterion_main!(benches);
