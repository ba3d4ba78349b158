//! Prometheus metrics for the service, exposed at `/metrics`.
//!
//! [`Metrics`] owns its own [`Registry`] rather than the process-global one,
//! so several servers (e.g. in one test binary) never collide. Family names
//! are part of the service's API: dashboards and autoscalers query them.
//!
//! Label hygiene: the `model` label must only ever carry a *configured* model
//! id. Requests naming an unknown model must not create series of their own
//! (use a fixed placeholder such as `"unknown"`), or any client could grow the
//! registry without bound.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// `Content-Type` of [`Metrics::render`]'s output (text exposition 0.0.4).
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Latency buckets in seconds: 1 ms to 30 s, roughly 1-2.5-5 per decade, so
/// both a sub-millisecond queue wait and a request that hits its 30 s
/// deadline land in a meaningful bucket.
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// Batch-size buckets: powers of two up to 128, so the distribution of
/// formed batches is visible and the mean is `_sum / _count`.
pub const BATCH_SIZE_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// Why a request (or some of its images) was turned away, as the `reason`
/// label of `seresnext_rejections_total`. A closed set keeps the label's
/// values consistent between the HTTP layer and the batcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionReason {
    /// The model's queue had no room (503 + Retry-After).
    QueueFull,
    /// The server is draining after SIGTERM (503).
    ShuttingDown,
    /// The model has not finished loading or warming up (503).
    NotReady,
    /// The request's deadline passed before it was answered (504).
    DeadlineExceeded,
    /// Refused at admission: by the measured rates it could not finish
    /// before its deadline (503 + Retry-After).
    DeadlineUnreachable,
    /// The client went away before its answer was ready.
    Cancelled,
    /// Body or image count over the configured limits (413).
    TooLarge,
    /// Undecodable image or malformed request (400/415/422).
    InvalidInput,
    /// The body did not arrive within `server.body_read_timeout_ms` (408).
    BodyTimeout,
}

impl RejectionReason {
    /// Every reason, e.g. to pre-create their series at zero.
    pub const ALL: [Self; 9] = [
        Self::QueueFull,
        Self::ShuttingDown,
        Self::NotReady,
        Self::DeadlineExceeded,
        Self::DeadlineUnreachable,
        Self::Cancelled,
        Self::TooLarge,
        Self::InvalidInput,
        Self::BodyTimeout,
    ];

    /// The label value written to Prometheus.
    pub fn as_label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::NotReady => "not_ready",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::DeadlineUnreachable => "deadline_unreachable",
            Self::Cancelled => "cancelled",
            Self::TooLarge => "too_large",
            Self::InvalidInput => "invalid_input",
            Self::BodyTimeout => "body_timeout",
        }
    }
}

/// What a request asked of its model, as the `task` label of the request
/// families: the same queue and forward passes serve both, so only this
/// label tells their traffic and latency apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Class probabilities or top-k (`:predict`, V2 without `features`).
    Predict,
    /// Embeddings (`:embed`, V2 with the `features` output).
    Embed,
}

impl Task {
    /// Every task, e.g. to pre-create their series at zero.
    pub const ALL: [Self; 2] = [Self::Predict, Self::Embed];

    /// The label value written to Prometheus.
    pub fn as_label(self) -> &'static str {
        match self {
            Self::Predict => "predict",
            Self::Embed => "embed",
        }
    }
}

