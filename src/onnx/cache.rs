//! The optimized graph on disk between starts (`[onnxruntime] cache_dir`).
//!
//! ONNX Runtime writes the graph it is about to run (folded, fused, and at
//! level `all` laid out in the CPU's blocked NCHWc format with the weights
//! already reordered) to `<cache_dir>/<model>-<key>.onnx`. A later start
//! with the same key loads that file with optimization off and skips the
//! fold, the graph build and the optimizer.
//!
//! The key covers everything the optimized graph depends on: the weights'
//! bytes, the graph code, the model's shape and preprocessing, the ONNX
//! Runtime build, the optimization level and the CPU's vector features
//! (level `all` picks its block size from them). A changed input is a
//! different file, never a stale graph.
//!
//! Files are written to a temporary name, flushed, then renamed into place,
//! so two replicas (or two containers on one volume) writing the same key
//! never leave a torn file. Anything that goes wrong with the cache is a
//! warning: the model is built as without it.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use twox_hash::XxHash3_128;

use crate::config::GraphOptimization;
use crate::model::{ArchSpec, PretrainedCfg};
use crate::weights::Checkpoint;

/// The code that shapes the graph: editing it changes every key, so a
/// cache written by another build of the graph is never loaded.
const GRAPH_CODE: [&str; 2] = [include_str!("graph.rs"), include_str!("params.rs")];

/// Where the weights came from, reduced to a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightsDigest(u128);

impl WeightsDigest {
    /// xxh3-128 of every tensor's name, dtype, shape and bytes, in key order.
    /// Runs at memory speed (a 350 MB checkpoint in a fraction of a second):
    /// a key that did not cover the values would serve stale weights.
    pub fn checkpoint(checkpoint: &Checkpoint) -> Self {
        let mut hasher = XxHash3_128::new();
        for (name, tensor) in checkpoint {
            write_field(&mut hasher, name.as_bytes());
            write_field(
                &mut hasher,
                format!("{:?}{:?}", tensor.dtype, tensor.shape).as_bytes(),
            );
            // A clone, dropped at once: dropping gives the mapped pages back
            // (see `TensorBytes`), so hashing does not hold the whole file
            // resident on top of what the graph build will copy.
            let bytes = tensor.data.clone();
            write_field(&mut hasher, &bytes);
        }
        Self(hasher.finish_128())
    }

    /// Seeded random weights (`weights = "random"`).
    pub fn random(seed: u64) -> Self {
        let mut hasher = XxHash3_128::new();
        write_field(&mut hasher, b"random");
        write_field(&mut hasher, &seed.to_le_bytes());
        Self(hasher.finish_128())
    }
}

/// Writes `bytes` with its length first, so fields cannot run into each other.
fn write_field(hasher: &mut XxHash3_128, bytes: &[u8]) {
    hasher.write(&(bytes.len() as u64).to_le_bytes());
    hasher.write(bytes);
}

/// Everything an optimized graph depends on.
#[derive(Debug, Clone)]
pub struct KeyParts<'a> {
    pub weights: WeightsDigest,
    pub arch: ArchSpec,
    pub cfg: &'a PretrainedCfg,
    pub optimization: GraphOptimization,
    /// ONNX Runtime's build string (version, commit, flags).
    pub runtime: &'a str,
    /// [`cpu_features`].
    pub cpu: &'a str,
}

impl KeyParts<'_> {
    /// 32 hex digits.
    pub fn key(&self) -> String {
        let mut hasher = XxHash3_128::new();
        write_field(&mut hasher, &self.weights.0.to_le_bytes());
        for code in GRAPH_CODE {
            write_field(&mut hasher, code.as_bytes());
        }
        let shape = format!("{:?}|{:?}|{:?}", self.arch, self.cfg, self.optimization);
        write_field(&mut hasher, shape.as_bytes());
        write_field(&mut hasher, self.runtime.as_bytes());
        write_field(&mut hasher, self.cpu.as_bytes());
        format!("{:032x}", hasher.finish_128())
    }
}

