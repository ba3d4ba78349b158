//! A closed-loop HTTP load generator for `:predict`: C clients, each sending
//! the next image as soon as its previous answer arrived, for a fixed time.
//! Prints one JSON line with throughput, latency percentiles of the accepted
//! (200) requests, errors by status, and for shed ones (503) how fast they
//! were refused and the `Retry-After` range the server asked for.
//!
//! ```sh
//! cargo run --release --example loadgen -- --url http://127.0.0.1:8080/v1/models/gluon_seresnext50_32x4d:predict \
//!     --concurrency 16 --seconds 20 photo1.jpg photo2.jpg
//! ```
//!
//! `--honor-retry-after` makes each client wait out a 503's `Retry-After`
//! before its next request, as a well-behaved client would; without it the
//! clients retry at once, the worst case for the server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    url: String,
    concurrency: usize,
    seconds: f64,
    honor_retry_after: bool,
    images: Vec<Vec<u8>>,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut concurrency = 1;
    let mut seconds = 10.0;
    let mut honor_retry_after = false;
    let mut images = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--concurrency" => concurrency = value()?.parse().map_err(|e| format!("{e}"))?,
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("{e}"))?,
            "--honor-retry-after" => honor_retry_after = true,
            path => images.push(std::fs::read(path).map_err(|e| format!("{path}: {e}"))?),
        }
    }
    if images.is_empty() {
        return Err("give at least one image file".into());
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        concurrency: concurrency.max(1),
        seconds,
        honor_retry_after,
        images,
    })
}

#[derive(Default)]
struct ClientReport {
    latencies: Vec<Duration>,
    statuses: BTreeMap<String, usize>,
    /// Time to a 503: shedding must be immediate, not after a queue wait.
    shed_latencies: Vec<Duration>,
    /// `Retry-After` of each 503, in seconds.
    retry_after: Vec<u64>,
}

/// The `q` quantile of sorted durations, in ms (NaN when there are none).
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    sorted
        .get(((sorted.len().max(1) - 1) as f64 * q).round() as usize)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::exit(2);
        }
    };
    let client = reqwest::Client::new();
    let images = Arc::new(args.images);
    let url = Arc::new(args.url);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.seconds);
    let honor_retry_after = args.honor_retry_after;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|worker| {
            let (client, images, url) = (client.clone(), images.clone(), url.clone());
            tokio::spawn(async move {
                let mut report = ClientReport::default();
                let mut next = worker;
                while Instant::now() < deadline {
                    let body = images[next % images.len()].clone();
                    next += 1;
                    let sent = Instant::now();
                    let outcome = client
                        .post(url.as_str())
                        .header("content-type", "application/octet-stream")
                        .body(body)
                        .send()
                        .await;
                    let mut back_off = None;
                    let status = match outcome {
                        Ok(response) => {
                            let status = response.status().as_u16().to_string();
                            if let Some(seconds) = response
                                .headers()
                                .get("retry-after")
                                .and_then(|value| value.to_str().ok())
                                .and_then(|value| value.parse().ok())
                            {
                                report.retry_after.push(seconds);
                                back_off = Some(Duration::from_secs(seconds));
                            }
                            let _ = response.bytes().await;
                            status
                        }
                        Err(_) => "connection_error".to_string(),
                    };
                    match status.as_str() {
                        "200" => report.latencies.push(sent.elapsed()),
                        "503" => report.shed_latencies.push(sent.elapsed()),
                        _ => {}
                    }
                    if let (true, Some(wait)) = (honor_retry_after, back_off) {
                        let left = deadline.saturating_duration_since(Instant::now());
                        tokio::time::sleep(wait.min(left)).await;
                    }
                    *report.statuses.entry(status).or_default() += 1;
                }
                report
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut shed_latencies = Vec::new();
    let mut retry_after = Vec::new();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for task in tasks {
        if let Ok(report) = task.await {
            latencies.extend(report.latencies);
            shed_latencies.extend(report.shed_latencies);
            retry_after.extend(report.retry_after);
            for (status, count) in report.statuses {
                *statuses.entry(status).or_default() += count;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    shed_latencies.sort();
    let percentile = |q: f64| percentile_ms(&latencies, q);
    let ok = latencies.len();
    let total: usize = statuses.values().sum();
    let report = serde_json::json!({
        "concurrency": args.concurrency,
        "honor_retry_after": honor_retry_after,
        "seconds": elapsed,
        "requests": total,
        "succeeded": ok,
        "errors": total - ok,
        "statuses": statuses,
        "images_per_second": ok as f64 / elapsed,
        "p50_ms": percentile(0.5),
        "p90_ms": percentile(0.9),
        "p99_ms": percentile(0.99),
        "max_ms": percentile(1.0),
        "shed": shed_latencies.len(),
        "shed_p50_ms": percentile_ms(&shed_latencies, 0.5),
        "shed_p99_ms": percentile_ms(&shed_latencies, 0.99),
        "retry_after_s": {
            "min": retry_after.iter().min(),
            "max": retry_after.iter().max(),
        },
    });
    println!("{report}");
}
