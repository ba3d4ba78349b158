//! Which engine runs a model's network, and the settings of ONNX Runtime
//! (`[onnxruntime]`), the second engine.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The runtime behind a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// libtorch eager (tch): CPU and CUDA, every precision.
    #[default]
    Libtorch,
    /// ONNX Runtime's CPU execution provider, on a graph built from the same
    /// checkpoint: fp32, CPU only.
    Onnxruntime,
}

impl EngineKind {
    /// The name in configs, flags and API responses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Libtorch => "libtorch",
            Self::Onnxruntime => "onnxruntime",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for EngineKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "libtorch" => Ok(Self::Libtorch),
            "onnxruntime" => Ok(Self::Onnxruntime),
            other => Err(format!(
                "invalid engine {other:?}: expected libtorch or onnxruntime"
            )),
        }
    }
}

/// How much ONNX Runtime rewrites the graph before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphOptimization {
    /// None: the graph runs node by node as built.
    Disable,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Plus fusions (Conv+Add+Relu and the like).
    Extended,
    /// Plus layout optimizations (NCHWc blocked convolutions on x86).
    #[default]
    All,
}

impl FromStr for GraphOptimization {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "disable" => Ok(Self::Disable),
            "basic" => Ok(Self::Basic),
            "extended" => Ok(Self::Extended),
            "all" => Ok(Self::All),
            other => Err(format!(
                "invalid optimization level {other:?}: expected disable, basic, extended or all"
            )),
        }
    }
}

/// `[onnxruntime]`: process-wide, since ONNX Runtime has one environment per
/// process. Only read when a model sets `engine = "onnxruntime"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnnxRuntimeConfig {
    /// libonnxruntime to open; empty = search (`ORT_DYLIB_PATH`, beside the
    /// executable, the onnxruntime wheel found at build time, the system).
    pub library: PathBuf,
    /// Intra-op threads per session; 0 = `server.intra_op_threads`, and when
    /// that is 0 too, ONNX Runtime's choice (one per physical core).
    pub intra_op_threads: usize,
    pub optimization: GraphOptimization,
    /// Let idle intra-op threads spin before sleeping. Spinning shaves a
    /// little latency but burns the cores that decoding needs.
    pub spin: bool,
    /// Keep ONNX Runtime's CPU memory arena (faster allocation, memory held).
    pub memory_arena: bool,
    /// Where optimized graphs are kept between starts (`<model>-<key>.onnx`,
    /// the key covering the weights, graph, ONNX Runtime build, optimization
    /// level and CPU features); empty = no cache. A start with a cached graph
    /// skips the fold, the graph build and ONNX Runtime's optimizer.
    pub cache_dir: PathBuf,
}

impl Default for OnnxRuntimeConfig {
    fn default() -> Self {
        Self {
            library: PathBuf::new(),
            intra_op_threads: 0,
            optimization: GraphOptimization::All,
            spin: false,
            memory_arena: true,
            cache_dir: PathBuf::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip() {
        for kind in [EngineKind::Libtorch, EngineKind::Onnxruntime] {
            assert_eq!(kind.name().parse::<EngineKind>(), Ok(kind));
        }
        let message = "tensorrt".parse::<EngineKind>().unwrap_err();
        assert!(message.contains("libtorch or onnxruntime"), "{message}");
    }
}
