//! Reads PyTorch / timm checkpoints into plain byte buffers, without libtorch.
//!
//! The model module needs the weights of timm's SE-ResNeXt models as they are
//! published: `model.safetensors` on the Hugging Face Hub, `.pth` zip files
//! written by `torch.save` since torch 1.6, and the legacy (pre-1.6) pickle
//! stream format of the old timm release files. tch's own loader cannot read
//! the legacy files (they hold `OrderedDict` state dicts), so this module parses
//! all three formats itself.
//!
//! Every input is treated as hostile: errors carry the byte offset or the
//! tensor name, nothing panics, and sizes are checked against the input length
//! before anything is allocated.

mod error;
mod keyed;
mod mapped;
mod objects;
mod pickle;
mod release_hash;
mod safetensors;
mod tensor_view;
mod torch_legacy;
mod torch_pickle;
mod torch_zip;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

pub use error::WeightsError;
pub use keyed::{KeyMismatch, KeyedTensors};
use mapped::FileBytes;
pub use mapped::TensorBytes;
pub use release_hash::{expected_sha256_prefix, verify_release_hash, ReleaseHashError};

/// Element type of a tensor, named after torch's dtypes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    /// Bytes taken by one element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    /// torch's name for the dtype, as shown in error messages.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::I32 => "int32",
            DType::I16 => "int16",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::Bool => "bool",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor of the checkpoint as a contiguous row-major buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// `numel() * dtype.size_in_bytes()` bytes, little-endian, row-major.
    /// A contiguous tensor is a slice of the mapped file itself (no copy);
    /// only strided views are gathered into a buffer of their own.
    pub data: TensorBytes,
}

impl RawTensor {
    /// Number of elements (1 for a 0-d tensor, 0 when any dimension is 0).
    pub fn numel(&self) -> usize {
        // Saturating so that a hand-built tensor with absurd dimensions cannot
        // panic here; the loaders only produce shapes whose product fits.
        self.shape
            .iter()
            .fold(1usize, |acc, &d| acc.saturating_mul(d))
    }

    /// The values as `f32`, converting from any floating dtype.
    ///
    /// Integer and bool tensors are refused rather than cast, because a model
    /// asking for them as floats has mixed up two tensors.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>, WeightsError> {
        let expected_len = self.numel().saturating_mul(self.dtype.size_in_bytes());
        if self.data.len() != expected_len {
            return Err(WeightsError::BadBuffer {
                dtype: self.dtype,
                shape: self.shape.clone(),
                len: self.data.len(),
            });
        }
        let bytes = &self.data;
        let values = match self.dtype {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
            other => return Err(WeightsError::NotFloat { dtype: other }),
        };
        Ok(values)
    }
}

/// Tensors by state-dict key (`module.` prefix already removed).
pub type Checkpoint = BTreeMap<String, RawTensor>;

/// A checkpoint read from disk, and how long reading and parsing it took
/// (the `read` phase of start-up).
#[derive(Debug)]
pub struct ReadCheckpoint {
    pub tensors: Checkpoint,
    pub read_time: Duration,
}

/// Reads a checkpoint file of any supported format.
///
/// The file is mapped, not read into a buffer: contiguous tensors stay slices
/// of the page cache until the engine copies them into its own tensors, and
/// each gives its pages back once dropped (see `mapped`).
pub fn load(path: &Path) -> Result<Checkpoint, WeightsError> {
    let io_error = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mapped = FileBytes::map(&file).map_err(io_error)?;
    load_shared(&mapped)
}

/// [`load`], timed.
pub fn read(path: &Path) -> Result<ReadCheckpoint, WeightsError> {
    let started = Instant::now();
    let tensors = load(path)?;
    Ok(ReadCheckpoint {
        tensors,
        read_time: started.elapsed(),
    })
}

/// Reads a checkpoint held in memory; the format is told by its first bytes.
pub fn load_bytes(bytes: &[u8]) -> Result<Checkpoint, WeightsError> {
    load_shared(&FileBytes::copied(bytes))
}

/// Reads a checkpoint from a shared buffer, whose contiguous tensors it
/// slices rather than copies.
fn load_shared(file: &FileBytes) -> Result<Checkpoint, WeightsError> {
    let checkpoint = match sniff(file) {
        Format::TorchZip => torch_zip::load(file)?,
        Format::TorchLegacy => torch_legacy::load(file)?,
        Format::SafeTensors => safetensors::load(file)?,
        Format::Unknown(what) => return Err(WeightsError::Unsupported { offset: 0, what }),
    };
    strip_data_parallel_prefix(checkpoint)
}

