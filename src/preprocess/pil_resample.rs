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
/// multiply-add over `LANES` adjacent `i32`s, which vectorizes; row by row,
/// each output pixel would be a scalar chain of three.
const BLOCK_ROWS: usize = 16;
const LANES: usize = BLOCK_ROWS * 3;
/// Bytes per column of a transposed block: the lanes, and room for the
/// transpose's 4-byte stores (one byte past the last lane).
const COLUMN_STRIDE: usize = LANES + 4;

/// Buffers a resize reuses from call to call, so the hot path neither
/// allocates nor clears them per request.
#[derive(Debug, Default)]
pub(super) struct ResampleScratch {
    /// The horizontal pass: 8-bit rows, as Pillow keeps them.
    pass: Vec<u8>,
    /// One transposed block of source rows.
    block: Vec<u8>,
}

/// Grows `buffer` to at least `len` bytes and returns that prefix. Its old
/// contents are left as they are: every caller overwrites what it reads.
fn at_least(buffer: &mut Vec<u8>, len: usize) -> &mut [u8] {
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    &mut buffer[..len]
}

/// Resamples the RGB image `source` (`width` samples per row) into `out`:
/// `columns` and `rows` give the taps of each axis.
pub(super) fn resample_rgb(
    source: &[u8],
    width: usize,
    columns: &AxisTaps,
    rows: &AxisTaps,
    scratch: &mut ResampleScratch,
    out: &mut [u8],
) {
    let out_width = columns.bounds.len();
    let (first_row, end_row) = rows.span();
    let row_bytes = out_width * 3;
    let pass = at_least(&mut scratch.pass, row_bytes * (end_row - first_row));
    let kernels = Kernels::detect();
    horizontal_pass(
        source,
        width,
        (first_row, end_row),
        columns,
        &mut scratch.block,
        kernels,
        pass,
    );
    (kernels.vertical)(pass, first_row, rows, row_bytes, out);
}

/// `transpose_rows`' signature: source, width, first block row, rows in the
/// block, the columns used, the block.
type TransposeFn = fn(&[u8], usize, usize, usize, (usize, usize), &mut [u8]);

/// The inner loops, picked once per resize for the CPU at hand: explicit
/// AVX2 where it exists (the compiler's own vectorization spills the 48
/// sums to the stack on every tap), portable code elsewhere.
#[derive(Clone, Copy)]
struct Kernels {
    /// The 48 output lanes of one column from its taps in a transposed block.
    column: fn(taps: &[u8], weights: &[i32]) -> [u8; 64],
    /// Source rows into a transposed block (see `transpose_rows`).
    transpose: TransposeFn,
    vertical: fn(&[u8], usize, &AxisTaps, usize, &mut [u8]),
}

impl Kernels {
    fn portable() -> Self {
        Self {
            column: column_portable,
            transpose: transpose_rows,
            vertical: vertical_portable,
        }
    }

    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(kernels) = avx2::kernels() {
            return kernels;
        }
        Self::portable()
    }
}

/// Every source row in `[first, end)` resampled along the row into `out`
/// (`end - first` rows of `columns.bounds.len()` pixels).
fn horizontal_pass(
    source: &[u8],
    width: usize,
    (first_row, end_row): (usize, usize),
    columns: &AxisTaps,
    block: &mut Vec<u8>,
    kernels: Kernels,
    out: &mut [u8],
) {
    let out_width = columns.bounds.len();
    let (first_column, end_column) = columns.span();
    let block = at_least(block, (end_column - first_column) * COLUMN_STRIDE);
    for block_start in (first_row..end_row).step_by(BLOCK_ROWS) {
        let block_rows = BLOCK_ROWS.min(end_row - block_start);
        (kernels.transpose)(
            source,
            width,
            block_start,
            block_rows,
            (first_column, end_column),
            block,
        );
        for (column, &(first, _)) in columns.bounds.iter().enumerate() {
            let weights = columns.weights(column);
            let taps = &block[(first - first_column) * COLUMN_STRIDE..];
            let samples = (kernels.column)(taps, weights);
            for r in 0..block_rows {
                let at = ((block_start - first_row + r) * out_width + column) * 3;
                // Four bytes where the fourth is the next column's first
                // sample, written after this one; the row's last column
                // would reach into the next row, already written.
                if column + 1 < out_width {
                    out[at..at + 4].copy_from_slice(&samples[r * 3..r * 3 + 4]);
                } else {
                    out[at..at + 3].copy_from_slice(&samples[r * 3..r * 3 + 3]);
                }
            }
        }
    }
}

