//! Everything that can go wrong with a prediction, each with a stable
//! `error_type` token; the HTTP layer maps variants to status codes in one place.

use std::time::Duration;

use crate::metrics::RejectionReason;
use crate::preprocess::PreprocessError;

/// Why a request was not answered with predictions.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// No served model has this id or alias (404).
    #[error("model {0:?} is not served here")]
    UnknownModel(String),
    /// The model is still loading or warming up (503).
    #[error("model {0} is not ready")]
    NotReady(&'static str),
    /// The server is draining for shutdown (503).
    #[error("server is shutting down")]
    ShuttingDown,
    /// The model's queue has no room for this request's images (503 + Retry-After).
    #[error("queue is full ({depth} of {capacity} images waiting); retry later")]
    QueueFull {
        depth: usize,
        capacity: usize,
        retry_after: Duration,
    },
    /// By the measured decode and batch rates, the work ahead of this
    /// request (and its own) cannot be done before its deadline: refused
    /// before any of it is spent (503 + Retry-After).
    #[error(
        "the server estimates {} ms to answer, past the {} ms deadline; retry later",
        estimate.as_millis(),
        timeout.as_millis()
    )]
    WouldMissDeadline {
        estimate: Duration,
        timeout: Duration,
        retry_after: Duration,
    },
    /// The request carried no image (400).
    #[error("the request contains no image")]
    NoImages,
    /// More images than one request may carry (413).
    #[error("{count} images in one request; at most {limit} are allowed")]
    TooManyImages { count: usize, limit: usize },
    /// `top_k` outside 1..=num_classes (400).
    #[error("top_k must be between 1 and {max}, got {value}")]
    InvalidTopK { value: i64, max: usize },
    /// One of the images could not be turned into a model input.
    #[error("image {index}: {source}")]
    BadImage {
        index: usize,
        #[source]
        source: PreprocessError,
    },
    /// A client-normalized image that cannot run: wrong size or a value
    /// that is not finite (400).
    #[error("image {index}: {reason}")]
    BadTensor { index: usize, reason: String },
    /// The request's deadline passed before its images were classified (504).
    #[error("deadline exceeded before the prediction completed")]
    DeadlineExceeded,
    /// A server-side failure; the detail goes to the log, never to the client (500).
    #[error("internal error: {0}")]
    Internal(String),
}

/// What was wrong with an uploaded image, as far as the edge needs to tell:
/// each kind answers with its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageProblem {
    /// No bytes at all.
    Empty,
    /// Bytes of a format the server does not decode.
    UnsupportedFormat,
    /// A supported format that does not decode.
    Corrupt,
    /// Decodes, but is larger than the configured limits.
    TooLarge,
    /// The image is fine; the server could not transform it (its fault).
    ServerSide,
}

impl InferError {
    /// For [`InferError::BadImage`], what kind of problem the image has.
    pub fn image_problem(&self) -> Option<ImageProblem> {
        let Self::BadImage { source, .. } = self else {
            return None;
        };
        Some(match source {
            PreprocessError::Empty => ImageProblem::Empty,
            PreprocessError::UnsupportedFormat { .. } => ImageProblem::UnsupportedFormat,
            PreprocessError::Corrupt { .. } => ImageProblem::Corrupt,
            PreprocessError::TooLarge { .. } => ImageProblem::TooLarge,
            PreprocessError::Transform { .. } => ImageProblem::ServerSide,
        })
    }

    /// A stable machine-readable token for API bodies and metric labels.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::UnknownModel(_) => "model_not_found",
            Self::NotReady(_) => "model_not_ready",
            Self::ShuttingDown => "shutting_down",
            Self::QueueFull { .. } => "queue_full",
            Self::WouldMissDeadline { .. } => "deadline_unreachable",
            Self::NoImages => "no_images",
            Self::TooManyImages { .. } => "too_many_images",
            Self::InvalidTopK { .. } => "invalid_top_k",
            Self::BadImage { source, .. } => source.error_type(),
            Self::BadTensor { .. } => "invalid_tensor",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The rejection counter a failed request belongs under, if any.
    pub fn rejection_reason(&self) -> Option<RejectionReason> {
        Some(match self {
            Self::QueueFull { .. } => RejectionReason::QueueFull,
            Self::WouldMissDeadline { .. } => RejectionReason::DeadlineUnreachable,
            Self::ShuttingDown => RejectionReason::ShuttingDown,
            Self::NotReady(_) => RejectionReason::NotReady,
            Self::DeadlineExceeded => RejectionReason::DeadlineExceeded,
            Self::TooManyImages { .. } => RejectionReason::TooLarge,
            Self::BadImage { .. }
            | Self::BadTensor { .. }
            | Self::InvalidTopK { .. }
            | Self::NoImages => RejectionReason::InvalidInput,
            Self::UnknownModel(_) | Self::Internal(_) => return None,
        })
    }

    /// How long a client should wait before retrying, where that is known.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::QueueFull { retry_after, .. } | Self::WouldMissDeadline { retry_after, .. } => {
                Some(*retry_after)
            }
            Self::NotReady(_) | Self::ShuttingDown => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}
