//! The Open Inference Protocol (KServe V2) by hand on the shared test server:
//! JSON and binary requests with `BYTES` and `FP32` inputs answer as V1
//! does, binary responses follow the extension's framing, and malformed
//! requests get 400s with the usual JSON error body.

use crate::support;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use support::b64;
use support::kserve::{
    assert_close, floats, our_normalized_input, top_classes, v1_probabilities, HEADER_LENGTH,
    SAME_INPUT_TOLERANCE, V2_INFER,
};
use support::server::{photo, shared_server, MODEL};

// ------------------------------------------------------------ JSON and binary

async fn post_json(client: &Client, url: &str, body: &Value) -> (StatusCode, Value) {
    let response = client.post(url).json(body).send().await.expect("send");
    let status = response.status();
    (status, response.json().await.expect("JSON answer"))
}

#[tokio::test]
async fn json_requests_with_bytes_and_fp32_inputs_match_v1() {
    let server = shared_server();
    let client = Client::new();
    let bytes = photo("chelsea.jpg");
    let v1 = v1_probabilities(&client, &server.base_url, bytes.clone()).await;

    let encoded = b64(&bytes);
    let request = json!({
        "id": "my-request",
        "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [encoded]}],
    });
    let (status, body) = post_json(&client, &server.url(V2_INFER), &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_name"], MODEL);
    assert_eq!(body["id"], "my-request");
    let output = &body["outputs"][0];
    assert_eq!(output["name"], "probabilities");
    assert_eq!(output["datatype"], "FP32");
    assert_eq!(output["shape"], json!([1, 1000]));
    assert_close(
        &floats(&output["data"]),
        &v1,
        SAME_INPUT_TOLERANCE,
        "BYTES JSON",
    );

    let request = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                    "data": our_normalized_input(&bytes)}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    });
    let (status, body) = post_json(&client, &server.url(V2_INFER), &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let output = &body["outputs"][0];
    assert_eq!(
        (output["datatype"].as_str(), &output["shape"]),
        (Some("BYTES"), &json!([1, 3]))
    );
    let classes: Vec<(f64, usize)> = output["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|text| {
            let mut parts = text.as_str().unwrap().splitn(3, ':');
            let probability = parts.next().unwrap().parse().unwrap();
            let id = parts.next().unwrap().parse().unwrap();
            assert_eq!(parts.next(), seresnext_serve::labels::label(id));
            (probability, id)
        })
        .collect();
    assert_eq!(
        classes.iter().map(|c| c.1).collect::<Vec<_>>(),
        top_classes(&v1, 3)
    );
    for (probability, id) in classes {
        assert!(
            (probability - v1[id]).abs() <= SAME_INPUT_TOLERANCE,
            "FP32 JSON class {id}"
        );
    }
}

/// A binary request body: the JSON header, then `binary`.
fn framed(header: &Value, binary: &[u8]) -> (Vec<u8>, usize) {
    let mut body = header.to_string().into_bytes();
    let length = body.len();
    body.extend_from_slice(binary);
    (body, length)
}

/// POSTs a binary-extension request (`header` then `binary`) and checks
/// for 200.
async fn post_framed(
    client: &Client,
    url: &str,
    header: &Value,
    binary: &[u8],
) -> reqwest::Response {
    let (body, length) = framed(header, binary);
    let response = client
        .post(url)
        .header(HEADER_LENGTH, length)
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

/// A binary-extension response: its JSON header and the binary after it.
async fn split_framed(response: reqwest::Response) -> (Value, Vec<u8>) {
    let json_length: usize = response.headers()[HEADER_LENGTH]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a length");
    let bytes = response.bytes().await.expect("body");
    let header = serde_json::from_slice(&bytes[..json_length]).expect("JSON header");
    (header, bytes[json_length..].to_vec())
}

fn length_prefixed(elements: &[&[u8]]) -> Vec<u8> {
    elements
        .iter()
        .flat_map(|e| {
            (e.len() as u32)
                .to_le_bytes()
                .into_iter()
                .chain(e.iter().copied())
        })
        .collect()
}

#[tokio::test]
async fn binary_requests_and_responses_follow_the_extension() {
    let server = shared_server();
    let client = Client::new();
    let (first, second) = (photo("chelsea.jpg"), photo("coffee.jpg"));
    let v1_first = v1_probabilities(&client, &server.base_url, first.clone()).await;
    let v1_second = v1_probabilities(&client, &server.base_url, second.clone()).await;

    // Two images as binary BYTES; probabilities and top-2 both binary.
    let data = length_prefixed(&[&first, &second]);
    let header = json!({
        "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [2],
                    "parameters": {"binary_data_size": data.len()}}],
        "parameters": {"binary_data_output": true},
    });
    let response = post_framed(&client, &server.url(V2_INFER), &header, &data).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert!(response.headers().contains_key("x-total-time-ms"));
    let (header, binary) = split_framed(response).await;
    let output = &header["outputs"][0];
    assert_eq!(output["shape"], json!([2, 1000]));
    assert_eq!(output["parameters"]["binary_data_size"], 2 * 1000 * 4);
    assert!(output.get("data").is_none(), "{output}");
    let values: Vec<f64> = binary[..]
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    assert_eq!(values.len(), 2000);
    assert_close(&values[..1000], &v1_first, SAME_INPUT_TOLERANCE, "binary 0");
    assert_close(
        &values[1000..],
        &v1_second,
        SAME_INPUT_TOLERANCE,
        "binary 1",
    );

    // Binary FP32 in, classification out as binary BYTES.
    let normalized: Vec<u8> = our_normalized_input(&first)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let header = json!({
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224],
                    "parameters": {"binary_data_size": normalized.len()}}],
        "outputs": [{"name": "probabilities",
                     "parameters": {"classification": 2, "binary_data": true}}],
    });
    let response = post_framed(&client, &server.url(V2_INFER), &header, &normalized).await;
    let (header, binary) = split_framed(response).await;
    assert_eq!(header["outputs"][0]["datatype"], "BYTES");
    let mut rest = &binary[..];
    let mut classes = Vec::new();
    while !rest.is_empty() {
        let size = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        classes.push(String::from_utf8(rest[4..4 + size].to_vec()).unwrap());
        rest = &rest[4 + size..];
    }
    let ids: Vec<usize> = classes
        .iter()
        .map(|c| c.split(':').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids, top_classes(&v1_first, 2), "{classes:?}");
}

