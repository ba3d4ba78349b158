//! The model list, model metadata (by id and by alias) and the health
//! probes with their KServe V2 aliases.

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::support::http::{get, post_raw};
use crate::support::server::{photo, shared_server, MODEL};

#[tokio::test]
async fn models_list_and_metadata() {
    let server = shared_server();
    let client = Client::new();
    let list = get(&client, &server.url("/v1/models")).await;
    assert_eq!(list.status, StatusCode::OK);
    let models = list.body["models"].as_array().expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"], MODEL);
    assert_eq!(models[0]["ready"], true);

    for name in [
        MODEL,
        "seresnext50_32x4d.gluon_in1k",
        "timm%2Fseresnext50_32x4d.gluon_in1k",
    ] {
        let answer = get(&client, &server.url(&format!("/v1/models/{name}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        let m = &answer.body;
        assert_eq!(m["name"], MODEL);
        assert_eq!(m["ready"], true);
        assert_eq!(m["aliases"][0], "seresnext50_32x4d.gluon_in1k");
        assert_eq!(m["architecture"]["name"], "seresnext50_32x4d");
        assert_eq!(m["architecture"]["blocks_per_stage"], json!([3, 4, 6, 3]));
        assert_eq!(m["architecture"]["cardinality"], 32);
        assert_eq!(m["input"]["shape"], json!([3, 224, 224]));
        assert_eq!(m["input"]["crop_pct"], 0.875);
        assert_eq!(m["input"]["crop_mode"], "center");
        assert_eq!(m["input"]["interpolation"], "bicubic");
        assert_eq!(m["input"]["mean"].as_array().map(Vec::len), Some(3));
        assert_eq!(m["input"]["std"].as_array().map(Vec::len), Some(3));
        assert_eq!(m["num_classes"], 1000);
        assert_eq!(m["device"], "cpu");
        assert_eq!(m["requested_device"], "cpu");
        assert_eq!(m["dtype"], "fp32");
        assert_eq!(m["replicas"], 1);
        assert_eq!(m["ready_replicas"], 1);
        assert_eq!(
            m["batching"],
            json!({"max_batch_size": 4, "max_batch_delay_ms": 5, "queue_capacity": 64})
        );
        assert_eq!(m["random_weights"], false);
    }
    let via_alias = post_raw(
        &client,
        &server.url("/v1/models/seresnext50_32x4d.gluon_in1k:predict"),
        photo("chelsea.jpg"),
        None,
    )
    .await;
    assert_eq!(via_alias.status, StatusCode::OK);
    assert_eq!(via_alias.body["model_name"], MODEL);
}

#[tokio::test]
async fn health_probes_and_their_v2_aliases() {
    let server = shared_server();
    let client = Client::new();
    for path in ["/healthz", "/v2/health/live"] {
        let answer = get(&client, &server.url(path)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(
            answer.body,
            json!({"status": "alive", "live": true}),
            "{path}"
        );
    }
    for path in ["/readyz", "/v2/health/ready"] {
        let answer = get(&client, &server.url(path)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.body, json!({"status": "ready", "ready": true}));
    }
    let head = client
        .head(server.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(head.status(), StatusCode::OK);
}
