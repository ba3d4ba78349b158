//! timm's eval geometry: resize the short side to `floor(input_size /
//! crop_pct)` (both sides, for `crop_mode = squash`), then center-crop
//! `input_size` x `input_size`.
//!
//! Every rounding rule is copied from the Python reference so the crop lands
//! on the same pixels:
//! * scale size: `math.floor(img_size / crop_pct)` (timm `transforms_factory`),
//! * long side: `int(size * long / short)` (torchvision
//!   `_compute_resized_output_size`),
//! * crop offset: `int(round((len - crop) / 2.0))`, round-half-even, with zero
//!   padding when the image is smaller than the crop (torchvision
//!   `center_crop`; timm uses `transforms.CenterCrop` unchanged),
//! * filter: PIL's antialiased convolution (`Image.resize`), in PIL's own
//!   fixed-point arithmetic ([`super::pil_resample`]), so the bytes are PIL's.
//!
//! Only the 224x224 window that survives the crop is ever computed, with the
//! taps of the full-size resize, so no full 256xN intermediate image is
//! allocated (for a 1x10000 strip that image would be 256x2.5M pixels).

use std::cell::RefCell;

use image::RgbImage;

use super::pil_resample::{resample_rgb, AxisTaps, ResampleScratch};
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
}

/// How the image reaches the scale size before the center crop (timm's
/// `crop_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CropMode {
    /// Short side to the scale size, aspect ratio kept.
    #[default]
    Center,
    /// Both sides to the scale size, aspect ratio dropped (timm:
    /// `Resize((scale_size, scale_size))`).
    Squash,
}

impl CropMode {
    /// Parse timm's `crop_mode` config string (`"center"`, `"squash"`).
    pub fn from_timm_name(name: &str) -> Option<Self> {
        match name {
            "center" => Some(Self::Center),
            "squash" => Some(Self::Squash),
            _ => None,
        }
    }

    /// The name timm's configs use for it.
    pub fn timm_name(self) -> &'static str {
        match self {
            Self::Center => "center",
            Self::Squash => "squash",
        }
    }
}

/// The eval transform of one model, built from its pretrained config
/// (`input_size`, `crop_pct`, `crop_mode`, `interpolation`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformSpec {
    /// Side of the square crop fed to the network.
    pub input_size: u32,
    /// Fraction of the resized short side kept by the crop.
    pub crop_pct: f64,
    pub crop_mode: CropMode,
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

thread_local! {
    /// The resizer's buffers on this thread, reused so the hot path does not
    /// allocate them per request. They keep the largest size seen (the
    /// horizontal pass at most `input_size` x 16384 rows x 3 bytes, ~11 MB,
    /// under the default decode limits).
    static RESAMPLE_SCRATCH: RefCell<ResampleScratch> = RefCell::new(ResampleScratch::default());
}

/// Apply the eval geometry to a decoded image, producing the
/// `input_size` x `input_size` RGB crop.
pub fn transform(image: &RgbImage, spec: &TransformSpec) -> Result<PreparedImage, PreprocessError> {
    spec.validate()?;
    let (src_width, src_height) = image.dimensions();
    let crop = spec.input_size;
    let resized = match spec.crop_mode {
        CropMode::Center => resized_size(src_width, src_height, spec.scale_size()),
        CropMode::Squash => Some((spec.scale_size(), spec.scale_size())),
    };
    let (resized_width, resized_height) = resized.ok_or_else(|| PreprocessError::Transform {
        reason: format!(
            "cannot resize a {src_width}x{src_height} image to short side {}",
            spec.scale_size()
        ),
    })?;
    let x = axis_window(resized_width, crop);
    let y = axis_window(resized_height, crop);
    let columns = AxisTaps::new(
        src_width,
        resized_width,
        x.resized_start,
        x.len,
        spec.interpolation,
    );
    let rows = AxisTaps::new(
        src_height,
        resized_height,
        y.resized_start,
        y.len,
        spec.interpolation,
    );
    let resample = |out: &mut [u8]| {
        RESAMPLE_SCRATCH.with(|scratch| {
            let source = image.as_raw();
            let width = src_width as usize;
            resample_rgb(
                source,
                width,
                &columns,
                &rows,
                &mut scratch.borrow_mut(),
                out,
            );
        })
    };
    let mut rgb = vec![0u8; crop as usize * crop as usize * 3];
    if x.len == crop && y.len == crop {
        // The normal case: resample straight into the output crop.
        resample(&mut rgb);
    } else {
        // Image smaller than the crop on some axis: resample the visible
        // part, then place it on torchvision's zero padding.
        let row_bytes = x.len as usize * 3;
        let mut visible = vec![0u8; row_bytes * y.len as usize];
        resample(&mut visible);
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

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
