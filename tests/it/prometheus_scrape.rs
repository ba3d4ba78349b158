//! A real Prometheus (Debian's package, installed by
//! scripts/deploy/install-deploy-tools.sh) scrapes a real server: the exposition
//! parses, the counters arrive with the values we caused, the latency
//! percentile the dashboard and alerts rely on evaluates to a number, every
//! query of the Grafana dashboard runs and returns series, and `promtool
//! check metrics` finds no lint problems in `/metrics`.

use crate::support;

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use support::server::{photos, start_server, MODEL};

/// How long Prometheus may take to start, scrape and answer.
const PROMETHEUS_TIMEOUT: Duration = Duration::from_secs(60);

/// The p99 request latency, as the dashboard's latency panel computes it.
const P99: &str =
    "histogram_quantile(0.99, sum(rate(seresnext_request_duration_seconds_bucket[1m])) by (le))";

/// A Prometheus child process scraping one target every second, killed (and
/// its scratch directory removed) on drop, so a failing test leaves nothing
/// running.
struct Prometheus {
    child: Child,
    dir: PathBuf,
    base_url: String,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("seresnext-prometheus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("create Prometheus scratch dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: seresnext\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: [\"{target}\"]\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write prometheus.yml");
        // A free port: bind 0, read it, release it for Prometheus.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start `prometheus` ({error}): install it with \
                     scripts/deploy/install-deploy-tools.sh (`make test` does)"
                )
            });
        Self {
            child,
            dir,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits until `/-/ready` answers 200; fails if Prometheus exits first.
    async fn wait_ready(&mut self, client: &reqwest::Client) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll prometheus") {
                panic!("prometheus exited with {status}\n{}", self.log());
            }
            let ready = client
                .get(format!("{}/-/ready", self.base_url))
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::OK);
            if ready {
                return;
            }
            assert!(
                started.elapsed() < PROMETHEUS_TIMEOUT,
                "prometheus not ready after {PROMETHEUS_TIMEOUT:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The result vector of an instant query; panics on a query error.
    async fn query(&self, client: &reqwest::Client, query: &str) -> Vec<Value> {
        let body: Value = client
            .get(format!("{}/api/v1/query", self.base_url))
            .query(&[("query", query)])
            .send()
            .await
            .expect("query Prometheus")
            .json()
            .await
            .expect("JSON answer");
        assert_eq!(body["status"], "success", "{query}: {body}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls `query` until `accept` takes its result, or fails the test.
    async fn wait_for<T>(
        &self,
        client: &reqwest::Client,
        query: &str,
        accept: impl Fn(&[Value]) -> Option<T>,
    ) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = accept(&self.query(client, query).await) {
                return value;
            }
            assert!(
                started.elapsed() < PROMETHEUS_TIMEOUT,
                "no acceptable answer to {query} after {PROMETHEUS_TIMEOUT:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The single sample value of an instant-vector result, if it is one number.
fn single_number(result: &[Value]) -> Option<f64> {
    match result {
        [sample] => sample["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

/// How many times Prometheus has scraped the server so far.
async fn scrapes(prometheus: &Prometheus, client: &reqwest::Client) -> f64 {
    prometheus
        .wait_for(
            client,
            "count_over_time(up{job=\"seresnext\"}[10m])",
            single_number,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_service_and_runs_the_dashboard_queries() {
    let server = start_server(|_| {}).await;
    let mut prometheus = Prometheus::start(&server.server.addr.to_string());
    let client = reqwest::Client::new();
    prometheus.wait_ready(&client).await;

    // A first scrape before any request: the series exist at zero, so the
    // requests below show up as an increase that rate() can see.
    let up = prometheus
        .wait_for(&client, "up{job=\"seresnext\"}", single_number)
        .await;
    assert_eq!(up, 1.0, "target is up\n{}", prometheus.log());

    let sent = photos();
    for (name, bytes, _) in &sent {
        let response = server
            .client
            .post(server.url(&format!("/v1/models/{MODEL}:predict")))
            .header("content-type", "application/octet-stream")
            .body(bytes.clone())
            .send()
            .await
            .expect("predict");
        assert_eq!(response.status(), 200, "{name}");
    }

    // Two more scrapes, so the requests lie between samples in every window.
    let before = scrapes(&prometheus, &client).await;
    prometheus
        .wait_for(
            &client,
            "count_over_time(up{job=\"seresnext\"}[10m])",
            |r| single_number(r).filter(|&n| n >= before + 2.0),
        )
        .await;

    let p99 = prometheus
        .wait_for(&client, P99, |r| single_number(r).filter(|v| v.is_finite()))
        .await;
    assert!(p99 > 0.0 && p99 <= 30.0, "p99 latency {p99} s");

    let ok = prometheus
        .wait_for(
            &client,
            "sum(seresnext_requests_total{status=\"200\"})",
            single_number,
        )
        .await;
    assert_eq!(ok, sent.len() as f64, "Prometheus saw every request");

    // Every panel query of the dashboard, with Grafana's variables filled in.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("docker/grafana/dashboards/seresnext.json"),
        )
        .expect("read dashboard"),
    )
    .expect("dashboard JSON");
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let query = expr
                .replace("$__rate_interval", "1m")
                .replace("$model", ".*");
            let result = prometheus.query(&client, &query).await;
            assert!(
                !result.is_empty(),
                "{} : {query} returned no series",
                panel["title"]
            );
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} dashboard queries");

    // promtool's linter on our exposition (with data in every histogram).
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start `promtool`: run scripts/deploy/install-deploy-tools.sh (`make test` does)");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(metrics.as_bytes())
        .expect("write metrics to promtool");
    let output = promtool.wait_with_output().expect("promtool finished");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && findings.trim().is_empty(),
        "promtool check metrics: {}\n{findings}",
        output.status
    );

    drop(prometheus);
    server.stop().await;
}
