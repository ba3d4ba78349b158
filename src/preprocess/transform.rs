//! timm's eval geometry: resize the short side to `floor(input_size /
//! crop_pct)`, then center-crop `input_size` x `input_size`.
//!
//! Every rounding rule is copied from the Python reference so the crop lands
//! on the same pixels:
//! * scale size: `math.floor(img_size / crop_pct)` (timm `transforms_factory`),
//! * long side: `int(size * long / short)` (torchvision
//!   `_compute_resized_output_size`),
//! * crop offset: `int(round((len - crop) / 2.0))`, round-half-even, with zero
//!   padding when the image is smaller than the crop (torchvision
//!   `center_crop`; timm uses `transforms.CenterCrop` unchanged),
//! * filter: PIL's antialiased convolution (`Image.resize`), which
//!   `fast_image_resize`'s `Convolution` reproduces (it is a port of
//!   Pillow-SIMD's resampler).
//!
//! Only the 224x224 window that survives the crop is ever computed: the
//! resizer is given the matching source box (PIL's `box` semantics: same
//! scale, same taps, edges clamped at the image border), so no full 256xN
//! intermediate image is allocated (for a 1x10000 strip that image would be
//! 256x2.5M pixels).

use std::cell::RefCell;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::RgbImage;

use super::{PreparedImage, PreprocessError};

/// Resampling filter, named as in timm's pretrained configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// PIL `BICUBIC`: cubic convolution with a = -0.5 (Catmull-Rom).
    Bicubic,
    /// PIL `BILINEAR`: triangle filter.
    Bilinear,
}

impl Interpolation {
    /// Parse timm's `interpolation` config string (`"bicubic"`, `"bilinear"`).
    pub fn from_timm_name(name: &str) -> Option<Self> {
        match name {
            "bicubic" => Some(Self::Bicubic),
            "bilinear" => Some(Self::Bilinear),
            _ => None,
        }
    }

    /// The name timm's configs (and our metadata) use for it.
    pub fn timm_name(self) -> &'static str {
        match self {
            Self::Bicubic => "bicubic",
            Self::Bilinear => "bilinear",
        }
    }

    fn filter(self) -> FilterType {
        match self {
            Self::Bicubic => FilterType::CatmullRom,
            Self::Bilinear => FilterType::Bilinear,
        }
    }

    /// Filter radius in source pixels at scale 1 (PIL's `support`).
    fn support(self) -> f64 {
        match self {
            Self::Bicubic => 2.0,
            Self::Bilinear => 1.0,
        }
    }
}

/// The eval transform of one model, built from its pretrained config
/// (`input_size`, `crop_pct`, `interpolation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformSpec {
    /// Side of the square crop fed to the network.
    pub input_size: u32,
    /// Fraction of the resized short side kept by the crop.
    pub crop_pct: f64,
    pub interpolation: Interpolation,
}

impl TransformSpec {
    /// The short-side resize target: `math.floor(input_size / crop_pct)`.
    pub fn scale_size(&self) -> u32 {
        // Same IEEE division and floor as Python, so e.g. 224 / 0.875 = 256.
        (f64::from(self.input_size) / self.crop_pct).floor() as u32
    }

    /// Reject specs that would divide by zero or produce an empty image.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        let scale = f64::from(self.input_size) / self.crop_pct;
        if self.input_size == 0
            || !self.crop_pct.is_finite()
            || self.crop_pct <= 0.0
            || !(1.0..=f64::from(u32::MAX)).contains(&scale)
        {
            return Err(PreprocessError::Transform {
                reason: format!("invalid transform spec {self:?}"),
            });
        }
        Ok(())
    }
}

/// Size `(width, height)` of the image after torchvision's
/// `Resize(short_side)`: the short side becomes `short_side` and the long
/// side `int(short_side * long / short)`.
///
/// Integer floor division equals Python's `int()` of the float quotient here:
/// the product is below 2^53 for any u32 dimensions of real images, so the
/// correctly rounded float can never reach the next integer. `None` when the
/// long side would not fit in a `u32`.
pub fn resized_size(width: u32, height: u32, short_side: u32) -> Option<(u32, u32)> {
    if width == 0 || height == 0 {
        return None;
    }
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = u64::from(short_side) * u64::from(long) / u64::from(short);
    let new_long = u32::try_from(new_long).ok()?;
    Some(if width <= height {
        (short_side, new_long)
    } else {
        (new_long, short_side)
    })
}

