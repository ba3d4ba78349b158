//! `seresnext-serve serve`: the config file, overridden by flags and
//! environment variables, then the server until a termination signal.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{ApiKey, Config, DeviceSpec, LogFormat, Overrides, WeightsSource};
use crate::{server, telemetry};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TOML config file; every key is optional (see config/default.toml).
    #[arg(long, env = "SERESNEXT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Overrides `server.host`.
    #[arg(long, env = "SERESNEXT_HOST")]
    pub host: Option<String>,
    /// Overrides `server.port`.
    #[arg(long, env = "SERESNEXT_PORT")]
    pub port: Option<u16>,
    /// Overrides `server.metrics_port`.
    #[arg(long, env = "SERESNEXT_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Overrides `server.grpc_port` (0 = no gRPC).
    #[arg(long, env = "SERESNEXT_GRPC_PORT")]
    pub grpc_port: Option<u16>,
    /// Overrides `server.log_format` (text | json).
    #[arg(long, env = "SERESNEXT_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Overrides `device` of every model (auto | cpu | cuda | cuda:N).
    #[arg(long, env = "SERESNEXT_DEVICE")]
    pub device: Option<DeviceSpec>,
    /// Overrides `weights` of the first model: a file,
    /// hf://<org>/<repo>[@<revision>][/<file>], "pretrained" or "random".
    #[arg(long, env = "SERESNEXT_WEIGHTS")]
    pub weights: Option<WeightsSource>,
}

impl Args {
    /// Serves until a termination signal. Exit codes: 2 for a config file
    /// that cannot be loaded, 1 when the runtime or the server fails.
    pub fn run(self) -> ExitCode {
        let mut config = match &self.config {
            Some(path) => match Config::load(path) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            },
            None => Config::default(),
        };
        config.apply(Overrides {
            host: self.host,
            port: self.port,
            metrics_port: self.metrics_port,
            grpc_port: self.grpc_port,
            log_format: self.log_format,
            device: self.device,
            weights: self.weights,
            api_key: api_key_from_env(),
        });
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
                // One line, on stderr, whatever the log format: the cause
                // was logged where it happened.
                eprintln!("error: {error:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// `SERESNEXT_API_KEY`, the only way besides the config file to set the key:
/// a command-line flag would show it to every user of `ps`. Empty means unset.
fn api_key_from_env() -> Option<ApiKey> {
    std::env::var("SERESNEXT_API_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .map(ApiKey::new)
}
