//! `seresnext-serve classify`: local files in, one JSON line per image out,
//! with no server — for users and for debugging the pipeline.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::engines::EngineChoice;
use crate::infer::{l2_normalize, top_k, ClassScore};
use crate::model::{ImageInput, ModelId, Outputs};
use crate::preprocess::{self, DecodeLimits, PreparedImage};

/// What `classify` needs to run.
#[derive(Debug, Clone)]
pub struct ClassifyArgs {
    pub model: ModelId,
    pub weights: PathBuf,
    pub top_k: usize,
    pub images: Vec<PathBuf>,
    pub engine: EngineChoice,
    /// Also write each image's embedding (L2-normalized, as `:embed`
    /// answers by default), from the same forward pass.
    pub embed: bool,
}

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<Vec<ClassScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Classifies every image, writing one JSON line each to `out`. A bad image
/// gets an `error` line and the rest go on; returns how many failed.
pub fn run(args: &ClassifyArgs, out: &mut dyn Write) -> anyhow::Result<usize> {
    crate::weights::verify_release_hash(&args.weights)?;
    let classifier = args
        .engine
        .load(args.model, Some(&args.weights), 0)
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", args.weights.display()))?;
    let spec = args.model.pretrained_cfg().transform_spec();
    let limits = DecodeLimits::default();
    let mut failures = 0;
    for path in &args.images {
        let shown = path.display().to_string();
        let prepared: anyhow::Result<PreparedImage> = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(preprocess::prepare(&bytes, &spec, &limits)?));
        let outputs = Outputs {
            features: args.embed,
        };
        let result = prepared.and_then(|image| {
            let forward = classifier.forward(&[ImageInput::Crop(&image.rgb)], outputs)?;
            let scores = top_k(&forward.probabilities[0], args.top_k, args.model);
            let embedding = forward.features.and_then(|rows| rows.into_iter().next());
            Ok((scores, embedding))
        });
        let line = match result {
            Ok((scores, mut embedding)) => {
                if let Some(values) = embedding.as_mut() {
                    l2_normalize(values);
                }
                Line {
                    image: &shown,
                    top_k: Some(scores),
                    embedding,
                    error: None,
                }
            }
            Err(error) => {
                failures += 1;
                eprintln!("error: {shown}: {error:#}");
                Line {
                    image: &shown,
                    top_k: None,
                    embedding: None,
                    error: Some(format!("{error:#}")),
                }
            }
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    Ok(failures)
}
