//! JPEG pixels from libjpeg-turbo, the decoder inside Pillow, so that a JPEG
//! gives the same 8-bit RGB here as `Image.open(..).convert("RGB")` does in
//! the user's notebook.
//!
//! Pillow decodes with libjpeg's defaults: the accurate integer IDCT (ISLOW),
//! fancy (triangular) chroma upsampling and libjpeg's YCbCr→RGB tables.
//! TurboJPEG's defaults are the same, so nothing is set but the limits.
//! Warnings (extraneous bytes, a bad Huffman code that is skipped) leave the
//! image decoded, and Pillow keeps it; only fatal errors refuse the upload.
//!
//! This is the only module that calls C directly; each call is a plain
//! function of the TurboJPEG 3 API on a handle this module owns.
#![allow(unsafe_code)]

use std::ffi::{c_int, CStr};
use std::ptr::NonNull;

use image::RgbImage;
use turbojpeg_sys as tj;

use super::{DecodeLimits, PreprocessError};

/// Most progressive scans a JPEG may have. Cameras and encoders write at
/// most a few dozen; thousands of tiny scans are a known way to make a small
/// file cost minutes of CPU, so libjpeg-turbo advises a limit for untrusted
/// input.
const MAX_SCANS: c_int = 500;

/// Decodes a JPEG whose header the caller has already checked against
/// `limits` (the check is repeated here with libjpeg-turbo's own reading).
pub(super) fn decode_rgb(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, PreprocessError> {
    let mut decoder = Decompressor::new()?;
    decoder.set(tj::TJPARAM_TJPARAM_SCANLIMIT, MAX_SCANS)?;
    decoder.read_header(bytes)?;
    let width = decoder.get(tj::TJPARAM_TJPARAM_JPEGWIDTH);
    let height = decoder.get(tj::TJPARAM_TJPARAM_JPEGHEIGHT);
    let (Ok(width), Ok(height)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(corrupt(format!("header gives a size of {width}x{height}")));
    };
    if width == 0 || height == 0 {
        return Err(corrupt(format!("image has zero size ({width}x{height})")));
    }
    limits.check(width, height)?;
    let colorspace = decoder.get(tj::TJPARAM_TJPARAM_COLORSPACE);
    let cmyk =
        colorspace == tj::TJCS_TJCS_CMYK as c_int || colorspace == tj::TJCS_TJCS_YCCK as c_int;
    let (format, channels) = if cmyk {
        (tj::TJPF_TJPF_CMYK, 4)
    } else {
        (tj::TJPF_TJPF_RGB, 3)
    };
    let pixels = width as usize * height as usize;
    let mut samples = vec![0u8; pixels * channels];
    decoder.decompress(bytes, &mut samples, width, height, format)?;
    let rgb = if cmyk {
        adobe_cmyk_to_rgb(&samples)
    } else {
        samples
    };
    RgbImage::from_raw(width, height, rgb)
        .ok_or_else(|| corrupt("decoded buffer has the wrong size (this is a bug)".into()))
}

/// Pillow's reading of a CMYK JPEG followed by `convert("RGB")`.
///
/// Pillow assumes Adobe's convention of inverted samples (rawmode `CMYK;I`),
/// then converts without a colour profile: each channel is
/// `(255 - k) - (255 - k) * c / 255`, with Pillow's rounded division by 255.
fn adobe_cmyk_to_rgb(samples: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(samples.len() / 4 * 3);
    for pixel in samples.chunks_exact(4) {
        let ink = |stored: u8| u32::from(255 - stored);
        let not_black = 255 - ink(pixel[3]);
        for &channel in &pixel[..3] {
            let covered = mul_div_255(ink(channel), not_black);
            rgb.push(not_black.saturating_sub(covered) as u8);
        }
    }
    rgb
}

/// `a * b / 255`, rounded the way Pillow's `MULDIV255` rounds.
fn mul_div_255(a: u32, b: u32) -> u32 {
    let product = a * b + 128;
    ((product >> 8) + product) >> 8
}

fn corrupt(reason: String) -> PreprocessError {
    PreprocessError::Corrupt {
        reason: format!("jpeg: {reason}"),
    }
}

/// A TurboJPEG decompression handle, destroyed on drop.
struct Decompressor {
    handle: NonNull<std::ffi::c_void>,
}

impl Decompressor {
    fn new() -> Result<Self, PreprocessError> {
        // SAFETY: tj3Init has no preconditions; it returns null on failure.
        let handle = unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as c_int) };
        NonNull::new(handle)
            .map(|handle| Self { handle })
            .ok_or_else(|| corrupt("cannot create a libjpeg-turbo decoder".into()))
    }

    fn set(&mut self, parameter: tj::TJPARAM, value: c_int) -> Result<(), PreprocessError> {
        // SAFETY: the handle is live; unknown parameters are reported, not UB.
        let status = unsafe { tj::tj3Set(self.handle.as_ptr(), parameter as c_int, value) };
        self.check(status)
    }

    fn get(&self, parameter: tj::TJPARAM) -> c_int {
        // SAFETY: the handle is live; tj3Get only reads its state.
        unsafe { tj::tj3Get(self.handle.as_ptr(), parameter as c_int) }
    }

    fn read_header(&mut self, bytes: &[u8]) -> Result<(), PreprocessError> {
        // SAFETY: the pointer and length describe `bytes`, which outlives the call.
        let status = unsafe {
            tj::tj3DecompressHeader(
                self.handle.as_ptr(),
                bytes.as_ptr(),
                bytes.len() as tj::size_t,
            )
        };
        self.check(status)
    }

    /// Decodes into `output`, which holds `width * height` pixels of `format`.
    fn decompress(
        &mut self,
        bytes: &[u8],
        output: &mut [u8],
        width: u32,
        height: u32,
        format: tj::TJPF,
    ) -> Result<(), PreprocessError> {
        let channels = if format == tj::TJPF_TJPF_CMYK { 4 } else { 3 };
        let pitch = width as usize * channels;
        if output.len() != pitch * height as usize {
            return Err(corrupt(
                "output buffer has the wrong size (this is a bug)".into(),
            ));
        }
        let pitch = c_int::try_from(pitch).map_err(|_| corrupt("row is too wide".into()))?;
        // SAFETY: `output` holds `height` rows of `pitch` bytes (checked
        // above), the size the header gave, which tj3Decompress8 writes at
        // scaling factor 1; `bytes` outlives the call.
        let status = unsafe {
            tj::tj3Decompress8(
                self.handle.as_ptr(),
                bytes.as_ptr(),
                bytes.len() as tj::size_t,
                output.as_mut_ptr(),
                pitch,
                format as c_int,
            )
        };
        self.check(status)
    }

    /// `Ok` for success and for warnings, after which the image is decoded
    /// (Pillow keeps such images too); the library's message otherwise.
    fn check(&self, status: c_int) -> Result<(), PreprocessError> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: the handle is live; both calls only read its error state,
        // and the string lives in the handle until the next call on it.
        let (code, message) = unsafe {
            let handle = self.handle.as_ptr();
            let message = CStr::from_ptr(tj::tj3GetErrorStr(handle));
            (
                tj::tj3GetErrorCode(handle),
                message.to_string_lossy().into_owned(),
            )
        };
        if code == tj::TJERR_TJERR_WARNING as c_int {
            return Ok(());
        }
        Err(corrupt(message))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.handle.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_is_pillows() {
        // Stored inverted (Adobe): 255 means no ink. No ink at all is white,
        // full black ink is black whatever the other inks.
        assert_eq!(adobe_cmyk_to_rgb(&[255, 255, 255, 255]), [255, 255, 255]);
        assert_eq!(adobe_cmyk_to_rgb(&[255, 0, 128, 0]), [0, 0, 0]);
        // Full cyan ink on no black: no red, full green and blue.
        assert_eq!(adobe_cmyk_to_rgb(&[0, 255, 255, 255]), [0, 255, 255]);
        // Half black ink (stored 128: ink 127) leaves 128; half magenta ink
        // covers round(127 * 128 / 255) = 64 of that.
        assert_eq!(adobe_cmyk_to_rgb(&[255, 128, 255, 128]), [128, 64, 128]);
    }

    #[test]
    fn fatal_errors_are_corrupt_and_name_the_library_message() {
        let error = decode_rgb(b"\xff\xd8\xff\xd9", &DecodeLimits::default()).unwrap_err();
        assert!(
            matches!(&error, PreprocessError::Corrupt { reason } if reason.starts_with("jpeg: ")),
            "{error:?}"
        );
    }
}
