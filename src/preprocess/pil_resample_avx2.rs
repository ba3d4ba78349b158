//! The resampler's inner loops in AVX2 intrinsics: the same `u8 × i32`
//! products and wrapping `i32` sums as the portable kernels, so the bytes are
//! Pillow's either way. Written by hand because the compiler keeps the 48
//! sums of a column in memory, loading and storing each on every tap; here
//! they stay in six registers.
//!
//! Unsafe is allowed here for the intrinsics' raw loads and stores; the
//! safe entry points check every bound first.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi32, _mm256_cvtepu8_epi32, _mm256_mullo_epi32,
    _mm256_packs_epi32, _mm256_packus_epi16, _mm256_permutevar8x32_epi32, _mm256_set1_epi32,
    _mm256_setr_epi32, _mm256_srai_epi32, _mm256_storeu_si256, _mm_loadl_epi64, _mm_loadu_si128,
    _mm_setr_epi8, _mm_shuffle_epi8, _mm_storeu_si128, _mm_unpackhi_epi32, _mm_unpackhi_epi64,
    _mm_unpacklo_epi32, _mm_unpacklo_epi64,
};

use super::{clip8, transpose_row, AxisTaps, Kernels, COLUMN_STRIDE, HALF, LANES, PRECISION_BITS};

/// The AVX2 kernels, where the CPU has AVX2.
pub(super) fn kernels() -> Option<Kernels> {
    is_x86_feature_detected!("avx2").then_some(Kernels {
        column: column_checked,
        transpose: transpose_checked,
        vertical: vertical_checked,
    })
}

fn column_checked(taps: &[u8], weights: &[i32]) -> [u8; 64] {
    if let Some(last) = weights.len().checked_sub(1) {
        assert!(
            taps.len() >= last * COLUMN_STRIDE + LANES,
            "taps past the block"
        );
    }
    // SAFETY: `kernels` hands this out only where AVX2 was detected, and
    // every load stays inside `taps` (checked above).
    unsafe { column(taps, weights) }
}

fn vertical_checked(
    pass: &[u8],
    first_row: usize,
    rows: &AxisTaps,
    row_bytes: usize,
    out: &mut [u8],
) {
    for &(first, taps) in rows.bounds.iter().take(out.len() / row_bytes) {
        assert!(
            first >= first_row && (first + taps - first_row) * row_bytes <= pass.len(),
            "taps past the horizontal pass"
        );
    }
    // SAFETY: AVX2 was detected (see `kernels`), and every row a tap reads
    // lies inside `pass` (checked above).
    unsafe { vertical(pass, first_row, rows, row_bytes, out) }
}

fn transpose_checked(
    source: &[u8],
    width: usize,
    block_start: usize,
    block_rows: usize,
    (first, end): (usize, usize),
    block: &mut [u8],
) {
    assert!(
        first < end && end <= width,
        "columns {first}..{end} of {width}"
    );
    assert!(
        (block_start + block_rows) * width * 3 <= source.len(),
        "rows past the image"
    );
    assert!(
        block.len() >= (end - first) * COLUMN_STRIDE,
        "block too small"
    );
    // SAFETY: AVX2 was detected (see `kernels`); the bounds the loads and
    // stores rely on are checked above and in `transpose`.
    unsafe { transpose(source, width, block_start, block_rows, (first, end), block) }
}

// A 16-byte store at the last group of rows stays inside a column.
const _: () = assert!((super::BLOCK_ROWS - 4) * 3 + 16 <= COLUMN_STRIDE);

/// `transpose_rows` four rows by four pixels at a time: each row's four
/// pixels widened to one 32-bit lane each, a 4 x 4 lane transpose, and each
/// column's four pixels (12 bytes) stored at once. The four bytes past them
/// land in the next four rows' lanes, which are written after; the block's
/// padding takes them after the last rows. What does not fill a 4 x 4 tile,
/// or whose 16-byte load would pass the end of `source`, goes pixel by
/// pixel.
///
/// # Safety
/// AVX2, and the bounds `transpose_checked` asserts.
#[target_feature(enable = "avx2")]
unsafe fn transpose(
    source: &[u8],
    width: usize,
    block_start: usize,
    block_rows: usize,
    (first, end): (usize, usize),
    block: &mut [u8],
) {
    const Z: i8 = -1;
    let widen = _mm_setr_epi8(0, 1, 2, Z, 3, 4, 5, Z, 6, 7, 8, Z, 9, 10, 11, Z);
    let narrow = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, Z, Z, Z, Z);
    let columns = end - first;
    let used = |r: usize| {
        let start = ((block_start + r) * width + first) * 3;
        &source[start..start + columns * 3]
    };
    let whole_groups = block_rows / 4 * 4;
    for r0 in (0..whole_groups).step_by(4) {
        let starts: [usize; 4] =
            std::array::from_fn(|i| ((block_start + r0 + i) * width + first) * 3);
        // The group's last row is the one nearest the end of `source`.
        let room = source.len() - starts[3];
        let mut c = 0;
        while c + 4 <= columns && c * 3 + 16 <= room {
            let [a, b, cc, d] = starts.map(|start| {
                let pixels = _mm_loadu_si128(source.as_ptr().add(start + c * 3).cast());
                _mm_shuffle_epi8(pixels, widen)
            });
            let (ab_low, ab_high) = (_mm_unpacklo_epi32(a, b), _mm_unpackhi_epi32(a, b));
            let (cd_low, cd_high) = (_mm_unpacklo_epi32(cc, d), _mm_unpackhi_epi32(cc, d));
            let by_column = [
                _mm_unpacklo_epi64(ab_low, cd_low),
                _mm_unpackhi_epi64(ab_low, cd_low),
                _mm_unpacklo_epi64(ab_high, cd_high),
                _mm_unpackhi_epi64(ab_high, cd_high),
            ];
            for (j, pixels) in by_column.into_iter().enumerate() {
                let at = (c + j) * COLUMN_STRIDE + r0 * 3;
                _mm_storeu_si128(
                    block.as_mut_ptr().add(at).cast(),
                    _mm_shuffle_epi8(pixels, narrow),
                );
            }
            c += 4;
        }
        for r in r0..r0 + 4 {
            transpose_row(used(r), r, c, block);
        }
    }
    for r in whole_groups..block_rows {
        transpose_row(used(r), r, 0, block);
    }
}

