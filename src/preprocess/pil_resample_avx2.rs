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
    _mm256_setr_epi32, _mm256_srai_epi32, _mm256_storeu_si256, _mm_loadl_epi64,
};

use super::{clip8, AxisTaps, Kernels, COLUMN_STRIDE, HALF, LANES, PRECISION_BITS};

/// The AVX2 kernels, where the CPU has AVX2.
pub(super) fn kernels() -> Option<Kernels> {
    is_x86_feature_detected!("avx2").then_some(Kernels {
        column: column_checked,
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
