//! `seresnext-serve bench`: flags in, [`crate::bench::run`] on stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::bench::{self, BenchArgs, BenchError};
use crate::config::{DeviceSpec, EngineKind, GraphOptimization, Precision};
use crate::engines::EngineChoice;
use crate::model::{LoadOptions, ModelId};
use crate::onnx::SessionSettings;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, value_parser = super::parse_model, default_value = "gluon_seresnext50_32x4d")]
    pub model: ModelId,
    /// Weight file, or "random" (timing does not depend on the values).
    #[arg(long, default_value = "random")]
    pub weights: PathBuf,
    /// Comma-separated batch sizes.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch_sizes: Vec<usize>,
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
    #[arg(long, default_value = "fp32")]
    pub dtype: Precision,
    /// libtorch | onnxruntime (CPU, fp32).
    #[arg(long, default_value = "libtorch")]
    pub engine: EngineKind,
    /// Intra-op threads of the engine (0 = its default).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// onnxruntime: graph optimization level (disable | basic | extended | all).
    #[arg(long, default_value = "all")]
    pub ort_optimization: GraphOptimization,
    /// onnxruntime: let idle intra-op threads spin.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub ort_spin: bool,
    /// onnxruntime: use its CPU memory arena.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub ort_arena: bool,
    /// onnxruntime: keep the optimized graph in this directory and start
    /// from it when present (off when not given), as `[onnxruntime]
    /// cache_dir` does for the server.
    #[arg(long)]
    pub ort_cache_dir: Option<PathBuf>,
    /// Untimed passes before timing each batch size.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed passes per batch size.
    #[arg(long, default_value_t = 10)]
    pub iterations: usize,
    /// NHWC-strided activations and kernels (the served default); false
    /// measures the plain NCHW layout beside it.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub channels_last: bool,
}

impl Args {
    /// Times every batch size. Exit codes: 2 when the model cannot be
    /// loaded, 1 when a batch size fails (the lines before it stand).
    pub fn run(self) -> ExitCode {
        let device = match super::engine_setup(self.threads, self.device) {
            Ok(device) => device,
            Err(exit) => return exit,
        };
        let args = BenchArgs {
            model: self.model,
            weights: (self.weights.as_os_str() != "random").then_some(self.weights),
            batch_sizes: self.batch_sizes,
            engine: EngineChoice {
                kind: self.engine,
                libtorch: LoadOptions {
                    device,
                    precision: self.dtype,
                    fold_bn: true,
                    channels_last: self.channels_last,
                },
                onnxruntime: SessionSettings {
                    intra_op_threads: self.threads,
                    optimization: self.ort_optimization,
                    spin: self.ort_spin,
                    memory_arena: self.ort_arena,
                    cache_dir: self.ort_cache_dir,
                    ..SessionSettings::default()
                },
            },
            warmup: self.warmup,
            iterations: self.iterations,
        };
        match bench::run(&args, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error}");
                match error {
                    BenchError::Load(_) => ExitCode::from(2),
                    BenchError::Batch { .. } | BenchError::Output(_) => ExitCode::from(1),
                }
            }
        }
    }
}
