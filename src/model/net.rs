//! The whole SE-ResNeXt network: stem, four stages of bottlenecks, pooling and
//! the classifier, built from a checkpoint by timm's state_dict names.

use tch::{Device, Kind, TchError, Tensor};

use super::catalog::{ArchSpec, EXPANSION, STEM_CHANNELS};
use super::layers::{Bottleneck, BottleneckShape, ConvBn, ConvShape};
use super::params::ParamStore;

pub(crate) struct SeResNeXt {
    stem: ConvBn,
    stages: Vec<Vec<Bottleneck>>,
    fc_weight: Tensor,
    fc_bias: Tensor,
}

impl SeResNeXt {
    /// Builds the network, taking each parameter from `params` by name.
    pub(crate) fn load(
        params: &mut ParamStore,
        arch: ArchSpec,
        num_classes: usize,
        fold_bn: bool,
    ) -> Self {
        let stem = ConvBn::load(
            params,
            "conv1",
            "bn1",
            ConvShape {
                in_channels: 3,
                out_channels: STEM_CHANNELS,
                kernel: 7,
                stride: 2,
                groups: 1,
            },
            fold_bn,
        );
        let mut in_channels = STEM_CHANNELS;
        let mut stages = Vec::with_capacity(arch.blocks_per_stage.len());
        for (stage, &blocks) in arch.blocks_per_stage.iter().enumerate() {
            let planes = STEM_CHANNELS << stage;
            let stage_stride = if stage == 0 { 1 } else { 2 };
            let layer = (0..blocks)
                .map(|block| {
                    let bottleneck = Bottleneck::load(
                        params,
                        &format!("layer{}.{block}", stage + 1),
                        BottleneckShape {
                            in_channels,
                            planes,
                            stride: if block == 0 { stage_stride } else { 1 },
                            cardinality: arch.cardinality,
                            base_width: arch.base_width,
                        },
                        fold_bn,
                    );
                    in_channels = planes * EXPANSION;
                    bottleneck
                })
                .collect();
            stages.push(layer);
        }
        Self {
            stem,
            stages,
            fc_weight: params.take("fc.weight", &[num_classes, in_channels]),
            fc_bias: params.take("fc.bias", &[num_classes]),
        }
    }

    /// Logits `[N, num_classes]` for a normalized `[N, 3, H, W]` batch.
    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor, TchError> {
        self.head(&self.pooled(x)?)
    }

    /// The globally average-pooled output of the last stage, `[N, 2048]`:
    /// timm's `forward_head(forward_features(x), pre_logits=True)`, the
    /// image's embedding.
    pub(crate) fn pooled(&self, x: &Tensor) -> Result<Tensor, TchError> {
        let mut x =
            self.stem
                .forward(x)?
                .f_relu()?
                .f_max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)?;
        for block in self.stages.iter().flatten() {
            x = block.forward(&x)?;
        }
        x.f_mean_dim([2i64, 3].as_slice(), false, None::<Kind>)
    }

    /// The classifier: logits `[N, num_classes]` for [`pooled`](Self::pooled) features.
    pub(crate) fn head(&self, pooled: &Tensor) -> Result<Tensor, TchError> {
        pooled.f_linear(&self.fc_weight, Some(&self.fc_bias))
    }

    /// Moves every parameter to `device` as `kind`, in place; with
    /// `channels_last`, convolution kernels are stored NHWC-strided, the layout
    /// oneDNN and cuDNN run fastest without reordering on every call.
    pub(crate) fn move_to(
        &mut self,
        device: Device,
        kind: Kind,
        channels_last: bool,
    ) -> Result<(), TchError> {
        let mut all = self.stem.tensors_mut();
        all.extend([&mut self.fc_weight, &mut self.fc_bias]);
        for block in self.stages.iter_mut().flatten() {
            all.extend(block.tensors_mut());
        }
        for tensor in all {
            let moved = tensor.f_to_device(device)?.f_to_kind(kind)?;
            *tensor = if channels_last && moved.dim() == 4 {
                super::to_channels_last(&moved)?
            } else {
                moved
            };
        }
        Ok(())
    }
}
