//! Pillow's resampler (`Image.resize` with `BICUBIC` or `BILINEAR`), in the
//! same arithmetic, so that a crop is the same bytes as timm's.
//!
//! Pillow computes each output sample from filter weights in double
//! precision, normalizes them to sum to one, turns them into 22-bit fixed
//! point (rounding half away from zero), accumulates `u8 × i32` products from
//! a bias of one half, and clips the sum to `u8`. It runs a horizontal pass
//! into an 8-bit intermediate image, then a vertical pass. Any other
//! rounding, precision or pass order differs by a level on a few tenths of a
//! percent of the samples; this module follows each step, and only computes
//! the window of the output that survives the crop (output samples do not
//! depend on each other, so a window of the full resize is exactly the same
//! bytes).

use multiversion::multiversion;

use super::transform::Interpolation;

/// Pillow's `PRECISION_BITS` for 8-bit images: `32 - 8 - 2`.
const PRECISION_BITS: u32 = 22;
/// The accumulator's starting value: one half, so the shift rounds.
const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// The weights of one axis: for each output sample, the first input sample
/// it reads and its fixed-point weights.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct AxisTaps {
    /// `(first input sample, number of taps)` per output sample.
    pub bounds: Vec<(usize, usize)>,
    /// `bounds.len() * stride` weights; output `i`'s are at `i * stride`.
    weights: Vec<i32>,
    stride: usize,
}

impl AxisTaps {
    /// The taps Pillow uses for outputs `window_start..window_start +
    /// window_len` of an axis resized from `in_size` to `out_size` samples.
    pub fn new(
        in_size: u32,
        out_size: u32,
        window_start: u32,
        window_len: u32,
        interpolation: Interpolation,
    ) -> Self {
        let (filter, support): (fn(f64) -> f64, f64) = match interpolation {
            Interpolation::Bicubic => (bicubic, 2.0),
            Interpolation::Bilinear => (bilinear, 1.0),
        };
        // Pillow passes the box edges as C floats; 0 and any image size
        // below 2^24 are exact in them.
        let scale = f64::from(in_size as f32) / f64::from(out_size);
        let filter_scale = scale.max(1.0);
        let support = support * filter_scale;
        let stride = support.ceil() as usize * 2 + 1;
        let inverse = 1.0 / filter_scale;
        let mut bounds = Vec::with_capacity(window_len as usize);
        let mut weights = vec![0i32; window_len as usize * stride];
        let mut real = vec![0f64; stride];
        for (index, out) in (window_start..window_start + window_len).enumerate() {
            let center = (f64::from(out) + 0.5) * scale;
            // C's `(int)` truncates toward zero, as `as i64` does.
            let first = ((center - support + 0.5) as i64).max(0);
            let end = ((center + support + 0.5) as i64).min(i64::from(in_size));
            let taps = (end - first).clamp(0, stride as i64) as usize;
            let mut sum = 0.0;
            for (tap, weight) in real[..taps].iter_mut().enumerate() {
                *weight = filter((tap as f64 + first as f64 - center + 0.5) * inverse);
                sum += *weight;
            }
            let fixed = &mut weights[index * stride..index * stride + taps];
            for (out, &weight) in fixed.iter_mut().zip(&real[..taps]) {
                let normalized = if sum != 0.0 { weight / sum } else { weight };
                *out = to_fixed_point(normalized);
            }
            bounds.push((first as usize, taps));
        }
        Self {
            bounds,
            weights,
            stride,
        }
    }

    fn weights(&self, output: usize) -> &[i32] {
        let taps = self.bounds[output].1;
        &self.weights[output * self.stride..output * self.stride + taps]
    }

    /// Input samples `[first, end)` that any output of the window reads.
    pub fn span(&self) -> (usize, usize) {
        let first = self.bounds.iter().map(|b| b.0).min().unwrap_or(0);
        let end = self.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(first);
        (first, end)
    }
}

/// Pillow's `bicubic_filter` (a = -0.5).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Pillow's `bilinear_filter`.
fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `normalize_coeffs_8bpc`: round half away from zero, truncate.
fn to_fixed_point(weight: f64) -> i32 {
    let scaled = weight * f64::from(1u32 << PRECISION_BITS);
    if weight < 0.0 {
        (scaled - 0.5) as i32
    } else {
        (scaled + 0.5) as i32
    }
}

