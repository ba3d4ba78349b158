//! Hostile bytes for the bad-input corpus, generated so the corpus needs no
//! fixture files: PNG and GIF bombs built chunk by chunk, truncated and
//! header-only files, seeded noise, multipart and JSON bodies.

use std::io::Cursor;

use serde_json::Value;
// The PNG chunk builder the decoder's unit tests use too.
use seresnext_serve::preprocess::test_support::png_chunk;

/// PNG signature and an IHDR for 8-bit RGB of this size, nothing else.
pub fn png_signature_and_ihdr(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png
}

/// A complete, tiny PNG file whose header announces `width` x `height`: a
/// decompression bomb as it looks before inflation.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = png_signature_and_ihdr(width, height);
    // zlib stream of nothing: the header check must refuse before inflating.
    png.extend(png_chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    ));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// A GIF whose logical screen and single 1x1-coded frame have these sizes.
pub fn gif(screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&screen.0.to_le_bytes());
    gif.extend_from_slice(&screen.1.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.push(0x2C);
    gif.extend_from_slice(&[0, 0, 0, 0]);
    gif.extend_from_slice(&frame.0.to_le_bytes());
    gif.extend_from_slice(&frame.1.to_le_bytes());
    gif.push(0);
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
    gif
}

/// Seeded xorshift bytes: random-looking, the same on every run.
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

/// `image` encoded in `format` by the `image` crate.
pub fn encode(image: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A JSON value as a request body.
pub fn json_body(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// A multipart/form-data body with one part per slice, boundary `XBOUNDARYX`.
pub fn multipart(parts: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"f{index}\"; \
                 filename=\"{index}\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XBOUNDARYX--\r\n");
    body
}

/// Content types of the corpus.
pub const MULTIPART: Option<&str> = Some("multipart/form-data; boundary=XBOUNDARYX");
pub const JSON: Option<&str> = Some("application/json");
pub const OCTETS: Option<&str> = Some("application/octet-stream");
