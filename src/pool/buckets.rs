//! Which batch shapes a replica runs, so that every shape is warmed at start
//! and no request pays for a first-time shape (cudnn autotuning on a GPU,
//! oneDNN primitive creation on a CPU).

/// The batch sizes a replica runs: powers of two below `max_batch_size`, and
/// `max_batch_size` itself.
pub fn batch_buckets(max_batch_size: usize) -> Vec<usize> {
    let mut buckets: Vec<usize> = std::iter::successors(Some(1usize), |b| b.checked_mul(2))
        .take_while(|&b| b < max_batch_size)
        .collect();
    buckets.push(max_batch_size.max(1));
    buckets
}

/// One forward pass: `images` real images run as a batch of `shape`
/// (`shape - images` zero crops of padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub images: usize,
    pub shape: usize,
}

/// How to run `count` images.
///
/// On a GPU a new shape costs cuDNN autotuning, and one padded launch is
/// cheaper than several small ones, so the batch is padded up to the next
/// warmed bucket. On a CPU cost grows with every image, so padding would be
/// wasted work, and a first-time shape costs oneDNN little (measured: a
/// first batch of 7 ran as fast as the next ones), so the batch runs at its
/// exact size, up to the largest bucket. Splitting 7 into 4 + 2 + 1 instead
/// would give up the larger batch's throughput (bench: 20.8 img/s at 7,
/// 18.2 at 1).
pub fn plan_chunks(count: usize, buckets: &[usize], pad: bool) -> Vec<Chunk> {
    let Some(&largest) = buckets.last() else {
        return vec![Chunk {
            images: count,
            shape: count,
        }];
    };
    let mut chunks = Vec::new();
    let mut left = count;
    while left > 0 {
        let chunk = if pad {
            let shape = buckets
                .iter()
                .copied()
                .find(|&b| b >= left)
                .unwrap_or(largest);
            Chunk {
                images: left.min(shape),
                shape,
            }
        } else {
            let shape = left.min(largest);
            Chunk {
                images: shape,
                shape,
            }
        };
        left -= chunk.images;
        chunks.push(chunk);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_up_to_the_maximum() {
        assert_eq!(batch_buckets(1), [1]);
        assert_eq!(batch_buckets(8), [1, 2, 4, 8]);
        assert_eq!(batch_buckets(12), [1, 2, 4, 8, 12]);
        assert_eq!(batch_buckets(32), [1, 2, 4, 8, 16, 32]);
    }

    #[test]
    fn cpu_plan_runs_the_exact_count_without_padding() {
        let buckets = batch_buckets(32);
        let shapes = |count| -> Vec<(usize, usize)> {
            plan_chunks(count, &buckets, false)
                .iter()
                .map(|c| (c.images, c.shape))
                .collect()
        };
        assert_eq!(shapes(13), [(13, 13)]);
        assert_eq!(shapes(1), [(1, 1)]);
        // More than the largest bucket (an OOM split never asks for this,
        // but the plan stays whole): largest first, then the exact rest.
        assert_eq!(shapes(40), [(32, 32), (8, 8)]);
    }

    #[test]
    fn gpu_plan_pads_to_the_next_bucket() {
        let buckets = batch_buckets(32);
        assert_eq!(
            plan_chunks(13, &buckets, true),
            [Chunk {
                images: 13,
                shape: 16
            }]
        );
        assert_eq!(
            plan_chunks(32, &buckets, true),
            [Chunk {
                images: 32,
                shape: 32
            }]
        );
        assert_eq!(
            plan_chunks(1, &buckets, true),
            [Chunk {
                images: 1,
                shape: 1
            }]
        );
    }

    #[test]
    fn every_padded_shape_is_a_bucket_and_every_plan_covers_the_count() {
        for max in [1, 3, 8, 12, 32] {
            let buckets = batch_buckets(max);
            for count in 1..=max {
                for chunk in plan_chunks(count, &buckets, true) {
                    assert!(buckets.contains(&chunk.shape), "{max} {count} {chunk:?}");
                    assert!(chunk.images <= chunk.shape);
                }
                for pad in [false, true] {
                    let plan = plan_chunks(count, &buckets, pad);
                    assert_eq!(plan.iter().map(|c| c.images).sum::<usize>(), count);
                }
            }
        }
    }
}
