use std::collections::HashMap;

use super::*;
use crate::http::v2::binary::encode_bytes_elements;
use crate::http::v2::request::ModelShape;
use crate::infer::RequestImages;
use crate::model::ModelId;

use super::super::proto::model_infer_request::InferRequestedOutputTensor;
use super::super::proto::InferTensorContents;

const TARGET: Target = Target {
    model: ModelId::SeResNeXt50_32x4d,
    version: "1",
    shape: ModelShape {
        input_size: 2,
        num_classes: 10,
    },
};

fn bytes_input(shape: Vec<i64>) -> InferInputTensor {
    InferInputTensor {
        name: "image_bytes".into(),
        datatype: "BYTES".into(),
        shape,
        ..InferInputTensor::default()
    }
}

fn int_param(value: i64) -> InferParameter {
    InferParameter {
        parameter_choice: Some(ParameterChoice::Int64Param(value)),
    }
}

#[test]
fn raw_bytes_input_and_classification_output() {
    let raw = encode_bytes_elements([&b"one"[..], &b"two"[..]]);
    let request = ModelInferRequest {
        model_name: "gluon_seresnext50_32x4d".into(),
        id: "req-1".into(),
        inputs: vec![bytes_input(vec![2])],
        outputs: vec![InferRequestedOutputTensor {
            name: "probabilities".into(),
            parameters: HashMap::from([("classification".into(), int_param(3))]),
        }],
        raw_input_contents: vec![raw.into()],
        ..ModelInferRequest::default()
    };
    let call = infer_call(request, TARGET).expect("parses");
    assert_eq!(call.id.as_deref(), Some("req-1"));
    assert_eq!(
        call.images,
        RequestImages::Encoded(vec!["one".into(), "two".into()])
    );
    assert_eq!(call.outputs[0].classification, Some(3));
}

#[test]
fn typed_fp32_contents_are_checked_like_http() {
    let input = |values: Vec<f32>| InferInputTensor {
        name: "input".into(),
        datatype: "FP32".into(),
        shape: vec![1, 3, 2, 2],
        contents: Some(InferTensorContents {
            fp32_contents: values,
            ..InferTensorContents::default()
        }),
        ..InferInputTensor::default()
    };
    let request = |values| ModelInferRequest {
        inputs: vec![input(values)],
        ..ModelInferRequest::default()
    };
    let call = infer_call(request(vec![0.5; 12]), TARGET).expect("parses");
    assert_eq!(call.images, RequestImages::Normalized(vec![vec![0.5; 12]]));
    let short = infer_call(request(vec![0.5; 11]), TARGET).expect_err("short");
    assert!(short.to_string().contains("12 elements"), "{short}");
}

#[test]
fn refusals_are_http_v2_refusals() {
    let mut wrong_type = bytes_input(vec![1]);
    wrong_type.datatype = "FP32".into();
    let cases = [
        ModelInferRequest {
            model_name: "gluon_seresnext101_32x4d".into(),
            inputs: vec![bytes_input(vec![1])],
            raw_input_contents: vec![encode_bytes_elements([&b"x"[..]]).into()],
            ..ModelInferRequest::default()
        },
        ModelInferRequest {
            inputs: vec![wrong_type],
            raw_input_contents: vec![Vec::new().into()],
            ..ModelInferRequest::default()
        },
        ModelInferRequest {
            inputs: vec![bytes_input(vec![1])],
            ..ModelInferRequest::default()
        },
        ModelInferRequest {
            inputs: vec![bytes_input(vec![1])],
            parameters: HashMap::from([("priority".into(), int_param(1))]),
            raw_input_contents: vec![encode_bytes_elements([&b"x"[..]]).into()],
            ..ModelInferRequest::default()
        },
    ];
    for request in cases {
        let error = infer_call(request, TARGET).expect_err("refused");
        assert_eq!(
            crate::http::error::request_status(&error),
            axum::http::StatusCode::BAD_REQUEST,
            "{error}"
        );
    }
}

#[test]
fn grpc_timeout_units() {
    assert_eq!(grpc_timeout(None), Ok(None));
    assert_eq!(
        grpc_timeout(Some("250m")),
        Ok(Some(Duration::from_millis(250)))
    );
    assert_eq!(grpc_timeout(Some("2S")), Ok(Some(Duration::from_secs(2))));
    assert_eq!(
        grpc_timeout(Some("1H")),
        Ok(Some(Duration::from_secs(3600)))
    );
    assert_eq!(grpc_timeout(Some("0n")), Ok(Some(Duration::from_micros(1))));
    for bad in ["", "m", "123456789m", "12x", "-1m"] {
        assert!(grpc_timeout(Some(bad)).is_err(), "{bad:?}");
    }
}
