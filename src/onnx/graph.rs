//! The SE-ResNeXt graph, built node by node with ONNX Runtime's Model Editor
//! from the checkpoint's parameters: no Python export and no `.onnx` file.
//!
//! Preprocessing is part of the graph. The 8-bit NHWC crops go in as the
//! decoder made them, and Cast, the NCHW transpose and timm's
//! ToTensor/Normalize are nodes, so the host makes no extra pass over a
//! batch. Client-normalized fp32 images (KServe V2) enter through a second
//! input and are concatenated after that preprocessing, so one session serves
//! batches that mix both.

use ort::editor::{Graph, Model, Node, Opset, ONNX_DOMAIN};
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{Outlet, Shape, SymbolicDimensions, Tensor, TensorElementType, ValueType};

use super::params::{FoldedConv, Param, ParamSource};
use crate::model::{
    se_reduced_channels, ArchSpec, PretrainedCfg, EXPANSION, FEATURE_DIM, STEM_CHANNELS,
};

/// The graph's inputs and outputs, by name.
pub const CROPS: &str = "crops";
pub const NORMALIZED: &str = "normalized";
pub const LOGITS: &str = "logits";
pub const PROBABILITIES: &str = "probabilities";
/// The pooled pre-logits features, `[N, 2048]`: the input of `fc`, an
/// output too so an embedding costs no second pass (and, when a run does
/// not select it, nothing at all).
pub const FEATURES: &str = "features";

/// `TensorProto.FLOAT` in ONNX's own numbering (Cast's `to` attribute).
const ONNX_FLOAT: i64 = 1;

/// The opset the nodes are written against (ONNX Runtime 1.22 knows 22).
const OPSET: u32 = 17;

/// Builds the whole model. Every parameter is taken from `params`; the
/// caller checks afterwards ([`ParamSource::finish`]) that none was missing.
pub fn build(params: &mut ParamSource, arch: ArchSpec, cfg: &PretrainedCfg) -> ort::Result<Model> {
    let mut builder = Builder {
        graph: Graph::new()?,
        params,
    };
    let side = cfg.input_size as i64;
    builder.graph.set_inputs([
        tensor_outlet(CROPS, TensorElementType::Uint8, [-1, side, side, 3]),
        tensor_outlet(NORMALIZED, TensorElementType::Float32, [-1, 3, side, side]),
    ])?;
    builder.graph.set_outputs([
        tensor_outlet(
            LOGITS,
            TensorElementType::Float32,
            [-1, cfg.num_classes as i64],
        ),
        tensor_outlet(
            PROBABILITIES,
            TensorElementType::Float32,
            [-1, cfg.num_classes as i64],
        ),
        tensor_outlet(
            FEATURES,
            TensorElementType::Float32,
            [-1, FEATURE_DIM as i64],
        ),
    ])?;
    let input = builder.preprocess(cfg)?;
    let features = builder.backbone(&input, arch)?;
    builder.head(&features, cfg.num_classes)?;
    let mut model = Model::new([Opset::new(ONNX_DOMAIN, OPSET)?])?;
    model.set_graph(builder.graph)?;
    Ok(model)
}

/// An fp32/u8 tensor outlet whose first dimension is the batch.
fn tensor_outlet<const N: usize>(name: &str, ty: TensorElementType, shape: [i64; N]) -> Outlet {
    let symbols = (0..N).map(|axis| {
        if axis == 0 {
            format!("{name}_batch")
        } else {
            String::new()
        }
    });
    Outlet::new(
        name,
        ValueType::Tensor {
            ty,
            shape: Shape::from(shape),
            dimension_symbols: SymbolicDimensions::new(symbols),
        },
    )
}

struct Builder<'a> {
    graph: Graph,
    params: &'a mut ParamSource,
}

