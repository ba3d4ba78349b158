//! The pages in a real browser: Debian's headless `chromium`, driven over
//! the DevTools protocol (`ui/cdp.rs`), against a real server on port 0 with
//! the fixture model on the CPU.
//!
//! - `/`: a fixture photo chosen in the file input comes back with the same
//!   top-1 label the API gives for it, five probability bars and the
//!   timings; nothing the page does trips its Content-Security-Policy.
//!   A screenshot is kept (`target/tmp/ui/try-it.png`; docs/ui.png in the
//!   README is one).
//! - Hostile text: the page is fed a model named with markup and script, and
//!   shows the name and the API's error about it as text; nothing runs.
//! - `/docs`: Swagger UI lists every path of `openapi.yaml`, and "Try it
//!   out" on `GET /v1/models` gets a 200 from this very server.
//! - Behind docker/nginx/nginx.conf under a path prefix (`/seresnext/`),
//!   with an API key: the page asks for the key, keeps it for the tab and
//!   classifies through the prefix; `/seresnext/docs` lists the paths and
//!   "Try it out", authorized, calls `/seresnext/v1/models`.
//!
//! Chromium comes from `scripts/deploy/install-deploy-tools.sh` (`make test` runs
//! it); without it this test fails, as a page nobody opened is not tested.

mod cdp;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support;
use crate::support::server::{photo, start_server, TestServer, MODEL};
use cdp::Browser;
use seresnext_serve::config::ApiKey;

/// Enough for a CPU classification on a busy 2-core machine.
const RESULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Records every CSP violation of every document the page opens.
const CSP_RECORDER: &str = "window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

/// The key of the server behind nginx (at least 16 characters).
const KEY: &str = "ui-test-key-0123456789";

/// The path prefix nginx serves the API under.
const PREFIX: &str = "/seresnext";

/// A model name that would run script if the page ever used it as HTML.
const HOSTILE: &str = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>";

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&dir).expect("artifact dir");
    dir
}

/// `openapi.yaml`'s paths.
fn documented_paths() -> BTreeSet<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml"))
        .expect("read openapi.yaml");
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    spec["paths"]
        .as_mapping()
        .expect("paths")
        .keys()
        .map(|key| key.as_str().expect("path").to_owned())
        .collect()
}

/// The label the API itself gives the photo first.
async fn api_top1(server: &TestServer, key: Option<&str>) -> String {
    let mut request = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict")))
        .header("content-type", "image/jpeg")
        .body(photo("chelsea.jpg"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let answer: Value = request
        .send()
        .await
        .expect("predict")
        .json()
        .await
        .expect("JSON");
    answer["predictions"][0]["top_k"][0]["label"]
        .as_str()
        .unwrap_or_else(|| panic!("no label in {answer}"))
        .to_owned()
}

/// A browser that records CSP violations in `window.__csp`.
async fn browser() -> Browser {
    let mut browser = Browser::launch(1100, 820).await;
    browser
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": CSP_RECORDER}),
        )
        .await;
    browser
}

/// The names in the page's model list, once it is filled.
async fn model_list(browser: &mut Browser) -> Value {
    browser
        .wait_for(
            "!document.getElementById('model').disabled && \
             Array.from(document.getElementById('model').options, (o) => o.value)",
            "the model list",
            RESULT_TIMEOUT,
        )
        .await
}

/// Chooses the fixture photo and returns its card once answered.
async fn classify(browser: &mut Browser) -> Value {
    browser
        .eval("document.getElementById('results').replaceChildren()")
        .await;
    let photo_path = support::fixture_path("photos/chelsea.jpg");
    browser.choose_file("#files", &photo_path).await;
    browser
        .wait_for(
            "(() => { const c = document.querySelector('.result:not([data-state=pending])');
               return c && {
                 state: c.dataset.state,
                 labels: Array.from(c.querySelectorAll('.top .label'), (e) => e.textContent),
                 bars: c.querySelectorAll('.top .bar span').length,
                 timing: Array.from(c.querySelectorAll('.timing dt'), (e) => e.textContent),
                 thumb: c.querySelector('.thumb').naturalWidth > 0,
                 error_type: c.querySelector('.error-type').textContent,
                 error: c.querySelector('.error-text').textContent,
               }; })()",
            "the photo's result",
            RESULT_TIMEOUT,
        )
        .await
}

