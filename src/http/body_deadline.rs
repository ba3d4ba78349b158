//! The body-read deadline: a slow client must not hold a connection (and the
//! buffer its upload fills) for as long as it likes.
//!
//! A per-read idle timeout (such as tower-http's `RequestBodyTimeoutLayer`)
//! does not stop a client that trickles one byte every few hundred
//! milliseconds: every read succeeds in time. So the deadline here covers
//! the *whole* body: [`stamp`] records, as soon as a request's headers are
//! parsed, the instant by which its body must have arrived, and the body
//! readers ([`within`]) race the read against it. Missing it is a
//! [`RequestError::BodyTimeout`], answered 408 with `Connection: close`.
//!
//! Headers are a different matter: `axum::serve` (0.8) gives no access to
//! hyper's `header_read_timeout`, and hyper only applies its own 30 s default
//! when a timer is configured, which axum does not do. A client trickling
//! its *headers* therefore holds one idle connection task (no worker, no
//! model time, at most hyper's header buffer of memory) until it stops; the
//! README says to bound that at the proxy (nginx `client_header_timeout`).

use std::future::Future;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

use super::error::RequestError;

/// When the body of the request carrying it must have been read completely.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyDeadline {
    at: Instant,
    /// The configured allowance, to word the 408.
    timeout: Duration,
}

/// Middleware: stamps every request with its [`BodyDeadline`], counted from
/// now, when the headers have just been parsed.
pub(super) async fn stamp(
    State(timeout): State<Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let at = Instant::now() + timeout;
    request
        .extensions_mut()
        .insert(BodyDeadline { at, timeout });
    next.run(request).await
}

/// The request's deadline, to take before the request is consumed.
pub(super) fn of(request: &Request) -> Option<BodyDeadline> {
    request.extensions().get::<BodyDeadline>().copied()
}

/// Runs `read` (which reads a body) until `deadline`; without one (a router
/// built without [`stamp`], as in unit tests) it runs unbounded.
pub(super) async fn within<T>(
    deadline: Option<BodyDeadline>,
    read: impl Future<Output = Result<T, RequestError>>,
) -> Result<T, RequestError> {
    let Some(deadline) = deadline else {
        return read.await;
    };
    tokio::time::timeout_at(deadline.at, read)
        .await
        .unwrap_or_else(|_| {
            Err(RequestError::BodyTimeout {
                timeout_ms: u64::try_from(deadline.timeout.as_millis()).unwrap_or(u64::MAX),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadline_in(timeout: Duration) -> BodyDeadline {
        BodyDeadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    #[tokio::test]
    async fn a_read_that_outlives_the_deadline_is_a_body_timeout() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, RequestError>(())
        };
        let result = within(Some(deadline_in(Duration::from_millis(20))), slow).await;
        assert_eq!(result, Err(RequestError::BodyTimeout { timeout_ms: 20 }));
    }

    #[tokio::test]
    async fn a_read_in_time_or_without_a_deadline_is_untouched() {
        let quick = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok::<_, RequestError>(7)
        };
        let deadline = Some(deadline_in(Duration::from_secs(60)));
        assert_eq!(within(deadline, quick).await, Ok(7));
        let failing = async { Err::<(), _>(RequestError::EmptyBody) };
        assert_eq!(within(None, failing).await, Err(RequestError::EmptyBody));
    }
}
