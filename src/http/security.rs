//! Who may call the API: the optional bearer key and browser origins (CORS).
//!
//! - With `server.api_key` set, every model and inference route (V1 and V2)
//!   needs `Authorization: Bearer <key>`; without it the answer is 401
//!   `unauthorized` with `WWW-Authenticate: Bearer`, before the body is read
//!   or the model is looked up, so an anonymous caller learns nothing and
//!   costs nothing. The probes and `/metrics` stay open: orchestrators and
//!   Prometheus carry no token, and they reveal nothing about any input.
//!   Which routes are guarded is decided per [`super::Route`].
//! - CORS is off unless `server.cors_allow_origins` lists origins; then
//!   exactly those may call from a browser. Preflights are answered before
//!   the key is checked (browsers never send credentials on a preflight).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error::ApiError;
use super::extract::TIMEOUT_HEADER;
use super::respond::{close_connection, has_body};
use crate::config::ApiKey;

/// Middleware for guarded routes: passes the request on only with the key.
pub(super) async fn require_api_key(
    State(key): State<ApiKey>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
        .is_some_and(|token| key.matches(token));
    if authorized {
        return next.run(request).await;
    }
    let response = ApiError::unauthorized().into_response();
    // Refused before the upload was read: the connection cannot be reused.
    if has_body(request.headers()) {
        close_connection(response)
    } else {
        response
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme name
/// is case-insensitive (RFC 9110), anything else is no token at all.
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|token| !token.is_empty())
}

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `origins`, or `None` (no CORS headers at all) when the
/// list is empty. Origins were validated at start-up; one that still is no
/// header value is skipped rather than allowing more than was asked.
pub(super) fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    let timing = [
        "x-request-id",
        "x-preprocess-time-ms",
        "x-queue-time-ms",
        "x-inference-time-ms",
        "x-total-time-ms",
        "x-random-weights",
    ]
    .map(HeaderName::from_static);
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static(TIMEOUT_HEADER),
            ])
            .expose_headers(timing.into_iter().chain([RETRY_AFTER]).collect::<Vec<_>>())
            .max_age(PREFLIGHT_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn cors_is_off_without_origins() {
        assert!(cors_layer(&[]).is_none());
        assert!(cors_layer(&["https://app.example.com".to_owned()]).is_some());
    }
}