/// Most tensor bytes one checkpoint may produce from `input_len` bytes.
///
/// Tensors normally hold about as many bytes as the file; shared storages
/// (tied weights) and stride-0 views can make them larger, and without a cap a
/// few hostile bytes could describe petabytes.
pub(crate) fn output_budget(input_len: usize) -> u64 {
    const SLACK: u64 = 64 << 20;
    (input_len as u64).saturating_mul(4).saturating_add(SLACK)
}

#[derive(Debug, PartialEq)]
enum Format {
    TorchZip,
    TorchLegacy,
    SafeTensors,
    Unknown(String),
}

/// Tells the format by content, because checkpoint extensions lie (`.bin`
/// and `.pth` name both torch formats, and files get renamed).
fn sniff(bytes: &[u8]) -> Format {
    const ZIP_LOCAL_HEADER: &[u8] = b"PK\x03\x04";
    const ZIP_EMPTY_ARCHIVE: &[u8] = b"PK\x05\x06";
    if bytes.starts_with(ZIP_LOCAL_HEADER) || bytes.starts_with(ZIP_EMPTY_ARCHIVE) {
        return Format::TorchZip;
    }
    // safetensors: u64 little-endian header length, then a JSON object. Tested
    // before pickles, since a header of 0x280 bytes also starts `80 02`.
    if let Some((len_bytes, rest)) = bytes.split_first_chunk::<8>() {
        let header_len = u64::from_le_bytes(*len_bytes);
        if rest.first() == Some(&b'{') && header_len <= rest.len() as u64 {
            return Format::SafeTensors;
        }
    }
    // Every binary pickle torch writes starts with PROTO (0x80) and a version.
    if let [0x80, 2..=5, ..] = bytes {
        return Format::TorchLegacy;
    }
    if bytes.get(257..262) == Some(b"ustar") {
        return Format::Unknown(
            "tar checkpoint from torch < 0.1.10 is not supported; re-save it with a newer torch"
                .to_string(),
        );
    }
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Format::Unknown(format!(
        "not a safetensors, torch zip or legacy torch.save file (first bytes: {})",
        head.join(" ")
    ))
}

