//! Wiring and lifecycle: build the engine from a [`Config`], bind the
//! listeners, serve, and shut down gracefully.
//!
//! Shutdown (SIGTERM/SIGINT or [`Server::shutdown`]) runs in this order, so
//! that a load balancer loses no request:
//! 1. readiness turns 503 at once, while requests are still served;
//! 2. after `shutdown_grace_ms` the listener stops accepting connections;
//! 3. accepted requests, queued ones included, finish within `drain_timeout_ms`;
//! 4. the model queues close and the replica threads exit; `wait` returns Ok.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::infer::InferenceService;
use crate::metrics::Metrics;
use crate::model::{self, ModelId};

mod connections;
mod models;
mod own_model;

use connections::{ConnectionGauges, ConnectionLimits};
pub use models::{start_models, StartError, StartedModels};

/// How often start-up is checked for a model that failed to load.
const STARTUP_POLL: Duration = Duration::from_millis(50);

/// A running server.
pub struct Server {
    /// Where the API listens (port 0 in the config resolves here).
    pub addr: SocketAddr,
    /// Where `/metrics` listens when it has its own port.
    pub metrics_addr: Option<SocketAddr>,
    /// Where KServe V2 over gRPC listens, when `grpc_port` is set.
    pub grpc_addr: Option<SocketAddr>,
    /// The engine, for in-process callers and tests.
    pub service: Arc<InferenceService>,
    shutdown: watch::Sender<bool>,
    lifecycle: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Validates the config, binds the listeners, then starts loading every
    /// model in the background. `/healthz` answers at once; `/readyz` says
    /// `loading` (and which models are left) until every model is warm.
    ///
    /// The listeners are bound before any model starts: a port already in
    /// use then fails start-up before any libtorch thread exists, so the
    /// process can exit cleanly (a thread still loading while the process
    /// exits crashes it inside libtorch).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let started = Instant::now();
        config
            .validate(|id| ModelId::parse(id).is_some())
            .context("invalid configuration")?;
        if let Some(threads) = config.server.intra_op_thread_count() {
            model::set_intra_op_threads(threads);
        }
        let metrics = Arc::new(Metrics::new().context("creating metrics")?);

        let listener = bind(&config.server.host, config.server.port).await?;
        let addr = listener.local_addr()?;
        let (metrics_listener, metrics_addr) = if config.server.has_separate_metrics_listener() {
            let listener = bind(&config.server.host, config.server.metrics_port).await?;
            let addr = listener.local_addr()?;
            (Some(listener), Some(addr))
        } else {
            (None, None)
        };

        let grpc_listener = if config.server.has_grpc_listener() {
            Some(bind(&config.server.host, config.server.grpc_port).await?)
        } else {
            None
        };
        let grpc_addr = grpc_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;

        let StartedModels {
            handles,
            replica_threads,
        } = start_models(&config, &metrics, started)?;
        let service = Arc::new(InferenceService::new(handles, &config.server, metrics));
        // In the background, beside the models loading: admission has a
        // decode rate to estimate with before the first image arrives.
        let calibrating = service.clone();
        tokio::task::spawn_blocking(move || calibrating.calibrate_decoding());
        let state = AppState::new(service.clone(), config.server.clone());
        tracing::info!(%addr, ?metrics_addr, ?grpc_addr, "listening");

        let (shutdown, shutdown_requested) = watch::channel(false);
        let lifecycle = tokio::spawn(lifecycle(
            state,
            Listeners {
                api: listener,
                metrics: metrics_listener,
                grpc: grpc_listener,
            },
            shutdown_requested,
            replica_threads,
            config,
        ));
        Ok(Self {
            addr,
            metrics_addr,
            grpc_addr,
            service,
            shutdown,
            lifecycle,
        })
    }

    /// Starts the graceful shutdown, as SIGTERM does.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits until the server has shut down; an error if a model failed to start.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.lifecycle.await.context("server task panicked")?
    }
}

