use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;

use super::*;
use crate::http::error::request_status;
use crate::http::v2::binary::{encode_bytes_elements, encode_f32s};

/// A small model shape keeps FP32 test tensors short.
const SHAPE: ModelShape = ModelShape {
    input_size: 2,
    num_classes: 10,
};
const PER_IMAGE: usize = 3 * 2 * 2;
/// The path's model, at the version V2 reports.
const TARGET: Target = Target {
    model: ModelId::SeResNeXt50_32x4d,
    version: "1",
    shape: SHAPE,
};

fn json_only(value: serde_json::Value) -> FramedBody {
    FramedBody {
        json: Bytes::from(value.to_string()),
        binary: Bytes::new(),
    }
}

fn with_binary(value: serde_json::Value, binary: Vec<u8>) -> FramedBody {
    FramedBody {
        json: Bytes::from(value.to_string()),
        binary: Bytes::from(binary),
    }
}

fn error_of(body: FramedBody) -> RequestError {
    parse_infer(body, TARGET).expect_err("refused")
}

#[test]
fn json_bytes_elements_are_base64_images() {
    let b64 = base64::engine::general_purpose::STANDARD.encode(b"jpeg bytes");
    let call = parse_infer(
        json_only(json!({
            "id": "42",
            "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [b64]}],
        })),
        TARGET,
    )
    .unwrap();
    assert_eq!(call.id.as_deref(), Some("42"));
    assert_eq!(
        call.images,
        RequestImages::Encoded(vec![Bytes::from_static(b"jpeg bytes")])
    );
    // No outputs named: the probabilities, as JSON.
    assert_eq!(
        call.outputs,
        [OutputSpec {
            kind: OutputKind::Probabilities,
            classification: None,
            binary: false
        }]
    );
    assert_eq!(call.timeout, None);
}

#[test]
fn binary_bytes_elements_are_raw_images_and_shape_n_1_is_accepted() {
    let binary = encode_bytes_elements([&b"first"[..], b"second"]);
    let size = binary.len();
    let call = parse_infer(
        with_binary(
            json!({
                "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2, 1],
                            "parameters": {"binary_data_size": size}}],
                "outputs": [{"name": "probabilities",
                             "parameters": {"binary_data": true, "classification": 3}}],
                "parameters": {"timeout": 250000},
            }),
            binary,
        ),
        TARGET,
    )
    .unwrap();
    assert_eq!(
        call.images,
        RequestImages::Encoded(vec![
            Bytes::from_static(b"first"),
            Bytes::from_static(b"second")
        ])
    );
    assert_eq!(
        call.outputs,
        [OutputSpec {
            kind: OutputKind::Probabilities,
            classification: Some(3),
            binary: true
        }]
    );
    assert_eq!(call.timeout, Some(Duration::from_millis(250)));
}

#[test]
fn fp32_data_may_be_flat_nested_json_or_binary() {
    let values: Vec<f32> = (0..2 * PER_IMAGE).map(|i| i as f32 * 0.25 - 1.0).collect();
    let expected = RequestImages::Normalized(vec![
        values[..PER_IMAGE].to_vec(),
        values[PER_IMAGE..].to_vec(),
    ]);
    let input = |data: serde_json::Value| json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 3, 2, 2], "data": data}]});
    let flat = parse_infer(json_only(input(json!(values))), TARGET).unwrap();
    assert_eq!(flat.images, expected);

    let nested: Vec<Vec<Vec<Vec<f32>>>> = values
        .chunks(PER_IMAGE)
        .map(|image| {
            image
                .chunks(4)
                .map(|channel| channel.chunks(2).map(<[f32]>::to_vec).collect())
                .collect()
        })
        .collect();
    let nested = parse_infer(json_only(input(json!(nested))), TARGET).unwrap();
    assert_eq!(nested.images, expected);

    let binary = encode_f32s([values.as_slice()]);
    let size = binary.len();
    let body = with_binary(
        json!({
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 3, 2, 2],
                        "parameters": {"binary_data_size": size}}],
            "parameters": {"binary_data_output": true},
        }),
        binary,
    );
    let call = parse_infer(body, TARGET).unwrap();
    assert_eq!(call.images, expected);
    assert!(call.outputs[0].binary, "binary_data_output is the default");
}