/// `nn.DataParallel` saves every key as `module.<name>`; the model expects
/// `<name>`. Like timm's `clean_state_dict`, strip it wherever it appears.
fn strip_data_parallel_prefix(checkpoint: Checkpoint) -> Result<Checkpoint, WeightsError> {
    const PREFIX: &str = "module.";
    if !checkpoint.keys().any(|k| k.starts_with(PREFIX)) {
        return Ok(checkpoint);
    }
    let mut stripped = Checkpoint::new();
    for (name, tensor) in checkpoint {
        let short = name.strip_prefix(PREFIX).unwrap_or(&name).to_string();
        if stripped.contains_key(&short) {
            return Err(WeightsError::DuplicateTensor { name: short });
        }
        stripped.insert(short, tensor);
    }
    Ok(stripped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> RawTensor {
        RawTensor {
            dtype,
            shape,
            data: data.into(),
        }
    }

    #[test]
    fn converts_every_float_dtype_to_f32() {
        let f16 = [half::f16::from_f32(1.5), half::f16::from_f32(-2.0)];
        let bf16 = [half::bf16::from_f32(0.25), half::bf16::from_f32(8.0)];
        let cases = [
            tensor(
                DType::F32,
                vec![2],
                [1.5f32, -2.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            tensor(
                DType::F64,
                vec![2],
                [1.5f64, -2.0]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            tensor(
                DType::F16,
                vec![2],
                f16.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ];
        for case in &cases {
            assert_eq!(
                case.to_f32_vec().unwrap(),
                vec![1.5, -2.0],
                "{:?}",
                case.dtype
            );
        }
        let t = tensor(
            DType::BF16,
            vec![1, 2],
            bf16.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        assert_eq!(t.to_f32_vec().unwrap(), vec![0.25, 8.0]);
    }

    #[test]
    fn refuses_integer_tensors_and_short_buffers_as_f32() {
        let long = tensor(DType::I64, vec![], 7i64.to_le_bytes().to_vec());
        assert!(matches!(
            long.to_f32_vec(),
            Err(WeightsError::NotFloat { dtype: DType::I64 })
        ));
        let short = tensor(DType::F32, vec![3], vec![0; 8]);
        assert!(matches!(
            short.to_f32_vec(),
            Err(WeightsError::BadBuffer { .. })
        ));
        let huge = tensor(DType::F32, vec![usize::MAX, 2], vec![]);
        assert!(huge.to_f32_vec().is_err());
    }

    #[test]
    fn sniffs_formats_by_content() {
        assert_eq!(sniff(b"PK\x03\x04rest"), Format::TorchZip);
        assert_eq!(sniff(b"\x80\x02\x8a\x0a"), Format::TorchLegacy);
        let mut st = 2u64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert_eq!(sniff(&st), Format::SafeTensors);
        let mut looks_like_pickle = 0x280u64.to_le_bytes().to_vec();
        looks_like_pickle.push(b'{');
        looks_like_pickle.resize(8 + 0x280, b' ');
        assert_eq!(sniff(&looks_like_pickle), Format::SafeTensors);
        assert!(matches!(sniff(b""), Format::Unknown(_)));
        assert!(matches!(sniff(b"hello world"), Format::Unknown(_)));
        assert!(matches!(
            load_bytes(b"garbage"),
            Err(WeightsError::Unsupported { offset: 0, .. })
        ));
    }

    #[test]
    fn strips_data_parallel_prefix_and_rejects_collisions() {
        let t = tensor(DType::U8, vec![1], vec![1]);
        let mut ck = Checkpoint::new();
        ck.insert("module.conv.weight".into(), t.clone());
        ck.insert("fc.bias".into(), t.clone());
        let out = strip_data_parallel_prefix(ck.clone()).unwrap();
        assert_eq!(out.keys().collect::<Vec<_>>(), ["conv.weight", "fc.bias"]);
        ck.insert("conv.weight".into(), t);
        assert!(matches!(
            strip_data_parallel_prefix(ck),
            Err(WeightsError::DuplicateTensor { name }) if name == "conv.weight"
        ));
    }

    // Written by scripts/fixtures/make_weight_fixtures.py with torch 2.11, so that
    // these tests run without Python; tests/it/weights_formats.rs checks values.
    const ZIP: &[u8] = include_bytes!("testdata/tiny_zip.pth");
    const LEGACY: &[u8] = include_bytes!("testdata/tiny_legacy.pth");
    const SAFETENSORS: &[u8] = include_bytes!("testdata/tiny.safetensors");

    #[test]
    fn real_torch_files_load_identically_in_all_formats() {
        let zip = load_bytes(ZIP).unwrap();
        assert_eq!(load_bytes(LEGACY).unwrap(), zip);
        assert_eq!(load_bytes(SAFETENSORS).unwrap(), zip);
        assert_eq!(zip.len(), 21);
        let counter = &zip["bn.num_batches_tracked"];
        assert_eq!(
            (counter.dtype, counter.shape.as_slice()),
            (DType::I64, &[][..])
        );
        assert_eq!(counter.data[..], 1234567i64.to_le_bytes());
        assert_eq!(zip["fc.weight_t"].shape, [5, 3]);
        assert_eq!(zip["empty"].shape, [0, 4]);
    }

    #[test]
    fn every_truncation_of_a_real_file_is_an_error() {
        for (label, file) in [
            ("zip", ZIP),
            ("legacy", LEGACY),
            ("safetensors", SAFETENSORS),
        ] {
            for cut in 0..file.len() {
                assert!(
                    load_bytes(&file[..cut]).is_err(),
                    "{label} cut at {cut} loaded"
                );
            }
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        for file in [ZIP, LEGACY, SAFETENSORS] {
            for at in 0..file.len() {
                // Two patterns keep this within seconds in debug builds.
                for flip in [0x01u8, 0xff] {
                    let mut mutated = file.to_vec();
                    mutated[at] ^= flip;
                    let _ = load_bytes(&mutated);
                }
            }
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load(Path::new("/nonexistent/weights.pth")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/weights.pth"),
            "{err}"
        );
    }

    #[test]
    fn mapped_files_load_like_buffers_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            ("zip.pth", ZIP),
            ("legacy.pth", LEGACY),
            ("model.safetensors", SAFETENSORS),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let read = read(&path).unwrap();
            assert_eq!(read.tensors, load_bytes(bytes).unwrap(), "{name}");
        }
        let empty = dir.path().join("empty.pth");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            load(&empty),
            Err(WeightsError::Unsupported { .. })
        ));
    }
}
