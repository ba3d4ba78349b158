//! The building blocks of timm's SE-ResNeXt: conv+BN, squeeze-and-excitation
//! and the bottleneck block. Keys follow timm's state_dict names exactly.

use tch::{Kind, TchError, Tensor};

use super::catalog::{bottleneck_width, se_reduced_channels, EXPANSION};
use super::params::ParamStore;

/// BatchNorm2d's default epsilon, which timm and the Gluon originals use.
const BN_EPS: f64 = 1e-5;

/// Inference-time BatchNorm statistics and affine parameters.
struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
}

/// A bias-free convolution followed by BatchNorm, optionally folded into one
/// convolution with bias (one kernel launch and one pass over memory fewer).
pub(crate) struct ConvBn {
    weight: Tensor,
    /// Present once BatchNorm has been folded in.
    bias: Option<Tensor>,
    /// Present while BatchNorm is kept as a separate op.
    norm: Option<BatchNorm>,
    stride: i64,
    padding: i64,
    groups: i64,
}

/// Shape of one convolution, as timm declares it.
pub(crate) struct ConvShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
}

impl ConvBn {
    /// Loads `<conv_key>.weight` and the BatchNorm at `<bn_key>.*`.
    pub(crate) fn load(
        params: &mut ParamStore,
        conv_key: &str,
        bn_key: &str,
        shape: ConvShape,
        fold_bn: bool,
    ) -> Self {
        let channels = [shape.out_channels];
        let weight = params.take(
            &format!("{conv_key}.weight"),
            &[
                shape.out_channels,
                shape.in_channels / shape.groups,
                shape.kernel,
                shape.kernel,
            ],
        );
        let norm = BatchNorm {
            weight: params.take(&format!("{bn_key}.weight"), &channels),
            bias: params.take(&format!("{bn_key}.bias"), &channels),
            running_mean: params.take(&format!("{bn_key}.running_mean"), &channels),
            running_var: params.take(&format!("{bn_key}.running_var"), &channels),
        };
        let mut conv = Self {
            weight,
            bias: None,
            norm: Some(norm),
            stride: shape.stride as i64,
            padding: (shape.kernel / 2) as i64,
            groups: shape.groups as i64,
        };
        if fold_bn {
            let started = std::time::Instant::now();
            conv.fold_batch_norm();
            params.add_fold_time(started.elapsed());
        }
        conv
    }

    /// w' = w · γ/√(σ²+ε) per output channel, b' = β − μ · γ/√(σ²+ε).
    fn fold_batch_norm(&mut self) {
        let Some(bn) = self.norm.take() else { return };
        let scale = &bn.weight / (&bn.running_var + BN_EPS).sqrt();
        self.weight = &self.weight * scale.view([-1, 1, 1, 1]);
        self.bias = Some(&bn.bias - &bn.running_mean * &scale);
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let y = x.f_conv2d(
            &self.weight,
            self.bias.as_ref(),
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        )?;
        match &self.norm {
            None => Ok(y),
            Some(bn) => y.f_batch_norm(
                Some(&bn.weight),
                Some(&bn.bias),
                Some(&bn.running_mean),
                Some(&bn.running_var),
                false,
                0.0,
                BN_EPS,
                true,
            ),
        }
    }

    pub(crate) fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut all = vec![&mut self.weight];
        all.extend(self.bias.as_mut());
        if let Some(bn) = self.norm.as_mut() {
            all.extend([
                &mut bn.weight,
                &mut bn.bias,
                &mut bn.running_mean,
                &mut bn.running_var,
            ]);
        }
        all
    }
}

/// A 1x1 convolution with bias (the SE module's `fc1`/`fc2`).
struct PointwiseConv {
    weight: Tensor,
    bias: Tensor,
}

impl PointwiseConv {
    fn load(params: &mut ParamStore, key: &str, inputs: usize, outputs: usize) -> Self {
        Self {
            weight: params.take(&format!("{key}.weight"), &[outputs, inputs, 1, 1]),
            bias: params.take(&format!("{key}.bias"), &[outputs]),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        x.f_conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 0], [1, 1], 1)
    }
}