/// Pillow's `clip8`: the accumulated sum back to a sample.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Source rows the horizontal pass takes at once. Their samples of one
/// column are stored side by side (a transposed block), so every tap is one
/// multiply-add over `LANES` adjacent `i32`s, which the compiler turns into
/// SIMD; row by row, each output pixel would be a scalar chain of three.
const BLOCK_ROWS: usize = 16;
const LANES: usize = BLOCK_ROWS * 3;

/// Resamples the RGB image `source` (`width` samples per row) into `out`:
/// `columns` and `rows` give the taps of each axis. `scratch` holds the
/// horizontal pass between calls.
pub(super) fn resample_rgb(
    source: &[u8],
    width: usize,
    columns: &AxisTaps,
    rows: &AxisTaps,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) {
    let out_width = columns.bounds.len();
    let (first_row, end_row) = rows.span();
    let row_bytes = out_width * 3;
    scratch.clear();
    scratch.resize(row_bytes * (end_row - first_row), 0);
    horizontal_pass(source, width, (first_row, end_row), columns, scratch);
    vertical_pass(scratch, first_row, rows, row_bytes, out);
}

/// Every source row in `[first, end)` resampled along the row into `out`
/// (`end - first` rows of `columns.bounds.len()` pixels).
#[multiversion(targets("x86_64+avx2", "x86_64+sse4.1"))]
fn horizontal_pass(
    source: &[u8],
    width: usize,
    (first_row, end_row): (usize, usize),
    columns: &AxisTaps,
    out: &mut [u8],
) {
    let out_width = columns.bounds.len();
    let (first_column, end_column) = columns.span();
    let mut block = vec![0u8; (end_column - first_column) * LANES];
    for block_start in (first_row..end_row).step_by(BLOCK_ROWS) {
        let block_rows = BLOCK_ROWS.min(end_row - block_start);
        // Transpose: column `c` of block row `r` goes to `c * LANES + r * 3`.
        // Rows past `block_rows` keep the previous block's samples; their
        // sums are computed and thrown away.
        for r in 0..block_rows {
            let row = &source[(block_start + r) * width * 3..][..width * 3];
            let used = &row[first_column * 3..end_column * 3];
            for (pixel, lanes) in used.chunks_exact(3).zip(block.chunks_exact_mut(LANES)) {
                lanes[r * 3..r * 3 + 3].copy_from_slice(pixel);
            }
        }
        for (column, &(first, _)) in columns.bounds.iter().enumerate() {
            let weights = columns.weights(column);
            let start = (first - first_column) * LANES;
            let taps = &block[start..start + weights.len() * LANES];
            // A fixed-size array of sums over the taps, one SIMD
            // multiply-add per eight lanes and tap.
            let mut sums = [HALF; LANES];
            for (lanes, &weight) in taps.chunks_exact(LANES).zip(weights) {
                let lanes: &[u8; LANES] = lanes.try_into().expect("LANES samples");
                for (sum, &sample) in sums.iter_mut().zip(lanes) {
                    *sum = sum.wrapping_add(i32::from(sample).wrapping_mul(weight));
                }
            }
            let samples = sums.map(clip8);
            for (r, pixel) in samples.chunks_exact(3).take(block_rows).enumerate() {
                let at = ((block_start - first_row + r) * out_width + column) * 3;
                out[at..at + 3].copy_from_slice(pixel);
            }
        }
    }
}

