//! Unit tests for `[[models]]` entries with a checkpoint of one's own: the
//! id, the weights they need and the `pretrained_cfg` keys' ranges.

use super::tests::{has_problem, known, problems};
use super::*;

fn own(extra: &str) -> Config {
    let text = format!(
        "[[models]]\nid = \"pets\"\narchitecture = \"seresnext50_32x4d\"\nweights = \"weights/pets.safetensors\"\n{extra}"
    );
    Config::from_toml_str(&text).expect("parses")
}

#[test]
fn an_entry_of_ones_own_with_every_key_is_valid() {
    let config = own(
        "labels = \"weights/pets-labels.txt\"\nnum_classes = 37\ninput_size = 288\ncrop_pct = 1.0\n\
         crop_mode = \"squash\"\ninterpolation = \"bilinear\"\nmean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\n",
    );
    config.validate(known).expect("valid");
    let model = &config.models[0];
    assert_eq!(model.architecture.as_deref(), Some("seresnext50_32x4d"));
    assert_eq!((model.input_size, model.crop_pct), (Some(288), Some(1.0)));
    assert_eq!(model.crop_mode.as_deref(), Some("squash"));
}

#[test]
fn the_architecture_may_come_from_a_config_json_beside_the_weights() {
    let text = "[[models]]\nid = \"pets\"\nweights = \"hf://me/pets\"\n";
    let config = Config::from_toml_str(text).expect("parses");
    config
        .validate(known)
        .expect("valid: config.json is read at start-up");
}

#[test]
fn an_id_of_ones_own_must_be_url_safe_and_short() {
    for id in ["my pets", "../x", &"a".repeat(65), "caf\u{e9}"] {
        let mut config = own("");
        config.models[0].id = id.to_owned();
        assert!(
            has_problem(&problems(&config), "models[0].id", "A-Z a-z 0-9 . _ -"),
            "{id:?}"
        );
    }
    let mut config = own("");
    config.models[0].id = "a.B_9-z".repeat(9);
    config.validate(known).expect("63 allowed characters");
}

#[test]
fn a_model_of_ones_own_needs_weights_and_an_architecture() {
    let text = "[[models]]\nid = \"pets\"\n";
    let found = problems(&Config::from_toml_str(text).expect("parses"));
    assert!(has_problem(
        &found,
        "models[0].weights",
        "no published weights"
    ));
    assert!(has_problem(
        &found,
        "models[0].architecture",
        "set architecture"
    ));

    let text = "[[models]]\nid = \"pets\"\nweights = \"random\"\narchitecture = \"seresnext50_32x4d\"\nnum_classes = 5\n";
    Config::from_toml_str(text)
        .expect("parses")
        .validate(known)
        .expect("random weights of one's own are valid");
}

#[test]
fn preprocessing_keys_out_of_range_name_the_key() {
    let cases = [
        (
            "input_size = 159",
            "models[0].input_size",
            "outside 160..=512",
        ),
        (
            "input_size = 513",
            "models[0].input_size",
            "outside 160..=512",
        ),
        ("crop_pct = 0.0", "models[0].crop_pct", "outside (0, 1]"),
        ("crop_pct = 1.01", "models[0].crop_pct", "outside (0, 1]"),
        (
            "crop_mode = \"border\"",
            "models[0].crop_mode",
            "\"center\" or \"squash\"",
        ),
        (
            "interpolation = \"nearest\"",
            "models[0].interpolation",
            "\"bicubic\" or \"bilinear\"",
        ),
        ("std = [0.5, 0.0, 0.5]", "models[0].std", "above 0"),
        ("num_classes = 0", "models[0].num_classes", "at least 1"),
    ];
    for (line, key, reason) in cases {
        let found = problems(&own(&format!("{line}\n")));
        assert!(has_problem(&found, key, reason), "{line}: {found:?}");
    }
    own("input_size = 160\n")
        .validate(known)
        .expect("160 is the smallest");
    own("input_size = 512\n")
        .validate(known)
        .expect("512 is the largest");
}

#[test]
fn a_catalog_model_may_override_its_preprocessing() {
    let text = "[[models]]\nid = \"gluon_seresnext50_32x4d\"\ncrop_pct = 1.0\n";
    Config::from_toml_str(text)
        .expect("parses")
        .validate(known)
        .expect("valid");
}
