//! The one status mapping, case by case.

use super::*;
use crate::http::respond::retry_after_secs;
use crate::preprocess::{DecodeLimits, PreprocessError};

fn bad_image(source: PreprocessError) -> InferError {
    InferError::BadImage { index: 0, source }
}

#[test]
fn every_infer_error_maps_to_its_status_and_token() {
    let cases = [
        (InferError::UnknownModel("x".into()), 404, "model_not_found"),
        (InferError::NotReady("m"), 503, "model_not_ready"),
        (InferError::ShuttingDown, 503, "shutting_down"),
        (
            InferError::QueueFull {
                depth: 1,
                capacity: 1,
                retry_after: Duration::from_millis(10),
            },
            503,
            "queue_full",
        ),
        (
            InferError::WouldMissDeadline {
                estimate: Duration::from_secs(9),
                timeout: Duration::from_secs(1),
                retry_after: Duration::from_secs(9),
            },
            503,
            "deadline_unreachable",
        ),
        (InferError::NoImages, 400, "no_images"),
        (
            InferError::TooManyImages { count: 9, limit: 8 },
            413,
            "too_many_images",
        ),
        (
            InferError::InvalidTopK { value: 0, max: 10 },
            400,
            "invalid_top_k",
        ),
        (bad_image(PreprocessError::Empty), 400, "empty_body"),
        (
            bad_image(PreprocessError::UnsupportedFormat {
                format: "tiff".into(),
            }),
            415,
            "unsupported_media_type",
        ),
        (
            bad_image(PreprocessError::Corrupt { reason: "x".into() }),
            422,
            "invalid_image",
        ),
        (
            bad_image(PreprocessError::TooLarge {
                width: 1,
                height: 1,
                limit: DecodeLimits::default(),
            }),
            413,
            "image_too_large",
        ),
        (
            bad_image(PreprocessError::Transform { reason: "x".into() }),
            500,
            "preprocess_failed",
        ),
        (
            InferError::BadTensor {
                index: 0,
                reason: "x".into(),
            },
            400,
            "invalid_tensor",
        ),
        (InferError::DeadlineExceeded, 504, "deadline_exceeded"),
        (InferError::Internal("x".into()), 500, "internal_error"),
    ];
    for (error, status, token) in cases {
        let api = ApiError::from(error);
        assert_eq!(api.status().as_u16(), status, "{token}");
        assert_eq!(api.error_type(), token);
    }
}

#[test]
fn internal_detail_never_reaches_the_client() {
    let api = ApiError::from(InferError::Internal("/secret/path exploded".into()));
    assert_eq!(api.message(), "internal error");
    let api = ApiError::from(bad_image(PreprocessError::Transform {
        reason: "crop_pct=0".into(),
    }));
    assert_eq!(api.message(), "internal error");
    // Other 5xx say what happened: there is nothing internal in them.
    let api = ApiError::from(InferError::DeadlineExceeded);
    assert!(api.message().contains("deadline"), "{}", api.message());
    let api = ApiError::from(InferError::ShuttingDown);
    assert!(api.message().contains("shutting down"));
}

#[test]
fn unavailable_errors_carry_retry_after_rounded_up_to_whole_seconds() {
    let api = ApiError::from(InferError::QueueFull {
        depth: 1,
        capacity: 1,
        retry_after: Duration::from_millis(1500),
    });
    let response = api.into_response();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    let unreachable = ApiError::from(InferError::WouldMissDeadline {
        estimate: Duration::from_millis(2500),
        timeout: Duration::from_millis(100),
        retry_after: Duration::from_millis(2500),
    });
    assert_eq!(
        unreachable.into_response().headers()[header::RETRY_AFTER],
        "3"
    );
    let shutting = ApiError::from(InferError::ShuttingDown).into_response();
    assert_eq!(shutting.headers()[header::RETRY_AFTER], "1");
}

#[test]
fn request_errors_map_to_client_statuses() {
    let cases = [
        (
            RequestError::UnsupportedContentType("text/plain".into()),
            415,
        ),
        (RequestError::BodyTooLarge { limit: 10 }, 413),
        (RequestError::TooManyImages { limit: 2 }, 413),
        (RequestError::InvalidJson("x".into()), 400),
        (RequestError::InvalidTopK("x".into()), 400),
        (RequestError::EmptyBody, 400),
        (RequestError::UnknownAction("explain".into()), 404),
        (RequestError::InvalidTensor("x".into()), 400),
        (RequestError::InvalidBinaryData("x".into()), 400),
        (RequestError::UnsupportedContentEncoding("gzip".into()), 415),
        (RequestError::BodyTimeout { timeout_ms: 10 }, 408),
    ];
    for (error, status) in cases {
        assert_eq!(ApiError::from(error).status().as_u16(), status);
    }
    assert_eq!(
        request_rejection(&RequestError::BodyTooLarge { limit: 1 }),
        RejectionReason::TooLarge
    );
    assert_eq!(
        request_rejection(&RequestError::EmptyBody),
        RejectionReason::InvalidInput
    );
    assert_eq!(
        request_rejection(&RequestError::BodyTimeout { timeout_ms: 1 }),
        RejectionReason::BodyTimeout
    );
}

#[test]
fn status_specific_headers_are_added() {
    let unauthorized = ApiError::unauthorized();
    assert_eq!(unauthorized.error_type(), "unauthorized");
    let response = unauthorized.into_response();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    let timeout = ApiError::from(RequestError::BodyTimeout { timeout_ms: 5 }).into_response();
    assert_eq!(timeout.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(timeout.headers()[header::CONNECTION], "close");
}

#[test]
fn method_not_allowed_sends_allow() {
    let error = RequestError::WrongMethod {
        method: "GET".into(),
        allow: "POST",
    };
    let response = ApiError::from(error).into_response();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "POST");
}
