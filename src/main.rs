//! The `seresnext-serve` command line: parse arguments, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use seresnext_serve::classify::{self, ClassifyArgs};
use seresnext_serve::config::{
    ApiKey, Config, DeviceSpec, LogFormat, Overrides, Precision, WeightsSource,
};
use seresnext_serve::model::{resolve_device, Classifier, LoadOptions, ModelId};
use seresnext_serve::{server, telemetry};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "HTTP inference service for the Gluon SE-ResNeXt ImageNet classifiers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default config is config/default.toml).
    Serve {
        /// TOML config file; every key is optional (see config/default.toml).
        #[arg(long, env = "SERESNEXT_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `server.host`.
        #[arg(long, env = "SERESNEXT_HOST")]
        host: Option<String>,
        /// Overrides `server.port`.
        #[arg(long, env = "SERESNEXT_PORT")]
        port: Option<u16>,
        /// Overrides `server.metrics_port`.
        #[arg(long, env = "SERESNEXT_METRICS_PORT")]
        metrics_port: Option<u16>,
        /// Overrides `server.log_format` (text | json).
        #[arg(long, env = "SERESNEXT_LOG_FORMAT")]
        log_format: Option<LogFormat>,
        /// Overrides `device` of every model (auto | cpu | cuda | cuda:N).
        #[arg(long, env = "SERESNEXT_DEVICE")]
        device: Option<DeviceSpec>,
        /// Overrides `weights` of the first model: a file,
        /// hf://<org>/<repo>[@<revision>][/<file>], "pretrained" or "random".
        #[arg(long, env = "SERESNEXT_WEIGHTS")]
        weights: Option<WeightsSource>,
    },
    /// Time in-process forward passes per batch size; one JSON line each.
    Bench {
        #[arg(long, value_parser = parse_model, default_value = "gluon_seresnext50_32x4d")]
        model: ModelId,
        /// Weight file, or "random" (timing does not depend on the values).
        #[arg(long, default_value = "random")]
        weights: PathBuf,
        /// Comma-separated batch sizes.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        batch_sizes: Vec<usize>,
        #[arg(long, default_value = "auto")]
        device: DeviceSpec,
        #[arg(long, default_value = "fp32")]
        dtype: Precision,
        /// libtorch intra-op threads (0 = libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Untimed passes before timing each batch size.
        #[arg(long, default_value_t = 3)]
        warmup: usize,
        /// Timed passes per batch size.
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// NHWC-strided activations and kernels (the served default); false
        /// measures the plain NCHW layout beside it.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        channels_last: bool,
    },
    /// Classify local image files with no server; one JSON line per image.
    Classify {
        /// Model id (gluon_seresnext50_32x4d, …) or timm name (seresnext50_32x4d.gluon_in1k, …).
        #[arg(long, value_parser = parse_model)]
        model: ModelId,
        /// Weight file: .safetensors, .pth/.pt/.bin (zip or legacy torch.save).
        #[arg(long)]
        weights: PathBuf,
        /// How many classes to print per image.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=1000))]
        top_k: u16,
        /// auto | cpu | cuda | cuda:N
        #[arg(long, default_value = "auto")]
        device: DeviceSpec,
        /// fp32 | fp16 | bf16 (the latter two for GPUs).
        #[arg(long, default_value = "fp32")]
        dtype: Precision,
        /// Keep BatchNorm as separate ops instead of folding it into the convolutions.
        #[arg(long)]
        no_fold_bn: bool,
        /// libtorch intra-op threads (0 = libtorch's default).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Image files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
    },
}

fn parse_model(name: &str) -> Result<ModelId, String> {
    ModelId::parse(name).ok_or_else(|| {
        let known: Vec<_> = seresnext_serve::model::ALL_MODELS
            .iter()
            .map(|id| id.name())
            .collect();
        format!("unknown model {name:?}; known: {}", known.join(", "))
    })
}

/// `SERESNEXT_API_KEY`, the only way besides the config file to set the key:
/// a command-line flag would show it to every user of `ps`. Empty means unset.
fn api_key_from_env() -> Option<ApiKey> {
    std::env::var("SERESNEXT_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .map(ApiKey::new)
}

fn serve(config_path: Option<PathBuf>, overrides: Overrides) -> ExitCode {
    let mut config = match &config_path {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    config.apply(overrides);
    telemetry::init(config.server.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(server::run(config, server::termination_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn bench(
    model: ModelId,
    weights: PathBuf,
    batch_sizes: &[usize],
    options: LoadOptions,
    warmup: usize,
    iterations: usize,
) -> ExitCode {
    let loaded = if weights.as_os_str() == "random" {
        Classifier::random(model, 0, options)
    } else {
        Classifier::load_file(model, &weights, options)
    };
    let classifier = match loaded {
        Ok(classifier) => classifier,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    for &batch_size in batch_sizes {
        match seresnext_serve::bench::bench_batch(&classifier, batch_size, warmup, iterations) {
            Ok(result) => match serde_json::to_string(&result) {
                Ok(line) => println!("{line}"),
                Err(error) => eprintln!("error: {error}"),
            },
            Err(error) => {
                eprintln!("error: batch {batch_size}: {error}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench {
            model,
            weights,
            batch_sizes,
            device,
            dtype,
            threads,
            warmup,
            iterations,
            channels_last,
        } => {
            if threads > 0 {
                seresnext_serve::model::set_intra_op_threads(threads);
            }
            let options = LoadOptions {
                device: resolve_device(device),
                precision: dtype,
                fold_bn: true,
                channels_last,
            };
            bench(model, weights, &batch_sizes, options, warmup, iterations)
        }
        Command::Serve {
            config,
            host,
            port,
            metrics_port,
            log_format,
            device,
            weights,
        } => serve(
            config,
            Overrides {
                host,
                port,
                metrics_port,
                log_format,
                device,
                weights,
                api_key: api_key_from_env(),
            },
        ),
        Command::Classify {
            model,
            weights,
            top_k,
            device,
            dtype,
            no_fold_bn,
            threads,
            images,
        } => {
            if threads > 0 {
                seresnext_serve::model::set_intra_op_threads(threads);
            }
            let args = ClassifyArgs {
                model,
                weights,
                top_k: usize::from(top_k),
                images,
                options: LoadOptions {
                    device: resolve_device(device),
                    precision: dtype,
                    fold_bn: !no_fold_bn,
                    ..LoadOptions::default()
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
}
