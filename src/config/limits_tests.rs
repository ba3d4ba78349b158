//! Validation of the limits that guard the server, and of the model
//! settings that only make sense together.

use super::tests::{has_problem, known, problems};
use super::*;

#[test]
fn hardening_limits_are_validated_by_key() {
    let mut config = Config::default();
    config.server.max_image_pixels = 0;
    config.server.max_image_side = 0;
    config.server.body_read_timeout_ms = 0;
    config.server.api_key = ApiKey::new("short");
    config.server.cors_allow_origins = vec![
        "https://app.example.com".into(),
        "http://localhost:3000".into(),
        "*".into(),
        "https://example.com/".into(),
        "ftp://example.com".into(),
    ];
    let problems = problems(&config);
    for key in [
        "server.max_image_pixels",
        "server.max_image_side",
        "server.body_read_timeout_ms",
        "server.api_key",
        "server.cors_allow_origins[2]",
        "server.cors_allow_origins[3]",
        "server.cors_allow_origins[4]",
    ] {
        assert!(problems.iter().any(|p| p.key == key), "{key}: {problems:?}");
    }
    assert!(!problems
        .iter()
        .any(|p| p.key.ends_with("[0]") || p.key.ends_with("[1]")));
}

#[test]
fn the_api_key_never_shows_in_debug_output() {
    let text = "[server]\napi_key = \"do-not-print-this-key-0123456789\"\n";
    let config = Config::from_toml_str(text).expect("parses");
    config.validate(known).expect("a long key is valid");
    assert!(config
        .server
        .api_key
        .matches("do-not-print-this-key-0123456789"));
    let shown = format!("{config:?} {config:#?}");
    assert!(!shown.contains("do-not-print"), "{shown}");
    assert!(shown.contains("redacted"));
}

#[test]
fn half_precision_needs_folded_batchnorm() {
    let mut config = Config::default();
    config.models[0].dtype = Precision::Fp16;
    config.models[0].fold_bn = false;
    let found = problems(&config);
    assert!(
        has_problem(&found, "models[0].fold_bn", "fp16"),
        "{found:?}"
    );
    config.models[0].fold_bn = true;
    assert!(config.validate(known).is_ok());
    config.models[0].dtype = Precision::Fp32;
    config.models[0].fold_bn = false;
    assert!(config.validate(known).is_ok());
}
