//! Cold start and the listener, against the real server: a CPU model is
//! ready after one warm-up pass, start-up phases are exported, connections
//! are bounded (header-read timeout, idle timeout, connection cap), and a
//! taken port ends the process with one clear line and exit code 1.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::process::failed_start_error;
use crate::support::server::{start_server, test_config, TestServer, MODEL};

/// Far longer than any timeout set in these tests: only a connection that
/// is never closed takes this long.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// Reads until the peer closes (EOF or reset) and returns what came, or
/// `None` when the connection was still open after [`CLOSE_BOUND`].
fn read_until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(received),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return Some(received),
        }
        if started.elapsed() > CLOSE_BOUND {
            return None;
        }
    }
}

/// Sends one keep-alive `GET /healthz` and reads its whole response.
fn healthz_keep_alive(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    stream.set_read_timeout(Some(CLOSE_BOUND)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !ends_with_json_body(&received) {
        let read = stream.read(&mut buffer).expect("a response");
        assert!(read > 0, "closed before answering");
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).into_owned()
}

fn ends_with_json_body(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains("\r\n\r\n") && text.trim_end().ends_with('}')
}

async fn stop(server: TestServer) {
    server.stop().await;
}

#[tokio::test]
async fn on_the_cpu_readiness_waits_for_one_pass_not_every_bucket_and_phases_are_exported() {
    let server = start_server(|config| config.models[0].max_batch_size = 8).await;

    let info = server.get_json(&format!("/v1/models/{MODEL}")).await;
    assert_eq!(info["warmup"], "auto");
    assert_eq!(info["warmed_batch_sizes"], serde_json::json!([1]));
    let ready_after = info["ready_after_seconds"]
        .as_f64()
        .expect("a number once ready");
    assert!(ready_after > 0.0, "{info}");

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for phase in ["resolve", "read", "fold", "build", "warm"] {
        let series = format!(r#"seresnext_model_load_seconds{{model="{MODEL}",phase="{phase}"}}"#);
        assert!(metrics.contains(&series), "{series} missing");
    }
    stop(server).await;
}

#[tokio::test]
async fn warmup_all_runs_every_bucket_on_the_cpu_too() {
    let server = start_server(|config| {
        config.models[0].max_batch_size = 4;
        config.models[0].warmup = seresnext_serve::config::WarmupMode::All;
    })
    .await;
    let info = server.get_json(&format!("/v1/models/{MODEL}")).await;
    assert_eq!(info["warmed_batch_sizes"], serde_json::json!([1, 2, 4]));
    stop(server).await;
}

// Blocking sockets: the server needs a runtime thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_request_header_is_closed_after_the_header_read_timeout() {
    let server = start_server(|config| config.server.header_read_timeout_ms = 200).await;
    let mut stream = TcpStream::connect(server.server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: te")
        .unwrap();
    let started = Instant::now();
    assert!(
        read_until_closed(&mut stream).is_some(),
        "a partial header held the connection open for {CLOSE_BOUND:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    stop(server).await;
}

// Blocking sockets: the server needs a runtime thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start_server(|config| {
        config.server.idle_timeout_ms = 200;
        config.server.header_read_timeout_ms = 60_000;
    })
    .await;
    let mut stream = TcpStream::connect(server.server.addr).unwrap();
    let response = healthz_keep_alive(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        read_until_closed(&mut stream).is_some(),
        "an idle keep-alive connection stayed open for {CLOSE_BOUND:?}"
    );
    stop(server).await;
}

// Blocking sockets: the server needs a runtime thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_closed_at_once_and_counted() {
    let TestServer {
        base_url,
        client,
        server,
    } = start_server(|config| config.server.max_connections = 2).await;
    // The readiness poller's pooled connection would hold a slot.
    drop(client);
    let metrics = server.service.metrics();
    let open = metrics.connections_open.with_label_values(&["api"]);
    let started = Instant::now();
    while open.get() != 0 {
        assert!(started.elapsed() < CLOSE_BOUND, "connections stay open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut first = TcpStream::connect(server.addr).unwrap();
    let mut second = TcpStream::connect(server.addr).unwrap();
    assert!(healthz_keep_alive(&mut first).starts_with("HTTP/1.1 200"));
    assert!(healthz_keep_alive(&mut second).starts_with("HTTP/1.1 200"));
    assert_eq!(open.get(), 2);

    let mut third = TcpStream::connect(server.addr).unwrap();
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    let answer = read_until_closed(&mut third).expect("the extra connection is closed");
    assert!(answer.is_empty(), "the extra connection was served");
    let refused = metrics.connections_refused.with_label_values(&["api"]);
    assert_eq!(refused.get(), 1);
    let exposition = metrics.render();
    assert!(exposition.contains(r#"seresnext_connections_refused_total{listener="api"} 1"#));

    // A slot freed is a slot to take again.
    drop(first);
    let started = Instant::now();
    while open.get() != 1 {
        assert!(
            started.elapsed() < CLOSE_BOUND,
            "the closed connection stays counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut fourth = TcpStream::connect(server.addr).unwrap();
    assert!(healthz_keep_alive(&mut fourth).starts_with("HTTP/1.1 200"));
    drop((second, fourth));
    let _ = base_url;
    server.shutdown();
    server.wait().await.expect("clean shutdown");
}

#[test]
fn a_port_already_in_use_ends_the_process_with_one_line_and_exit_code_1() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut config = test_config();
    config.server.port = port;
    let error = failed_start_error(&config);
    assert!(error.contains("Address already in use"), "{error}");
    assert!(error.contains(&port.to_string()), "{error}");
    drop(held);
}
