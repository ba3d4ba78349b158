//! Configuration: plain data, validated before anything heavy loads.
//!
//! - [`Config`] mirrors the TOML file (`config/default.toml` documents every
//!   key with its default); [`Config::load`] / [`Config::from_toml_str`]
//!   parse it, rejecting unknown keys.
//! - [`Config::apply`] layers [`Overrides`] from flags and the environment.
//! - [`Config::validate`] checks values, naming the offending key in every
//!   message; the model catalog is passed in, so this module stays a leaf.
//! - [`WeightsSource`] is what `models[].weights` may say: a file, an
//!   `hf://` URL ([`HubFile`]), the published weights (no key) or `random`.
//! - [`ApiKey`] is `server.api_key`, a secret that never shows in `Debug`.

mod choices;
mod device;
mod engine;
mod error;
mod file;
mod overrides;
mod secret;
mod validate;
mod warmup;
mod weights;

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod own_model_tests;
#[cfg(test)]
mod tests;

pub use choices::{BatchWindow, LogFormat};
pub use device::{DeviceSpec, Precision};
pub use engine::{EngineKind, GraphOptimization, OnnxRuntimeConfig};
pub use error::{ConfigError, Problem};
pub use file::{Config, HubConfig, ModelConfig, ServerConfig};
pub use overrides::Overrides;
pub use secret::ApiKey;
pub use validate::{INPUT_SIZE_RANGE, MAX_MODEL_ID_LEN, WEIGHTS_EXTENSIONS};
pub use warmup::WarmupMode;
pub use weights::{HubFile, WeightsSource};
