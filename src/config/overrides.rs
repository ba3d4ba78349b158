//! Command-line / environment overrides layered over the file.
//!
//! The clap definitions live with the binary; this is the plain data they
//! fill in, so the precedence rule (flag or env beats file beats default) is
//! implemented and tested here, once.

use super::choices::LogFormat;
use super::file::Config;
use super::{ApiKey, DeviceSpec, WeightsSource};

/// Values given on the command line or in the environment; `None` keeps the
/// file's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Replaces `server.host`.
    pub host: Option<String>,
    /// Replaces `server.port`.
    pub port: Option<u16>,
    /// Replaces `server.metrics_port`.
    pub metrics_port: Option<u16>,
    /// Replaces `server.grpc_port`.
    pub grpc_port: Option<u16>,
    /// Replaces `server.log_format`.
    pub log_format: Option<LogFormat>,
    /// Replaces `device` of every model: one flag moves a whole deployment
    /// between CPU and GPU.
    pub device: Option<DeviceSpec>,
    /// Replaces `weights` of the first model, the common single-model case:
    /// a file, an `hf://` URL, `pretrained` or `random`, parsed as in the file.
    /// Ignored when the config has no models (validation then reports that).
    pub weights: Option<WeightsSource>,
    /// Replaces `server.api_key`. Only ever read from the environment
    /// (`SERESNEXT_API_KEY`): a flag would show the key in `ps`.
    pub api_key: Option<ApiKey>,
}

impl Config {
    /// Applies `overrides` on top of this config. Run [`Config::validate`]
    /// afterwards: an override can make a valid file invalid (e.g. a
    /// `metrics_port` equal to `port`).
    pub fn apply(&mut self, overrides: Overrides) {
        let Overrides {
            host,
            port,
            metrics_port,
            grpc_port,
            log_format,
            device,
            weights,
            api_key,
        } = overrides;
        if let Some(host) = host {
            self.server.host = host;
        }
        if let Some(port) = port {
            self.server.port = port;
        }
        if let Some(metrics_port) = metrics_port {
            self.server.metrics_port = metrics_port;
        }
        if let Some(grpc_port) = grpc_port {
            self.server.grpc_port = grpc_port;
        }
        if let Some(log_format) = log_format {
            self.server.log_format = log_format;
        }
        if let Some(device) = device {
            for model in &mut self.models {
                model.device = device;
            }
        }
        if let (Some(weights), Some(first)) = (weights, self.models.first_mut()) {
            first.weights = weights;
        }
        if let Some(api_key) = api_key {
            self.server.api_key = api_key;
        }
    }
}
