//! Lifecycle behind a load balancer: two real server processes behind a
//! real nginx running the compose deployment's docker/nginx/nginx.conf,
//! clients sending predictions through nginx the whole time.
//!
//! - SIGTERM one instance under load: it fails readiness, serves out its
//!   grace period, stops accepting and drains, while nginx retries what it
//!   cannot place on the other instance. No client request may fail, and the
//!   instance must exit 0.
//! - SIGKILL one instance under load: what the clients saw is reported (a
//!   request whose response had started could not be retried); the service
//!   must recover, every request after the kill succeeding.
//!
//! The config's retry policy is what makes the SIGTERM case lossless:
//! `proxy_next_upstream error timeout http_503 non_idempotent` resends a
//! request to the other instance when one refuses the connection (its
//! listener closed after the grace period), drops it before answering, or
//! answers 503 (`shutting_down` once draining). nginx resends a POST only
//! with `non_idempotent`; that is safe for predict because classifying an
//! image has no side effects: running it twice costs compute, not
//! correctness.
//!
//! Nothing here times anything: phases end when enough requests have
//! succeeded, and every wait has a generous bound so a broken build fails
//! instead of hanging. nginx comes from `make deploy-tools` (run by `make
//! test`).

use crate::support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::process::{config_toml, ServerProcess};
use support::server::MODEL;

/// Concurrent clients sending through nginx.
const CLIENTS: usize = 6;
/// Upper bound on one client's requests, so a load loop always ends.
const MAX_REQUESTS_PER_CLIENT: usize = 400;
/// Successful requests a phase waits for before it moves on.
const PHASE_SUCCESSES: usize = 12;
/// Bound on any wait (start-up, a phase, an exit): far above what a healthy
/// run needs, so only a broken server reaches it.
const PATIENCE: Duration = Duration::from_secs(180);
/// Keep-serving period after SIGTERM (readiness already 503).
const SHUTDOWN_GRACE_MS: u64 = 1500;

/// One real `seresnext-serve serve` process. One libtorch thread and small
/// batches: three instances and nginx share the machine's cores with the
/// clients.
fn spawn_instance() -> ServerProcess {
    ServerProcess::spawn(&config_toml(&format!(
        "intra_op_threads = 1\npreprocess_threads = 1\n\
         shutdown_grace_ms = {SHUTDOWN_GRACE_MS}\ndrain_timeout_ms = 30000"
    )))
}