/// The CPU's architecture and the vector features ONNX Runtime's kernels
/// and layout choose by: a cache copied to another kind of machine is
/// rebuilt, not run with the wrong block size.
pub fn cpu_features() -> String {
    let mut found: Vec<&str> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($feature:tt),*) => {
                $(if std::arch::is_x86_feature_detected!($feature) { found.push($feature); })*
            };
        }
        probe!(
            "sse4.1",
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512dq",
            "avx512vl",
            "avx512vnni",
            "avx512bf16",
            "avx512fp16",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($feature:tt),*) => {
                $(if std::arch::is_aarch64_feature_detected!($feature) { found.push($feature); })*
            };
        }
        probe!("neon", "dotprod", "i8mm", "bf16", "fp16", "sve", "sve2");
    }
    format!("{}:{}", std::env::consts::ARCH, found.join(","))
}

/// One model's place in the cache directory.
#[derive(Debug, Clone)]
pub struct GraphCache {
    dir: PathBuf,
    /// The model's name as used in file names.
    model: String,
    file: PathBuf,
}

/// Age past which a temporary file is an abandoned write (a killed
/// process); writing even the largest graph takes seconds.
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

impl GraphCache {
    /// `<dir>/<model>-<key>.onnx`, the model's name made safe for a file name.
    pub fn new(dir: &Path, model: &str, key: &str) -> Self {
        let model: String = model
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
                _ => '_',
            })
            .collect();
        Self {
            dir: dir.to_owned(),
            file: dir.join(format!("{model}-{key}.onnx")),
            model,
        }
    }

    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The cached graph, if one is there.
    pub fn cached(&self) -> Option<&Path> {
        self.file.is_file().then_some(self.file.as_path())
    }

    /// Removes a cached graph that could not be used, so the next start
    /// does not trip on it again; the caller then builds as without a cache.
    pub fn discard(&self, why: &str) {
        tracing::warn!(
            path = %self.file.display(),
            why,
            "onnxruntime graph cache unusable: deleting it and building the graph"
        );
        if let Err(error) = fs::remove_file(&self.file) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.file.display(), %error, "cannot delete the cache file");
            }
        }
    }

    /// A new, empty temporary file beside the cache file for ONNX Runtime to
    /// write the optimized graph into, or `None` (with a warning) when the
    /// directory cannot be written: start-up then goes on uncached.
    pub fn reserve(&self) -> Option<PendingGraph> {
        let temp = self.dir.join(format!(
            ".{}.{}.tmp",
            self.file
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            uuid::Uuid::new_v4().simple()
        ));
        self.remove_abandoned();
        let created = fs::create_dir_all(&self.dir)
            .and_then(|()| OpenOptions::new().write(true).create_new(true).open(&temp));
        match created {
            Ok(_) => Some(PendingGraph {
                temp,
                target: self.file.clone(),
            }),
            Err(error) => {
                tracing::warn!(
                    dir = %self.dir.display(),
                    %error,
                    "onnxruntime graph cache not writable: building without saving the graph"
                );
                None
            }
        }
    }

    /// Deletes this model's temporary files that a killed process left
    /// behind, each as large as a graph; best effort.
    fn remove_abandoned(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = format!(".{}-", self.model);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let abandoned = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > ABANDONED_AFTER);
            if name.starts_with(&prefix) && name.ends_with(".tmp") && abandoned {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// A graph being written under a temporary name; removed on drop unless
/// [`commit`](Self::commit)ted.
#[derive(Debug)]
pub struct PendingGraph {
    temp: PathBuf,
    target: PathBuf,
}

impl PendingGraph {
    /// Where ONNX Runtime writes.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the file and renames it into place. Another replica renaming
    /// the same key first is fine: both wrote the same graph, whole.
    pub fn commit(self) -> std::io::Result<u64> {
        let file = File::open(&self.temp)?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        if size == 0 {
            return Err(std::io::Error::other("ONNX Runtime wrote an empty file"));
        }
        fs::rename(&self.temp, &self.target)?;
        Ok(size)
    }
}

impl Drop for PendingGraph {
    fn drop(&mut self) {
        // After a commit the name is gone, and this finds nothing.
        let _ = fs::remove_file(&self.temp);
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