impl Builder<'_> {
    /// Adds `op` reading `inputs` and writing one output named `output`.
    fn node(
        &mut self,
        op: &str,
        output: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
    ) -> ort::Result<String> {
        self.graph.add_node(Node::new(
            op,
            ONNX_DOMAIN,
            output,
            inputs,
            [output],
            attributes,
        )?)?;
        Ok(output.to_owned())
    }

    /// Adds a constant (a weight, or a preprocessing constant).
    fn constant(&mut self, name: &str, param: Param) -> ort::Result<String> {
        let mut tensor = Tensor::<f32>::new(&Allocator::default(), param.shape.as_slice())?;
        tensor.extract_tensor_mut().1.copy_from_slice(&param.values);
        self.graph.add_initializer(name, tensor, false)?;
        Ok(name.to_owned())
    }

    /// Cast, NHWC → NCHW, /255, −mean, /std; then the normalized images
    /// join the batch after the crops.
    fn preprocess(&mut self, cfg: &PretrainedCfg) -> ort::Result<String> {
        let channel_constant = |values: [f32; 3]| Param {
            shape: vec![1, 3, 1, 1],
            values: values.to_vec(),
        };
        let scale = self.constant(
            "preprocess.scale",
            Param {
                shape: vec![],
                values: vec![255.0],
            },
        )?;
        let mean = self.constant("preprocess.mean", channel_constant(cfg.mean))?;
        let std = self.constant("preprocess.std", channel_constant(cfg.std))?;
        let float = self.node(
            "Cast",
            "preprocess.float",
            &[CROPS],
            vec![Attribute::new("to", ONNX_FLOAT)?],
        )?;
        let nchw = self.node(
            "Transpose",
            "preprocess.nchw",
            &[&float],
            vec![Attribute::new("perm", vec![0i64, 3, 1, 2])?],
        )?;
        let unit = self.node("Div", "preprocess.unit", &[&nchw, &scale], vec![])?;
        let centred = self.node("Sub", "preprocess.centred", &[&unit, &mean], vec![])?;
        let crops = self.node("Div", "preprocess.crops", &[&centred, &std], vec![])?;
        self.node(
            "Concat",
            "input",
            &[&crops, NORMALIZED],
            vec![Attribute::new("axis", 0i64)?],
        )
    }

    /// A convolution (BatchNorm folded in) on `input`, named after its
    /// checkpoint key, with a ReLU after it when `relu`.
    fn conv(
        &mut self,
        input: &str,
        key: &str,
        conv: FoldedConv,
        stride: usize,
        groups: usize,
        relu: bool,
    ) -> ort::Result<String> {
        let kernel = conv.weight.shape[2] as i64;
        let pad = kernel / 2;
        let weight = self.constant(&format!("{key}.weight"), conv.weight)?;
        let bias = self.constant(&format!("{key}.bias"), conv.bias)?;
        let output = self.node(
            "Conv",
            key,
            &[input, &weight, &bias],
            vec![
                Attribute::new("kernel_shape", vec![kernel, kernel])?,
                Attribute::new("strides", vec![stride as i64, stride as i64])?,
                Attribute::new("pads", vec![pad, pad, pad, pad])?,
                Attribute::new("group", groups as i64)?,
            ],
        )?;
        if relu {
            return self.node("Relu", &format!("{key}.relu"), &[&output], vec![]);
        }
        Ok(output)
    }

    /// A dense checkpoint conv + BatchNorm pair, folded.
    fn conv_bn(
        &mut self,
        input: &str,
        conv_key: &str,
        bn_key: &str,
        shape: [usize; 4],
        stride: usize,
        relu: bool,
    ) -> ort::Result<String> {
        let folded = self.params.folded_conv(conv_key, bn_key, shape);
        self.conv(input, conv_key, folded, stride, 1, relu)
    }

    /// Stem, then the four stages of bottlenecks.
    fn backbone(&mut self, input: &str, arch: ArchSpec) -> ort::Result<String> {
        let stem = self.conv_bn(input, "conv1", "bn1", [STEM_CHANNELS, 3, 7, 7], 2, true)?;
        let mut x = self.node(
            "MaxPool",
            "maxpool",
            &[&stem],
            vec![
                Attribute::new("kernel_shape", vec![3i64, 3])?,
                Attribute::new("strides", vec![2i64, 2])?,
                Attribute::new("pads", vec![1i64, 1, 1, 1])?,
            ],
        )?;
        let mut in_channels = STEM_CHANNELS;
        for (stage, &blocks) in arch.blocks_per_stage.iter().enumerate() {
            let planes = STEM_CHANNELS << stage;
            for block in 0..blocks {
                let stride = if block == 0 && stage > 0 { 2 } else { 1 };
                let key = format!("layer{}.{block}", stage + 1);
                x = self.bottleneck(&x, &key, in_channels, planes, stride, arch)?;
                in_channels = planes * EXPANSION;
            }
        }
        Ok(x)
    }

    /// timm's SE-ResNeXt bottleneck: 1x1, grouped 3x3 (with the stride),
    /// 1x1, squeeze-and-excitation, residual add, ReLU.
    fn bottleneck(
        &mut self,
        x: &str,
        key: &str,
        in_channels: usize,
        planes: usize,
        stride: usize,
        arch: ArchSpec,
    ) -> ort::Result<String> {
        let width = arch.bottleneck_width(planes);
        let out_channels = planes * EXPANSION;
        let groups = arch.cardinality;
        let y = self.conv_bn(
            x,
            &format!("{key}.conv1"),
            &format!("{key}.bn1"),
            [width, in_channels, 1, 1],
            1,
            true,
        )?;
        let folded = self.params.folded_conv(
            &format!("{key}.conv2"),
            &format!("{key}.bn2"),
            [width, width / groups, 3, 3],
        );
        let y = self.conv(&y, &format!("{key}.conv2"), folded, stride, groups, true)?;
        let y = self.conv_bn(
            &y,
            &format!("{key}.conv3"),
            &format!("{key}.bn3"),
            [out_channels, width, 1, 1],
            1,
            false,
        )?;
        let y = self.squeeze_excite(&y, &format!("{key}.se"), out_channels)?;
        let shortcut = if stride != 1 || in_channels != out_channels {
            self.conv_bn(
                x,
                &format!("{key}.downsample.0"),
                &format!("{key}.downsample.1"),
                [out_channels, in_channels, 1, 1],
                stride,
                false,
            )?
        } else {
            x.to_owned()
        };
        let sum = self.node("Add", &format!("{key}.add"), &[&y, &shortcut], vec![])?;
        self.node("Relu", &format!("{key}.out"), &[&sum], vec![])
    }

    /// Gate each channel by a sigmoid of the globally pooled block output.
    fn squeeze_excite(&mut self, x: &str, key: &str, channels: usize) -> ort::Result<String> {
        let reduced = se_reduced_channels(channels);
        let pooled = self.node("GlobalAveragePool", &format!("{key}.pool"), &[x], vec![])?;
        let pointwise =
            |builder: &mut Self, input: &str, name: &str, outputs: usize, inputs: usize| {
                let conv = FoldedConv {
                    weight: builder
                        .params
                        .take(&format!("{key}.{name}.weight"), &[outputs, inputs, 1, 1]),
                    bias: builder
                        .params
                        .take(&format!("{key}.{name}.bias"), &[outputs]),
                };
                builder.conv(input, &format!("{key}.{name}"), conv, 1, 1, false)
            };
        let squeezed = pointwise(self, &pooled, "fc1", reduced, channels)?;
        let squeezed = self.node("Relu", &format!("{key}.fc1.relu"), &[&squeezed], vec![])?;
        let excited = pointwise(self, &squeezed, "fc2", channels, reduced)?;
        let gate = self.node("Sigmoid", &format!("{key}.gate"), &[&excited], vec![])?;
        self.node("Mul", &format!("{key}.out"), &[x, &gate], vec![])
    }

    /// Global average pool (the [`FEATURES`] output), the classifier, and softmax.
    fn head(&mut self, features: &str, num_classes: usize) -> ort::Result<()> {
        let channels = FEATURE_DIM;
        let pooled = self.node("GlobalAveragePool", "pool", &[features], vec![])?;
        let flat = self.node(
            "Flatten",
            FEATURES,
            &[&pooled],
            vec![Attribute::new("axis", 1i64)?],
        )?;
        let weight = self.params.take("fc.weight", &[num_classes, channels]);
        let bias = self.params.take("fc.bias", &[num_classes]);
        let weight = self.constant("fc.weight", weight)?;
        let bias = self.constant("fc.bias", bias)?;
        self.node(
            "Gemm",
            LOGITS,
            &[&flat, &weight, &bias],
            vec![Attribute::new("transB", 1i64)?],
        )?;
        self.node(
            "Softmax",
            PROBABILITIES,
            &[LOGITS],
            vec![Attribute::new("axis", -1i64)?],
        )?;
        Ok(())
    }
}