/// torchvision's crop start `int(round((len - crop) / 2.0))` for `len >= crop`.
/// Python rounds half to even, so a 1-pixel surplus starts at 0, 3 at 2, 5 at 2.
pub fn center_crop_offset(len: u32, crop: u32) -> u32 {
    let surplus = len.saturating_sub(crop);
    let half = surplus / 2;
    let is_tie = surplus % 2 == 1;
    if is_tie && half % 2 == 1 {
        half + 1
    } else {
        half
    }
}

/// How one axis of the resized image maps onto the same axis of the crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AxisWindow {
    /// First resized pixel that lands in the crop.
    resized_start: u32,
    /// Resized pixels that land in the crop (`min(resized, crop)`).
    len: u32,
    /// Zero pixels before them in the crop; non-zero only when the resized
    /// image is smaller than the crop (torchvision pads `(crop - len) // 2`).
    pad_before: u32,
}

fn axis_window(resized: u32, crop: u32) -> AxisWindow {
    if resized >= crop {
        AxisWindow {
            resized_start: center_crop_offset(resized, crop),
            len: crop,
            pad_before: 0,
        }
    } else {
        AxisWindow {
            resized_start: 0,
            len: resized,
            pad_before: (crop - resized) / 2,
        }
    }
}

/// `(start, len)` of the source interval whose resize yields
/// `window` of an axis resized from `source` to `resized` pixels. Keeping the
/// full-image scale means the resizer computes exactly the filter taps it
/// would for the whole image (PIL's `box` argument works the same way).
fn source_interval(source: u32, resized: u32, window: AxisWindow) -> (f64, f64) {
    let scale_point = |p: u32| f64::from(p) * f64::from(source) / f64::from(resized);
    let start = scale_point(window.resized_start);
    let end = scale_point(window.resized_start + window.len);
    (start, fit_inside(start, end - start, source))
}

/// `len`, shrunk by an ulp or two if `start + len` overshoots `bound`
/// through float rounding: the resizer rejects boxes that poke outside the
/// image, even by 1e-13 of a pixel.
fn fit_inside(start: f64, mut len: f64, bound: u32) -> f64 {
    for _ in 0..4 {
        if start + len <= f64::from(bound) {
            break;
        }
        len = len.next_down();
    }
    len
}

/// A source rectangle (fractional, in source pixels) and the output size it
/// is resampled to.
#[derive(Debug, Clone, Copy)]
struct ResampleBox {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    out_width: u32,
    out_height: u32,
}

/// Per-thread scratch reused across requests, so the hot path does not
/// allocate its intermediate buffers each time. `rows` keeps the largest
/// size seen (at most `input_size` x 16384 rows x 3 bytes, ~11 MB, under the
/// default decode limits).
struct Scratch {
    resizer: Resizer,
    /// Output of the horizontal pass: `out_width` x (source rows needed).
    rows: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        resizer: Resizer::new(),
        rows: Vec::new(),
    });
}

/// Source rows `[first, last)` that the vertical pass of `area` reads: the
/// filter support around the first and last output rows, one row of margin
/// against float rounding, clamped to the image (where the filter is clamped
/// too, so extra rows never change a weight).
fn rows_needed(area: &ResampleBox, source_height: u32, support: f64) -> (u32, u32) {
    let scale = area.height / f64::from(area.out_height);
    let radius = support * scale.max(1.0);
    let first_center = area.top + 0.5 * scale;
    let last_center = area.top + area.height - 0.5 * scale;
    let first = (first_center - radius).floor() - 1.0;
    let last = (last_center + radius).ceil() + 1.0;
    let first = first.clamp(0.0, f64::from(source_height - 1)) as u32;
    let last = last.clamp(f64::from(first + 1), f64::from(source_height)) as u32;
    (first, last)
}