/// Serves `config` until `signal` resolves, then shuts down gracefully.
pub async fn run(config: Config, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server = Server::start(config).await?;
    let shutdown = server.shutdown.clone();
    let finished = server.wait();
    tokio::pin!(finished);
    tokio::select! {
        // A start-up failure ends the server without a signal.
        result = &mut finished => return result,
        () = signal => {
            tracing::info!("shutdown signal received");
            let _ = shutdown.send(true);
        }
    }
    finished.await
}

/// SIGTERM or SIGINT, whichever comes first.
pub async fn termination_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))
}

/// The bound listeners: the API, and `/metrics` and gRPC where they have
/// ports of their own.
struct Listeners {
    api: TcpListener,
    metrics: Option<TcpListener>,
    grpc: Option<TcpListener>,
}

async fn lifecycle(
    state: AppState,
    listeners: Listeners,
    mut shutdown_requested: watch::Receiver<bool>,
    replica_threads: Vec<std::thread::JoinHandle<()>>,
    config: Config,
) -> anyhow::Result<()> {
    let service = state.service.clone();
    let (stop_accepting, accepting) = watch::channel(false);
    let limits = ConnectionLimits::from_config(&config.server);
    let Listeners {
        api: listener,
        metrics: metrics_listener,
        grpc: grpc_listener,
    } = listeners;
    // gRPC is served and drained exactly like the HTTP API: the same
    // connection bounds, and in-flight calls finish before shutdown.
    let grpc_task = grpc_listener.map(|listener| {
        tokio::spawn(connections::serve(
            listener,
            crate::grpc::router(state.clone()),
            limits,
            ConnectionGauges::new(service.metrics(), "grpc"),
            accepting.clone(),
        ))
    });
    let mut api = tokio::spawn(connections::serve(
        listener,
        http::router(state.clone()),
        limits,
        ConnectionGauges::new(service.metrics(), "api"),
        accepting.clone(),
    ));
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(connections::serve(
            listener,
            http::metrics_router(state),
            limits,
            ConnectionGauges::new(service.metrics(), "metrics"),
            accepting.clone(),
        ))
    });

    let startup = watch_startup(&service);
    tokio::pin!(startup);
    let startup_error = tokio::select! {
        error = &mut startup => error,
        _ = shutdown_requested.wait_for(|&stop| stop) => None,
        result = &mut api => return result.context("API server task")?.context("API server"),
    };
    if let Some(error) = &startup_error {
        tracing::error!(%error, "start-up failed");
    }

    service.begin_draining();
    if startup_error.is_none() {
        tokio::time::sleep(config.server.shutdown_grace()).await;
    }
    let _ = stop_accepting.send(true);
    let drain_started = Instant::now();
    let drain_timeout = config.server.drain_timeout();
    let grpc_abort = grpc_task.as_ref().map(JoinHandle::abort_handle);
    let connections_closed = async {
        let _ = (&mut api).await;
        if let Some(task) = grpc_task {
            let _ = task.await;
        }
    };
    if tokio::time::timeout(drain_timeout, connections_closed)
        .await
        .is_err()
    {
        tracing::warn!("open connections outlived the drain timeout");
        api.abort();
        if let Some(task) = grpc_abort {
            task.abort();
        }
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    service
        .drain(drain_timeout.saturating_sub(drain_started.elapsed()))
        .await;
    tokio::task::spawn_blocking(move || {
        for thread in replica_threads {
            let _ = thread.join();
        }
    })
    .await
    .context("joining replica threads")?;
    tracing::info!("shut down");
    match startup_error {
        Some(error) => Err(anyhow::anyhow!(error)),
        None => Ok(()),
    }
}

/// Resolves with the first model's start-up failure; pends forever once all
/// models are ready.
async fn watch_startup(service: &InferenceService) -> Option<String> {
    loop {
        if let Some(failure) = service.startup_failure() {
            return Some(failure);
        }
        if service.all_models_ready() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(STARTUP_POLL).await;
    }
}
