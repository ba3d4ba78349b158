//! `seresnext-serve classify`: the real binary on fixture photos.

use crate::support;

use std::path::Path;
use std::process::Command;

use support::{fixture_path, manifest};

fn classify(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
        .arg("classify")
        .args(args)
        .output()
        .expect("run seresnext-serve classify")
}

/// `classify` of `gluon_seresnext50_32x4d` on the CPU with `weights`.
fn classify_50_on_cpu(weights: &Path, files: &[&Path]) -> std::process::Output {
    let mut args = vec![
        "--model",
        "gluon_seresnext50_32x4d",
        "--weights",
        weights.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    args.extend(files.iter().map(|file| file.to_str().unwrap()));
    classify(&args)
}

#[test]
fn prints_one_json_line_per_image_with_timm_top1_and_labels() {
    let manifest = manifest();
    let fixture = &manifest.models["gluon_seresnext50_32x4d"];
    let weights = fixture_path(&fixture.legacy);
    let photos: Vec<String> = manifest
        .photos
        .iter()
        .map(|p| fixture_path(&p.file).display().to_string())
        .collect();
    let mut args = vec![
        "--model",
        "seresnext50_32x4d.gluon_in1k",
        "--weights",
        weights.to_str().unwrap(),
        "--device",
        "cpu",
        "--top-k",
        "3",
    ];
    args.extend(photos.iter().map(String::as_str));
    let output = classify(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), photos.len());
    for ((line, photo), top1) in lines.iter().zip(&photos).zip(&fixture.top1) {
        assert_eq!(line["image"], photo.as_str());
        let top = line["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0]["class_id"], *top1, "{photo}");
        let label = seresnext_serve::labels::label(*top1).unwrap();
        assert_eq!(top[0]["label"], label);
        let p0 = top[0]["probability"].as_f64().unwrap();
        let p1 = top[1]["probability"].as_f64().unwrap();
        assert!(p0 >= p1 && p0 <= 1.0);
    }
}

#[test]
fn a_bad_file_gets_an_error_line_and_the_rest_still_run() {
    let manifest = manifest();
    let weights = fixture_path(&manifest.models["gluon_seresnext50_32x4d"].safetensors);
    let dir = std::env::temp_dir().join(format!("classify-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_an_image = dir.join("notes.txt");
    std::fs::write(&not_an_image, "just text").unwrap();
    let good = fixture_path(&manifest.photos[0].file);
    let missing = dir.join("missing.jpg");
    let output = classify_50_on_cpu(&weights, &[&not_an_image, &good, &missing]);
    assert_eq!(output.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0]["error"].as_str().unwrap().contains("unsupported"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["top_k"].as_array().unwrap().len(), 5);
    assert!(lines[2]["error"].is_string());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("notes.txt") && stderr.contains("missing.jpg"),
        "{stderr}"
    );
}

#[test]
fn a_checkpoint_for_another_variant_names_the_mismatched_tensors() {
    let manifest = manifest();
    let weights = fixture_path(&manifest.models["gluon_seresnext101_32x4d"].safetensors);
    let photo = fixture_path(&manifest.photos[0].file);
    let output = classify_50_on_cpu(&weights, &[&photo]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unexpected") && stderr.contains("layer3.6."),
        "{stderr}"
    );
}

#[test]
fn embed_writes_each_images_unit_embedding_matching_timm() {
    let weights = fixture_path("models/gluon_seresnext50_32x4d.safetensors");
    let expected = crate::support::embeddings::timm_features("gluon_seresnext50_32x4d");
    let names = ["camera_gray.png", "chelsea.jpg"];
    let photos: Vec<_> = names
        .iter()
        .map(|name| fixture_path(&format!("photos/{name}")))
        .collect();
    let indices: Vec<usize> = names
        .iter()
        .map(|name| {
            manifest()
                .photos
                .iter()
                .position(|photo| photo.file.ends_with(name))
                .unwrap()
        })
        .collect();
    let weights_arg = weights.to_str().unwrap();
    let mut args = vec![
        "--model",
        "gluon_seresnext50_32x4d",
        "--weights",
        weights_arg,
    ];
    args.extend(["--device", "cpu", "--engine", "onnxruntime", "--embed"]);
    args.extend(photos.iter().map(|photo| photo.to_str().unwrap()));
    let output = classify(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for ((line, index), name) in lines.iter().zip(indices).zip(names) {
        let embedding: Vec<f32> = line["embedding"]
            .as_array()
            .expect("an embedding")
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        use crate::support::embeddings::{cosine, min_cosine, norm};
        assert!((norm(&embedding) - 1.0).abs() < 1e-5, "{name}");
        let similarity = cosine(&embedding, &expected[index]);
        assert!(similarity >= min_cosine(name), "{name}: {similarity}");
        assert!(line["top_k"].is_array(), "{name}: top_k still written");
    }
}
