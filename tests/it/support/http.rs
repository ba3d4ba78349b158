//! A response read whole (status, headers, JSON body) and the checks the API
//! topics share: the JSON error shape, and "a good request still works".

use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::{Client, StatusCode};
use serde_json::Value;

use super::server::{photo, PREDICT};

/// A response with its body read: JSON where it parses, else the text as a
/// JSON string.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("read body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `request` and reads its answer; a transport error fails the test.
pub async fn send(request: reqwest::RequestBuilder) -> Answer {
    answer(request.send().await.expect("send")).await
}

pub async fn post_raw(
    client: &Client,
    url: &str,
    bytes: Vec<u8>,
    content_type: Option<&str>,
) -> Answer {
    let mut request = client.post(url).body(bytes);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    send(request).await
}

pub async fn get(client: &Client, url: &str) -> Answer {
    send(client.get(url)).await
}

/// The answer is the JSON error `{"error", "error_type"}` with this status.
#[track_caller]
pub fn assert_error(answer: &Answer, status: u16, error_type: &str) {
    assert_eq!(answer.status.as_u16(), status, "body: {}", answer.body);
    assert_eq!(
        answer.body["error_type"], error_type,
        "body: {}",
        answer.body
    );
    assert!(
        answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        answer.body
    );
    assert_eq!(
        answer.headers[CONTENT_TYPE], "application/json",
        "errors are JSON"
    );
    assert!(answer.headers.contains_key("x-request-id"));
}

/// The top class of image `image` in a V1 answer.
pub fn top1(body: &Value, image: usize) -> u64 {
    body["predictions"][image]["top_k"][0]["class_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no prediction {image} in {body}"))
}

/// The probabilities of the first image's `top_k`, in answer order.
pub fn probabilities(body: &Value) -> Vec<f64> {
    body["predictions"][0]["top_k"]
        .as_array()
        .expect("top_k")
        .iter()
        .map(|c| c["probability"].as_f64().expect("probability"))
        .collect()
}

/// A good request still gets a good answer (after an error test).
pub async fn assert_serves(client: &Client, base_url: &str) {
    let ok = post_raw(
        client,
        &format!("{base_url}{PREDICT}"),
        photo("chelsea.jpg"),
        Some("image/jpeg"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(top1(&ok.body, 0), 285);
}

/// The text of `/metrics` at `base_url`.
pub async fn metrics_text(client: &Client, base_url: &str) -> String {
    let response = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK, "GET {base_url}/metrics");
    response.text().await.expect("metrics text")
}

/// One exposition sample line: `name{label="value",...} value`.
pub fn is_valid_sample(line: &str) -> bool {
    let Some((series, value)) = line.rsplit_once(' ') else {
        return false;
    };
    let value_ok = value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value);
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => match rest.strip_suffix('}') {
            Some(labels) => (name, labels),
            None => return false,
        },
        None => (series, ""),
    };
    let name_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_empty()
        || labels.split(',').all(|pair| {
            pair.split_once('=').is_some_and(|(key, quoted)| {
                !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && quoted.len() >= 2
                    && quoted.starts_with('"')
                    && quoted.ends_with('"')
            })
        });
    value_ok && name_ok && labels_ok
}

/// Every line of an exposition is a `# HELP`/`# TYPE` comment or a valid
/// sample.
#[track_caller]
pub fn assert_valid_exposition(text: &str) {
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                "{line}"
            );
        } else {
            assert!(is_valid_sample(line), "invalid sample line: {line}");
        }
    }
}

#[test]
fn the_sample_check_tells_good_lines_from_bad() {
    for good in [
        "up 1",
        r#"seresnext_requests_total{model="m",status="200"} 3"#,
        r#"seresnext_batch_size_bucket{model="m",le="+Inf"} 2"#,
        "a:b_c 1.5e-3",
        "x NaN",
    ] {
        assert!(is_valid_sample(good), "{good}");
    }
    for bad in [
        "no_value",
        "1starts_with_digit 1",
        "x{model=\"m\" 1",
        "x{model=m} 1",
        "x{=\"m\"} 1",
        "x one",
        "bad-name 1",
    ] {
        assert!(!is_valid_sample(bad), "{bad}");
    }
}
