//! `seresnext-serve classify`: flags in, [`crate::classify::run`] on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::classify::{self, ClassifyArgs};
use crate::config::{DeviceSpec, EngineKind, Precision};
use crate::engines::EngineChoice;
use crate::model::{LoadOptions, ModelId};
use crate::onnx::SessionSettings;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model id (gluon_seresnext50_32x4d, …) or timm name (seresnext50_32x4d.gluon_in1k, …).
    #[arg(long, value_parser = super::parse_model)]
    pub model: ModelId,
    /// Weight file: .safetensors, .pth/.pt/.bin (zip or legacy torch.save).
    #[arg(long)]
    pub weights: PathBuf,
    /// How many classes to print per image.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top_k: u16,
    /// auto | cpu | cuda | cuda:N
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    /// fp32 | fp16 | bf16 (the latter two for GPUs).
    #[arg(long, default_value = "fp32")]
    pub dtype: Precision,
    /// Keep BatchNorm as separate ops instead of folding it into the convolutions.
    #[arg(long)]
    pub no_fold_bn: bool,
    /// libtorch | onnxruntime (CPU, fp32).
    #[arg(long, default_value = "libtorch")]
    pub engine: EngineKind,
    /// Also write each image's embedding (2048 values, L2-normalized) in
    /// its line, from the same forward pass.
    #[arg(long)]
    pub embed: bool,
    /// Intra-op threads of the engine (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Image files.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
}

impl Args {
    /// Classifies every image. Exit codes: 0 when all succeed, 1 when some
    /// image failed (its line says why), 2 when the model cannot be loaded.
    pub fn run(self) -> ExitCode {
        let device = match super::engine_setup(self.threads, self.device) {
            Ok(device) => device,
            Err(exit) => return exit,
        };
        let args = ClassifyArgs {
            model: self.model,
            weights: self.weights,
            top_k: usize::from(self.top_k),
            images: self.images,
            embed: self.embed,
            engine: EngineChoice {
                kind: self.engine,
                libtorch: LoadOptions {
                    device,
                    precision: self.dtype,
                    fold_bn: !self.no_fold_bn,
                    ..LoadOptions::default()
                },
                onnxruntime: SessionSettings {
                    intra_op_threads: self.threads,
                    ..SessionSettings::default()
                },
            },
        };
        match classify::run(&args, &mut std::io::stdout().lock()) {
            Ok(0) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::from(2)
            }
        }
    }
}
