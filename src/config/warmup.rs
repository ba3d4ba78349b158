//! `models[].warmup`: which batch shapes a replica runs before it reports
//! ready. What a first-time shape costs depends on the device, so the
//! default asks the device.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which shapes are warmed before readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WarmupMode {
    /// What the device needs: every batch bucket on a GPU (cuDNN benchmark
    /// mode picks algorithms per shape, and a shape first met under traffic
    /// would pay that search), one batch-1 pass on a CPU (any batch size
    /// runs as fast the first time as later, so more passes only delay
    /// readiness).
    #[default]
    Auto,
    /// Every batch bucket up to `max_batch_size`, on any device.
    All,
    /// One batch-1 pass: it proves the model runs, and readiness follows.
    Minimal,
}

impl WarmupMode {
    /// The batch shapes to run before readiness, out of the model's
    /// `buckets`; `pads_to_warm_shapes` is the engine's answer to whether
    /// batches are padded to warmed shapes (true on a GPU).
    pub fn shapes(self, buckets: &[usize], pads_to_warm_shapes: bool) -> Vec<usize> {
        let all = match self {
            Self::All => true,
            Self::Minimal => false,
            Self::Auto => pads_to_warm_shapes,
        };
        if all {
            buckets.to_vec()
        } else {
            vec![1]
        }
    }
}

impl fmt::Display for WarmupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::All => "all",
            Self::Minimal => "minimal",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_warms_every_bucket_only_where_batches_are_padded() {
        let buckets = [1, 2, 4, 8];
        assert_eq!(WarmupMode::Auto.shapes(&buckets, true), buckets);
        assert_eq!(WarmupMode::Auto.shapes(&buckets, false), [1]);
        assert_eq!(WarmupMode::All.shapes(&buckets, false), buckets);
        assert_eq!(WarmupMode::Minimal.shapes(&buckets, true), [1]);
    }

    #[test]
    fn parses_the_three_words_and_nothing_else() {
        #[derive(Deserialize)]
        struct Holder {
            warmup: WarmupMode,
        }
        let parse = |text: &str| toml::from_str::<Holder>(text).map(|h| h.warmup);
        assert_eq!(parse("warmup = \"all\"").unwrap(), WarmupMode::All);
        assert_eq!(parse("warmup = \"minimal\"").unwrap(), WarmupMode::Minimal);
        assert_eq!(parse("warmup = \"auto\"").unwrap(), WarmupMode::Auto);
        assert!(parse("warmup = \"some\"").is_err());
    }
}
