//! Pure request parsing: the body's content type, the query string and the
//! parameters each action (`:predict`, `:embed`) takes.
//!
//! Everything here is a plain function of its inputs, so the edge's rules
//! are unit-tested without a server. What goes wrong is a [`RequestError`];
//! `error.rs` decides its status.

use std::time::Duration;

use axum::extract::Query;
use axum::http::{HeaderValue, Uri};

use crate::http::error::RequestError;
use crate::http::extract::V1Action;

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
/// One parser reads them all; [`Params::check_for`] then refuses those the
/// action does not take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params {
    /// `:predict` only.
    pub top_k: Option<i64>,
    pub timeout: Option<Duration>,
    /// `:embed` only: L2-normalize the embeddings (default true).
    pub normalize: Option<bool>,
}

impl Params {
    /// Combines the query/header parameters with the JSON body's. A `top_k`
    /// or `normalize` given twice must agree (silently preferring one would
    /// hide a client bug); of two timeouts the tighter deadline wins, since
    /// both are limits someone on the path wants enforced.
    pub fn merge(self, body: Params) -> Result<Params, RequestError> {
        let top_k = once("top_k", self.top_k, body.top_k)?;
        let normalize = once("normalize", self.normalize, body.normalize)?;
        let timeout = match (self.timeout, body.timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Params {
            top_k,
            timeout,
            normalize,
        })
    }

    /// Refuses a parameter `action` does not take (`top_k` on `:embed`,
    /// `normalize` on `:predict`): ignoring it would hide a client's mistake.
    pub fn check_for(self, action: V1Action) -> Result<Self, RequestError> {
        let misplaced = match action {
            V1Action::Predict => self.normalize.map(|_| "normalize"),
            V1Action::Embed => self.top_k.map(|_| "top_k"),
        };
        match misplaced {
            Some(name) => Err(RequestError::InvalidParameter(format!(
                "{name} does not apply to :{}",
                action.name()
            ))),
            None => Ok(self),
        }
    }
}

/// A parameter that both the query and the body may carry: the one given,
/// or the same value given twice.
fn once<T: PartialEq + std::fmt::Display + Copy>(
    name: &str,
    query: Option<T>,
    body: Option<T>,
) -> Result<Option<T>, RequestError> {
    match (query, body) {
        (Some(query), Some(json)) if query != json => Err(RequestError::InvalidParameter(format!(
            "{name} is {query} in the query but {json} in the body; give it once"
        ))),
        (query, json) => Ok(query.or(json)),
    }
}

/// The query string's parameters: `top_k` and `normalize`. Anything else is
/// refused so that a typo (`topk=3`) fails loudly instead of being ignored.
pub fn parse_query(uri: &Uri) -> Result<Params, RequestError> {
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map_err(|e| RequestError::InvalidParameter(format!("invalid query string: {e}")))?;
    let mut params = Params::default();
    for (key, value) in pairs {
        let twice = || RequestError::InvalidParameter(format!("{key} is given more than once"));
        match key.as_str() {
            "top_k" if params.top_k.is_some() => return Err(twice()),
            "top_k" => params.top_k = Some(parse_top_k(&value)?),
            "normalize" if params.normalize.is_some() => return Err(twice()),
            "normalize" => params.normalize = Some(parse_normalize(&value)?),
            other => {
                return Err(RequestError::InvalidParameter(format!(
                    "unknown query parameter {other:?}; known: top_k (:predict), normalize (:embed)"
                )))
            }
        }
    }
    Ok(params)
}

/// `normalize` in a query string: `true` or `false`, nothing looser, so a
/// client's `normalize=0` or `normalize=no` is not read as it did not mean.
pub fn parse_normalize(text: &str) -> Result<bool, RequestError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(RequestError::InvalidParameter(format!(
            "normalize must be true or false, not {text:?}"
        ))),
    }
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
        let top_k = |q: &str| parse_query(&uri(q)).map(|params| params.top_k);
        assert_eq!(top_k(""), Ok(None));
        assert_eq!(top_k("?top_k=3"), Ok(Some(3)));
        assert_eq!(top_k("?top_k=%33"), Ok(Some(3)));
        // Range is the facade's business; a negative number still parses.
        assert_eq!(top_k("?top_k=-1"), Ok(Some(-1)));
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
    fn query_normalize_is_true_or_false_and_only_for_embed() {
        let uri = |q: &str| format!("/v1/models/m:embed{q}").parse::<Uri>().unwrap();
        let normalize = |q: &str| parse_query(&uri(q)).map(|params| params.normalize);
        assert_eq!(normalize(""), Ok(None));
        assert_eq!(normalize("?normalize=true"), Ok(Some(true)));
        assert_eq!(normalize("?normalize=false"), Ok(Some(false)));
        for bad in [
            "?normalize=",
            "?normalize=1",
            "?normalize=yes",
            "?normalize=TRUE",
            "?normalize=true&normalize=true",
        ] {
            let error = parse_query(&uri(bad)).unwrap_err();
            assert_eq!(error.error_type(), "invalid_parameter", "{bad}");
        }
        let embed = parse_query(&uri("?normalize=false")).unwrap();
        assert_eq!(embed.check_for(V1Action::Embed), Ok(embed));
        let error = embed.check_for(V1Action::Predict).unwrap_err();
        assert_eq!(error.error_type(), "invalid_parameter");
        let predict = parse_query(&uri("?top_k=2")).unwrap();
        assert_eq!(predict.check_for(V1Action::Predict), Ok(predict));
        assert!(predict.check_for(V1Action::Embed).is_err());
    }

    #[test]
    fn merged_params_refuse_conflicting_top_k_and_keep_the_tighter_timeout() {
        let ms = Duration::from_millis;
        let query = Params {
            top_k: Some(3),
            timeout: Some(ms(500)),
            normalize: None,
        };
        let body = Params {
            top_k: Some(3),
            timeout: Some(ms(200)),
            normalize: Some(false),
        };
        assert_eq!(
            query.merge(body),
            Ok(Params {
                top_k: Some(3),
                timeout: Some(ms(200)),
                normalize: Some(false),
            })
        );
        let disagreeing = Params {
            normalize: Some(true),
            ..query
        };
        assert!(disagreeing.merge(body).is_err());
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
