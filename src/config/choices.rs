//! The small enumerated settings: how a partial batch waits, and how logs
//! are written.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// When a partial batch stops waiting for more images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchWindow {
    /// Wait (up to `max_batch_delay_ms`) only for images of admitted requests
    /// that are still decoding; with none on the way, run at once. A lone
    /// client never pays the delay.
    #[default]
    Adaptive,
    /// Always wait out `max_batch_delay_ms` for a partial batch to fill.
    Fixed,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!(
                "invalid log format {other:?}: expected text or json"
            )),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}