/// The vertical pass over the horizontal one (`pass`, whose first row is
/// source row `first_row`): whole rows at a time, which vectorizes as is.
#[multiversion(targets("x86_64+avx2", "x86_64+sse4.1"))]
fn vertical_pass(pass: &[u8], first_row: usize, rows: &AxisTaps, row_bytes: usize, out: &mut [u8]) {
    let mut sums = vec![0i32; row_bytes];
    for (row, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        let first = rows.bounds[row].0;
        sums.fill(HALF);
        for (tap, &weight) in rows.weights(row).iter().enumerate() {
            let start = (first + tap - first_row) * row_bytes;
            let input = &pass[start..start + row_bytes];
            for (sum, &sample) in sums.iter_mut().zip(input) {
                *sum = sum.wrapping_add(i32::from(sample).wrapping_mul(weight));
            }
        }
        for (sample, &sum) in out_row.iter_mut().zip(&sums) {
            *sample = clip8(sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity() {
        let taps = AxisTaps::new(5, 5, 0, 5, Interpolation::Bicubic);
        for (output, &(first, count)) in taps.bounds.iter().enumerate() {
            let weights = taps.weights(output);
            let one = first
                + weights
                    .iter()
                    .position(|&w| w == 1 << PRECISION_BITS)
                    .unwrap();
            assert_eq!(one, output);
            assert_eq!(
                weights.iter().filter(|&&w| w != 0).count(),
                1,
                "{count} taps"
            );
        }
    }

    #[test]
    fn weights_sum_to_one_within_rounding_and_windows_match_the_full_axis() {
        let full = AxisTaps::new(451, 384, 0, 384, Interpolation::Bicubic);
        for output in 0..384 {
            let sum: i32 = full.weights(output).iter().sum();
            assert!((sum - (1 << PRECISION_BITS)).abs() <= 8, "{output}: {sum}");
        }
        let window = AxisTaps::new(451, 384, 80, 224, Interpolation::Bicubic);
        for index in 0..224 {
            assert_eq!(window.bounds[index], full.bounds[80 + index]);
            assert_eq!(window.weights(index), full.weights(80 + index));
        }
    }

    #[test]
    fn pillows_rounding_of_negative_weights_is_away_from_zero() {
        assert_eq!(to_fixed_point(-0.25 / f64::from(1u32 << PRECISION_BITS)), 0);
        assert_eq!(to_fixed_point(-0.5 / f64::from(1u32 << PRECISION_BITS)), -1);
        assert_eq!(to_fixed_point(0.5 / f64::from(1u32 << PRECISION_BITS)), 1);
        assert_eq!(clip8(-5), 0);
        assert_eq!(clip8(300 << PRECISION_BITS), 255);
        assert_eq!(clip8((7 << PRECISION_BITS) + HALF - 1), 7);
    }

    /// Pillow's horizontal pass as it reads in C: row by row, pixel by pixel.
    fn horizontal_pass_row_by_row(
        source: &[u8],
        width: usize,
        rows: (usize, usize),
        columns: &AxisTaps,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        for row in source
            .chunks_exact(width * 3)
            .skip(rows.0)
            .take(rows.1 - rows.0)
        {
            for (column, &(first, _)) in columns.bounds.iter().enumerate() {
                let mut sums = [HALF; 3];
                for (tap, &weight) in columns.weights(column).iter().enumerate() {
                    for channel in 0..3 {
                        sums[channel] += i32::from(row[(first + tap) * 3 + channel]) * weight;
                    }
                }
                out.extend(sums.map(clip8));
            }
        }
        out
    }

    #[test]
    fn the_blocked_horizontal_pass_is_the_row_by_row_one() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut noise = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        for (width, height, out_width, rows) in [
            (451, 300, 384, (0, 300)),
            (97, 41, 224, (3, 38)),
            (640, 35, 50, (0, 35)),
        ] {
            let source: Vec<u8> = (0..width * height * 3).map(|_| noise()).collect();
            for interpolation in [Interpolation::Bicubic, Interpolation::Bilinear] {
                let columns =
                    AxisTaps::new(width as u32, out_width, 7, out_width - 14, interpolation);
                let mut blocked = vec![0u8; (rows.1 - rows.0) * columns.bounds.len() * 3];
                horizontal_pass(&source, width, rows, &columns, &mut blocked);
                let reference = horizontal_pass_row_by_row(&source, width, rows, &columns);
                assert!(
                    blocked == reference,
                    "{width}x{height} -> {out_width} {interpolation:?}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_through_both_passes() {
        let (width, height) = (37, 23);
        let source = vec![200u8; width * height * 3];
        let columns = AxisTaps::new(37, 16, 0, 16, Interpolation::Bicubic);
        let rows = AxisTaps::new(23, 50, 10, 20, Interpolation::Bilinear);
        let mut out = vec![0u8; 16 * 20 * 3];
        resample_rgb(&source, width, &columns, &rows, &mut Vec::new(), &mut out);
        assert!(out.iter().all(|&v| v == 200), "{out:?}");
    }
}