/// Eight `u8` at `at`, widened to `i32` lanes.
///
/// # Safety
/// AVX2, and eight readable bytes at `at`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen8(at: *const u8) -> __m256i {
    _mm256_cvtepu8_epi32(_mm_loadl_epi64(at.cast::<__m128i>()))
}

/// `sum + sample * weight` over eight lanes, wrapping as Pillow's C does.
///
/// # Safety
/// AVX2, and eight readable bytes at `at`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn multiply_add(sum: __m256i, at: *const u8, weight: __m256i) -> __m256i {
    _mm256_add_epi32(sum, _mm256_mullo_epi32(widen8(at), weight))
}

/// Four vectors of sums to 32 samples, in lane order: `clip8` on each (the
/// shift, then saturating packs, which clamp to `0..=255` as `clip8` does).
#[inline]
#[target_feature(enable = "avx2")]
fn clip32(sums: [__m256i; 4]) -> __m256i {
    const SHIFT: i32 = PRECISION_BITS as i32;
    let [a, b, c, d] = sums;
    let (a, b) = (_mm256_srai_epi32::<SHIFT>(a), _mm256_srai_epi32::<SHIFT>(b));
    let (c, d) = (_mm256_srai_epi32::<SHIFT>(c), _mm256_srai_epi32::<SHIFT>(d));
    // The packs work within 128-bit halves; the permute puts the
    // dwords (four samples each) back in order.
    let packed = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// The 48 lanes of one column (see `column_portable`).
///
/// # Safety
/// AVX2, and `taps` holds `weights.len()` columns of `COLUMN_STRIDE` bytes
/// (the last one at least `LANES`).
#[target_feature(enable = "avx2")]
unsafe fn column(taps: &[u8], weights: &[i32]) -> [u8; 64] {
    let mut sums = [_mm256_set1_epi32(HALF); 6];
    let mut at = taps.as_ptr();
    for &weight in weights {
        let weight = _mm256_set1_epi32(weight);
        for (lane, sum) in sums.iter_mut().enumerate() {
            *sum = multiply_add(*sum, at.add(lane * 8), weight);
        }
        at = at.add(COLUMN_STRIDE);
    }
    let [a, b, c, d, e, f] = sums;
    let mut samples = [0u8; 64];
    let out = samples.as_mut_ptr().cast::<__m256i>();
    _mm256_storeu_si256(out, clip32([a, b, c, d]));
    _mm256_storeu_si256(out.add(1), clip32([e, f, e, f]));
    samples
}

/// The vertical pass (see `vertical_portable`): 32 lanes of a row at a time
/// through every tap, in registers, then the rest lane by lane.
///
/// # Safety
/// AVX2, and every tap row of every output row inside `pass`.
#[target_feature(enable = "avx2")]
unsafe fn vertical(
    pass: &[u8],
    first_row: usize,
    rows: &AxisTaps,
    row_bytes: usize,
    out: &mut [u8],
) {
    let vector_end = row_bytes / 32 * 32;
    for (row, out_row) in out.chunks_exact_mut(row_bytes).enumerate() {
        let first = rows.bounds[row].0 - first_row;
        let weights = rows.weights(row);
        let tap_rows = pass.as_ptr().add(first * row_bytes);
        for lane in (0..vector_end).step_by(32) {
            let mut sums = [_mm256_set1_epi32(HALF); 4];
            let mut at = tap_rows.add(lane);
            for &weight in weights {
                let weight = _mm256_set1_epi32(weight);
                for (part, sum) in sums.iter_mut().enumerate() {
                    *sum = multiply_add(*sum, at.add(part * 8), weight);
                }
                at = at.add(row_bytes);
            }
            _mm256_storeu_si256(out_row.as_mut_ptr().add(lane).cast(), clip32(sums));
        }
        for (lane, sample) in out_row.iter_mut().enumerate().skip(vector_end) {
            let mut sum = HALF;
            for (tap, &weight) in weights.iter().enumerate() {
                let input = i32::from(*tap_rows.add(tap * row_bytes + lane));
                sum = sum.wrapping_add(input.wrapping_mul(weight));
            }
            *sample = clip8(sum);
        }
    }
}
