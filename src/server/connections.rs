//! Serving one listener's connections, each bounded in what it may hold.
//!
//! `axum::serve` offers no limits, and a server that faces clients directly
//! had 1,500 connections that each sent a partial request header held open
//! for 45 s and more (1,512 file descriptors): nothing ever closed them. So
//! connections are served here through hyper-util's builder, as axum's
//! `serve-with-hyper` example does, with three bounds:
//! - a header-read timeout (`server.header_read_timeout_ms`): hyper closes an
//!   HTTP/1 connection whose request header is not complete in time (its
//!   clock also runs while a keep-alive connection waits for its next
//!   request, so the smaller of this and the idle timeout applies there);
//! - an idle timeout (`server.idle_timeout_ms`): a connection with no request
//!   in flight for that long is shut down gracefully, whatever its protocol,
//!   including one that never sent a byte;
//! - a connection cap (`server.max_connections`): past it a new connection
//!   is accepted and closed at once, and counted in
//!   `seresnext_connections_refused_total`, so the descriptors left stay
//!   free for the connections being served.
//!
//! Shutdown is `axum::serve`'s graceful one: once `stop` turns true the
//! listener closes, each connection finishes the request it is serving and
//! closes, and [`serve`] returns when the last one has.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use prometheus::{IntCounter, IntGauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::ServerConfig;
use crate::metrics::Metrics;

/// What one connection may hold, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub(super) fn from_config(server: &ServerConfig) -> Self {
        Self {
            header_read_timeout: server.header_read_timeout(),
            idle_timeout: server.idle_timeout(),
            max_connections: server.max_connections,
        }
    }
}

/// One listener's connection metrics (`listener` = `api` or `metrics`).
#[derive(Clone)]
pub(super) struct ConnectionGauges {
    open: IntGauge,
    refused: IntCounter,
}

impl ConnectionGauges {
    pub(super) fn new(metrics: &Metrics, listener: &str) -> Self {
        Self {
            open: metrics.connections_open.with_label_values(&[listener]),
            refused: metrics.connections_refused.with_label_values(&[listener]),
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true, then waits for the
/// open connections to finish (the caller bounds that wait and aborts this
/// task past it, which aborts every connection task with it).
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    gauges: ConnectionGauges,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // Reap finished connection tasks, so the set does not grow.
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            gauges.refused.inc();
            drop(stream);
            continue;
        };
        connections.spawn(serve_connection(
            stream,
            router.clone(),
            builder.clone(),
            limits.idle_timeout,
            stop.clone(),
            Held::new(permit, gauges.open.clone()),
        ));
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once `stop` is true (or its sender is gone). The borrow of the
/// value ends here, so the future stays `Send`.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&stop| stop).await;
}

/// A failed `accept`. A connection reset before it was accepted is the
/// client's business; anything else (out of file descriptors, typically) is
/// logged and waited out for a second, as `axum::serve` does, so the loop
/// does not spin.
async fn accept_failed(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// A connection's slot under `max_connections` and its count in
/// `seresnext_connections_open`, both given back when it closes.
struct Held {
    _permit: OwnedSemaphorePermit,
    open: IntGauge,
}

impl Held {
    fn new(permit: OwnedSemaphorePermit, open: IntGauge) -> Self {
        open.inc();
        Self {
            _permit: permit,
            open,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.open.dec();
    }
}

/// When a connection last finished a request, and how many it is serving.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn idle_since(&self) -> Option<Instant> {
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        (self.in_flight.load(Ordering::Acquire) == 0).then_some(last)
    }
}

/// Counts a request in flight on its connection until it has been answered.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection until it closes: by the client, by hyper's header
/// timeout, by the idle timeout, or gracefully once `stop` turns true.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    builder: Builder<TokioExecutor>,
    idle_timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _held: Held,
) {
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::start(&activity);
            let mut router = router.clone();
            async move {
                let response = tower::Service::call(&mut router, request).await;
                drop(in_flight);
                response
            }
        })
    };
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let idle_deadline = activity.idle_since().map_or_else(
            || Instant::now() + idle_timeout,
            |since| since + idle_timeout,
        );
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_deadline), if !closing => {
                let idle_past = activity
                    .idle_since()
                    .is_some_and(|since| since.elapsed() >= idle_timeout);
                if idle_past {
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