#[test]
fn wrong_datatype_shape_or_name_is_an_invalid_tensor() {
    let cases = [
        json!({"inputs": [{"name": "input", "datatype": "FP16", "shape": [1, 3, 2, 2], "data": [0]}]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "FP32", "shape": [1], "data": [0]}]}),
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224], "data": [0]}]}),
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2], "data": [0]}]}),
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 2, 2], "data": [0]}]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1, 2], "data": ["aGk="]}]}),
        json!({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [0]}]}),
        // Element count disagrees with the shape.
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2], "data": [0, 1]}]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2], "data": ["aGk="]}]}),
        // Wrong kind of data for the datatype.
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [1]}]}),
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2], "data": ["x"]}]}),
        // Not base64.
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}]}),
        // No input, two inputs, no data.
        json!({"inputs": []}),
        json!({"inputs": [
            {"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]},
            {"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]},
        ]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1]}]}),
        // Outputs that do not exist, or twice.
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}],
               "outputs": [{"name": "logits"}]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}],
               "outputs": [{"name": "probabilities"}, {"name": "probabilities"}]}),
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}],
               "outputs": [{"name": "features"}, {"name": "probabilities"}, {"name": "features"}]}),
    ];
    for case in cases {
        let error = error_of(json_only(case.clone()));
        assert_eq!(error.error_type(), "invalid_tensor", "{case}: {error}");
    }
}

#[test]
fn mixed_data_is_invalid_json() {
    let body = json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2],
                                  "data": [1, "x"]}]});
    assert_eq!(error_of(json_only(body)).error_type(), "invalid_json");
    let body = json!({"inputs": [], "unknown_field": 1});
    assert_eq!(error_of(json_only(body)).error_type(), "invalid_json");
    let body = FramedBody {
        json: Bytes::from_static(b"{not json"),
        binary: Bytes::new(),
    };
    assert_eq!(error_of(body).error_type(), "invalid_json");
}

#[test]
fn model_name_and_version_in_the_body_must_agree_with_the_path() {
    let input = json!({"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]});
    // What KServe's SDK sends, an alias of the same model, the version
    // served, and an empty version (the protocol's "any"); with binary data too.
    for fields in [
        json!({"model_name": "gluon_seresnext50_32x4d"}),
        json!({"model_name": "timm/seresnext50_32x4d.gluon_in1k", "model_version": "1"}),
        json!({"model_version": ""}),
        json!({"model_name": null, "model_version": null}),
    ] {
        let mut body = json!({"inputs": [input]});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        parse_infer(json_only(body.clone()), TARGET).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
    let binary = encode_bytes_elements([&b"image"[..]]);
    let size = binary.len();
    let body = json!({"model_name": "gluon_seresnext50_32x4d", "model_version": "1",
                      "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                                  "parameters": {"binary_data_size": size}}]});
    parse_infer(with_binary(body, binary.clone()), TARGET).unwrap();

    // Another model, an unknown one, another version: 400, naming both values.
    let cases = [
        (
            json!({"model_name": "gluon_seresnext101_32x4d", "inputs": [input]}),
            [
                "\"gluon_seresnext101_32x4d\"",
                "\"gluon_seresnext50_32x4d\"",
            ],
        ),
        (
            json!({"model_name": "resnet50", "inputs": [input]}),
            ["\"resnet50\"", "\"gluon_seresnext50_32x4d\""],
        ),
        (
            json!({"model_version": "2", "inputs": [input]}),
            ["model_version \"2\"", "\"1\""],
        ),
    ];
    for (case, names) in cases {
        let error = error_of(json_only(case.clone()));
        assert_eq!(error.error_type(), "invalid_parameter", "{case}: {error}");
        assert_eq!(request_status(&error), StatusCode::BAD_REQUEST);
        for name in names {
            assert!(error.to_string().contains(name), "{case}: {error}");
        }
    }
    // The binary framing reads the same JSON header.
    let body = json!({"model_name": "gluon_seresnext101_64x4d",
                      "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                                  "parameters": {"binary_data_size": size}}]});
    let error = error_of(with_binary(body, binary));
    assert!(
        error.to_string().contains("gluon_seresnext101_64x4d"),
        "{error}"
    );
    // Names are not a door for other fields: a near-miss is still refused.
    let body = json!({"model": "gluon_seresnext50_32x4d", "inputs": [input]});
    assert_eq!(error_of(json_only(body)).error_type(), "invalid_json");
}

#[test]
fn unknown_or_bad_parameters_are_refused() {
    let input = json!({"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]});
    let cases = [
        (
            json!({"inputs": [input], "parameters": {"priority": 1}}),
            "invalid_parameter",
        ),
        (
            json!({"inputs": [input], "parameters": {"binary_data_output": "yes"}}),
            "invalid_parameter",
        ),
        (
            json!({"inputs": [input], "parameters": {"timeout": 0}}),
            "invalid_timeout",
        ),
        (
            json!({"inputs": [input], "outputs": [{"name": "probabilities", "parameters": {"classification": 11}}]}),
            "invalid_parameter",
        ),
        (
            json!({"inputs": [input], "outputs": [{"name": "probabilities", "parameters": {"top_k": 1}}]}),
            "invalid_parameter",
        ),
        (
            json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                               "parameters": {"shared_memory_region": "r"}}]}),
            "invalid_parameter",
        ),
    ];
    for (case, token) in cases {
        let error = error_of(json_only(case.clone()));
        assert_eq!(error.error_type(), token, "{case}: {error}");
    }
    // classification 0 means "none", as tritonclient's class_count=0 does.
    let body = json!({"inputs": [input], "outputs": [{"name": "probabilities", "parameters": {"classification": 0}}]});
    let call = parse_infer(json_only(body), TARGET).unwrap();
    assert_eq!(call.outputs[0].classification, None);
}

#[test]
fn binary_sizes_must_match_the_data() {
    let binary = encode_bytes_elements([&b"image"[..]]);
    let bytes_input = |size: usize| {
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                           "parameters": {"binary_data_size": size}}]})
    };
    // Claims more than there is, or leaves bytes unclaimed.
    for size in [binary.len() + 1, binary.len() - 1] {
        let error = error_of(with_binary(bytes_input(size), binary.clone()));
        assert_eq!(error.error_type(), "invalid_binary_data", "{size}: {error}");
    }
    // Binary data with no input claiming it.
    let body = with_binary(
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]}]}),
        vec![1, 2, 3],
    );
    assert_eq!(error_of(body).error_type(), "invalid_binary_data");
    // FP32 bytes not a multiple of 4.
    let body = with_binary(
        json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 2, 2],
                           "parameters": {"binary_data_size": 5}}]}),
        vec![0; 5],
    );
    assert_eq!(error_of(body).error_type(), "invalid_binary_data");
    // Both JSON data and a binary size.
    let body = with_binary(
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="],
                           "parameters": {"binary_data_size": 3}}]}),
        vec![0; 3],
    );
    assert_eq!(error_of(body).error_type(), "invalid_tensor");
    let body = json_only(bytes_input(usize::MAX));
    assert_eq!(error_of(body).error_type(), "invalid_binary_data");
}