/// Squeeze-and-excitation (timm's `SEModule`): a channel gate computed from
/// the globally pooled block output.
struct SqueezeExcite {
    fc1: PointwiseConv,
    fc2: PointwiseConv,
}

impl SqueezeExcite {
    fn load(params: &mut ParamStore, key: &str, channels: usize) -> Self {
        let reduced = se_reduced_channels(channels);
        Self {
            fc1: PointwiseConv::load(params, &format!("{key}.fc1"), channels, reduced),
            fc2: PointwiseConv::load(params, &format!("{key}.fc2"), reduced, channels),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let pooled = x.f_mean_dim([2i64, 3].as_slice(), true, None::<Kind>)?;
        let gate = self.fc2.forward(&self.fc1.forward(&pooled)?.f_relu()?)?;
        x.f_mul(&gate.f_sigmoid()?)
    }
}

/// timm's ResNeXt `Bottleneck` with SE attention: 1x1 → grouped 3x3 (carrying
/// the stride) → 1x1, SE on the output, then the residual add.
pub(crate) struct Bottleneck {
    conv1: ConvBn,
    conv2: ConvBn,
    conv3: ConvBn,
    se: SqueezeExcite,
    downsample: Option<ConvBn>,
}

/// What one bottleneck block looks like inside its stage.
pub(crate) struct BottleneckShape {
    pub in_channels: usize,
    /// timm's `planes`: the output is `4 * planes` channels.
    pub planes: usize,
    pub stride: usize,
    pub cardinality: usize,
    pub base_width: usize,
}

impl Bottleneck {
    pub(crate) fn load(
        params: &mut ParamStore,
        key: &str,
        shape: BottleneckShape,
        fold_bn: bool,
    ) -> Self {
        let width = bottleneck_width(shape.planes, shape.base_width, shape.cardinality);
        let out_channels = shape.planes * EXPANSION;
        let conv = |params: &mut ParamStore, name: &str, bn: &str, conv_shape| {
            ConvBn::load(
                params,
                &format!("{key}.{name}"),
                &format!("{key}.{bn}"),
                conv_shape,
                fold_bn,
            )
        };
        let conv1 = conv(
            params,
            "conv1",
            "bn1",
            ConvShape {
                in_channels: shape.in_channels,
                out_channels: width,
                kernel: 1,
                stride: 1,
                groups: 1,
            },
        );
        let conv2 = conv(
            params,
            "conv2",
            "bn2",
            ConvShape {
                in_channels: width,
                out_channels: width,
                kernel: 3,
                stride: shape.stride,
                groups: shape.cardinality,
            },
        );
        let conv3 = conv(
            params,
            "conv3",
            "bn3",
            ConvShape {
                in_channels: width,
                out_channels,
                kernel: 1,
                stride: 1,
                groups: 1,
            },
        );
        let se = SqueezeExcite::load(params, &format!("{key}.se"), out_channels);
        let needs_projection = shape.stride != 1 || shape.in_channels != out_channels;
        let downsample = needs_projection.then(|| {
            conv(
                params,
                "downsample.0",
                "downsample.1",
                ConvShape {
                    in_channels: shape.in_channels,
                    out_channels,
                    kernel: 1,
                    stride: shape.stride,
                    groups: 1,
                },
            )
        });
        Self {
            conv1,
            conv2,
            conv3,
            se,
            downsample,
        }
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let y = self.conv1.forward(x)?.f_relu()?;
        let y = self.conv2.forward(&y)?.f_relu()?;
        let y = self.se.forward(&self.conv3.forward(&y)?)?;
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(x)?,
            None => x.shallow_clone(),
        };
        y.f_add(&shortcut)?.f_relu()
    }

    pub(crate) fn tensors_mut(&mut self) -> Vec<&mut Tensor> {
        let mut all = Vec::new();
        for conv in [&mut self.conv1, &mut self.conv2, &mut self.conv3] {
            all.extend(conv.tensors_mut());
        }
        all.extend([
            &mut self.se.fc1.weight,
            &mut self.se.fc1.bias,
            &mut self.se.fc2.weight,
            &mut self.se.fc2.bias,
        ]);
        if let Some(projection) = self.downsample.as_mut() {
            all.extend(projection.tensors_mut());
        }
        all
    }
}
