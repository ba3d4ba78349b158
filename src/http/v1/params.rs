//! Pure request parsing: the `{model}:predict` path segment, the body's
//! content type, the query string and the timeout header.
//!
//! Everything here is a plain function of its inputs, so the edge's rules
//! are unit-tested without a server. What goes wrong is a [`RequestError`];
//! `error.rs` decides its status.

use std::time::Duration;

use axum::extract::Query;
use axum::http::{HeaderValue, Uri};

use crate::http::error::RequestError;

/// `top_k` when the request names none: the usual ImageNet top-5.
pub const DEFAULT_TOP_K: i64 = 5;

/// How the body carries its images, decided by `Content-Type` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// One encoded image; the format is sniffed from the bytes, so a
    /// mislabelled upload still works.
    Raw,
    /// One image per part, in order.
    Multipart,
    /// KServe V1 / TF Serving `{"instances": [...]}` with base64 images.
    Json,
}

/// Raw image types we accept; anything else that says `image/*` (TIFF, SVG,
/// HEIC...) is refused up front rather than after a failed decode.
const RAW_TYPES: &[&str] = &[
    "image/jpeg",
    "image/jpg",
    "image/pjpeg",
    "image/png",
    "image/webp",
    "image/bmp",
    "image/x-bmp",
    "image/x-ms-bmp",
    "image/gif",
    "application/octet-stream",
];

/// The body kind for a `Content-Type` header; none at all means raw bytes,
/// as `curl --data-binary` without `-H` sends them.
pub fn body_kind(content_type: Option<&HeaderValue>) -> Result<BodyKind, RequestError> {
    let Some(value) = content_type else {
        return Ok(BodyKind::Raw);
    };
    let text = value
        .to_str()
        .map_err(|_| RequestError::UnsupportedContentType(format!("{value:?}")))?;
    let essence = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "multipart/form-data" => Ok(BodyKind::Multipart),
        "application/json" => Ok(BodyKind::Json),
        kind if RAW_TYPES.contains(&kind) => Ok(BodyKind::Raw),
        _ => Err(RequestError::UnsupportedContentType(text.to_owned())),
    }
}

/// Parameters a request can set, from the query, a header or the JSON body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params {
    pub top_k: Option<i64>,
    pub timeout: Option<Duration>,
}

impl Params {
    /// Combines the query/header parameters with the JSON body's. A `top_k`
    /// given twice must agree (silently preferring one would hide a client
    /// bug); of two timeouts the tighter deadline wins, since both are limits
    /// someone on the path wants enforced.
    pub fn merge(self, body: Params) -> Result<Params, RequestError> {
        let top_k = match (self.top_k, body.top_k) {
            (Some(query), Some(json)) if query != json => {
                return Err(RequestError::InvalidParameter(format!(
                    "top_k is {query} in the query but {json} in the body; give it once"
                )))
            }
            (query, json) => query.or(json),
        };
        let timeout = match (self.timeout, body.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Params { top_k, timeout })
    }
}

/// The query string's parameters. Only `top_k` is known; anything else is
/// refused so that a typo (`topk=3`) fails loudly instead of being ignored.
pub fn parse_query(uri: &Uri) -> Result<Option<i64>, RequestError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| RequestError::InvalidParameter(format!("invalid query string: {e}")))?;
    let mut top_k = None;
    for (key, value) in pairs {
        match key.as_str() {
            "top_k" if top_k.is_some() => {
                return Err(RequestError::InvalidParameter(
                    "top_k is given more than once".to_owned(),
                ))
            }
            "top_k" => top_k = Some(parse_top_k(&value)?),
            other => {
                return Err(RequestError::InvalidParameter(format!(
                    "unknown query parameter {other:?}; the only one is top_k"
                )))
            }
        }
    }
    Ok(top_k)
}

/// `top_k` as an integer; its range (1..=num_classes) is the facade's check,
/// since only the model knows how many classes it has.
pub fn parse_top_k(text: &str) -> Result<i64, RequestError> {
    text.trim()
        .parse()
        .map_err(|_| RequestError::InvalidTopK(format!("{text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).expect("valid header")
    }

    #[test]
    fn content_types_select_the_body_kind() {
        assert_eq!(body_kind(None), Ok(BodyKind::Raw));
        for raw in [
            "image/jpeg",
            "IMAGE/PNG",
            "image/webp",
            "image/gif",
            "image/bmp",
        ] {
            assert_eq!(body_kind(Some(&header(raw))), Ok(BodyKind::Raw), "{raw}");
        }
        assert_eq!(
            body_kind(Some(&header("application/octet-stream"))),
            Ok(BodyKind::Raw)
        );
        assert_eq!(
            body_kind(Some(&header("multipart/form-data; boundary=x"))),
            Ok(BodyKind::Multipart)
        );
        assert_eq!(
            body_kind(Some(&header("application/json; charset=utf-8"))),
            Ok(BodyKind::Json)
        );
        for refused in ["text/plain", "image/tiff", "image/svg+xml", ""] {
            let error = body_kind(Some(&header(refused))).unwrap_err();
            assert_eq!(error.error_type(), "unsupported_media_type", "{refused}");
        }
    }

    #[test]
    fn query_accepts_only_a_numeric_top_k() {
        let uri = |q: &str| format!("/v1/models/m:predict{q}").parse::<Uri>().unwrap();
        assert_eq!(parse_query(&uri("")), Ok(None));
        assert_eq!(parse_query(&uri("?top_k=3")), Ok(Some(3)));
        assert_eq!(parse_query(&uri("?top_k=%33")), Ok(Some(3)));
        // Range is the facade's business; a negative number still parses.
        assert_eq!(parse_query(&uri("?top_k=-1")), Ok(Some(-1)));
        for bad in [
            "?top_k=abc",
            "?top_k=",
            "?top_k=1.5",
            "?top_k=99999999999999999999",
        ] {
            let error = parse_query(&uri(bad)).unwrap_err();
            assert_eq!(error.error_type(), "invalid_top_k", "{bad}");
        }
        for bad in ["?topk=3", "?top_k=1&top_k=2"] {
            let error = parse_query(&uri(bad)).unwrap_err();
            assert_eq!(error.error_type(), "invalid_parameter", "{bad}");
        }
    }

    #[test]
    fn merged_params_refuse_conflicting_top_k_and_keep_the_tighter_timeout() {
        let ms = Duration::from_millis;
        let query = Params {
            top_k: Some(3),
            timeout: Some(ms(500)),
        };
        let body = Params {
            top_k: Some(3),
            timeout: Some(ms(200)),
        };
        assert_eq!(
            query.merge(body),
            Ok(Params {
                top_k: Some(3),
                timeout: Some(ms(200))
            })
        );
        let conflicting = Params {
            top_k: Some(4),
            ..body
        };
        assert_eq!(
            query.merge(conflicting).unwrap_err().error_type(),
            "invalid_parameter"
        );
        assert_eq!(Params::default().merge(body), Ok(body));
        assert_eq!(query.merge(Params::default()), Ok(query));
    }
}