/// All metric families of one server, registered in a private registry.
/// Cheap to share behind an `Arc`; every family is internally synchronised.
pub struct Metrics {
    registry: Registry,
    /// `seresnext_requests_total{model,task,status}`: how many requests ended
    /// with each HTTP status? (error rate, traffic per model and [`Task`])
    pub requests: IntCounterVec,
    /// `seresnext_request_duration_seconds{model,task}`: how long do clients
    /// wait, end to end, from request received to response ready?
    pub request_duration: HistogramVec,
    /// `seresnext_preprocess_duration_seconds{model}`: how long does decoding
    /// and resizing one image take (is the CPU pool the bottleneck)?
    pub preprocess_duration: HistogramVec,
    /// `seresnext_queue_duration_seconds{model}`: how long does each image
    /// wait in the batch queue before a worker takes it (are we saturated)?
    pub queue_duration: HistogramVec,
    /// `seresnext_inference_duration_seconds{model}`: how long does one
    /// forward pass of a batch take on the device?
    pub inference_duration: HistogramVec,
    /// `seresnext_batch_size{model}`: how many images does each forward pass
    /// carry (does dynamic batching actually batch)?
    pub batch_size: HistogramVec,
    /// `seresnext_queue_depth{model}`: how many images are waiting right now?
    /// The autoscaling signal.
    pub queue_depth: IntGaugeVec,
    /// `seresnext_in_flight_requests{model}`: how many requests are being
    /// handled right now (concurrency, drain progress)?
    pub in_flight_requests: IntGaugeVec,
    /// `seresnext_images_total{model}`: how many images were classified
    /// (throughput in images/s via `rate()`)?
    pub images: IntCounterVec,
    /// `seresnext_rejections_total{model,reason}`: why was work turned away?
    /// Reason tokens: see [`RejectionReason`].
    pub rejections: IntCounterVec,
    /// `seresnext_model_load_seconds{model,phase}`: where did start-up time
    /// go? Phases: [`LOAD_PHASES`].
    pub model_load_seconds: GaugeVec,
    /// `seresnext_model_warmup_seconds{model}`: how long did the warm-up
    /// passes take before the model was declared ready?
    pub model_warmup_seconds: GaugeVec,
    /// `seresnext_model_ready{model}`: is the model loaded, warmed and
    /// accepting work (1) or not (0)?
    pub model_ready: IntGaugeVec,
    /// `seresnext_build_info{version}`: which build is running? Always 1.
    pub build_info: IntGaugeVec,
    /// `seresnext_connections_open{listener}`: connections held right now
    /// (file descriptors, against `server.max_connections`).
    pub connections_open: IntGaugeVec,
    /// `seresnext_connections_refused_total{listener}`: connections closed
    /// at once because `server.max_connections` were open.
    pub connections_refused: IntCounterVec,
}

/// The `phase` label values of `seresnext_model_load_seconds`, in the order
/// they run: find the weights, read the file, fold BatchNorm, build the
/// network on its device, warm it up.
pub const LOAD_PHASES: [&str; 5] = ["resolve", "read", "fold", "build", "warm"];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const MODEL: &[&str] = &["model"];

