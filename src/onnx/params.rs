//! The network's parameters as plain fp32 arrays, taken from a checkpoint by
//! timm's names (or made up for `weights = "random"`), with every BatchNorm
//! folded into the convolution before it: the graph then has one `Conv` with
//! bias where timm has Conv + BatchNorm.

use crate::weights::{Checkpoint, KeyMismatch, KeyedTensors};

/// BatchNorm2d's default epsilon, which timm and the Gluon originals use.
const BN_EPS: f32 = 1e-5;

/// A parameter array and its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl Param {
    fn zeros(shape: &[usize]) -> Self {
        Self {
            shape: shape.to_vec(),
            values: vec![0.0; shape.iter().product()],
        }
    }
}

/// A convolution with bias, BatchNorm already folded in.
#[derive(Debug, Clone)]
pub struct FoldedConv {
    pub weight: Param,
    pub bias: Param,
}

/// Where parameters come from.
enum Source {
    Checkpoint(KeyedTensors),
    /// Seeded random values (testing only).
    Random(SplitMix),
}

/// Hands out parameters by name; problems are recorded and reported together
/// by [`ParamSource::finish`], zeros standing in until then.
pub struct ParamSource {
    source: Source,
}

impl ParamSource {
    pub fn checkpoint(checkpoint: Checkpoint) -> Self {
        Self {
            source: Source::Checkpoint(KeyedTensors::new(checkpoint)),
        }
    }

    /// Random parameters shaped like timm's initialisation (He-normal
    /// convolutions, identity BatchNorm, damped residual branches). Drawn from
    /// this engine's own generator: the same seed gives other values than
    /// under libtorch, but the same values on every start.
    pub fn random(seed: u64) -> Self {
        Self {
            source: Source::Random(SplitMix(seed)),
        }
    }

    /// The parameter `key` with exactly `shape`.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Param {
        match &mut self.source {
            Source::Checkpoint(keyed) => match keyed.take_f32(key, shape) {
                Some(values) => Param {
                    shape: shape.to_vec(),
                    values,
                },
                None => Param::zeros(shape),
            },
            Source::Random(generator) => generator.param(key, shape),
        }
    }

    /// `<conv_key>.weight` with the BatchNorm at `<bn_key>.*` folded in:
    /// w' = w · γ/√(σ²+ε) per output channel, b' = β − μ · γ/√(σ²+ε).
    pub fn folded_conv(&mut self, conv_key: &str, bn_key: &str, shape: [usize; 4]) -> FoldedConv {
        let mut weight = self.take(&format!("{conv_key}.weight"), &shape);
        let channels = [shape[0]];
        let gamma = self.take(&format!("{bn_key}.weight"), &channels);
        let beta = self.take(&format!("{bn_key}.bias"), &channels);
        let mean = self.take(&format!("{bn_key}.running_mean"), &channels);
        let var = self.take(&format!("{bn_key}.running_var"), &channels);
        let per_channel = weight.values.len() / shape[0].max(1);
        let mut bias = Param::zeros(&channels);
        for channel in 0..shape[0] {
            let scale = gamma.values[channel] / (var.values[channel] + BN_EPS).sqrt();
            let start = channel * per_channel;
            for value in &mut weight.values[start..start + per_channel] {
                *value *= scale;
            }
            bias.values[channel] = beta.values[channel] - mean.values[channel] * scale;
        }
        FoldedConv { weight, bias }
    }

    /// Succeeds when a checkpoint matched the architecture exactly.
    pub fn finish(self) -> Result<(), KeyMismatch> {
        match self.source {
            Source::Checkpoint(keyed) => keyed.finish(),
            Source::Random(_) => Ok(()),
        }
    }
}

/// SplitMix64: a small, well-mixed, seedable generator; plenty for test
/// weights and no dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal value (Box–Muller).
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.unit(), self.unit());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }

    /// A plausible value for `key` by its role in timm's naming.
    fn param(&mut self, key: &str, shape: &[usize]) -> Param {
        let count: usize = shape.iter().product();
        let constant = |value: f32| Param {
            shape: shape.to_vec(),
            values: vec![value; count],
        };
        let scale = match shape.len() {
            // Convolutions: kaiming_normal_(mode="fan_out").
            4 => (2.0 / (shape[0] * shape[2] * shape[3]).max(1) as f32).sqrt(),
            // The classifier: logits of a few units, so classes are told apart.
            2 => (2.0 / shape[1].max(1) as f32).sqrt(),
            _ if key.ends_with("running_var") => return constant(1.0),
            // The last BatchNorm of each residual branch scales it down.
            _ if key.ends_with("bn3.weight") => return constant(0.2),
            _ if key.ends_with(".weight") => return constant(1.0),
            _ => return constant(0.0),
        };
        Param {
            shape: shape.to_vec(),
            values: (0..count).map(|_| self.normal() * scale).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::{DType, RawTensor};

    fn raw(shape: &[usize], values: &[f32]) -> RawTensor {
        RawTensor {
            dtype: DType::F32,
            shape: shape.to_vec(),
            data: values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>()
                .into(),
        }
    }

    #[test]
    fn folding_gives_the_conv_that_batch_norm_would_follow() {
        let mut checkpoint = Checkpoint::new();
        checkpoint.insert("c.weight".into(), raw(&[2, 1, 1, 1], &[2.0, 3.0]));
        checkpoint.insert("bn.weight".into(), raw(&[2], &[1.0, 0.5]));
        checkpoint.insert("bn.bias".into(), raw(&[2], &[0.1, -0.2]));
        checkpoint.insert("bn.running_mean".into(), raw(&[2], &[1.0, 2.0]));
        checkpoint.insert(
            "bn.running_var".into(),
            raw(&[2], &[4.0 - BN_EPS, 1.0 - BN_EPS]),
        );
        let mut source = ParamSource::checkpoint(checkpoint);
        let conv = source.folded_conv("c", "bn", [2, 1, 1, 1]);
        source.finish().expect("exact match");
        // Channel 0: scale 1/2; channel 1: scale 0.5/1.
        for (got, want) in conv.weight.values.iter().zip([1.0, 1.5]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        for (got, want) in conv.bias.values.iter().zip([0.1 - 0.5, -0.2 - 1.0]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        // And on an input x: bn(conv(x)) == folded(x).
        let x = 0.7f32;
        let by_batch_norm = (2.0 * x - 1.0) / (4.0f32).sqrt() * 1.0 + 0.1;
        let folded = conv.weight.values[0] * x + conv.bias.values[0];
        assert!((by_batch_norm - folded).abs() < 1e-6);
    }

    #[test]
    fn random_parameters_repeat_for_a_seed_and_differ_between_seeds() {
        let draw = |seed| ParamSource::random(seed).take("layer1.0.conv1.weight", &[8, 4, 1, 1]);
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
        let values = draw(3).values;
        assert!(values.iter().all(|v| v.is_finite()));
        assert!(values.iter().any(|v| *v != 0.0));
    }
}
