//! Value checks that types alone cannot express, each failure naming its key.
//!
//! All problems are collected rather than stopping at the first, so one run
//! shows everything to fix. Validation is pure: it does not touch the disk or
//! libtorch (whether a weights file exists or a GPU is present is the loader's
//! business), so it is cheap enough to run before anything else starts.

use std::collections::HashMap;

use super::error::{ConfigError, Problem};
use super::file::{Config, ModelConfig, ServerConfig};
use super::{DeviceSpec, EngineKind, Precision, WeightsSource};

/// Checkpoint extensions the weights loader understands.
pub const WEIGHTS_EXTENSIONS: [&str; 4] = ["pth", "pt", "bin", "safetensors"];

impl Config {
    /// Checks every value and cross-key rule; `is_known_model` says whether an
    /// id (or alias) is in the model catalog, which lives outside this module.
    ///
    /// Rules beyond "at least 1":
    /// - `queue_capacity >= max_batch_size`: a smaller queue can never fill a
    ///   batch, so `max_batch_size` would silently be a lie.
    /// - `queue_capacity >= server.max_images_per_request`: requests are
    ///   admitted all-or-nothing, so a largest-allowed request would otherwise
    ///   be refused forever while the server claims to accept it.
    /// - `max_batch_delay_ms < server.request_timeout_ms`: otherwise a lone
    ///   request could time out just waiting for company.
    /// - `metrics_port` differs from `port` (both could not be bound).
    pub fn validate(&self, is_known_model: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        check_server(&self.server, &mut problems);
        if self.models.is_empty() {
            problems.push(problem(
                "models",
                "at least one [[models]] entry is required",
            ));
        }
        let mut first_index_of_id: HashMap<&str, usize> = HashMap::new();
        for (index, model) in self.models.iter().enumerate() {
            let key = |field: &str| format!("models[{index}].{field}");
            if model.id.is_empty() {
                problems.push(problem(key("id"), "must not be empty"));
            } else if let Some(first) = first_index_of_id.get(model.id.as_str()) {
                problems.push(problem(
                    key("id"),
                    format!(
                        "duplicate of models[{first}].id ({:?}): ids name URLs and metrics, so they must be unique",
                        model.id
                    ),
                ));
            } else {
                first_index_of_id.insert(&model.id, index);
                if !is_known_model(&model.id) {
                    check_own_model(model, &key, &mut problems);
                }
            }
            check_model(model, &self.server, &key, &mut problems);
            check_preprocessing(model, &key, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

fn problem(key: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        reason: reason.into(),
    }
}

fn check_server(server: &ServerConfig, problems: &mut Vec<Problem>) {
    if server.host.trim().is_empty() {
        problems.push(problem("server.host", "must not be empty"));
    }
    if !is_header_name(&server.client_id_header) {
        problems.push(problem(
            "server.client_id_header",
            format!(
                "{:?} is not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only); \"\" = no client key",
                server.client_id_header
            ),
        ));
    }
    if server.metrics_port != 0 && server.metrics_port == server.port {
        problems.push(problem(
            "server.metrics_port",
            format!(
                "must differ from server.port ({}); use 0 to serve /metrics on the main port",
                server.port
            ),
        ));
    }
    if server.grpc_port != 0 && [server.port, server.metrics_port].contains(&server.grpc_port) {
        problems.push(problem(
            "server.grpc_port",
            format!(
                "must differ from server.port ({}) and server.metrics_port ({}); 0 = no gRPC",
                server.port, server.metrics_port
            ),
        ));
    }
    let at_least_one = [
        ("server.request_timeout_ms", server.request_timeout_ms == 0),
        ("server.max_body_bytes", server.max_body_bytes == 0),
        (
            "server.max_images_per_request",
            server.max_images_per_request == 0,
        ),
        ("server.max_image_pixels", server.max_image_pixels == 0),
        ("server.max_image_side", server.max_image_side == 0),
        (
            "server.body_read_timeout_ms",
            server.body_read_timeout_ms == 0,
        ),
        (
            "server.header_read_timeout_ms",
            server.header_read_timeout_ms == 0,
        ),
        ("server.idle_timeout_ms", server.idle_timeout_ms == 0),
        ("server.max_connections", server.max_connections == 0),
    ];
    for (key, is_zero) in at_least_one {
        if is_zero {
            problems.push(problem(key, "must be at least 1"));
        }
    }
    if let Some(reason) = server.api_key.problem() {
        problems.push(problem("server.api_key", reason));
    }
    for (index, origin) in server.cors_allow_origins.iter().enumerate() {
        if let Some(reason) = origin_problem(origin) {
            problems.push(problem(
                format!("server.cors_allow_origins[{index}]"),
                format!("{origin:?} {reason}"),
            ));
        }
    }
}

/// Why a CORS origin would never match a browser's `Origin` header, which is
/// exactly `scheme://host[:port]`. `*` is refused: allowing every site is a
/// decision to spell out with a proxy, not a default one can slip into.
fn origin_problem(origin: &str) -> Option<&'static str> {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return Some("must be scheme://host[:port], e.g. https://app.example.com");
    };
    if !matches!(scheme, "http" | "https") {
        return Some("must start with http:// or https://");
    }
    let valid_authority = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid_authority {
        return Some("must be scheme://host[:port] with no path, wildcard or trailing slash");
    }
    None
}

fn check_model(
    model: &ModelConfig,
    server: &ServerConfig,
    key: &impl Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) {
    if !model.fold_bn && model.dtype != Precision::Fp32 {
        problems.push(problem(
            key("fold_bn"),
            format!(
                "dtype = \"{}\" needs fold_bn = true: unfolded BatchNorm would keep its running statistics in half precision",
                model.dtype
            ),
        ));
    }
    if model.engine == EngineKind::Onnxruntime {
        check_onnxruntime_model(model, key, problems);
    }
    if let WeightsSource::File(path) = &model.weights {
        let extension = path.extension().and_then(|ext| ext.to_str()).unwrap_or("");
        if !WEIGHTS_EXTENSIONS.contains(&extension) {
            problems.push(problem(
                key("weights"),
                format!(
                    "{:?} is not a supported checkpoint: expected a .pth, .pt, .bin or .safetensors file, an hf:// URL, or \"random\"",
                    path.display().to_string()
                ),
            ));
        }
    }
    for (field, value) in [
        ("replicas", model.replicas),
        ("max_batch_size", model.max_batch_size),
        ("queue_capacity", model.queue_capacity),
    ] {
        if value == 0 {
            problems.push(problem(key(field), "must be at least 1"));
        }
    }
    if model.max_batch_size > 0 && model.queue_capacity > 0 {
        if model.queue_capacity < model.max_batch_size {
            problems.push(problem(
                key("queue_capacity"),
                format!(
                    "must be at least max_batch_size ({}), or a batch could never fill",
                    model.max_batch_size
                ),
            ));
        }
        if model.queue_capacity < server.max_images_per_request {
            problems.push(problem(
                key("queue_capacity"),
                format!(
                    "must be at least server.max_images_per_request ({}), or the largest allowed request could never be admitted",
                    server.max_images_per_request
                ),
            ));
        }
    }
    if server.request_timeout_ms > 0 && model.max_batch_delay_ms >= server.request_timeout_ms {
        problems.push(problem(
            key("max_batch_delay_ms"),
            format!(
                "must be less than server.request_timeout_ms ({})",
                server.request_timeout_ms
            ),
        ));
    }
}

/// Longest id of a model of one's own: it names URLs and metric labels.
pub const MAX_MODEL_ID_LEN: usize = 64;

/// Smallest and largest `input_size` served: below, the last stage's feature
/// map shrinks to a few pixels; above, one image costs as much as a batch.
pub const INPUT_SIZE_RANGE: std::ops::RangeInclusive<u32> = 160..=512;

/// An id that is not in the catalog names a checkpoint of one's own: it must
/// be URL-safe and come with weights to read (the architecture may still
/// come from a `config.json` beside them; whether it does is checked when
/// the file is read).
fn check_own_model(
    model: &ModelConfig,
    key: &impl Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) {
    let id = &model.id;
    let id_chars_ok = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !id_chars_ok || id.len() > MAX_MODEL_ID_LEN {
        problems.push(problem(
            key("id"),
            format!(
                "unknown model {id:?}: not a catalog id, and a model of your own needs an id of 1 to {MAX_MODEL_ID_LEN} of A-Z a-z 0-9 . _ -"
            ),
        ));
    }
    let architecture_may_come_from_config_json = matches!(
        model.weights,
        WeightsSource::File(_) | WeightsSource::Hub(_)
    );
    if model.architecture.is_none() && !architecture_may_come_from_config_json {
        problems.push(problem(
            key("architecture"),
            format!("unknown model {id:?}: set architecture (e.g. \"seresnext50_32x4d\") and weights for a checkpoint of your own"),
        ));
    }
    if model.weights == WeightsSource::Pretrained {
        problems.push(problem(
            key("weights"),
            format!("model {id:?} is not in the catalog, so it has no published weights: give a checkpoint path, an hf:// URL or \"random\""),
        ));
    }
}

/// The `pretrained_cfg` keys an entry may set, each in the range the
/// preprocessing reproduces timm for.
fn check_preprocessing(
    model: &ModelConfig,
    key: &impl Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) {
    if let Some(size) = model.input_size {
        if !INPUT_SIZE_RANGE.contains(&size) {
            problems.push(problem(
                key("input_size"),
                format!(
                    "{size} is outside {}..={}",
                    INPUT_SIZE_RANGE.start(),
                    INPUT_SIZE_RANGE.end()
                ),
            ));
        }
    }
    if let Some(pct) = model.crop_pct {
        if !(pct > 0.0 && pct <= 1.0) {
            problems.push(problem(key("crop_pct"), format!("{pct} is outside (0, 1]")));
        }
    }
    if let Some(mode) = &model.crop_mode {
        if !matches!(mode.as_str(), "center" | "squash") {
            problems.push(problem(
                key("crop_mode"),
                format!("{mode:?}: expected \"center\" or \"squash\""),
            ));
        }
    }
    if let Some(filter) = &model.interpolation {
        if !matches!(filter.as_str(), "bicubic" | "bilinear") {
            problems.push(problem(
                key("interpolation"),
                format!("{filter:?}: expected \"bicubic\" or \"bilinear\""),
            ));
        }
    }
    if let Some(mean) = model.mean {
        if !mean.iter().all(|m| m.is_finite()) {
            problems.push(problem(key("mean"), "must be three finite numbers"));
        }
    }
    if let Some(std) = model.std {
        if !std.iter().all(|s| s.is_finite() && *s > 0.0) {
            problems.push(problem(key("std"), "must be three finite numbers above 0"));
        }
    }
    if model.num_classes == Some(0) {
        problems.push(problem(key("num_classes"), "must be at least 1"));
    }
}

/// ONNX Runtime runs here on its CPU execution provider, in fp32, with
/// BatchNorm always folded into the graph's convolutions.
fn check_onnxruntime_model(
    model: &ModelConfig,
    key: &impl Fn(&str) -> String,
    problems: &mut Vec<Problem>,
) {
    if matches!(model.device, DeviceSpec::AnyCuda | DeviceSpec::Cuda(_)) {
        problems.push(problem(
            key("device"),
            "engine = \"onnxruntime\" runs on the CPU only: use device = \"cpu\" (or \"auto\"), or engine = \"libtorch\" for a GPU",
        ));
    }
    if model.dtype != Precision::Fp32 {
        problems.push(problem(
            key("dtype"),
            format!(
                "engine = \"onnxruntime\" runs fp32 only, not {}: reduced precision pays off on a GPU, under engine = \"libtorch\"",
                model.dtype
            ),
        ));
    }
}

/// An HTTP header name (RFC 9110 `token`), or empty (no header).
fn is_header_name(name: &str) -> bool {
    name.bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}
