//! The download path against a fake Hub on 127.0.0.1: the real Hub is not
//! reachable from tests, but hf-hub's request sequence (HEAD for the commit
//! and ETag, then GET) and the cache it writes are, so they are checked here,
//! and the cache it leaves must be the one [`cache::cached_path`] reads.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::tests::{settings, COMMIT};
use super::*;

const PATH: &str = "/timm/seresnext50_32x4d.gluon_in1k/resolve/main/model.safetensors";

/// A minimal Hub serving one file; it records every request line.
struct FakeHub {
    endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FakeHub {
    fn start(body: &'static [u8]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        // Detached: it serves until the test binary exits.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, body, &seen);
            }
        });
        Self { endpoint, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests lock").clone()
    }

    fn settings(&self, cache_dir: &Path) -> HubSettings {
        HubSettings {
            endpoint: Some(self.endpoint.clone()),
            ..settings(cache_dir, false)
        }
    }
}

/// Answers one request and closes the connection (so hf-hub reconnects and
/// every request is seen).
fn serve(stream: TcpStream, body: &[u8], seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    seen.lock()
        .expect("requests lock")
        .push(format!("{method} {path}"));
    let mut writer = &stream;
    let response = if path == PATH {
        format!(
            "HTTP/1.1 200 OK\r\nETag: \"fake-etag\"\r\nX-Repo-Commit: {COMMIT}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\nX-Error-Code: EntryNotFound\r\nContent-Length: 0\r\n\
         Connection: close\r\n\r\n"
            .to_owned()
    };
    let _ = writer.write_all(response.as_bytes());
    if method == "GET" && path == PATH {
        let _ = writer.write_all(body);
    }
}

#[test]
fn a_download_fills_the_cache_so_the_next_start_needs_no_request() {
    let hub = FakeHub::start(b"published weights");
    let dir = tempfile::tempdir().expect("temp dir");
    let wanted: HubFile = "hf://timm/seresnext50_32x4d.gluon_in1k"
        .parse()
        .expect("url");

    let path = resolve(&wanted, &hub.settings(dir.path())).expect("downloaded");
    assert_eq!(std::fs::read(&path).expect("read"), b"published weights");
    assert!(
        hub.requests().iter().any(|r| r == &format!("GET {PATH}")),
        "{:?}",
        hub.requests()
    );
    // The layout huggingface_hub writes: a ref, a blob, a snapshot link.
    let repo = cache::repo_dir(dir.path(), &wanted.repo_id);
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/main"))
            .expect("ref")
            .trim(),
        COMMIT
    );
    assert!(repo.join("blobs/fake-etag").is_file());
    assert_eq!(
        path,
        repo.join("snapshots")
            .join(COMMIT)
            .join("model.safetensors")
    );

    let before = hub.requests().len();
    assert_eq!(
        resolve(&wanted, &hub.settings(dir.path())).expect("cached"),
        path
    );
    assert_eq!(
        resolve(&wanted, &settings(dir.path(), true)).expect("offline"),
        path
    );
    assert_eq!(hub.requests().len(), before, "a cached file cost a request");
}

#[test]
fn a_file_the_hub_does_not_have_is_refused_not_unreachable() {
    let hub = FakeHub::start(b"");
    let dir = tempfile::tempdir().expect("temp dir");
    let wanted: HubFile = "hf://timm/seresnext50_32x4d.gluon_in1k/nope.safetensors"
        .parse()
        .expect("url");
    let error = resolve(&wanted, &hub.settings(dir.path())).expect_err("404");
    assert!(matches!(error, HubError::Refused { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("did not serve hf://timm/seresnext50_32x4d.gluon_in1k/nope.safetensors"),
        "{message}"
    );
}

#[test]
fn an_unreachable_hub_says_so_and_how_to_provide_the_file() {
    // A port that was just free: connecting is refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = HubSettings {
        endpoint: Some(endpoint),
        ..settings(dir.path(), false)
    };
    let wanted: HubFile = "hf://timm/seresnext50_32x4d.gluon_in1k"
        .parse()
        .expect("url");
    let error = resolve(&wanted, &settings).expect_err("unreachable");
    assert!(matches!(error, HubError::Unreachable { .. }), "{error:?}");
    let message = error.to_string();
    for part in [
        "cannot reach the Hugging Face Hub to download hf://timm/seresnext50_32x4d.gluon_in1k",
        "it is not cached",
        &cache::repo_dir(dir.path(), &wanted.repo_id)
            .join("snapshots/<commit>/model.safetensors")
            .display()
            .to_string(),
        "weights = \"/path/to/model.safetensors\"",
    ] {
        assert!(message.contains(part), "lacks {part:?}: {message}");
    }
}
