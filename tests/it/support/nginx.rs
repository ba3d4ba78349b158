//! Running the compose deployment's own docker/nginx/nginx.conf on loopback:
//! only its two upstream addresses and its listen port change, so what a
//! test sees is what clients see in front of the compose replicas.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// docker/nginx/nginx.conf as committed.
pub fn committed_config() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docker/nginx/nginx.conf");
    std::fs::read_to_string(&path).expect("read docker/nginx/nginx.conf")
}

/// `original` with its upstream servers (in order) and its listen port
/// replaced; everything else, the retry policy included, as is.
pub fn loopback_config(original: &str, upstreams: [impl Display; 2], port: u16) -> String {
    let mut servers = upstreams.iter();
    let mut in_upstream = false;
    let mut listens = 0;
    let lines: Vec<String> = original
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("upstream ") {
                in_upstream = true;
            } else if in_upstream && trimmed.starts_with('}') {
                in_upstream = false;
            } else if in_upstream && trimmed.starts_with("server ") {
                // `server host:port params;`: keep the params.
                let address = servers.next().expect("two upstream servers in nginx.conf");
                let params = trimmed
                    .trim_start_matches("server ")
                    .split_once(' ')
                    .map_or(";", |(_, params)| params);
                return format!("server {address} {params}");
            } else if trimmed.starts_with("listen ") {
                listens += 1;
                return format!("listen 127.0.0.1:{port};");
            }
            line.to_owned()
        })
        .collect();
    assert!(
        servers.next().is_none(),
        "nginx.conf has fewer than two upstream servers"
    );
    assert_eq!(listens, 1, "one listen directive in nginx.conf");
    lines.join("\n")
}

/// nginx in the foreground on the scratch prefix `dir` with `config`, its
/// error log and pid file inside `dir`.
pub fn command(dir: &Path, config: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(config)
        .arg("-g")
        .arg(format!(
            "daemon off; pid {};",
            dir.join("nginx.pid").display()
        ));
    command
}

/// Stops nginx started by [`command`]: SIGTERM, nginx's fast shutdown, in
/// which the master stops its workers too (SIGKILL would leave them behind:
/// they are not our children).
pub fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nginx"))
        .chain([PathBuf::from("/usr/sbin/nginx")])
        .find(|candidate| candidate.is_file())
        .expect("nginx is not installed: run `make deploy-tools` (make test does)")
}