#[test]
fn a_huge_shape_is_refused_by_element_count_without_allocating() {
    let body = json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES",
                                  "shape": [i64::MAX], "data": ["aGk="]}]});
    assert_eq!(error_of(json_only(body)).error_type(), "invalid_tensor");
    let body = json!({"inputs": [{"name": "input", "datatype": "FP32",
                                  "shape": [i64::MAX, 3, 2, 2], "data": [0]}]});
    assert_eq!(error_of(json_only(body)).error_type(), "invalid_tensor");
}

#[test]
fn features_may_be_asked_for_beside_or_instead_of_the_probabilities() {
    let input = json!({"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": ["aGk="]});
    let call = parse_infer(
        json_only(json!({"inputs": [input], "outputs": [
            {"name": "features", "parameters": {"binary_data": true}},
            {"name": "probabilities"},
        ]})),
        TARGET,
    )
    .unwrap();
    assert!(call.wants_features());
    let kinds: Vec<_> = call
        .outputs
        .iter()
        .map(|spec| (spec.kind, spec.binary))
        .collect();
    assert_eq!(
        kinds,
        [
            (OutputKind::Features, true),
            (OutputKind::Probabilities, false)
        ]
    );
    let only = parse_infer(
        json_only(json!({"inputs": [input], "outputs": [{"name": "features"}]})),
        TARGET,
    )
    .unwrap();
    assert_eq!(only.outputs.len(), 1);
    assert!(only.wants_features());
    let default = parse_infer(json_only(json!({"inputs": [input]})), TARGET).unwrap();
    assert!(!default.wants_features(), "features only when asked for");
    let error = error_of(json_only(json!({"inputs": [input], "outputs": [
        {"name": "features", "parameters": {"classification": 3}},
    ]})));
    assert_eq!(error.error_type(), "invalid_parameter", "{error}");
}