/// nginx running docker/nginx/nginx.conf, the compose deployment's own
/// file, with only its two upstream addresses and its listen port changed
/// (as tests/it/nginx_proxy.rs runs it), so what the clients see here is what
/// they would see in front of the compose replicas.
struct Nginx {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free loopback port in front of `upstreams` and
    /// waits until it forwards to them.
    async fn start(upstreams: [&str; 2]) -> Nginx {
        let original = support::nginx::committed_config();
        // A port picked by binding port 0 may be taken by someone else
        // before nginx binds it; then nginx exits and we pick another.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let conf = dir.path().join("nginx.conf");
            std::fs::write(
                &conf,
                support::nginx::loopback_config(&original, upstreams, port),
            )
            .expect("write nginx.conf");
            // The config logs errors to stderr: kept, to count nginx's
            // failed tries at an upstream.
            let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let child = support::nginx::command(dir.path(), &conf)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("spawn nginx");
            let mut nginx = Nginx {
                child,
                url: format!("http://127.0.0.1:{port}"),
                dir,
            };
            if nginx.wait_forwarding().await {
                return nginx;
            }
            eprintln!("nginx did not start on port {port}:\n{}", nginx.logs());
        }
        panic!("nginx could not be started");
    }

    /// True once nginx answers `/healthz` from an upstream; false if it exited.
    async fn wait_forwarding(&mut self) -> bool {
        let client = reqwest::Client::new();
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            if self.child.try_wait().expect("wait for nginx").is_some() {
                return false;
            }
            let response = client.get(format!("{}/healthz", self.url)).send().await;
            if response.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "nginx did not forward within {PATIENCE:?}:\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        ["stderr.log", "error.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// nginx's failed tries at an upstream (each one retried on the other
    /// instance, or failed if none was left), grouped by what went wrong:
    /// `connect() failed (111: Connection refused) while connecting to
    /// upstream`, `upstream prematurely closed connection while reading
    /// response header from upstream`, ...
    fn failed_tries(&self) -> BTreeMap<String, usize> {
        let mut tries = BTreeMap::new();
        for line in self.logs().lines() {
            if !line.contains("[error]") || !line.contains("upstream") {
                continue;
            }
            // `... [error] 12#12: *34 <what>, client: ...`
            let what = line
                .split_once(": *")
                .and_then(|(_, rest)| rest.split_once(' '))
                .map(|(_, rest)| rest.split(", client:").next().unwrap_or(rest))
                .unwrap_or(line);
            *tries.entry(what.to_owned()).or_default() += 1;
        }
        tries
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        support::nginx::stop(&mut self.child);
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Predictions an instance answered 200, from its own `/metrics`.
async fn served(addr: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| {
            line.starts_with("seresnext_requests_total{") && line.contains("status=\"200\"")
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    ok: AtomicUsize,
    /// Every non-200 status or transport error, as text.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) -> usize {
        self.ok.load(Ordering::SeqCst)
    }

    fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    /// Failures grouped: `{"502": 3}`.
    fn failure_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for failure in self.failures() {
            *counts.entry(failure).or_default() += 1;
        }
        counts
    }
}

/// Clients posting a photo through nginx until stopped.
struct Load {
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str) -> Load {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let photo = Arc::new(support::server::photo("chelsea.jpg"));
        let url = format!("{url}/v1/models/{MODEL}:predict");
        // A per-request timeout turns a hung request into a counted failure.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let tasks = (0..CLIENTS)
            .map(|_| {
                let (tally, stop, photo, url, client) = (
                    tally.clone(),
                    stop.clone(),
                    photo.clone(),
                    url.clone(),
                    client.clone(),
                );
                tokio::spawn(async move {
                    for _ in 0..MAX_REQUESTS_PER_CLIENT {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        tally.sent.fetch_add(1, Ordering::SeqCst);
                        let response = client
                            .post(&url)
                            .header("content-type", "image/jpeg")
                            .body(photo.to_vec())
                            .send()
                            .await;
                        if !record(&tally, response).await {
                            // Do not spin on a failing service.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Load { tally, stop, tasks }
    }

    /// Waits until `count` requests have succeeded in all (bounded).
    async fn until_ok(&self, count: usize) {
        let started = Instant::now();
        while self.tally.ok() < count {
            let running = self.tasks.iter().any(|task| !task.is_finished());
            assert!(
                running && started.elapsed() < PATIENCE,
                "only {} of {count} requests succeeded; failures: {:?}",
                self.tally.ok(),
                self.tally.failure_counts()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("client task");
        }
        self.tally
    }
}

/// Counts one response; true if it succeeded.
async fn record(tally: &Tally, response: reqwest::Result<reqwest::Response>) -> bool {
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            tally
                .failures
                .lock()
                .unwrap()
                .push(format!("error: {error}"));
            return false;
        }
    };
    let status = response.status();
    // The body must arrive whole too: a cut-off answer is a failure.
    let failure = match response.bytes().await {
        Ok(body) if status == 200 && body.starts_with(b"{") => {
            tally.ok.fetch_add(1, Ordering::SeqCst);
            return true;
        }
        Ok(_) => status.as_u16().to_string(),
        Err(error) => format!("{status} with a broken body: {error}"),
    };
    tally.failures.lock().unwrap().push(failure);
    false
}

/// What the clients and nginx saw, for the issue notes.
fn report(case: &str, tally: &Tally, nginx: &Nginx) {
    eprintln!(
        "failover {case}: sent {}, ok {}, failed {} {:?}; nginx's failed tries at an upstream \
         (retried on the other): {:?}",
        tally.sent.load(Ordering::SeqCst),
        tally.ok(),
        tally.failures().len(),
        tally.failure_counts(),
        nginx.failed_tries()
    );
}

/// Waits until `instance` has answered predictions itself, so that taking
/// it down happens while it carries load (bounded).
async fn until_serving(instance: &ServerProcess) {
    let started = Instant::now();
    while served(&instance.addr).await < 1.0 {
        assert!(
            started.elapsed() < PATIENCE,
            "{} got no requests",
            instance.addr
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_hides_a_sigterm_and_recovers_from_a_sigkill() {
    // Both load their model at once; each takes a core.
    let mut first = spawn_instance();
    let mut second = spawn_instance();
    first.wait_ready().await;
    second.wait_ready().await;
    let nginx = Nginx::start([&first.addr, &second.addr]).await;

    // 1. SIGTERM under load: no client request fails.
    let load = Load::start(&nginx.url);
    load.until_ok(PHASE_SUCCESSES).await;
    until_serving(&first).await;
    first.signal("TERM");
    let exit = first.exit_status().await;
    // Requests after the exit can only be served by nginx routing around
    // the closed port.
    load.until_ok(load.tally.ok() + PHASE_SUCCESSES).await;
    let tally = load.stop().await;
    report("SIGTERM", &tally, &nginx);
    assert_eq!(
        exit.code(),
        Some(0),
        "SIGTERMed instance exit {exit:?}:\n{}",
        first.log_text()
    );
    assert!(
        tally.failures().is_empty(),
        "clients saw failures during a graceful shutdown: {:?}\nnginx:\n{}\nSIGTERMed instance:\n{}",
        tally.failure_counts(),
        nginx.logs(),
        first.log_text()
    );
    drop(nginx);
    drop(first);

    // 2. SIGKILL under load: report what clients saw, then require recovery.
    let mut third = spawn_instance();
    third.wait_ready().await;
    let nginx = Nginx::start([&second.addr, &third.addr]).await;
    let load = Load::start(&nginx.url);
    load.until_ok(PHASE_SUCCESSES).await;
    until_serving(&third).await;
    third.child.kill().expect("SIGKILL");
    let killed_at = (load.tally.ok(), load.tally.failures().len());
    load.until_ok(load.tally.ok() + PHASE_SUCCESSES).await;
    let tally = load.stop().await;
    report("SIGKILL", &tally, &nginx);
    eprintln!(
        "failover SIGKILL: {} ok and {} failed before the kill",
        killed_at.0, killed_at.1
    );

    // After the kill, the service answers every request.
    let recovery = Load::start(&nginx.url);
    recovery.until_ok(2 * PHASE_SUCCESSES).await;
    let after = recovery.stop().await;
    report("after SIGKILL (cumulative nginx tries)", &after, &nginx);
    assert!(
        after.failures().is_empty(),
        "requests after the kill failed: {:?}\nnginx:\n{}",
        after.failure_counts(),
        nginx.logs()
    );

    second.signal("TERM");
    let exit = second.exit_status().await;
    assert_eq!(exit.code(), Some(0), "{}", second.log_text());
}
