//! The real `seresnext-serve serve` binary in a process of its own, for what
//! the shared test process cannot show: signals and exit codes, libtorch
//! settings that are process-wide (intra-op threads), and one server's own
//! resident memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::server::MODEL;

/// Bound on any wait (start-up, an exit): far above what a healthy run
/// needs, so only a broken server reaches it.
const PATIENCE: Duration = Duration::from_secs(180);

/// A config file's text: `[server]` on 127.0.0.1, port 0, with
/// `server_settings` (TOML lines) added, and the fixture model on the CPU
/// with `weights`, batched as [`super::server::test_config`] does.
pub fn config_toml_with_weights(weights: &str, server_settings: &str) -> String {
    format!(
        "[server]\nhost = \"127.0.0.1\"\nport = 0\n{server_settings}\n\n\
         [[models]]\nid = \"{MODEL}\"\nweights = \"{weights}\"\ndevice = \"cpu\"\n\
         max_batch_size = 4\nmax_batch_delay_ms = 5\nqueue_capacity = 64\n"
    )
}

/// [`config_toml_with_weights`] with the fixture weights.
pub fn config_toml(server_settings: &str) -> String {
    let weights = super::fixture_path("models/gluon_seresnext50_32x4d.safetensors");
    config_toml_with_weights(weights.to_str().expect("utf-8 path"), server_settings)
}

/// One real server process; killed on drop, so a failed assertion leaves
/// nothing running.
pub struct ServerProcess {
    pub child: Child,
    /// `127.0.0.1:<port>` from its `listening addr=...` log line.
    pub addr: String,
    /// Its log, for the assertion messages.
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts the binary on a config file holding `config_toml` and returns
    /// once it listens (its model may still be loading: see
    /// [`Self::wait_ready`]). Panics, with its log, if it exits first.
    pub fn spawn(config_toml: &str) -> ServerProcess {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_toml).expect("write config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server binary");
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        for line in lines.by_ref() {
            let line = line.unwrap_or_default();
            let addr = line
                .split_whitespace()
                .find_map(|word| word.strip_prefix("addr="))
                .map(str::to_owned);
            log.lock().unwrap().push(line);
            if let Some(addr) = addr {
                // Keep draining stderr so the child never blocks on a full pipe.
                let sink = log.clone();
                std::thread::spawn(move || {
                    for line in lines.map_while(Result::ok) {
                        sink.lock().unwrap().push(line);
                    }
                });
                return ServerProcess {
                    child,
                    addr,
                    log,
                    _dir: dir,
                };
            }
        }
        let status = child.wait();
        panic!(
            "server exited ({status:?}) before listening:\n{}",
            log.lock().unwrap().join("\n")
        );
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// [`Self::base_url`] + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Waits until its `/readyz` answers 200: the model is loaded and warm.
    pub async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let response = client.get(self.url("/readyz")).send().await;
            if response.is_ok_and(|r| r.status() == 200) {
                return;
            }
            let exited = self.child.try_wait().expect("wait for the server");
            assert!(
                exited.is_none() && started.elapsed() < PATIENCE,
                "{} not ready ({exited:?}):\n{}",
                self.addr,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit (bounded by [`PATIENCE`]).
    pub async fn exit_status(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{} did not exit:\n{}",
                self.addr,
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `VmRSS` and `VmHWM` (peak) of the process, in KiB. A field that
    /// cannot be read fails the test: a bound checked against a made-up 0
    /// would always pass.
    pub fn memory_kib(&self) -> (u64, u64) {
        let path = format!("/proc/{}/status", self.child.id());
        let status = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.trim().strip_suffix("kB"))
                .and_then(|kib| kib.trim().parse().ok())
                .unwrap_or_else(|| panic!("no readable {name} in {path}:\n{status}"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// The names of the process's threads (`/proc/<pid>/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(&tasks)
            .unwrap_or_else(|e| panic!("read {tasks}: {e}"))
            .map(|task| {
                let comm = task.expect("task entry").path().join("comm");
                std::fs::read_to_string(&comm)
                    .unwrap_or_else(|e| panic!("read {}: {e}", comm.display()))
                    .trim_end()
                    .to_owned()
            })
            .collect()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `serve` on `config` in a process of its own, expecting start-up to
/// fail as a user should see it: exit code 1, exactly one `error:` line on
/// stderr, and no panic or crash. Returns that line.
pub fn failed_start_error(config: &seresnext_serve::config::Config) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, toml::to_string(config).expect("config as TOML")).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_seresnext-serve"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {stderr}");
    for crash in [
        "panicked",
        "backtrace",
        "Backtrace",
        "SIGSEGV",
        "terminate called",
    ] {
        assert!(!stderr.contains(crash), "stderr: {stderr}");
    }
    errors[0].to_owned()
}