/// Source rows `block_start..block_start + block_rows`, columns
/// `[first, end)`, into `block`: column `c`'s pixel of block row `r` goes to
/// `c * COLUMN_STRIDE + r * 3`. Rows past `block_rows` keep the previous
/// block's samples; their sums are computed and thrown away.
fn transpose_rows(
    source: &[u8],
    width: usize,
    block_start: usize,
    block_rows: usize,
    (first_column, end_column): (usize, usize),
    block: &mut [u8],
) {
    for r in 0..block_rows {
        let row = &source[(block_start + r) * width * 3..][..width * 3];
        transpose_row(&row[first_column * 3..end_column * 3], r, 0, block);
    }
}

/// One source row's pixels (`used`, the columns a block keeps) from column
/// `from` on, into lane `r` of the block.
fn transpose_row(used: &[u8], r: usize, from: usize, block: &mut [u8]) {
    let last = used.len() / 3 - 1;
    // Four-byte moves (the fourth byte lands in the next row's lane,
    // rewritten next), but the last pixel, whose fourth byte would be past
    // the row.
    for column in from..last {
        let pixel: [u8; 4] = used[column * 3..column * 3 + 4].try_into().expect("4");
        let at = column * COLUMN_STRIDE + r * 3;
        block[at..at + 4].copy_from_slice(&pixel);
    }
    if from <= last {
        let at = last * COLUMN_STRIDE + r * 3;
        block[at..at + 3].copy_from_slice(&used[last * 3..last * 3 + 3]);
    }
}

/// The column kernel in plain Rust, for CPUs without AVX2.
#[multiversion(targets("x86_64+sse4.1"))]
fn column_portable(taps: &[u8], weights: &[i32]) -> [u8; 64] {
    let mut sums = [HALF; LANES];
    for (tap, &weight) in weights.iter().enumerate() {
        let lanes: &[u8; LANES] = taps[tap * COLUMN_STRIDE..][..LANES]
            .try_into()
            .expect("LANES samples");
        for (sum, &sample) in sums.iter_mut().zip(lanes) {
            *sum = sum.wrapping_add(i32::from(sample).wrapping_mul(weight));
        }
    }
    let mut samples = [0u8; 64];
    for (sample, &sum) in samples.iter_mut().zip(&sums) {
        *sample = clip8(sum);
    }
    samples
}

/// The vertical pass over the horizontal one (`pass`, whose first row is
/// source row `first_row`): whole rows at a time, which vectorizes as is.
#[multiversion(targets("x86_64+sse4.1"))]
fn vertical_portable(
    pass: &[u8],
    first_row: usize,
    rows: &AxisTaps,
    row_bytes: usize,
    out: &mut [u8],
) {
    let mut sums = vec![0i32; row_bytes];
    for (row, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        vertical_row_portable(pass, first_row, rows, row, row_bytes, &mut sums, out_row);
    }
}

/// One output row of the vertical pass; `sums` is scratch of `row_bytes`.
fn vertical_row_portable(
    pass: &[u8],
    first_row: usize,
    rows: &AxisTaps,
    row: usize,
    row_bytes: usize,
    sums: &mut [i32],
    out_row: &mut [u8],
) {
    let first = rows.bounds[row].0;
    sums.fill(HALF);
    for (tap, &weight) in rows.weights(row).iter().enumerate() {
        let start = (first + tap - first_row) * row_bytes;
        let input = &pass[start..start + row_bytes];
        for (sum, &sample) in sums.iter_mut().zip(input) {
            *sum = sum.wrapping_add(i32::from(sample).wrapping_mul(weight));
        }
    }
    for (sample, &sum) in out_row.iter_mut().zip(sums.iter()) {
        *sample = clip8(sum);
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "pil_resample_avx2.rs"]
mod avx2;

#[cfg(test)]
#[path = "pil_resample_tests.rs"]
mod tests;
