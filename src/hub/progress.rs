//! The progress bar of a weights download (110 to 350 MB, minutes on a slow
//! link), fed by hf-hub's progress events.
//!
//! On a terminal it redraws one line on stderr; otherwise (a container's log)
//! it writes a log line at every tenth, so the log shows the download moving
//! without thousands of lines.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hf_hub::progress::{DownloadEvent, ProgressEvent, ProgressHandler};

/// Shortest time between two redraws of the terminal bar.
const REDRAW_INTERVAL: Duration = Duration::from_millis(100);
/// Characters of the bar between the brackets.
const BAR_WIDTH: usize = 30;

/// Renders one file's download; handed to hf-hub as its progress handler.
pub struct DownloadProgress {
    /// What is downloaded, e.g. `timm/seresnext50_32x4d.gluon_in1k/model.safetensors`.
    label: String,
    /// Redraw a bar (terminal) rather than log tenths.
    terminal: bool,
    state: Mutex<State>,
}

struct State {
    started: Instant,
    total_bytes: u64,
    done_bytes: u64,
    last_redraw: Option<Instant>,
    /// Tenths already logged (non-terminal output).
    logged_tenths: u64,
}

impl DownloadProgress {
    /// A handler for `label`, drawing a bar when stderr is a terminal.
    pub fn new(label: String) -> Self {
        Self {
            label,
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                started: Instant::now(),
                total_bytes: 0,
                done_bytes: 0,
                last_redraw: None,
                logged_tenths: 0,
            }),
        }
    }

    fn update(&self, done_bytes: Option<u64>, total_bytes: Option<u64>, finished: bool) {
        // A poisoned lock only means an earlier report panicked: skip drawing
        // rather than fail the download over a progress bar.
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if let Some(total) = total_bytes.filter(|&total| total > 0) {
            state.total_bytes = total;
        }
        if let Some(done) = done_bytes {
            state.done_bytes = done;
        }
        if finished {
            state.done_bytes = state.done_bytes.max(state.total_bytes);
        }
        let now = Instant::now();
        if self.terminal {
            let due = state
                .last_redraw
                .is_none_or(|last| now.duration_since(last) >= REDRAW_INTERVAL);
            if due || finished {
                state.last_redraw = Some(now);
                let line = render(
                    &self.label,
                    state.done_bytes,
                    state.total_bytes,
                    now.duration_since(state.started),
                );
                let mut stderr = std::io::stderr().lock();
                let end = if finished { "\n" } else { "" };
                // Progress output is best effort: a closed stderr must not
                // fail the download.
                let _ = write!(stderr, "\r{line}{end}");
                let _ = stderr.flush();
            }
        } else if let Some(tenths) = state
            .done_bytes
            .saturating_mul(10)
            .checked_div(state.total_bytes)
        {
            // Only new tenths (none before the total is known): `finished`
            // after a 100 % report logs nothing.
            if tenths > state.logged_tenths {
                state.logged_tenths = tenths;
                tracing::info!(
                    "{}",
                    render(
                        &self.label,
                        state.done_bytes,
                        state.total_bytes,
                        now.duration_since(state.started)
                    )
                );
            }
        }
    }
}

impl ProgressHandler for DownloadProgress {
    fn on_progress(&self, event: &ProgressEvent) {
        let ProgressEvent::Download(event) = event else {
            return;
        };
        match event {
            DownloadEvent::Start { total_bytes, .. } => {
                self.update(None, Some(*total_bytes), false)
            }
            DownloadEvent::Progress { files } => {
                // One file per download; its entry carries cumulative bytes.
                if let Some(file) = files.last() {
                    self.update(Some(file.bytes_completed), Some(file.total_bytes), false);
                }
            }
            DownloadEvent::AggregateProgress {
                bytes_completed,
                total_bytes,
                ..
            } => self.update(Some(*bytes_completed), Some(*total_bytes), false),
            DownloadEvent::Complete => self.update(None, None, true),
        }
    }
}

/// `label [#########.....] 45% 49.7/110.5 MB 12.3 MB/s`; without a known
/// total, just the bytes so far.
pub fn render(label: &str, done_bytes: u64, total_bytes: u64, elapsed: Duration) -> String {
    const MB: f64 = 1e6;
    let done_mb = done_bytes as f64 / MB;
    let seconds = elapsed.as_secs_f64();
    let rate = if seconds > 0.0 {
        done_mb / seconds
    } else {
        0.0
    };
    if total_bytes == 0 {
        return format!("{label} {done_mb:.1} MB {rate:.1} MB/s");
    }
    let fraction = (done_bytes as f64 / total_bytes as f64).clamp(0.0, 1.0);
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    format!(
        "{label} [{}{}] {:>3.0}% {done_mb:.1}/{:.1} MB {rate:.1} MB/s",
        "#".repeat(filled),
        ".".repeat(BAR_WIDTH - filled),
        fraction * 100.0,
        total_bytes as f64 / MB,
    )
}