/// The card shows `expected` first, five bars, every timing, the thumbnail.
#[track_caller]
fn assert_classified(card: &Value, expected: &str) {
    assert_eq!(card["state"], "done", "{card}");
    assert_eq!(card["labels"][0], expected, "{card}");
    assert_eq!(card["labels"].as_array().map(Vec::len), Some(5), "{card}");
    assert_eq!(card["bars"], 5, "{card}");
    for timing in ["preprocess", "queue", "inference", "total"] {
        assert!(
            card["timing"].as_array().unwrap().contains(&json!(timing)),
            "{card}"
        );
    }
    assert_eq!(card["thumb"], true, "the thumbnail shows: {card}");
}

/// On a loaded `/docs`: every path of `openapi.yaml` is listed, and "Try it
/// out" on `GET /v1/models` answers 200; returns the URL it called.
async fn check_docs(browser: &mut Browser) -> Value {
    let shown = browser
        .wait_for(
            "(() => { const p = Array.from(document.querySelectorAll('.opblock-summary-path'),
                (e) => e.dataset.path || e.textContent.replace(/\\u200b/g, ''));
               return p.length > 0 && p; })()",
            "Swagger UI's operations",
            RESULT_TIMEOUT,
        )
        .await;
    let shown: BTreeSet<String> = serde_json::from_value(shown).expect("paths");
    assert_eq!(
        shown,
        documented_paths(),
        "/docs lists every path of openapi.yaml"
    );
    let operation = "#operations-models-listModels";
    for (selector, what) in [
        (".opblock-summary-control", "the operation"),
        (".try-out__btn", "Try it out"),
        (".execute", "Execute"),
    ] {
        let click = format!(
            "(() => {{ const e = document.querySelector('{operation} {selector}');
               return e ? (e.click(), true) : false; }})()"
        );
        browser.wait_for(&click, what, RESULT_TIMEOUT).await;
    }
    let status = browser
        .wait_for(
            &format!(
                "(() => {{ const e = document.querySelector(
                   '{operation} .live-responses-table tbody .response-col_status');
                   return e && e.textContent.trim(); }})()"
            ),
            "the Try it out response",
            RESULT_TIMEOUT,
        )
        .await;
    let url = browser
        .eval(&format!(
            "document.querySelector('{operation} .request-url pre').textContent"
        ))
        .await;
    assert_eq!(status, "200", "Try it out calls this server: {url}");
    assert_eq!(
        browser.eval("window.__csp").await,
        json!([]),
        "CSP violations on /docs"
    );
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() {
    let started = Instant::now();
    let server = start_server(|_| {}).await;
    let expected = api_top1(&server, None).await;
    let mut browser = browser().await;

    // The try-it page: choose the photo, wait for its card.
    browser.navigate(&server.url("/")).await;
    assert_eq!(model_list(&mut browser).await, json!([MODEL]));
    let state = browser
        .eval("document.getElementById('model-state').textContent")
        .await;
    assert!(
        state.as_str().is_some_and(|s| s.starts_with("ready")),
        "{state}"
    );
    let key_form = browser
        .eval("document.getElementById('key-form').hidden")
        .await;
    assert_eq!(key_form, true, "no key asked for without one");
    let card = classify(&mut browser).await;
    assert_classified(&card, &expected);
    assert_eq!(
        browser.eval("window.__csp").await,
        json!([]),
        "CSP violations on /"
    );
    let shot = browser.screenshot().await;
    std::fs::write(artifacts().join("try-it.png"), &shot).expect("write screenshot");

    // Hostile text: the page's model list says a model has markup for a
    // name; its name and the API's 404 about it must show as text only.
    browser
        .call(
            "Fetch.enable",
            json!({"patterns": [{"urlPattern": "*/v1/models", "requestStage": "Request"}]}),
        )
        .await;
    browser.fake_json = Some(json!({"models": [{
        "name": HOSTILE, "ready": true, "device": "cpu", "requested_device": "cpu",
        "dtype": "fp32", "replicas": 1, "ready_replicas": 1, "random_weights": false,
    }]}));
    browser.navigate(&server.url("/")).await;
    assert_eq!(model_list(&mut browser).await, json!([HOSTILE]));
    browser.call("Fetch.disable", json!({})).await;
    let card = classify(&mut browser).await;
    assert_eq!(card["state"], "error", "{card}");
    assert_eq!(card["error_type"], "model_not_found", "{card}");
    assert!(
        card["error"].as_str().unwrap().contains("<script>"),
        "{card}"
    );
    let executed = browser
        .eval("[typeof window.__xss, document.querySelectorAll('script:not([src]), img[src=x]').length]")
        .await;
    assert_eq!(executed, json!(["undefined", 0]), "the hostile name ran");
    assert_eq!(browser.eval("window.__csp").await, json!([]));

    // The API reference: every path, and one call through "Try it out".
    browser.navigate(&server.url("/docs")).await;
    assert_eq!(check_docs(&mut browser).await, server.url("/v1/models"));
    let shot = browser.screenshot().await;
    std::fs::write(artifacts().join("docs.png"), &shot).expect("write screenshot");

    browser.close().await;
    server.stop().await;
    println!("ui: pages in chromium passed in {:.1?}", started.elapsed());
}

