//! Why a configuration cannot be used: the file is unreadable, the TOML is
//! malformed or has unknown keys, or values are invalid. Every message names
//! the file or the key.

use std::{fmt, path::PathBuf};

/// One invalid value, named by its key path (`models[0].max_batch_size`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Key path as a user would look for it in the file.
    pub key: String,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration could not be used; every message names the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type. toml's
    /// message quotes the offending line, so the key is named.
    #[error("invalid config{}: {source}", origin.as_ref().map(|path| format!(" file {}", path.display())).unwrap_or_default())]
    Parse {
        /// The file, when the text came from one.
        origin: Option<PathBuf>,
        /// toml's error, with line, column and key.
        source: toml::de::Error,
    },
    /// Well-formed, but some values are unusable; all of them are listed.
    #[error("invalid config: {}", join_problems(.0))]
    Invalid(Vec<Problem>),
}

fn join_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
