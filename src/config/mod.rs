//! Configuration: plain data, validated before anything heavy loads.
//!
//! - [`Config`] mirrors the TOML file (`config/default.toml` documents every
//!   key with its default); [`Config::load`] / [`Config::from_toml_str`]
//!   parse it, rejecting unknown keys.
//! - [`Config::apply`] layers [`Overrides`] from flags and the environment.
//! - [`Config::validate`] checks values, naming the offending key in every
//!   message; the model catalog is passed in, so this module stays a leaf.

mod device;
mod file;
mod overrides;
mod validate;

#[cfg(test)]
mod tests;

pub use device::{DeviceSpec, Precision};
pub use file::{Config, ConfigError, LogFormat, ModelConfig, Problem, ServerConfig, WeightsSource};
pub use overrides::Overrides;
pub use validate::WEIGHTS_EXTENSIONS;