/// docker/nginx/nginx.conf with a `/seresnext/` location in front of the
/// committed `location /`, stripping the prefix as the README says to.
fn prefixed_nginx_config(upstream: std::net::SocketAddr, port: u16) -> String {
    let config = support::nginx::loopback_config(
        &support::nginx::committed_config(),
        [upstream, upstream],
        port,
    );
    let prefixed = format!(
        "location = {PREFIX} {{ return 301 {PREFIX}/; }}
        location {PREFIX}/ {{
            proxy_pass http://seresnext/;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
        location / {{"
    );
    assert!(config.contains("location / {"), "nginx.conf proxies /");
    config.replacen("location / {", &prefixed, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_behind_nginx_under_a_prefix_with_an_api_key() {
    let started = Instant::now();
    let server = start_server(|config| config.server.api_key = ApiKey::new(KEY)).await;
    let expected = api_top1(&server, Some(KEY)).await;

    let dir = tempfile::tempdir().expect("nginx dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("nginx.conf");
    std::fs::write(&config, prefixed_nginx_config(server.server.addr, port)).expect("write");
    let mut nginx = support::nginx::command(dir.path(), &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx");
    let base = format!("http://127.0.0.1:{port}{PREFIX}");

    let mut browser = browser().await;
    // Without the trailing slash nginx redirects, so relative URLs resolve.
    let mut loaded = false;
    for _ in 0..50 {
        if reqwest::get(format!("{base}/")).await.is_ok() {
            loaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(loaded, "nginx did not start");
    browser.navigate(&base).await;
    let asked = browser
        .wait_for(
            "!document.getElementById('key-form').hidden && \
             document.getElementById('status').textContent",
            "the page to ask for the key",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(asked, "This server needs an API key.");
    browser
        .eval(&format!(
            "document.getElementById('api-key').value = '{KEY}';
             document.getElementById('key-form').requestSubmit(); true"
        ))
        .await;
    assert_eq!(model_list(&mut browser).await, json!([MODEL]));
    let stored = browser
        .eval("sessionStorage.getItem('seresnext-serve.api-key')")
        .await;
    assert_eq!(stored, KEY, "the key is kept for the tab");
    let card = classify(&mut browser).await;
    assert_classified(&card, &expected);
    assert_eq!(browser.eval("location.href").await, format!("{base}/"));
    assert_eq!(browser.eval("window.__csp").await, json!([]));

    browser.navigate(&format!("{base}/docs")).await;
    browser
        .wait_for(
            // Only once the spec (and its bearerAuth scheme) has loaded.
            &format!(
                "window.ui && document.querySelector('.opblock') &&
                 (window.ui.preauthorizeApiKey('bearerAuth', '{KEY}'),
                  window.ui.authSelectors.authorized().size > 0)"
            ),
            "Swagger UI to take the key",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(check_docs(&mut browser).await, format!("{base}/v1/models"));

    browser.close().await;
    support::nginx::stop(&mut nginx);
    server.stop().await;
    println!(
        "ui: behind nginx under {PREFIX} passed in {:.1?}",
        started.elapsed()
    );
}
