//! Answers that depend on the server's state rather than the request: a
//! passed deadline (504), a full queue (503 + `Retry-After`), draining, and
//! random weights.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Client, StatusCode};

use crate::support::http::{assert_error, assert_serves, get, metrics_text, post_raw, send};
use crate::support::server::{photo, shared_server, start_server, MODEL, PREDICT};
use seresnext_serve::config::WeightsSource;

#[tokio::test]
async fn a_passed_deadline_is_504() {
    let server = shared_server();
    let client = Client::new();
    let request = client
        .post(server.url(PREDICT))
        .header("x-request-timeout-ms", "1")
        .body(photo("astronaut_progressive.jpg"));
    let answer = send(request).await;
    assert_error(&answer, 504, "deadline_exceeded");
    assert_serves(&client, &server.base_url).await;
}

/// Far more requests at once than the queue holds: the excess is refused at
/// once with 503 `queue_full` + `Retry-After`, everything else is served,
/// and each 503 is counted once, as a rejection and as a request.
/// (Merges the former `api::a_full_queue_is_503_with_retry_after` and
/// `hardening::overload_is_shed_at_once_with_retry_after_and_counted`.)
#[tokio::test]
async fn overload_is_shed_at_once_with_503_retry_after_and_counted() {
    let server = start_server(|config| {
        config.server.max_images_per_request = 4;
        config.models[0].max_batch_size = 4;
        config.models[0].queue_capacity = 8;
        config.models[0].max_batch_delay_ms = 2;
    })
    .await;
    let image = {
        let decoded = image::load_from_memory(&photo("chelsea.jpg")).expect("decode");
        let mut out = std::io::Cursor::new(Vec::new());
        decoded
            .thumbnail(64, 64)
            .write_to(&mut out, image::ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    };
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let request = server
                .client
                .post(server.url(PREDICT))
                .header(CONTENT_TYPE, "image/png")
                .body(image.clone());
            tokio::spawn(send(request))
        })
        .collect();
    let (mut ok, mut shed) = (0u64, 0u64);
    for task in tasks {
        let answer = task.await.expect("request task");
        match answer.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                shed += 1;
                assert_error(&answer, 503, "queue_full");
                let retry_after: u64 = answer.headers["retry-after"]
                    .to_str()
                    .expect("ascii")
                    .parse()
                    .expect("whole seconds");
                assert!(retry_after >= 1);
            }
            other => panic!(
                "only 200 and 503 are acceptable, got {other}: {}",
                answer.body
            ),
        }
    }
    eprintln!("overload: 64 concurrent requests, queue_capacity 8: {ok} x 200, {shed} x 503");
    assert!(shed > 0, "the queue never filled");
    assert!(ok > 0, "nothing was served");
    assert_serves(&server.client, &server.base_url).await;
    let metrics = metrics_text(&server.client, &server.base_url).await;
    let count = |series: String| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("no {series} in the metrics"))
            .trim()
            .parse()
            .expect("a count")
    };
    assert_eq!(
        count(format!(
            r#"seresnext_rejections_total{{model="{MODEL}",reason="queue_full"}} "#
        )),
        shed,
        "every 503 is counted as queue_full, once"
    );
    assert_eq!(
        count(format!(
            r#"seresnext_requests_total{{model="{MODEL}",status="503",task="predict"}} "#
        )),
        shed,
        "every 503 is counted as a request"
    );
    server.stop().await;
}

#[tokio::test]
async fn draining_turns_readiness_503_while_requests_are_still_served() {
    let server = start_server(|config| config.server.shutdown_grace_ms = 3_000).await;
    let client = server.client.clone();
    server.server.shutdown();
    // Readiness flips at once; liveness and predictions carry on through the grace period.
    let mut ready = get(&client, &server.url("/readyz")).await;
    for _ in 0..50 {
        if ready.status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        ready = get(&client, &server.url("/readyz")).await;
    }
    assert_error(&ready, 503, "shutting_down");
    assert_eq!(ready.body["status"], "draining");
    assert_eq!(ready.body["ready"], false);
    assert_eq!(ready.headers["retry-after"], "1");
    let v2 = get(&client, &server.url("/v2/health/ready")).await;
    assert_eq!(v2.status, StatusCode::SERVICE_UNAVAILABLE);
    let metadata = get(&client, &server.url(&format!("/v1/models/{MODEL}"))).await;
    assert_eq!(metadata.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(metadata.body["ready"], false);
    assert_eq!(
        get(&client, &server.url("/healthz")).await.status,
        StatusCode::OK
    );
    assert_serves(&client, &server.base_url).await;
    server.server.wait().await.expect("clean shutdown");
}

/// (Merges the former `serving::random_weights_are_served_only_when_asked_and_responses_say_so`;
/// that a server with real weights leaves the flag out is checked by
/// `predict_bodies::every_raw_format_classifies_like_the_jpeg`.)
#[tokio::test]
async fn random_weights_are_flagged_in_body_header_and_metadata() {
    let server = start_server(|config| {
        config.models[0].weights = WeightsSource::Random;
    })
    .await;
    let answer = post_raw(
        &server.client,
        &server.url(PREDICT),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["random_weights"], true);
    assert_eq!(answer.headers["x-random-weights"], "true");
    let metadata = get(&server.client, &server.url(&format!("/v1/models/{MODEL}"))).await;
    assert_eq!(metadata.body["random_weights"], true);
    server.stop().await;
}
