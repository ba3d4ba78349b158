//! Request bodies → encoded images (`Vec<Bytes>`) plus body parameters.
//!
//! Three shapes, chosen by [`BodyKind`]: one raw image, multipart parts (one
//! image each, in order) or KServe V1 / TF Serving JSON with base64 images.
//! Images stay `Bytes` end to end: a raw body and multipart parts are handed
//! on without a copy, and a base64 string is decoded straight from the
//! buffered body (borrowed, not copied into a `String`) into its own buffer.

use std::borrow::Cow;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::params::{BodyKind, Params};
use crate::http::body_deadline;
use crate::http::encoding::decode_base64;
use crate::http::error::RequestError;
use crate::http::extract::buffer;

/// The images of one request and what its body said about parameters.
#[derive(Debug, Default)]
pub struct ParsedBody {
    pub images: Vec<Bytes>,
    pub params: Params,
}

/// Reads the body as `kind` says. `body_limit` is only used to word the 413
/// (the limit itself is enforced by `DefaultBodyLimit`); `max_images` stops
/// reading as soon as a request carries one image too many.
pub async fn read_body(
    request: Request,
    kind: BodyKind,
    body_limit: usize,
    max_images: usize,
) -> Result<ParsedBody, RequestError> {
    match kind {
        BodyKind::Raw => {
            let bytes = buffer(request, body_limit).await?;
            if bytes.is_empty() {
                return Err(RequestError::EmptyBody);
            }
            Ok(ParsedBody {
                images: vec![bytes],
                params: Params::default(),
            })
        }
        BodyKind::Multipart => {
            let deadline = body_deadline::of(&request);
            body_deadline::within(deadline, async move {
                let multipart = Multipart::from_request(request, &())
                    .await
                    .map_err(|e| RequestError::InvalidMultipart(e.body_text()))?;
                Ok(ParsedBody {
                    images: read_multipart(multipart, body_limit, max_images).await?,
                    params: Params::default(),
                })
            })
            .await
        }
        BodyKind::Json => {
            let bytes = buffer(request, body_limit).await?;
            if bytes.is_empty() {
                return Err(RequestError::EmptyBody);
            }
            parse_json(&bytes, max_images)
        }
    }
}

/// Every part is an image, whatever its field name: clients name them
/// `file`, `image`, `images[]`... and only the order matters.
async fn read_multipart(
    mut multipart: Multipart,
    body_limit: usize,
    max_images: usize,
) -> Result<Vec<Bytes>, RequestError> {
    let error = |e: MultipartError| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            RequestError::BodyTooLarge { limit: body_limit }
        } else {
            RequestError::InvalidMultipart(e.body_text())
        }
    };
    let mut images = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(error)? {
        if images.len() == max_images {
            return Err(RequestError::TooManyImages { limit: max_images });
        }
        images.push(field.bytes().await.map_err(error)?);
    }
    if images.is_empty() {
        return Err(RequestError::NoImages);
    }
    Ok(images)
}

/// `{"instances": [...], "parameters": {...}}`; strings borrow from the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRequest<'a> {
    #[serde(borrow)]
    instances: Vec<Instance<'a>>,
    #[serde(default)]
    parameters: Option<Map<String, Value>>,
}

/// One instance: `{"b64": ...}` (TF Serving), `{"image": {"b64": ...}}`
/// (KServe's image examples) or `{"image_bytes": {"b64": ...}}` (TF Serving's
/// classic image models).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Instance<'a> {
    #[serde(borrow, default)]
    b64: Option<Base64Text<'a>>,
    #[serde(borrow, default)]
    image: Option<Wrapped<'a>>,
    #[serde(borrow, default)]
    image_bytes: Option<Wrapped<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped<'a> {
    #[serde(borrow)]
    b64: Base64Text<'a>,
}

