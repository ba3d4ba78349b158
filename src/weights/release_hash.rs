//! The SHA-256 prefix that release file names carry.
//!
//! timm's original release files are named like
//! `gluon_seresnext50_32x4d-90cf2d6e.pth`: the hex after the last `-` is the
//! start of the file's SHA-256, the convention torch.hub checks with
//! `check_hash=True`. A truncated download, or a different file saved under
//! the release name, would otherwise load as "valid" weights (or fail deep in
//! the pickle parser) and serve wrong answers, so such names are verified
//! before any replica loads the file.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Extensions whose files may carry the suffix (torch.hub's checkpoints);
/// `.safetensors` files from the Hub are named `model.safetensors`.
const HASHED_EXTENSIONS: [&str; 3] = ["pth", "pt", "bin"];

/// Fewest hex digits taken as a hash (torch.hub's `HASH_REGEX` is `-([a-f0-9]*)\.`;
/// requiring 8 keeps names like `resnet-v2.pth` from being mistaken for one).
const MIN_PREFIX_LEN: usize = 8;

/// Why a weight file failed its name's hash check.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseHashError {
    /// The file could not be read to hash it.
    #[error("cannot read weight file {} to check its SHA-256: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not the release file the name promises.
    #[error(
        "weight file {} is not the file its name promises: the name says its SHA-256 starts \
         with {expected}, but the file's SHA-256 is {actual} (a truncated or corrupted \
         download, or another file under the release name)",
        path.display()
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The hex prefix taken from the name.
        expected: String,
        /// The full SHA-256 of the file, lowercase hex.
        actual: String,
    },
}

/// The SHA-256 prefix in `path`'s name (`…-90cf2d6e.pth` → `90cf2d6e`), if
/// it carries one: at least 8 lowercase hex digits between the last `-` and a
/// `.pth`, `.pt` or `.bin` extension.
pub fn expected_sha256_prefix(path: &Path) -> Option<&str> {
    let name = path.file_name()?.to_str()?;
    let (stem, extension) = name.rsplit_once('.')?;
    if !HASHED_EXTENSIONS.contains(&extension) {
        return None;
    }
    let (_, suffix) = stem.rsplit_once('-')?;
    let is_hex = suffix
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (suffix.len() >= MIN_PREFIX_LEN && is_hex).then_some(suffix)
}

/// Checks a file whose name carries a SHA-256 prefix against its contents;
/// a file without one passes unread. Returns whether a hash was checked, for
/// the start-up log.
pub fn verify_release_hash(path: &Path) -> Result<bool, ReleaseHashError> {
    let Some(expected) = expected_sha256_prefix(path) else {
        return Ok(false);
    };
    let actual = sha256_hex(path).map_err(|source| ReleaseHashError::Read {
        path: path.to_owned(),
        source,
    })?;
    if actual.starts_with(expected) {
        Ok(true)
    } else {
        Err(ReleaseHashError::Mismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

/// The SHA-256 of a file in lowercase hex, read in 1 MiB chunks so a 350 MB
/// checkpoint is never held in memory twice.
fn sha256_hex(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 of the bytes `b"weights"`.
    const WEIGHTS_SHA256: &str = "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c";

    fn prefix(name: &str) -> Option<&str> {
        expected_sha256_prefix(Path::new(name))
    }

    #[test]
    fn release_names_carry_a_prefix_and_others_do_not() {
        assert_eq!(
            prefix("gluon_seresnext50_32x4d-90cf2d6e.pth"),
            Some("90cf2d6e")
        );
        assert_eq!(
            prefix("w/model-0123456789abcdef.bin"),
            Some("0123456789abcdef")
        );
        assert_eq!(prefix("a-90cf2d6e.pt"), Some("90cf2d6e"));
        for name in [
            "gluon_seresnext50_32x4d.safetensors",
            "model-90cf2d6e.safetensors",
            "gluon_seresnext50_32x4d_legacy.pth",
            "resnet-v2.pth",
            "model-90cf2d6.pth",
            "model-90CF2D6E.pth",
            "model-90cf2d6g.pth",
            "90cf2d6e.pth",
        ] {
            assert_eq!(prefix(name), None, "{name}");
        }
    }

    #[test]
    fn sha256_is_computed_over_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("plain.bin");
        std::fs::write(&path, b"weights").expect("write");
        assert_eq!(sha256_hex(&path).expect("hash"), WEIGHTS_SHA256);
    }

    #[test]
    fn a_matching_prefix_passes_and_a_wrong_one_names_both_hashes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = dir
            .path()
            .join(format!("model-{}.pth", &WEIGHTS_SHA256[..8]));
        std::fs::write(&good, b"weights").expect("write");
        assert!(verify_release_hash(&good).expect("matches"));

        let unhashed = dir.path().join("model.pth");
        std::fs::write(&unhashed, b"anything").expect("write");
        assert!(!verify_release_hash(&unhashed).expect("nothing to check"));

        let bad = dir.path().join("gluon_seresnext50_32x4d-90cf2d6e.pth");
        std::fs::write(&bad, b"weights").expect("write");
        let message = verify_release_hash(&bad).expect_err("mismatch").to_string();
        assert!(message.contains(&bad.display().to_string()), "{message}");
        assert!(message.contains("starts with 90cf2d6e"), "{message}");
        assert!(message.contains(WEIGHTS_SHA256), "{message}");

        let missing = dir.path().join("gone-90cf2d6e.pth");
        let message = verify_release_hash(&missing)
            .expect_err("missing")
            .to_string();
        assert!(message.contains("cannot read weight file"), "{message}");
    }
}
