//! A minimal Rust client for seresnext-serve: POST each image to the V1
//! predict route and print its top classes.
//!
//! ```sh
//! cargo run --example client -- http://localhost:8080 cat.jpg dog.png
//! ```

use serde::Deserialize;

#[derive(Deserialize)]
struct Answer {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    top_k: Vec<Class>,
}

#[derive(Deserialize)]
struct Class {
    class_id: usize,
    label: String,
    probability: f32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base_url = args
        .next()
        .ok_or("usage: client BASE_URL IMAGE...")?
        .trim_end_matches('/')
        .to_string();
    let client = reqwest::Client::new();
    for path in args {
        let response = client
            .post(format!(
                "{base_url}/v1/models/gluon_seresnext50_32x4d:predict?top_k=3"
            ))
            .header("content-type", "application/octet-stream")
            .body(std::fs::read(&path)?)
            .send()
            .await?;
        if !response.status().is_success() {
            // Errors are JSON: {"error": ..., "error_type": ...}.
            eprintln!("{path}: {} {}", response.status(), response.text().await?);
            continue;
        }
        let answer: Answer = response.json().await?;
        let classes: Vec<String> = answer.predictions[0]
            .top_k
            .iter()
            .map(|c| format!("{} ({:.3}, id {})", c.label, c.probability, c.class_id))
            .collect();
        println!("{path}: {}", classes.join(", "));
    }
    Ok(())
}