/// Borrowed from the body unless the JSON escaped something (e.g. `\/`).
#[derive(Deserialize)]
struct Base64Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Parses a KServe V1 / TF Serving body into images and parameters.
pub fn parse_json(body: &[u8], max_images: usize) -> Result<ParsedBody, RequestError> {
    let request: JsonRequest =
        serde_json::from_slice(body).map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if request.instances.is_empty() {
        return Err(RequestError::NoImages);
    }
    if request.instances.len() > max_images {
        return Err(RequestError::TooManyImages { limit: max_images });
    }
    let params = json_params(request.parameters.unwrap_or_default())?;
    let images = request
        .instances
        .into_iter()
        .enumerate()
        .map(|(index, instance)| {
            let text = match (instance.b64, instance.image, instance.image_bytes) {
                (Some(text), None, None)
                | (None, Some(Wrapped { b64: text }), None)
                | (None, None, Some(Wrapped { b64: text })) => text.0,
                _ => {
                    return Err(RequestError::InvalidJson(format!(
                        "instances[{index}]: expected exactly one of {{\"b64\": ...}}, \
                         {{\"image\": {{\"b64\": ...}}}} or {{\"image_bytes\": {{\"b64\": ...}}}}"
                    )))
                }
            };
            decode_base64(&text).map_err(|reason| RequestError::InvalidBase64 { index, reason })
        })
        .collect::<Result<_, _>>()?;
    Ok(ParsedBody { images, params })
}

