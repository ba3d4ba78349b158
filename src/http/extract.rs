//! What every handler needs from a request before its own work: the served
//! model its path names, the client's timeout header, and the body read
//! whole within the size limit and the body deadline.
//!
//! The model extractors replace per-handler path parsing. They resolve the
//! model through the facade before any body is read, so an unknown model
//! costs no upload, and their refusals close a connection whose body is left
//! unread (see [`respond::close_connection`]).

use std::time::Duration;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use bytes::Bytes;

use super::body_deadline;
use super::error::{ApiError, RequestError};
use super::respond;
use super::AppState;
use crate::infer::{InferError, ModelInfo};
use crate::metrics::Task;

/// The header a client (or a proxy) sets to bound how long it will wait.
pub const TIMEOUT_HEADER: &str = "x-request-timeout-ms";

/// What a `/v1/models/{segment}` path asks for. axum captures whole
/// segments, so the `:predict` or `:embed` suffix is split off here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelPath<'a> {
    /// `/v1/models/{model}`: the model's metadata.
    Metadata(&'a str),
    /// `/v1/models/{model}:predict` or `:embed`.
    Action(&'a str, V1Action),
}

/// The POST actions on a V1 model. They take the same bodies and share the
/// model's batch queue; they differ in what they answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum V1Action {
    /// `:predict`: the top-k classes of each image.
    Predict,
    /// `:embed`: the pooled pre-logits features of each image.
    Embed,
}

impl V1Action {
    /// The action's name in the path (`predict`).
    pub fn name(self) -> &'static str {
        self.task().as_label()
    }

    /// The `task` label its requests are counted under.
    pub fn task(self) -> Task {
        match self {
            Self::Predict => Task::Predict,
            Self::Embed => Task::Embed,
        }
    }
}

/// Splits `gluon_seresnext50_32x4d:predict` into model and action. Model
/// names never contain `:`, so the first one starts the action.
pub fn split_model_action(segment: &str) -> Result<ModelPath<'_>, RequestError> {
    match segment.split_once(':') {
        None => Ok(ModelPath::Metadata(segment)),
        Some((model, "predict")) => Ok(ModelPath::Action(model, V1Action::Predict)),
        Some((model, "embed")) => Ok(ModelPath::Action(model, V1Action::Embed)),
        Some((_, action)) => Err(RequestError::UnknownAction(action.to_owned())),
    }
}

/// The served model named by a KServe V2 path (`/v2/models/{model}...`).
pub struct ServedModel(pub ModelInfo);

/// The served model of `GET /v1/models/{model}`; `{model}:predict` and
/// `{model}:embed` are answered 405 (they only take POST).
pub struct V1Model(pub ModelInfo);

/// The served model and the action of `POST /v1/models/{model}:predict` or
/// `:embed`; a bare `{model}` is answered 405 (it only takes GET).
pub struct V1ActionModel(pub ModelInfo, pub V1Action);

impl FromRequestParts<AppState> for ServedModel {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let segment = model_segment(parts, state).await?;
        resolve(parts, state, &segment).map(Self)
    }
}

impl FromRequestParts<AppState> for V1Model {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let segment = model_segment(parts, state).await?;
        match split_model_action(&segment).map_err(|e| refuse(parts, e.into()))? {
            ModelPath::Metadata(name) => resolve(parts, state, name).map(Self),
            ModelPath::Action(..) => Err(refuse(parts, wrong_method(parts, "POST").into())),
        }
    }
}

impl FromRequestParts<AppState> for V1ActionModel {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let segment = model_segment(parts, state).await?;
        match split_model_action(&segment).map_err(|e| refuse(parts, e.into()))? {
            ModelPath::Action(name, action) => {
                resolve(parts, state, name).map(|model| Self(model, action))
            }
            ModelPath::Metadata(_) => Err(refuse(parts, wrong_method(parts, "GET, HEAD").into())),
        }
    }
}

fn wrong_method(parts: &Parts, allow: &'static str) -> RequestError {
    RequestError::WrongMethod {
        method: parts.method.as_str().to_owned(),
        allow,
    }
}

/// The `{model}` path segment, decoded. A segment that does not decode to
/// UTF-8 cannot name a model, so it is a 404 like any other unknown name.
async fn model_segment(parts: &mut Parts, state: &AppState) -> Result<String, ApiError> {
    match Path::<String>::from_request_parts(parts, state).await {
        Ok(Path(segment)) => Ok(segment),
        Err(_) => Err(refuse(
            parts,
            InferError::UnknownModel("<undecodable>".to_owned()).into(),
        )),
    }
}

