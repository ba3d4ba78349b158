//! The bytes of a checkpoint file, and the tensors sliced from them.
//!
//! A file is mapped rather than read, so a contiguous tensor is a slice of
//! the page cache, not a copy. The engine copies each tensor into its own
//! memory once; if the mapped pages stayed resident until the whole
//! checkpoint was dropped, start-up would briefly hold the weights twice (the
//! file and the engine's copy), which is what reading into buffers cost
//! before. So a tensor gives its pages back when it is dropped, right after
//! the engine has taken it, and start-up holds about one copy throughout.
#![allow(unsafe_code)]

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, UncheckedAdvice};

/// Pages are given back in whole units of this size; a larger real page
/// size only makes `madvise` refuse (the error is ignored: pages then stay
/// until the mapping is dropped, as without the advice).
const PAGE: usize = 4096;

/// A whole checkpoint file: mapped, or copied from memory.
#[derive(Debug, Clone)]
pub struct FileBytes {
    bytes: Bytes,
    map: Option<Arc<Mmap>>,
}

/// Lets `Bytes` own the mapping while [`TensorBytes`] keep a handle to it.
struct SharedMap(Arc<Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl FileBytes {
    /// Maps `file` read-only (an empty file, which cannot be mapped, is empty).
    pub fn map(file: &std::fs::File) -> std::io::Result<Self> {
        if file.metadata()?.len() == 0 {
            return Ok(Self::copied(&[]));
        }
        // SAFETY: the mapping is private and read-only, and this process
        // never writes the file. Another process truncating it while it is
        // mapped would fault the reader (SIGBUS); weights are files deployed
        // beside the service, not written while it starts, the same
        // trade-off the safetensors loaders of torch and candle make.
        let map = Arc::new(unsafe { Mmap::map(file)? });
        Ok(Self {
            bytes: Bytes::from_owner(SharedMap(map.clone())),
            map: Some(map),
        })
    }

    /// A checkpoint held in memory, copied once; its tensors slice the copy.
    pub fn copied(bytes: &[u8]) -> Self {
        Self {
            bytes: Bytes::copy_from_slice(bytes),
            map: None,
        }
    }

    /// The tensor bytes `part`, which must lie inside this file's bytes.
    pub fn slice(&self, part: &[u8]) -> TensorBytes {
        TensorBytes {
            bytes: self.bytes.slice_ref(part),
            map: self.map.clone(),
        }
    }
}

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// One tensor's bytes: a slice of its file, or a buffer of its own (strided
/// views gathered into row-major order, hand-built tensors).
#[derive(Debug, Clone, Default)]
pub struct TensorBytes {
    bytes: Bytes,
    /// The mapping the slice lies in, if any: whose pages it gives back.
    map: Option<Arc<Mmap>>,
}

impl Deref for TensorBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl PartialEq for TensorBytes {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl From<Vec<u8>> for TensorBytes {
    fn from(buffer: Vec<u8>) -> Self {
        Self {
            bytes: Bytes::from(buffer),
            map: None,
        }
    }
}

impl Drop for TensorBytes {
    /// Gives back the whole pages that only this tensor's bytes cover.
    fn drop(&mut self) {
        let Some(map) = &self.map else { return };
        // An empty slice is `Bytes`' static empty buffer, not in the map.
        let Some(start) = (self.bytes.as_ptr() as usize).checked_sub(map.as_ptr() as usize) else {
            return;
        };
        let end = start + self.bytes.len();
        if self.bytes.is_empty() || end > map.len() {
            return;
        }
        let (first_page, end_page) = (start.div_ceil(PAGE) * PAGE, end / PAGE * PAGE);
        if end_page > first_page {
            // SAFETY: the range lies inside the mapping, which is private,
            // read-only and file-backed: MADV_DONTNEED only drops the pages
            // from this process, and any later read (a clone of this tensor,
            // or a neighbour sharing an edge page, which is excluded anyway)
            // faults the same file bytes back in. Nothing ever observes a
            // change.
            let _ = unsafe {
                map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    first_page,
                    end_page - first_page,
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_tensors_give_back_their_pages_and_the_file_reads_the_same() {
        let content: Vec<u8> = (0..64 * PAGE).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        std::fs::write(&path, &content).unwrap();
        let file = FileBytes::map(&std::fs::File::open(&path).unwrap()).unwrap();
        let tensor = file.slice(&file[100..40 * PAGE + 7]);
        let copy = tensor.clone();
        assert_eq!(tensor[..], content[100..40 * PAGE + 7]);
        drop(tensor);
        // The pages were dropped, not zeroed: they read back from the file.
        assert_eq!(copy[..], content[100..40 * PAGE + 7]);
        assert_eq!(file[..], content[..]);
    }

    #[test]
    fn tensors_of_a_copied_file_are_slices_of_the_copy() {
        let file = FileBytes::copied(&[1, 2, 3, 4]);
        let tensor = file.slice(&file[1..3]);
        assert_eq!(tensor[..], [2, 3]);
        assert_eq!(tensor.as_ptr(), file[1..].as_ptr());
    }
}
