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
//!
//! Chromium comes from `scripts/install-deploy-tools.sh` (`make test` runs
//! it); without it this test fails, as a page nobody opened is not tested.

#[path = "ui/cdp.rs"]
mod cdp;
mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use cdp::Browser;
use common::server::{photo, start_server, MODEL};

/// Enough for a CPU classification on a busy 2-core machine.
const RESULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Records every CSP violation of every document the page opens.
const CSP_RECORDER: &str = "window.__csp = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() {
    let started = Instant::now();
    let server = start_server(|_| {}).await;
    let photo_path = common::fixture_path("photos/chelsea.jpg");

    // What the API itself answers for the photo.
    let answer: Value = server
        .client
        .post(server.url(&format!("/v1/models/{MODEL}:predict")))
        .header("content-type", "image/jpeg")
        .body(photo("chelsea.jpg"))
        .send()
        .await
        .expect("predict")
        .json()
        .await
        .expect("JSON");
    let expected = answer["predictions"][0]["top_k"][0]["label"]
        .as_str()
        .expect("a label")
        .to_owned();

    let mut browser = Browser::launch(1100, 820).await;
    browser
        .call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": CSP_RECORDER}),
        )
        .await;

    // The try-it page: choose the photo, wait for its card.
    browser.navigate(&server.url("/")).await;
    let models = browser
        .wait_for(
            "!document.getElementById('model').disabled && \
             Array.from(document.getElementById('model').options, (o) => o.value)",
            "the model list",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(models, json!([MODEL]));
    let state = browser
        .eval("document.getElementById('model-state').textContent")
        .await;
    assert!(
        state.as_str().is_some_and(|s| s.starts_with("ready")),
        "{state}"
    );
    browser.choose_file("#files", &photo_path).await;
    let card = browser
        .wait_for(
            "(() => { const c = document.querySelector('.result:not([data-state=pending])');
               return c && {
                 state: c.dataset.state,
                 labels: Array.from(c.querySelectorAll('.top .label'), (e) => e.textContent),
                 bars: c.querySelectorAll('.top .bar span').length,
                 timing: Array.from(c.querySelectorAll('.timing dt'), (e) => e.textContent),
                 thumb: c.querySelector('.thumb').naturalWidth > 0,
                 error: c.querySelector('.error').textContent,
               }; })()",
            "the photo's result",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(card["state"], "done", "{card}");
    assert_eq!(card["labels"][0], expected.as_str(), "{card}");
    assert_eq!(card["labels"].as_array().map(Vec::len), Some(5), "{card}");
    assert_eq!(card["bars"], 5, "{card}");
    for timing in ["preprocess", "queue", "inference", "total"] {
        assert!(
            card["timing"].as_array().unwrap().contains(&json!(timing)),
            "{card}"
        );
    }
    assert_eq!(card["thumb"], true, "the thumbnail shows: {card}");
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
    let option = browser
        .wait_for(
            "!document.getElementById('model').disabled && \
             document.getElementById('model').options[0].textContent",
            "the hostile model list",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(option, HOSTILE);
    browser.call("Fetch.disable", json!({})).await;
    browser.choose_file("#files", &photo_path).await;
    let error = browser
        .wait_for(
            "(() => { const c = document.querySelector('.result[data-state=error]');
               return c && [c.querySelector('.error-type').textContent,
                            c.querySelector('.error-text').textContent]; })()",
            "the API's error",
            RESULT_TIMEOUT,
        )
        .await;
    assert_eq!(error[0], "model_not_found", "{error}");
    assert!(error[1].as_str().unwrap().contains("<script>"), "{error}");
    let executed = browser
        .eval("[typeof window.__xss, document.querySelectorAll('script:not([src]), img[src=x]').length]")
        .await;
    assert_eq!(executed, json!(["undefined", 0]), "the hostile name ran");
    assert_eq!(browser.eval("window.__csp").await, json!([]));

    // The API reference: every path, and one call through "Try it out".
    browser.navigate(&server.url("/docs")).await;
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
    assert_eq!(url, server.url("/v1/models"));
    let violations = browser.eval("window.__csp").await;
    assert_eq!(violations, json!([]), "CSP violations on /docs");
    let shot = browser.screenshot().await;
    std::fs::write(artifacts().join("docs.png"), &shot).expect("write screenshot");

    browser.close().await;
    server.stop().await;
    println!(
        "ui: browser test passed in {:.1?}; screenshots in {}",
        started.elapsed(),
        artifacts().display()
    );
}
