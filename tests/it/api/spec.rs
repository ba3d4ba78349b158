//! `openapi.yaml` against the routes actually served: every documented
//! operation is routed and answers, and `http::ROUTES` lists exactly those.

use std::collections::BTreeSet;

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::support::b64;
use crate::support::server::{photo, shared_server, MODEL};
use seresnext_serve::http::ROUTES;

/// `(METHOD, path)` of every operation in openapi.yaml.
fn documented_operations() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("read openapi.yaml");
    let spec: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("openapi.yaml is YAML");
    assert!(spec["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let paths = spec["paths"].as_mapping().expect("paths");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut operations = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path is a string");
        let item = item.as_mapping().expect("path item");
        for (key, _) in item {
            let key = key.as_str().expect("key");
            if methods.contains(&key) {
                operations.insert((key.to_uppercase(), path.to_owned()));
            }
        }
    }
    operations
}

#[tokio::test]
async fn openapi_documents_exactly_the_served_routes() {
    let documented = documented_operations();
    let routed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|route| (route.method.to_owned(), route.path.to_owned()))
        .collect();
    assert_eq!(documented, routed, "openapi.yaml and http::ROUTES differ");

    let server = shared_server();
    let client = Client::new();
    for (method, path) in documented {
        let url = server.url(&path.replace("{model}", MODEL));
        let request = match method.as_str() {
            "GET" => client.get(&url),
            // KServe V2 inference takes its JSON, here with a base64 image.
            "POST" if path.ends_with("/infer") => client.post(&url).json(&json!({
                "inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1],
                            "data": [b64(&photo("chelsea.jpg"))]}],
            })),
            "POST" => client.post(&url).body(photo("chelsea.jpg")),
            other => panic!("no probe for {other}"),
        };
        let status = request.send().await.expect("send").status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but answers {status}"
        );
        assert!(status.is_success(), "{method} {path}: {status}");
    }
}
