//! `examples/client.py`, the README's Python client, against a real server.

use crate::support;

use support::server::{photos, start_server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_client_prints_each_images_top_class() {
    let server = start_server(|_| {}).await;
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/client.py");
    let photos = photos();
    let paths: Vec<String> = ["chelsea.jpg", "coffee.jpg"]
        .iter()
        .map(|name| {
            support::fixture_path(&format!("photos/{name}"))
                .display()
                .to_string()
        })
        .collect();
    let base_url = server.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(&base_url)
            .args(&paths)
            .output()
            .expect("run examples/client.py")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, name) in lines.iter().zip(["chelsea.jpg", "coffee.jpg"]) {
        let class = photos.iter().find(|(n, _, _)| n == name).unwrap().2;
        let first = line.split(": ").nth(1).unwrap_or_default();
        assert!(
            first.starts_with(seresnext_serve::labels::label(class).unwrap()),
            "{name}: {line}"
        );
        assert!(first.contains(&format!("id {class})")), "{line}");
    }
    server.stop().await;
}
