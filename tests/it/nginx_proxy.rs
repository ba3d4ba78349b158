//! `docker/nginx/nginx.conf` as behaviour, not just syntax: Debian's nginx
//! runs the file with only the upstream addresses and the listen port
//! changed, in front of a real server and of stand-ins that answer 503 the
//! way a replica with a full queue does. It checks what the file promises:
//! a POST predict that gets a 503 is retried on the other replica, at most
//! twice in all; `/metrics` is not proxied; bodies over `max_body_bytes`
//! stop at nginx.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use seresnext_serve::config::Config;
use support::server::{photo, shared_server, MODEL};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// nginx (master and workers) on a scratch prefix, stopped on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Nginx {
    /// Runs docker/nginx/nginx.conf with its two upstream servers replaced by
    /// `upstreams` (in order) and listening on a free loopback port.
    fn start(name: &str, upstreams: [SocketAddr; 2]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("seresnext-nginx-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("nginx scratch dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();

        let config =
            support::nginx::loopback_config(&support::nginx::committed_config(), upstreams, port);
        let config_path = dir.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");

        let child = support::nginx::command(&dir, &config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Self { child, dir, port };
        nginx.wait_listening();
        nginx
    }

    fn wait_listening(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().expect("poll nginx") {
                panic!("nginx exited with {status}\n{}", self.error_log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nginx not listening"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        support::nginx::stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A stand-in replica that answers every request like a full queue (503
/// queue_full with Retry-After), counting the requests it saw.
fn busy_upstream() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind busy upstream");
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    // Lives until the test binary exits, blocked in accept when idle.
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            if read_request(&stream).is_some() {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"error":"queue is full","error_type":"queue_full"}"#;
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                         retry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        }
    });
    (addr, hits)
}

/// Reads one request (headers and a Content-Length body); None on EOF.
fn read_request(stream: &TcpStream) -> Option<()> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()
}

fn predict_path() -> String {
    format!("/v1/models/{MODEL}:predict")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_on_the_other_replica_even_for_a_post() {
    let real: SocketAddr = shared_server().base_url["http://".len()..]
        .parse()
        .expect("shared server address");
    let (busy, busy_hits) = busy_upstream();
    let nginx = Nginx::start("retry", [busy, real]);
    let client = reqwest::Client::new();
    let image = photo("chelsea.jpg");

    // Round robin sends some of these to the busy replica first; every one
    // must still come back 200 from the real one.
    for attempt in 0..4 {
        let response = client
            .post(nginx.url(&predict_path()))
            .header("content-type", "image/jpeg")
            .body(image.clone())
            .send()
            .await
            .expect("predict through nginx");
        assert_eq!(
            response.status(),
            200,
            "attempt {attempt}\n{}",
            nginx.error_log()
        );
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["predictions"].as_array().map(Vec::len), Some(1));
    }
    assert!(
        busy_hits.load(Ordering::SeqCst) >= 1,
        "no POST reached the busy replica, so no retry was exercised"
    );
}

#[tokio::test]
async fn when_both_replicas_keep_answering_503_every_client_gets_it_with_retry_after() {
    let (first, first_hits) = busy_upstream();
    let (second, second_hits) = busy_upstream();
    let nginx = Nginx::start("both-busy", [first, second]);
    let client = reqwest::Client::new();
    // More rounds than any max_fails: if 503s marked the replicas down,
    // nginx would answer a bare 502 "no live upstreams" with no Retry-After.
    const ROUNDS: usize = 6;
    for round in 0..ROUNDS {
        let response = client
            .post(nginx.url(&predict_path()))
            .header("content-type", "image/jpeg")
            .body(vec![0u8; 1000])
            .send()
            .await
            .expect("predict through nginx");
        assert_eq!(
            response.status(),
            503,
            "round {round}\n{}",
            nginx.error_log()
        );
        assert_eq!(
            response.headers()["retry-after"],
            "1",
            "Retry-After passes through"
        );
        let body: serde_json::Value = response.json().await.expect("the replica's JSON error");
        assert_eq!(body["error_type"], "queue_full");
    }
    let tries = first_hits.load(Ordering::SeqCst) + second_hits.load(Ordering::SeqCst);
    assert_eq!(
        tries,
        2 * ROUNDS,
        "proxy_next_upstream_tries 2: one try per replica per request"
    );
}

#[tokio::test]
async fn metrics_stay_private_and_oversized_bodies_stop_at_nginx() {
    let (first, first_hits) = busy_upstream();
    let (second, second_hits) = busy_upstream();
    let nginx = Nginx::start("limits", [first, second]);

    let metrics = reqwest::get(nginx.url("/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(metrics.status(), 404);

    // One byte over server.max_body_bytes, announced but not sent: nginx must
    // refuse from the header alone.
    let config = Config::load(repo().join("docker/config.toml")).expect("docker/config.toml");
    let too_large = config.server.max_body_bytes + 1;
    let mut stream = TcpStream::connect(("127.0.0.1", nginx.port)).expect("connect to nginx");
    write!(
        stream,
        "POST {} HTTP/1.1\r\nhost: localhost\r\ncontent-type: image/jpeg\r\n\
         content-length: {too_large}\r\n\r\n",
        predict_path()
    )
    .expect("send headers");
    let mut status_line = String::new();
    BufReader::new(&stream)
        .read_line(&mut status_line)
        .expect("read status line");
    assert!(status_line.starts_with("HTTP/1.1 413"), "{status_line}");

    assert_eq!(
        first_hits.load(Ordering::SeqCst) + second_hits.load(Ordering::SeqCst),
        0,
        "neither request reached a replica"
    );
}
