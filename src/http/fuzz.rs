//! The request parsers as functions of one byte string, for the fuzz targets
//! in `fuzz/` and their regression replay (`tests/it/fuzz_regression.rs`); see
//! [`crate::fuzzing`].
//!
//! Each entry point cuts its input into the pieces a real request has
//! (header values, query, body) at `\n` bytes, runs exactly the code the
//! handlers run on them, checks what a successful parse promises, and says
//! whether the input was accepted. A piece that axum itself would never hand
//! over (a header value with control characters, a URI that does not parse)
//! ends the case as not accepted: it is not reachable from the network.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Uri};

use super::extract::{parse_timeout_header, split_model_action};
use super::v1::body::{parse_json, read_body};
use super::v1::params::{body_kind, parse_query, BodyKind, Params};
use super::v2::binary::split_body;
use super::v2::request::{parse_infer, ModelShape, Target};
use super::v2::MODEL_VERSION;
use crate::infer::RequestImages;
use crate::model::ModelId;

/// `server.max_images_per_request`'s default: the parsers' only size knob.
const MAX_IMAGES: usize = 64;
/// Only words the 413; the limit itself is axum's `DefaultBodyLimit`.
const BODY_LIMIT: usize = 32 << 20;
/// The served models' input: 224² RGB, 1000 classes.
const SHAPE: ModelShape = ModelShape {
    input_size: 224,
    num_classes: 1000,
};
/// A V2 request to the first model, at the version V2 reports.
const TARGET: Target = Target {
    model: ModelId::SeResNeXt50_32x4d,
    version: MODEL_VERSION,
    shape: SHAPE,
};

/// Splits off the first `\n`-terminated line; without one, all is the line.
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (data, &[]),
    }
}

/// A header value as axum would hand it over; an empty line is no header.
fn header_value(bytes: &[u8]) -> Option<Option<HeaderValue>> {
    if bytes.is_empty() {
        return Some(None);
    }
    HeaderValue::from_bytes(bytes).ok().map(Some)
}

/// What every successful body parse promises the facade.
fn check_images(count: usize) {
    assert!(
        (1..=MAX_IMAGES).contains(&count),
        "a parsed body has {count} images, outside 1..={MAX_IMAGES} (this is a bug)"
    );
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    // The body readers are async but never wait on I/O here (the body is in
    // memory), so a bare current-thread runtime is enough.
    tokio::runtime::Builder::new_current_thread().build().ok()
}

/// A predict request, as `predict::prepare` sees it. Lines: the
/// `{model}:predict` path segment, the query string, `x-request-timeout-ms`,
/// `Content-Type`; the rest is the body (raw image, multipart or JSON,
/// whichever the content type selects).
pub fn predict_request(data: &[u8]) -> bool {
    let (segment, rest) = line(data);
    let (query, rest) = line(rest);
    let (timeout, rest) = line(rest);
    let (content_type, body) = line(rest);

    let _ = split_model_action(&String::from_utf8_lossy(segment));
    let mut uri = b"/v1/models/m:predict?".to_vec();
    uri.extend_from_slice(query);
    let Ok(uri) = Uri::try_from(uri) else {
        return false;
    };
    let (Some(timeout), Some(content_type)) = (header_value(timeout), header_value(content_type))
    else {
        return false;
    };
    let Ok(kind) = body_kind(content_type.as_ref()) else {
        return false;
    };
    let (Ok(query), Ok(timeout)) = (parse_query(&uri), parse_timeout_header(timeout.as_ref()))
    else {
        return false;
    };
    let mut request = Request::new(Body::from(Bytes::copy_from_slice(body)));
    if let Some(content_type) = content_type {
        request
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type);
    }
    let Some(runtime) = runtime() else {
        return false;
    };
    let Ok(parsed) = runtime.block_on(read_body(request, kind, BODY_LIMIT, MAX_IMAGES)) else {
        return false;
    };
    check_images(parsed.images.len());
    if kind == BodyKind::Raw {
        assert_eq!(parsed.images[0].as_ref(), body, "a raw body is the image");
    }
    Params { timeout, ..query }.merge(parsed.params).is_ok()
}

/// A multipart body. The first line is the boundary; the rest is the body.
pub fn multipart(data: &[u8]) -> bool {
    let (boundary, body) = line(data);
    let mut content_type = b"multipart/form-data; boundary=".to_vec();
    content_type.extend_from_slice(boundary);
    let Ok(content_type) = HeaderValue::from_bytes(&content_type) else {
        return false;
    };
    let mut request = Request::new(Body::from(Bytes::copy_from_slice(body)));
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    let Some(runtime) = runtime() else {
        return false;
    };
    let parsed = runtime.block_on(read_body(
        request,
        BodyKind::Multipart,
        BODY_LIMIT,
        MAX_IMAGES,
    ));
    let Ok(parsed) = parsed else {
        return false;
    };
    check_images(parsed.images.len());
    let total: usize = parsed.images.iter().map(Bytes::len).sum();
    assert!(total <= body.len(), "parts larger than their body");
    true
}

/// A KServe V1 / TF Serving JSON body.
pub fn json(data: &[u8]) -> bool {
    let Ok(parsed) = parse_json(data, MAX_IMAGES) else {
        return false;
    };
    check_images(parsed.images.len());
    assert!(
        parsed.images.iter().all(|image| !image.is_empty()),
        "an empty image passed the JSON parser (this is a bug)"
    );
    true
}

/// A KServe V2 inference body. The first line is the
/// `Inference-Header-Content-Length` value (empty: none); the rest is the
/// body, JSON possibly followed by binary tensor data.
pub fn v2_infer(data: &[u8]) -> bool {
    let (length, body) = line(data);
    let Some(length) = header_value(length) else {
        return false;
    };
    let Ok(framed) = split_body(Bytes::copy_from_slice(body), length.as_ref()) else {
        return false;
    };
    let Ok(call) = parse_infer(framed, TARGET) else {
        return false;
    };
    assert!(!call.outputs.is_empty(), "no output to answer with");
    let values = 3 * (SHAPE.input_size as usize).pow(2);
    match call.images {
        RequestImages::Encoded(images) => assert!(!images.is_empty()),
        RequestImages::Normalized(images) => {
            assert!(!images.is_empty());
            assert!(
                images.iter().all(|image| image.len() == values),
                "a normalized image of the wrong size passed the parser (this is a bug)"
            );
        }
    }
    true
}
