//! The registry records what the service reports, under the documented names.

use super::*;

/// Every family and the syntax of each line are checked on a real
/// server's `/metrics` by the integration tests (`api::metrics`), and by
/// `promtool check metrics` (`prometheus_scrape`).
#[test]
fn render_shows_the_recorded_values() {
    let metrics = Metrics::new().expect("metrics");
    let model = "gluon_seresnext50_32x4d";
    metrics.register_model(model);
    metrics.count_request(model, Task::Predict, 200);
    metrics.count_request(model, Task::Predict, 503);
    metrics.count_request(model, Task::Embed, 200);
    metrics
        .request_duration
        .with_label_values(&[model, Task::Embed.as_label()])
        .observe(0.004);
    for histogram in [
        &metrics.preprocess_duration,
        &metrics.queue_duration,
        &metrics.inference_duration,
    ] {
        histogram.with_label_values(&[model]).observe(0.004);
    }
    metrics.batch_size.with_label_values(&[model]).observe(8.0);
    metrics.batch_size.with_label_values(&[model]).observe(16.0);
    metrics.queue_depth.with_label_values(&[model]).set(5);
    metrics.images.with_label_values(&[model]).inc_by(24);
    metrics.reject(model, RejectionReason::QueueFull);
    metrics
        .model_load_seconds
        .with_label_values(&[model, "read"])
        .set(1.5);
    metrics
        .model_warmup_seconds
        .with_label_values(&[model])
        .set(0.25);
    metrics.model_ready.with_label_values(&[model]).set(1);
    {
        let _guard = metrics.track_in_flight(model);
        let inside = metrics.in_flight_requests.with_label_values(&[model]).get();
        assert_eq!(inside, 1);
    }
    assert_eq!(
        metrics.in_flight_requests.with_label_values(&[model]).get(),
        0
    );

    let text = metrics.render();
    assert!(text.contains(
        r#"seresnext_requests_total{model="gluon_seresnext50_32x4d",status="503",task="predict"} 1"#
    ));
    assert!(text.contains(
        r#"seresnext_requests_total{model="gluon_seresnext50_32x4d",status="200",task="embed"} 1"#
    ));
    assert!(text.contains(
        r#"seresnext_request_duration_seconds_count{model="gluon_seresnext50_32x4d",task="embed"} 1"#
    ));
    assert!(
        text.contains(
            r#"seresnext_request_duration_seconds_count{model="gluon_seresnext50_32x4d",task="predict"} 0"#
        ),
        "pre-created at zero for every task"
    );
    assert!(text.contains(r#"seresnext_batch_size_sum{model="gluon_seresnext50_32x4d"} 24"#));
    assert!(text.contains(r#"seresnext_batch_size_count{model="gluon_seresnext50_32x4d"} 2"#));
    assert!(
        text.contains(r#"reason="not_ready"} 0"#),
        "pre-created at zero"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(text.contains(&format!("seresnext_build_info{{version=\"{version}\"}} 1")));
}

#[test]
fn registries_are_independent() {
    let first = Metrics::new().expect("first");
    let second = Metrics::new().expect("second");
    first.images.with_label_values(&["a"]).inc();
    assert_eq!(second.images.with_label_values(&["a"]).get(), 0);
    assert!(CONTENT_TYPE.starts_with("text/plain"));
}
