//! Just enough of the Chrome DevTools Protocol to drive a headless Debian
//! `chromium` from a test, over `--remote-debugging-pipe`: the browser reads
//! NUL-terminated JSON commands on its fd 3 and writes answers and events on
//! its fd 4. A shell `exec` maps those onto the child's stdin and stdout, so
//! there is no port to find, no websocket and no driver crate to build.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Longest any single command may take (a navigation included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The browser binary: `$SERESNEXT_CHROMIUM`, else `chromium` on PATH.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("SERESNEXT_CHROMIUM") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|path| path.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromium is not installed: run scripts/deploy/install-deploy-tools.sh \
             (make test does), or set SERESNEXT_CHROMIUM"
        )
    })
}

/// One headless browser with one page attached (flat session mode).
pub struct Browser {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
    next_id: u64,
    session: Option<String>,
    /// Events read while waiting for an answer, in arrival order.
    pub events: Vec<Value>,
    /// With `Fetch` enabled: the JSON body every paused request is answered
    /// with (200, `application/json`), instead of the server's.
    pub fake_json: Option<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromium headless (sandbox off: tests may run as root) with a
    /// throw-away profile, opens a blank page of `width` x `height` and
    /// attaches to it.
    pub async fn launch(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-pipe",
                "--hide-scrollbars",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromium");
        let commands = child.stdin.take().expect("piped stdin");
        let answers = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut browser = Browser {
            child,
            commands,
            answers,
            next_id: 0,
            session: None,
            events: Vec::new(),
            fake_json: None,
            _profile: profile,
        };
        let target = browser
            .browser_call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("sessionId")
                .to_owned(),
        );
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
            )
            .await;
        browser
    }

    /// A command to the page; its result, or a panic with the error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, session).await
    }

    async fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    async fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = Value::String(session);
        }
        let mut bytes = serde_json::to_vec(&message).expect("serialize");
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .await
            .expect("write to chromium");
        self.commands.flush().await.expect("flush");
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let mut buffer = Vec::new();
            let read =
                tokio::time::timeout_at(deadline.into(), self.answers.read_until(0, &mut buffer))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("chromium did not answer {method} in {COMMAND_TIMEOUT:?}")
                    })
                    .expect("read from chromium");
            assert!(read > 0, "chromium exited while answering {method}");
            if buffer.last() == Some(&0) {
                buffer.pop();
            }
            let answer: Value = serde_json::from_slice(&buffer).expect("chromium sends JSON");
            if answer["id"].as_u64() == Some(id) {
                if let Some(error) = answer.get("error") {
                    panic!("{method} failed: {error}");
                }
                return answer["result"].clone();
            }
            if answer.get("method").is_some() {
                self.events.push(answer);
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns
    /// its value as JSON. A thrown exception fails the test.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Polls `expression` until it is truthy, answering paused requests
    /// meanwhile; returns the value, or fails with `what`.
    pub async fn wait_for(&mut self, expression: &str, what: &str, timeout: Duration) -> Value {
        let started = Instant::now();
        loop {
            self.answer_paused_requests().await;
            let value = self.eval(expression).await;
            if !(value.is_null() || value == false || value == "" || value == 0) {
                return value;
            }
            assert!(started.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fulfils every request `Fetch` paused with [`Self::fake_json`].
    async fn answer_paused_requests(&mut self) {
        use base64::Engine;
        let events = std::mem::take(&mut self.events);
        for event in events {
            if event["method"] != "Fetch.requestPaused" {
                continue;
            }
            let body = self
                .fake_json
                .clone()
                .expect("Fetch paused a request, fake_json is set");
            let body = base64::engine::general_purpose::STANDARD.encode(body.to_string());
            let headers = json!([{"name": "content-type", "value": "application/json"}]);
            let request_id = event["params"]["requestId"].clone();
            self.call(
                "Fetch.fulfillRequest",
                json!({"requestId": request_id, "responseCode": 200,
                       "responseHeaders": headers, "body": body}),
            )
            .await;
        }
    }

    /// Loads `url` and waits until its document and deferred scripts ran.
    pub async fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({"url": url})).await;
        assert!(
            result.get("errorText").is_none(),
            "navigate {url}: {result}"
        );
        self.wait_for(
            "document.readyState === 'complete'",
            &format!("{url} to load"),
            COMMAND_TIMEOUT,
        )
        .await;
    }

    /// Puts `file` into the `<input type=file>` that `selector` finds, as a
    /// user choosing it would (the page gets its `change` event).
    pub async fn choose_file(&mut self, selector: &str, file: &Path) {
        let document = self.call("DOM.getDocument", json!({"depth": 0})).await;
        let node = self
            .call(
                "DOM.querySelector",
                json!({"nodeId": document["root"]["nodeId"], "selector": selector}),
            )
            .await;
        self.call(
            "DOM.setFileInputFiles",
            json!({"nodeId": node["nodeId"], "files": [file.display().to_string()]}),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64")
    }

    /// Closes the browser (and waits for it to exit).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.browser_call_no_wait("Browser.close"),
        )
        .await;
        let _ = self.child.kill().await;
    }

    async fn browser_call_no_wait(&mut self, method: &str) {
        self.next_id += 1;
        let mut bytes =
            serde_json::to_vec(&json!({"id": self.next_id, "method": method})).expect("serialize");
        bytes.push(0);
        let _ = self.commands.write_all(&bytes).await;
        let _ = self.child.wait().await;
    }
}