/// `parameters`: `top_k` (:predict), `normalize` (:embed) and `timeout_ms`.
/// Unknown keys are refused so a typo is not silently ignored.
fn json_params(parameters: Map<String, Value>) -> Result<Params, RequestError> {
    let mut params = Params::default();
    for (key, value) in parameters {
        match key.as_str() {
            "top_k" => {
                params.top_k = Some(
                    value
                        .as_i64()
                        .ok_or_else(|| RequestError::InvalidTopK(value.to_string()))?,
                );
            }
            "normalize" => {
                params.normalize = Some(value.as_bool().ok_or_else(|| {
                    RequestError::InvalidParameter(format!(
                        "normalize must be true or false, not {value}"
                    ))
                })?);
            }
            "timeout_ms" => {
                let ms = value
                    .as_u64()
                    .filter(|&ms| ms >= 1)
                    .ok_or_else(|| RequestError::InvalidTimeout(value.to_string()))?;
                params.timeout = Some(Duration::from_millis(ms));
            }
            other => {
                return Err(RequestError::InvalidParameter(format!(
                    "unknown parameter {other:?}; known: top_k, normalize, timeout_ms"
                )))
            }
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use base64::Engine;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn json_accepts_every_instance_shape_in_order() {
        let body = format!(
            r#"{{"instances": [{{"image": {{"b64": "{}"}}}}, {{"b64": "{}"}}, {{"image_bytes": {{"b64": "{}"}}}}],
                "parameters": {{"top_k": 3, "timeout_ms": 250}}}}"#,
            b64(b"one"),
            b64(b"two"),
            b64(b"three")
        );
        let parsed = parse_json(body.as_bytes(), 8).unwrap();
        let images: Vec<&[u8]> = parsed.images.iter().map(|b| b.as_ref()).collect();
        assert_eq!(images, [&b"one"[..], b"two", b"three"]);
        assert_eq!(parsed.params.top_k, Some(3));
        assert_eq!(parsed.params.timeout, Some(Duration::from_millis(250)));
    }

    #[test]
    fn json_with_escaped_slashes_still_decodes() {
        // 0xff 0xff 0xff encodes as "////"; some encoders escape '/' as "\/".
        let body = r#"{"instances": [{"b64": "\/\/\/\/"}]}"#;
        let parsed = parse_json(body.as_bytes(), 8).unwrap();
        assert_eq!(parsed.images[0].as_ref(), [0xff, 0xff, 0xff]);
    }

    #[test]
    fn json_errors_have_precise_tokens() {
        let cases = [
            ("{not json", "invalid_json"),
            (r#"{"inputs": []}"#, "invalid_json"),
            (r#"{"instances": [{"url": "http://x"}]}"#, "invalid_json"),
            (r#"{"instances": [{}]}"#, "invalid_json"),
            (
                r#"{"instances": [{"b64": "aGk=", "image": {"b64": "aGk="}}]}"#,
                "invalid_json",
            ),
            (r#"{"instances": [{"b64": 5}]}"#, "invalid_json"),
            (r#"{"instances": []}"#, "no_images"),
            (r#"{"instances": [{"b64": "***"}]}"#, "invalid_base64"),
            (r#"{"instances": [{"b64": ""}]}"#, "invalid_base64"),
            (
                r#"{"instances": [{"b64": "aGk="}], "parameters": {"top_k": "five"}}"#,
                "invalid_top_k",
            ),
            (
                r#"{"instances": [{"b64": "aGk="}], "parameters": {"top_k": 2.5}}"#,
                "invalid_top_k",
            ),
            (
                r#"{"instances": [{"b64": "aGk="}], "parameters": {"normalize": "yes"}}"#,
                "invalid_parameter",
            ),
            (
                r#"{"instances": [{"b64": "aGk="}], "parameters": {"timeout_ms": 0}}"#,
                "invalid_timeout",
            ),
            (
                r#"{"instances": [{"b64": "aGk="}], "parameters": {"topk": 1}}"#,
                "invalid_parameter",
            ),
            (
                r#"{"instances": [{"b64": "aGk="}, {"b64": "aGk="}, {"b64": "aGk="}]}"#,
                "too_many_images",
            ),
        ];
        for (body, token) in cases {
            let error = parse_json(body.as_bytes(), 2).unwrap_err();
            assert_eq!(error.error_type(), token, "{body}");
        }
    }

    fn multipart_request(parts: &[&[u8]]) -> Request {
        let boundary = "XBOUNDARYX";
        let mut body = Vec::new();
        for (index, part) in parts.iter().enumerate() {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"f{index}\"; \
                     filename=\"{index}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(part);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Request::builder()
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(axum::body::Body::from(body))
            .unwrap()
    }

    #[tokio::test]
    async fn multipart_parts_come_back_in_order() {
        let request = multipart_request(&[b"first", b"second"]);
        let body = read_body(request, BodyKind::Multipart, 1 << 20, 8)
            .await
            .unwrap();
        let images: Vec<&[u8]> = body.images.iter().map(|b| b.as_ref()).collect();
        assert_eq!(images, [&b"first"[..], b"second"]);
    }

    #[tokio::test]
    async fn multipart_limits_and_emptiness_are_enforced() {
        let request = multipart_request(&[b"a", b"b", b"c"]);
        let error = read_body(request, BodyKind::Multipart, 1 << 20, 2)
            .await
            .unwrap_err();
        assert_eq!(error, RequestError::TooManyImages { limit: 2 });
        let error = read_body(multipart_request(&[]), BodyKind::Multipart, 1 << 20, 2)
            .await
            .unwrap_err();
        assert_eq!(error, RequestError::NoImages);
        let no_boundary = Request::builder()
            .header(header::CONTENT_TYPE, "multipart/form-data")
            .body(axum::body::Body::from("x"))
            .unwrap();
        let error = read_body(no_boundary, BodyKind::Multipart, 1 << 20, 2)
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "invalid_multipart");
    }

    #[tokio::test]
    async fn raw_body_is_one_image_and_must_not_be_empty() {
        let request = Request::new(axum::body::Body::from("bytes"));
        let body = read_body(request, BodyKind::Raw, 1 << 20, 2).await.unwrap();
        assert_eq!(body.images, [Bytes::from_static(b"bytes")]);
        let empty = Request::new(axum::body::Body::empty());
        let error = read_body(empty, BodyKind::Raw, 1 << 20, 2)
            .await
            .unwrap_err();
        assert_eq!(error, RequestError::EmptyBody);
    }
}
