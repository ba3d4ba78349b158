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

/// Pillow's vertical pass as it reads in C: sample by sample.
fn vertical_pass_sample_by_sample(
    pass: &[u8],
    first_row: usize,
    rows: &AxisTaps,
    row_bytes: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (row, &(first, _)) in rows.bounds.iter().enumerate() {
        for lane in 0..row_bytes {
            let mut sum = HALF;
            for (tap, &weight) in rows.weights(row).iter().enumerate() {
                sum += i32::from(pass[(first + tap - first_row) * row_bytes + lane]) * weight;
            }
            out.push(clip8(sum));
        }
    }
    out
}

/// The kernels this CPU can run: the portable ones always, AVX2 where
/// present (so both are checked on any CI machine with AVX2).
fn kernel_sets() -> Vec<(&'static str, Kernels)> {
    #[allow(unused_mut)]
    let mut sets = vec![("portable", Kernels::portable())];
    #[cfg(target_arch = "x86_64")]
    if let Some(kernels) = avx2::kernels() {
        sets.push(("avx2", kernels));
    }
    sets
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn the_blocked_horizontal_pass_is_the_row_by_row_one() {
    for (name, kernels) in kernel_sets() {
        // One block buffer for every case, left dirty by the one before, as
        // the thread-local scratch is between requests.
        let mut block = vec![0xab; 7];
        for (width, height, out_width, rows) in [
            (451, 300, 384, (0, 300)),
            (97, 41, 224, (3, 38)),
            (640, 35, 50, (0, 35)),
            (1, 20, 9, (2, 19)),
            (60, 30, 20, (0, 22)),
            (23, 9, 30, (0, 9)),
        ] {
            let source = noise(0x2545_f491_4f6c_dd1d ^ width as u64, width * height * 3);
            for interpolation in [Interpolation::Bicubic, Interpolation::Bilinear] {
                let window = (out_width / 16, out_width - out_width / 8);
                let columns =
                    AxisTaps::new(width as u32, out_width, window.0, window.1, interpolation);
                let mut blocked = vec![0u8; (rows.1 - rows.0) * columns.bounds.len() * 3];
                horizontal_pass(
                    &source,
                    width,
                    rows,
                    &columns,
                    &mut block,
                    kernels,
                    &mut blocked,
                );
                let reference = horizontal_pass_row_by_row(&source, width, rows, &columns);
                assert!(
                    blocked == reference,
                    "{name}: {width}x{height} -> {out_width} {interpolation:?}"
                );
            }
        }
    }
}

#[test]
fn the_vertical_kernels_are_the_sample_by_sample_pass() {
    for (name, kernels) in kernel_sets() {
        // Row widths with and without a remainder past the 32-lane vectors.
        for (row_bytes, in_rows, out_rows, window) in [
            (672, 300, 256, (16, 224)),
            (39, 17, 40, (3, 30)),
            (7, 90, 8, (0, 8)),
        ] {
            for interpolation in [Interpolation::Bicubic, Interpolation::Bilinear] {
                let rows = AxisTaps::new(in_rows, out_rows, window.0, window.1, interpolation);
                let (first_row, end_row) = rows.span();
                let pass = noise(
                    0x9e37_79b9_7f4a_7c15 ^ row_bytes as u64,
                    (end_row - first_row) * row_bytes,
                );
                let mut out = vec![0u8; window.1 as usize * row_bytes];
                (kernels.vertical)(&pass, first_row, &rows, row_bytes, &mut out);
                let reference = vertical_pass_sample_by_sample(&pass, first_row, &rows, row_bytes);
                assert!(
                    out == reference,
                    "{name}: {row_bytes} bytes, {in_rows} -> {out_rows} rows {interpolation:?}"
                );
            }
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
    let mut scratch = ResampleScratch::default();
    resample_rgb(&source, width, &columns, &rows, &mut scratch, &mut out);
    assert!(out.iter().all(|&v| v == 200), "{out:?}");
}