// ------------------------------------------------------------------- errors

#[tokio::test]
async fn malformed_requests_get_400_json_errors() {
    let server = shared_server();
    let client = Client::new();
    let url = server.url(V2_INFER);
    let encoded = b64(&photo("chelsea.jpg"));
    let json_cases = [
        (
            json!({"inputs": [{"name": "image_bytes", "datatype": "FP32", "shape": [1], "data": [encoded]}]}),
            "invalid_tensor",
        ),
        (
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [0.0]}]}),
            "invalid_tensor",
        ),
        (json!({"inputs": []}), "invalid_tensor"),
        (json!({"outputs": []}), "invalid_json"),
        (
            json!({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3, 224, 224], "data": [1.0, 2.0]}]}),
            "invalid_tensor",
        ),
        (
            json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "data": [encoded]}],
                "outputs": [{"name": "logits"}]}),
            "invalid_tensor",
        ),
        (
            json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [0], "data": []}]}),
            "no_images",
        ),
    ];
    for (request, error_type) in json_cases {
        let (status, body) = post_json(&client, &url, &request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {body}");
        assert_eq!(body["error_type"], error_type, "{request}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }

    let data = length_prefixed(&[b"image"]);
    let sized = |size: usize| {
        json!({"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                           "parameters": {"binary_data_size": size}}]})
    };
    let binary_cases: Vec<(Vec<u8>, String)> = vec![
        // binary_data_size past the end, or short of it.
        {
            let (b, l) = framed(&sized(data.len() + 1), &data);
            (b, l.to_string())
        },
        {
            let (b, l) = framed(&sized(data.len() - 1), &data);
            (b, l.to_string())
        },
        // A header length longer than the body, or not a number.
        {
            let (b, _) = framed(&sized(data.len()), &data);
            (b, "100000".to_owned())
        },
        {
            let (b, _) = framed(&sized(data.len()), &data);
            (b, "ten".to_owned())
        },
        // An element length past the end.
        {
            let bad = [255u8, 0, 0, 0, 1];
            let (b, l) = framed(&sized(bad.len()), &bad);
            (b, l.to_string())
        },
    ];
    for (body, length) in binary_cases {
        let response = client
            .post(&url)
            .header(HEADER_LENGTH, &length)
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{length}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error_type"], "invalid_binary_data",
            "{length}: {body}"
        );
    }

    // Bytes that are no image get the same 415 as on V1.
    let (body, length) = framed(&sized(data.len()), &data);
    let response = client
        .post(&url)
        .header(HEADER_LENGTH, length)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Unknown models are 404 on every V2 model route; the wrong method 405.
    let unknown = |route: &str| server.url(&format!("/v2/models/no_such_model{route}"));
    for route in ["", "/ready"] {
        let response = client.get(unknown(route)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{route}");
    }
    let (status, body) = post_json(&client, &unknown("/infer"), &json!({"inputs": []})).await;
    assert_eq!(
        (status, &body["error_type"]),
        (StatusCode::NOT_FOUND, &json!("model_not_found"))
    );
    let response = client.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
