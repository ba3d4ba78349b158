use std::time::Duration;

use super::*;
use crate::http::error::RequestError;
use crate::infer::InferError;

#[test]
fn codes_follow_triton() {
    let cases = [
        (ApiError::unauthorized(), Code::Unauthenticated),
        (
            ApiError::from(InferError::UnknownModel("x".into())),
            Code::NotFound,
        ),
        (
            ApiError::from(RequestError::InvalidTensor("bad".into())),
            Code::InvalidArgument,
        ),
        (
            ApiError::from(InferError::DeadlineExceeded),
            Code::DeadlineExceeded,
        ),
        (ApiError::from(InferError::ShuttingDown), Code::Unavailable),
        (
            ApiError::from(InferError::Internal("boom".into())),
            Code::Internal,
        ),
    ];
    for (error, expected) in cases {
        assert_eq!(code(&error), expected, "{}", error.error_type());
        assert_eq!(
            http_equivalent(expected),
            error.status().as_u16(),
            "{}",
            error.error_type()
        );
    }
}

#[test]
fn a_full_queue_is_resource_exhausted_with_its_retry_delay() {
    let error = ApiError::from(InferError::QueueFull {
        depth: 1,
        capacity: 1,
        retry_after: Duration::from_millis(1500),
    });
    let status = status(&error);
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.metadata().get(RETRY_AFTER).unwrap(), "2");
    assert_eq!(status.metadata().get(ERROR_TYPE).unwrap(), "queue_full");
}
