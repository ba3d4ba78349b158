//! Making the session: from the checkpoint through the graph builder and
//! ONNX Runtime's optimizer, or from a cached optimized graph
//! ([`super::cache`]).

use std::time::{Duration, Instant};

use ort::ep;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;

use super::cache::{cpu_features, GraphCache, KeyParts, WeightsDigest};
use super::params::ParamSource;
use super::{engine_error, graph, SessionSettings};
use crate::config::GraphOptimization;
use crate::model::{ModelError, ModelId};
use crate::weights::Checkpoint;

/// The parameters a session is built from. Cloning is cheap (the tensors
/// share the mapped file), which lets a failed cache write be retried.
#[derive(Clone)]
pub enum Weights {
    Checkpoint(Checkpoint),
    /// Seeded random weights (testing only).
    Random(u64),
}

impl Weights {
    fn digest(&self) -> WeightsDigest {
        match self {
            Self::Checkpoint(checkpoint) => WeightsDigest::checkpoint(checkpoint),
            Self::Random(seed) => WeightsDigest::random(*seed),
        }
    }

    fn into_params(self) -> ParamSource {
        match self {
            Self::Checkpoint(checkpoint) => ParamSource::checkpoint(checkpoint),
            Self::Random(seed) => ParamSource::random(seed),
        }
    }
}

/// What the graph cache did for this start (logged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// No `cache_dir`.
    Off,
    /// Loaded the cached optimized graph.
    Hit,
    /// Built, and saved the optimized graph for the next start.
    Written,
    /// Built; the graph could not be saved (a warning says why).
    NotWritten,
}

impl CacheUse {
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Hit => "hit",
            Self::Written => "written",
            Self::NotWritten => "not written",
        }
    }
}

/// A session and where its start-up time went.
pub struct Built {
    pub session: Session,
    /// Graph build with BatchNorm folded (zero on a cache hit).
    pub fold: Duration,
    /// Session creation: optimization and kernel set-up, or loading the
    /// cached graph (and, with a cache, hashing the weights for its key).
    pub build: Duration,
    pub cache: CacheUse,
}

/// Builds `id`'s session from `weights`, through the graph cache when
/// `settings.cache_dir` is set.
pub fn create(
    environment: &ort::environment::Environment,
    settings: &SessionSettings,
    id: crate::model::ModelId,
    weights: Weights,
) -> Result<Built, ModelError> {
    let Some(dir) = &settings.cache_dir else {
        return build(environment, settings, id, weights, None);
    };
    let hashing = Instant::now();
    let (cfg, cpu) = (id.pretrained_cfg(), cpu_features());
    let key = KeyParts {
        weights: weights.digest(),
        arch: id.arch(),
        cfg: &cfg,
        optimization: settings.optimization,
        runtime: ort::info(),
        cpu: &cpu,
    }
    .key();
    let cache = GraphCache::new(dir, id.name(), &key);
    let hashed = hashing.elapsed();
    if let Some(path) = cache.cached() {
        let loading = Instant::now();
        let loaded = session_builder(environment, settings, GraphOptimization::Disable)
            .and_then(|mut builder| builder.commit_from_file(path))
            .map_err(|error| error.to_string())
            .and_then(|session| check_signature(&session).map(|()| session));
        match loaded {
            Ok(session) => {
                return Ok(Built {
                    session,
                    fold: Duration::ZERO,
                    build: hashed + loading.elapsed(),
                    cache: CacheUse::Hit,
                })
            }
            Err(why) => cache.discard(&why),
        }
    }
    let Some(pending) = cache.reserve() else {
        return build(environment, settings, id, weights, None).map(|built| Built {
            cache: CacheUse::NotWritten,
            ..built
        });
    };
    // The clone is kept only for a retry: saving can fail (a full disk) and
    // that fails the whole session creation in ONNX Runtime.
    let mut built = match build(
        environment,
        settings,
        id,
        weights.clone(),
        Some(pending.path()),
    ) {
        Ok(built) => built,
        Err(ModelError::Engine(why)) => {
            tracing::warn!(%why, "building with the graph cache failed: building without it");
            drop(pending);
            return build(environment, settings, id, weights, None).map(|built| Built {
                cache: CacheUse::NotWritten,
                ..built
            });
        }
        Err(other) => return Err(other),
    };
    built.build += hashed;
    match pending.commit() {
        Ok(bytes) => {
            tracing::info!(path = %cache.path().display(), bytes, "onnxruntime graph cached");
            built.cache = CacheUse::Written;
        }
        Err(error) => {
            tracing::warn!(path = %cache.path().display(), %error, "cannot save the onnxruntime graph cache");
            built.cache = CacheUse::NotWritten;
        }
    }
    Ok(built)
}

/// Graph build and optimization, the optimized graph written to `save_to`
/// when given.
fn build(
    environment: &ort::environment::Environment,
    settings: &SessionSettings,
    id: ModelId,
    weights: Weights,
    save_to: Option<&std::path::Path>,
) -> Result<Built, ModelError> {
    let started = Instant::now();
    let mut params = weights.into_params();
    let model = graph::build(&mut params, id.arch(), &id.pretrained_cfg()).map_err(engine_error)?;
    let fold = started.elapsed();
    params.finish()?;
    let building = Instant::now();
    let session = session_builder(environment, settings, settings.optimization)
        .and_then(|builder| match save_to {
            Some(path) => Ok(builder.with_optimized_model_path(path)?),
            None => Ok(builder),
        })
        .and_then(|builder| model.into_session(&builder))
        .map_err(engine_error)?;
    Ok(Built {
        session,
        fold,
        build: building.elapsed(),
        cache: CacheUse::Off,
    })
}

/// A cached graph must have the inputs and outputs the engine feeds and
/// fetches by name; a file from elsewhere that parses but differs is refused.
fn check_signature(session: &Session) -> Result<(), String> {
    let inputs: Vec<&str> = session.inputs().iter().map(|input| input.name()).collect();
    let outputs: Vec<&str> = session
        .outputs()
        .iter()
        .map(|output| output.name())
        .collect();
    if inputs == [graph::CROPS, graph::NORMALIZED]
        && outputs == [graph::LOGITS, graph::PROBABILITIES, graph::FEATURES]
    {
        return Ok(());
    }
    Err(format!(
        "the cached graph has inputs {inputs:?} and outputs {outputs:?}"
    ))
}

/// Session options from the settings: threads, spinning, arena, and the
/// optimization `level` (off for a graph that is already optimized).
pub fn session_builder(
    environment: &ort::environment::Environment,
    settings: &SessionSettings,
    level: GraphOptimization,
) -> ort::Result<SessionBuilder> {
    let level = match level {
        GraphOptimization::Disable => GraphOptimizationLevel::Disable,
        GraphOptimization::Basic => GraphOptimizationLevel::Level1,
        GraphOptimization::Extended => GraphOptimizationLevel::Level2,
        GraphOptimization::All => GraphOptimizationLevel::All,
    };
    let mut builder = Session::builder(environment)?
        .with_optimization_level(level)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(settings.spin)?
        .with_execution_providers([ep::CPU::default()
            .with_arena_allocator(settings.memory_arena)
            .build()])?;
    if settings.intra_op_threads > 0 {
        builder = builder.with_intra_threads(settings.intra_op_threads)?;
    }
    Ok(builder)
}