/// Resample `area` of `source` into `out` (RGB, `out_width * out_height`).
///
/// Two explicit single-axis passes, horizontal first, because that is PIL's
/// order: both passes round and clip to `u8` in between, so the order is
/// visible at high-contrast edges (up to 6 levels on skimage's `coffee`).
/// `fast_image_resize` on its own would run the vertical pass first.
fn resample(
    source: &RgbImage,
    area: &ResampleBox,
    interpolation: Interpolation,
    out: &mut [u8],
) -> Result<(), PreprocessError> {
    let (source_width, source_height) = source.dimensions();
    let (first_row, last_row) = rows_needed(area, source_height, interpolation.support());
    let row_count = last_row - first_row;
    let algorithm = ResizeAlg::Convolution(interpolation.filter());
    SCRATCH.with(|scratch| {
        let scratch = &mut *scratch.borrow_mut();
        let rows_len = area.out_width as usize * row_count as usize * 3;
        scratch.rows.resize(rows_len, 0);

        let full = ImageRef::new(
            source_width,
            source_height,
            source.as_raw(),
            PixelType::U8x3,
        )
        .map_err(resize_error)?;
        let mut rows = Image::from_slice_u8(
            area.out_width,
            row_count,
            &mut scratch.rows,
            PixelType::U8x3,
        )
        .map_err(resize_error)?;
        let horizontal = ResizeOptions::new().resize_alg(algorithm).crop(
            area.left,
            f64::from(first_row),
            area.width,
            f64::from(row_count),
        );
        scratch
            .resizer
            .resize(&full, &mut rows, &horizontal)
            .map_err(resize_error)?;

        let rows = ImageRef::new(area.out_width, row_count, &scratch.rows, PixelType::U8x3)
            .map_err(resize_error)?;
        let mut target =
            Image::from_slice_u8(area.out_width, area.out_height, out, PixelType::U8x3)
                .map_err(resize_error)?;
        let top = area.top - f64::from(first_row);
        let vertical = ResizeOptions::new().resize_alg(algorithm).crop(
            0.0,
            top,
            f64::from(area.out_width),
            fit_inside(top, area.height, row_count),
        );
        scratch
            .resizer
            .resize(&rows, &mut target, &vertical)
            .map_err(resize_error)
    })
}

/// Apply the eval geometry to a decoded image, producing the
/// `input_size` x `input_size` RGB crop.
pub fn transform(image: &RgbImage, spec: &TransformSpec) -> Result<PreparedImage, PreprocessError> {
    spec.validate()?;
    let (src_width, src_height) = image.dimensions();
    let crop = spec.input_size;
    let (resized_width, resized_height) = resized_size(src_width, src_height, spec.scale_size())
        .ok_or_else(|| PreprocessError::Transform {
            reason: format!(
                "cannot resize a {src_width}x{src_height} image to short side {}",
                spec.scale_size()
            ),
        })?;
    let x = axis_window(resized_width, crop);
    let y = axis_window(resized_height, crop);
    let (left, width) = source_interval(src_width, resized_width, x);
    let (top, height) = source_interval(src_height, resized_height, y);
    let area = ResampleBox {
        left,
        top,
        width,
        height,
        out_width: x.len,
        out_height: y.len,
    };
    let mut rgb = vec![0u8; crop as usize * crop as usize * 3];
    if x.len == crop && y.len == crop {
        // The normal case: resample straight into the output crop.
        resample(image, &area, spec.interpolation, &mut rgb)?;
    } else {
        // Image smaller than the crop on some axis: resample the visible
        // part, then place it on torchvision's zero padding.
        let row_bytes = x.len as usize * 3;
        let mut visible = vec![0u8; row_bytes * y.len as usize];
        resample(image, &area, spec.interpolation, &mut visible)?;
        for (row, pixels) in visible.chunks_exact(row_bytes).enumerate() {
            let start = ((y.pad_before as usize + row) * crop as usize + x.pad_before as usize) * 3;
            rgb[start..start + row_bytes].copy_from_slice(pixels);
        }
    }
    Ok(PreparedImage {
        width: crop,
        height: crop,
        rgb,
    })
}

fn resize_error(error: impl std::fmt::Display) -> PreprocessError {
    PreprocessError::Transform {
        reason: format!("resize failed: {error}"),
    }
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
