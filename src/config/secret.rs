//! [`ApiKey`]: the optional bearer token that guards the inference and model
//! routes.
//!
//! The key is a secret, so the type makes leaking it hard: `Debug` prints
//! `<redacted>` (a config dumped in a log line or a panic message shows
//! whether a key is set, never the key), there is no `Display`, and the only
//! way to use it is [`ApiKey::matches`], which compares in constant time so
//! response timing tells an attacker nothing about how much of a guess was
//! right.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// `server.api_key`: empty means authentication is off.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key taken from the environment or a test.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Whether requests must present the key at all.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `candidate` is the key. Both sides are hashed first, so the
    /// comparison takes the same time whatever the lengths and wherever the
    /// first differing byte is; an unset key matches nothing.
    pub fn matches(&self, candidate: &str) -> bool {
        if !self.is_set() {
            return false;
        }
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(candidate.as_bytes());
        expected.as_slice().ct_eq(presented.as_slice()).into()
    }

    /// Why the key cannot be used, if it cannot: it travels in an HTTP header,
    /// so it must be visible ASCII, and a short key can be guessed.
    pub(super) fn problem(&self) -> Option<String> {
        if !self.is_set() {
            return None;
        }
        if !self.0.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Some("must be printable ASCII without spaces (it is sent in a header)".into());
        }
        if self.0.len() < MIN_KEY_LENGTH {
            return Some(format!(
                "must be at least {MIN_KEY_LENGTH} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        None
    }
}

/// Shortest accepted key: 16 random hex characters are 64 bits, out of reach
/// of online guessing.
const MIN_KEY_LENGTH: usize = 16;

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_set() {
            f.write_str("ApiKey(<redacted>)")
        } else {
            f.write_str("ApiKey(<unset>)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef-secret";

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new(KEY);
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(format!("{:?}", ApiKey::default()), "ApiKey(<unset>)");
    }

    #[test]
    fn matches_only_the_exact_key() {
        let key = ApiKey::new(KEY);
        assert!(key.matches(KEY));
        for wrong in [
            "",
            "0123456789abcdef",
            "0123456789abcdef-secreT",
            &format!("{KEY} "),
        ] {
            assert!(!key.matches(wrong), "{wrong:?}");
        }
        assert!(
            !ApiKey::default().matches(""),
            "an unset key matches nothing"
        );
    }

    #[test]
    fn unusable_keys_are_named() {
        assert_eq!(ApiKey::default().problem(), None);
        assert_eq!(ApiKey::new(KEY).problem(), None);
        assert!(ApiKey::new("short").problem().is_some());
        assert!(ApiKey::new("has a space in the middle").problem().is_some());
    }
}