fn resolve(parts: &Parts, state: &AppState, name: &str) -> Result<ModelInfo, ApiError> {
    state
        .service
        .model_info(name)
        .map_err(|error| refuse(parts, error.into()))
}

/// A refusal before the body was read closes the connection if a body was
/// announced: hyper cannot reuse a connection with an unread body.
fn refuse(parts: &Parts, error: ApiError) -> ApiError {
    if respond::has_body(&parts.headers) {
        error.closing_connection()
    } else {
        error
    }
}

/// Longest client key kept; a longer header value is cut here, so a
/// client cannot make the scheduler hold megabytes of key.
const CLIENT_KEY_MAX_BYTES: usize = 256;

/// The value of the configured client-id header (`[server]
/// client_id_header`), trimmed, when the setting and the header are both
/// there and the value is visible text; otherwise `None` (the request gets a
/// share of its own).
pub fn client_key(headers: &axum::http::HeaderMap, header: &str) -> Option<String> {
    if header.is_empty() {
        return None;
    }
    let value = headers.get(header)?.to_str().ok()?.trim();
    if value.is_empty() {
        return None;
    }
    let mut end = value.len().min(CLIENT_KEY_MAX_BYTES);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Some(value[..end].to_owned())
}

/// The client's deadline from `x-request-timeout-ms`, if it sent one.
pub fn parse_timeout_header(value: Option<&HeaderValue>) -> Result<Option<Duration>, RequestError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| RequestError::InvalidTimeout(format!("{value:?}")))?;
    match text.trim().parse::<u64>() {
        Ok(ms) if ms >= 1 => Ok(Some(Duration::from_millis(ms))),
        _ => Err(RequestError::InvalidTimeout(format!("{text:?}"))),
    }
}

/// The whole body, within the configured size limit and before the
/// request's body deadline.
pub(super) async fn buffer(request: Request, body_limit: usize) -> Result<Bytes, RequestError> {
    let deadline = body_deadline::of(&request);
    body_deadline::within(deadline, async move {
        Bytes::from_request(request, &())
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    RequestError::BodyTooLarge { limit: body_limit }
                } else {
                    RequestError::Body(rejection.body_text())
                }
            })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(text: &str) -> HeaderValue {
        HeaderValue::from_str(text).expect("valid header")
    }

    #[test]
    fn splits_predict_suffix_from_the_model() {
        assert_eq!(
            split_model_action("gluon_seresnext50_32x4d:predict"),
            Ok(ModelPath::Action(
                "gluon_seresnext50_32x4d",
                V1Action::Predict
            ))
        );
        assert_eq!(
            split_model_action("gluon_seresnext50_32x4d:embed"),
            Ok(ModelPath::Action(
                "gluon_seresnext50_32x4d",
                V1Action::Embed
            ))
        );
        assert_eq!(
            split_model_action("seresnext50_32x4d.gluon_in1k"),
            Ok(ModelPath::Metadata("seresnext50_32x4d.gluon_in1k"))
        );
        assert_eq!(
            split_model_action(":predict"),
            Ok(ModelPath::Action("", V1Action::Predict))
        );
        assert_eq!(
            split_model_action("m:explain"),
            Err(RequestError::UnknownAction("explain".into()))
        );
        assert!(split_model_action("m:predict:predict").is_err());
        assert!(split_model_action("m:embed:predict").is_err());
    }

    #[test]
    fn timeout_header_is_positive_whole_milliseconds() {
        assert_eq!(parse_timeout_header(None), Ok(None));
        assert_eq!(
            parse_timeout_header(Some(&header("250"))),
            Ok(Some(Duration::from_millis(250)))
        );
        for bad in ["0", "-5", "1.5", "soon"] {
            let error = parse_timeout_header(Some(&header(bad))).unwrap_err();
            assert_eq!(error.error_type(), "invalid_timeout", "{bad}");
        }
    }

    #[test]
    fn the_client_key_is_the_configured_headers_trimmed_value_if_any() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-client-id", header("  tenant-7 "));
        assert_eq!(
            client_key(&headers, "x-client-id").as_deref(),
            Some("tenant-7")
        );
        assert_eq!(client_key(&headers, ""), None, "no header configured");
        assert_eq!(client_key(&headers, "x-tenant"), None, "header not sent");
        headers.insert("x-client-id", header("   "));
        assert_eq!(client_key(&headers, "x-client-id"), None, "blank");
        headers.insert("x-client-id", header(&"k".repeat(1000)));
        assert_eq!(
            client_key(&headers, "x-client-id").map(|key| key.len()),
            Some(CLIENT_KEY_MAX_BYTES)
        );
    }
}