impl Metrics {
    /// Creates every family in a fresh registry and sets `build_info` to 1.
    /// Fails only if a family definition is invalid (a programming error).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let latency = LATENCY_BUCKETS.as_slice();
        let metrics = Self {
            requests: counter(
                r,
                "seresnext_requests_total",
                "Requests answered, by task and HTTP status code.",
                &["model", "task", "status"],
            )?,
            request_duration: histogram_by(
                r,
                "seresnext_request_duration_seconds",
                "End-to-end request latency in seconds, by task.",
                latency,
                &["model", "task"],
            )?,
            preprocess_duration: histogram(
                r,
                "seresnext_preprocess_duration_seconds",
                "Decode and resize time per image in seconds.",
                latency,
            )?,
            queue_duration: histogram(
                r,
                "seresnext_queue_duration_seconds",
                "Time each image waited in the batch queue in seconds.",
                latency,
            )?,
            inference_duration: histogram(
                r,
                "seresnext_inference_duration_seconds",
                "Forward-pass time per batch in seconds.",
                latency,
            )?,
            batch_size: histogram(
                r,
                "seresnext_batch_size",
                "Images per forward pass.",
                &BATCH_SIZE_BUCKETS,
            )?,
            queue_depth: int_gauge(
                r,
                "seresnext_queue_depth",
                "Images waiting in the batch queue.",
                MODEL,
            )?,
            in_flight_requests: int_gauge(
                r,
                "seresnext_in_flight_requests",
                "Requests being handled.",
                MODEL,
            )?,
            images: counter(r, "seresnext_images_total", "Images classified.", MODEL)?,
            rejections: counter(
                r,
                "seresnext_rejections_total",
                "Requests or images turned away, by reason.",
                &["model", "reason"],
            )?,
            model_load_seconds: register(
                r,
                GaugeVec::new(
                    Opts::new(
                        "seresnext_model_load_seconds",
                        "Start-up time per phase (resolve, read, fold, build, warm), in seconds.",
                    ),
                    &["model", "phase"],
                )?,
            )?,
            model_warmup_seconds: gauge(
                r,
                "seresnext_model_warmup_seconds",
                "Time spent on warm-up passes, in seconds.",
            )?,
            model_ready: int_gauge(
                r,
                "seresnext_model_ready",
                "1 when the model is loaded, warmed up and accepting work.",
                MODEL,
            )?,
            build_info: int_gauge(
                r,
                "seresnext_build_info",
                "Build information; always 1.",
                &["version"],
            )?,
            connections_open: int_gauge(
                r,
                "seresnext_connections_open",
                "Open client connections, by listener.",
                &["listener"],
            )?,
            connections_refused: counter(
                r,
                "seresnext_connections_refused_total",
                "Connections closed at once because server.max_connections were open.",
                &["listener"],
            )?,
            registry,
        };
        metrics
            .build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Ok(metrics)
    }

    /// Creates `model`'s series at zero (not ready, empty queue, no
    /// rejections), so dashboards and `rate()` see them before the first
    /// request rather than a gap.
    pub fn register_model(&self, model: &str) {
        let labels = [model];
        for task in Task::ALL {
            self.request_duration
                .with_label_values(&[model, task.as_label()]);
        }
        for histogram in [
            &self.preprocess_duration,
            &self.queue_duration,
            &self.inference_duration,
            &self.batch_size,
        ] {
            histogram.with_label_values(&labels);
        }
        for gauge in [
            &self.queue_depth,
            &self.in_flight_requests,
            &self.model_ready,
        ] {
            gauge.with_label_values(&labels).set(0);
        }
        self.images.with_label_values(&labels);
        for phase in LOAD_PHASES {
            self.model_load_seconds.with_label_values(&[model, phase]);
        }
        self.model_warmup_seconds.with_label_values(&labels);
        for reason in RejectionReason::ALL {
            self.rejections
                .with_label_values(&[model, reason.as_label()]);
        }
    }

    /// Counts one rejection of `model`'s work for `reason`.
    pub fn reject(&self, model: &str, reason: RejectionReason) {
        self.rejections
            .with_label_values(&[model, reason.as_label()])
            .inc();
    }

    /// Counts a finished request under its task and HTTP status code.
    pub fn count_request(&self, model: &str, task: Task, status: u16) {
        self.requests
            .with_label_values(&[model, task.as_label(), &status.to_string()])
            .inc();
    }

    /// Marks one request of `model` as in flight until the guard drops, so
    /// early returns and cancelled handlers can never leak the gauge.
    pub fn track_in_flight(&self, model: &str) -> InFlightGuard {
        let gauge = self.in_flight_requests.with_label_values(&[model]);
        gauge.inc();
        InFlightGuard { gauge }
    }

    /// The registry, to add collectors of other crates (e.g. process metrics).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Everything in the text exposition format, for `GET /metrics` (serve it
    /// with [`CONTENT_TYPE`]). Encoding a well-formed registry cannot fail; if
    /// it ever does, the error is returned as an exposition comment so the
    /// scrape still succeeds and the cause is visible.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        match TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            Ok(()) => String::from_utf8_lossy(&buffer).into_owned(),
            Err(error) => format!("# metrics encoding failed: {error}\n"),
        }
    }
}

/// Decrements `seresnext_in_flight_requests` when dropped.
#[derive(Debug)]
pub struct InFlightGuard {
    gauge: IntGauge,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

fn register<C>(registry: &Registry, collector: C) -> Result<C, prometheus::Error>
where
    C: prometheus::core::Collector + Clone + 'static,
{
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn int_gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, prometheus::Error> {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels)?)
}

/// Float gauges hold durations in seconds, always per model.
fn gauge(registry: &Registry, name: &str, help: &str) -> Result<GaugeVec, prometheus::Error> {
    register(registry, GaugeVec::new(Opts::new(name, help), MODEL)?)
}

/// Histograms are per model, unless [`histogram_by`] says otherwise.
fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<HistogramVec, prometheus::Error> {
    histogram_by(registry, name, help, buckets, MODEL)
}

fn histogram_by(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> Result<HistogramVec, prometheus::Error> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, HistogramVec::new(opts, labels)?)
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
