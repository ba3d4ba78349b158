//! The deployment files in `docker/` against the service and against each
//! other: the Grafana dashboard queries only metrics the service exports;
//! ports, paths, body limits and shutdown timings agree between
//! `docker/config.toml`, the Dockerfile, compose, nginx, Prometheus and the
//! Kubernetes manifests; the registry validators pass
//! (`scripts/deploy/validate_deploy.sh`); and the image's health probe script tells
//! a live server from a failing one.
//!
//! Nothing here needs Docker or a cluster; README "Deploy" says what does.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use seresnext_serve::config::{Config, WeightsSource};
use seresnext_serve::metrics::{Metrics, Task};
use seresnext_serve::model::ModelId;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|error| panic!("read {relative}: {error}"))
}

/// A YAML file with `<<:` merge keys resolved (compose uses an anchor).
fn yaml(relative: &str) -> Yaml {
    let mut value: Yaml = serde_yaml_ng::from_str(&read(relative))
        .unwrap_or_else(|error| panic!("parse {relative}: {error}"));
    value.apply_merge().expect("resolve YAML merge keys");
    value
}

fn text(value: &Yaml) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected a string, got {value:?}"))
}

fn list(value: &Yaml) -> &[Yaml] {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("expected a list, got {value:?}"))
}

/// The container configuration; it must load and validate as the server's own.
fn docker_config() -> Config {
    let config =
        Config::load(repo().join("docker/config.toml")).expect("docker/config.toml parses");
    config
        .validate(|id| ModelId::parse(id).is_some())
        .expect("docker/config.toml is valid");
    config
}

/// Milliseconds the server may take from SIGTERM to exit.
fn shutdown_ms(config: &Config) -> u64 {
    config.server.shutdown_grace_ms + config.server.drain_timeout_ms
}

/// A compose/Kubernetes duration such as `40s` or `1m`.
fn duration_ms(value: &str) -> u64 {
    let (number, unit) = value.split_at(value.len() - 1);
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("duration {value}"));
    match unit {
        "s" => number * 1000,
        "m" => number * 60_000,
        _ => panic!("unsupported duration unit in {value}"),
    }
}

/// Family name → type (`counter`, `histogram`, ...) as `/metrics` declares
/// them in `# TYPE` lines. Families without series are not rendered, so one
/// model's series are created first (and one status for requests_total).
fn exported_families() -> BTreeMap<String, String> {
    let metrics = Metrics::new().expect("metrics");
    metrics.register_model(support::server::MODEL);
    metrics.count_request(support::server::MODEL, Task::Predict, 200);
    metrics
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            (name.to_owned(), kind.to_owned())
        })
        .collect()
}

/// Every `seresnext_*` identifier in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("seresnext_") {
        let at_boundary = !rest[..start].ends_with(is_ident);
        let word_len = rest[start..]
            .find(|c: char| !is_ident(c))
            .unwrap_or(rest.len() - start);
        if at_boundary {
            names.push(rest[start..start + word_len].to_owned());
        }
        rest = &rest[start + word_len..];
    }
    names
}

/// The family a sample name belongs to: itself, or a histogram's
/// `_bucket`/`_sum`/`_count` series.
fn family_of(name: &str, families: &BTreeMap<String, String>) -> Option<String> {
    if families.contains_key(name) {
        return Some(name.to_owned());
    }
    ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
        let base = name.strip_suffix(suffix)?;
        (families.get(base)? == "histogram").then(|| base.to_owned())
    })
}

/// Every PromQL string in the dashboard: panel targets and variable queries.
fn dashboard_queries(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("expr" | "query" | "definition", Json::String(query)) => {
                        out.push(query.clone())
                    }
                    _ => dashboard_queries(item, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|item| dashboard_queries(item, out)),
        _ => {}
    }
}

/// The Dockerfile as instructions (keyword, arguments), continuation lines
/// joined and comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in read("docker/Dockerfile").lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                let joined = std::mem::take(&mut current);
                if let Some((keyword, args)) = joined.split_once(' ') {
                    instructions.push((keyword.to_owned(), args.trim().to_owned()));
                }
            }
        }
    }
    instructions
}

fn instructions<'a>(all: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    all.iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, args)| args.as_str())
        .collect()
}

/// Values of an nginx directive (`name value...;`), comments ignored.
fn nginx_directive(conf: &str, name: &str) -> Vec<String> {
    conf.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().trim_end_matches(';').trim().to_owned())
        .collect()
}

#[test]
fn dashboard_queries_only_metrics_the_service_exports() {
    let families = exported_families();
    let dashboard: Json =
        serde_json::from_str(&read("docker/grafana/dashboards/seresnext.json")).expect("JSON");
    let mut queries = Vec::new();
    dashboard_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 8, "too few queries found: {queries:?}");

    let unknown: Vec<String> = queries
        .iter()
        .flat_map(|query| metric_names(query))
        .filter(|name| family_of(name, &families).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "dashboard queries metrics the service does not export: {unknown:?}\nexported: {:?}",
        families.keys().collect::<Vec<_>>()
    );

    // The signals the dashboard exists for.
    let has = |parts: &[&str]| queries.iter().any(|q| parts.iter().all(|p| q.contains(p)));
    assert!(has(&[
        "histogram_quantile(0.99",
        "seresnext_request_duration_seconds_bucket"
    ]));
    assert!(has(&["rate(seresnext_images_total"]));
    assert!(has(&[
        "rate(seresnext_batch_size_sum",
        ") / ",
        "rate(seresnext_batch_size_count"
    ]));
    assert!(has(&["seresnext_queue_depth"]));
    assert!(has(&["by (reason)", "seresnext_rejections_total"]));

    // Every panel reads the datasource Grafana is provisioned with.
    let datasources = yaml("docker/grafana/provisioning/datasources/prometheus.yaml");
    let uid = text(&list(&datasources["datasources"])[0]["uid"]);
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert_eq!(panel["datasource"]["uid"], uid, "panel {}", panel["title"]);
    }
}

#[test]
fn compose_nginx_and_prometheus_agree_with_the_config() {
    let config = docker_config();
    let port = config.server.port;
    let compose = yaml("docker/compose.yaml");
    let services = compose["services"].as_mapping().expect("services");

    // The replicas: the services built from our Dockerfile.
    let replicas: Vec<&str> = services
        .iter()
        .filter(|(_, service)| service["build"]["dockerfile"] == "docker/Dockerfile")
        .map(|(name, _)| text(name))
        .collect();
    assert_eq!(replicas.len(), 2, "two replicas: {replicas:?}");
    for name in &replicas {
        let service = &services[*name];
        let grace = duration_ms(text(&service["stop_grace_period"]));
        assert!(
            grace >= shutdown_ms(&config),
            "{name}: stop_grace_period {grace} ms < shutdown grace + drain"
        );
        let device = &list(&service["deploy"]["resources"]["reservations"]["devices"])[0];
        assert!(list(&device["capabilities"]).iter().any(|c| c == "gpu"));
        let volumes: Vec<&str> = list(&service["volumes"]).iter().map(text).collect();
        assert!(
            volumes.iter().any(|v| v.ends_with(":/weights:ro")),
            "{volumes:?}"
        );
        assert!(
            volumes.iter().any(|v| v.ends_with(":/cache/huggingface")),
            "{volumes:?}"
        );
    }
    let targets: BTreeSet<String> = replicas.iter().map(|r| format!("{r}:{port}")).collect();

    let nginx = read("docker/nginx/nginx.conf");
    let upstream_block = nginx
        .split_once("upstream seresnext {")
        .and_then(|(_, rest)| rest.split_once('}'))
        .expect("upstream seresnext { ... }")
        .0;
    let upstreams: BTreeSet<String> = nginx_directive(upstream_block, "server")
        .iter()
        .map(|server| server.split_whitespace().next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(upstreams, targets, "nginx upstream servers");
    let body_limit = nginx_directive(&nginx, "client_max_body_size");
    let mib = body_limit[0].strip_suffix('m').expect("size in m");
    assert_eq!(
        mib.parse::<usize>().unwrap() << 20,
        config.server.max_body_bytes,
        "nginx body limit = server.max_body_bytes"
    );
    let next_upstream = nginx_directive(&nginx, "proxy_next_upstream").join(" ");
    for condition in ["error", "timeout", "http_503", "non_idempotent"] {
        assert!(
            next_upstream.split(' ').any(|c| c == condition),
            "{condition}"
        );
    }
    assert_eq!(nginx_directive(&nginx, "proxy_next_upstream_tries"), ["2"]);
    let read_timeout = duration_ms(&nginx_directive(&nginx, "proxy_read_timeout")[0]);
    assert!(read_timeout > config.server.request_timeout_ms);
    assert_eq!(nginx_directive(&nginx, "keepalive").len(), 1);

    let prometheus = yaml("docker/prometheus/prometheus.yml");
    let job = &list(&prometheus["scrape_configs"])[0];
    assert_eq!(job["metrics_path"], "/metrics");
    assert_eq!(config.server.metrics_port, 0, "metrics on the API port");
    let scraped: BTreeSet<String> = list(&job["static_configs"])
        .iter()
        .flat_map(|c| list(&c["targets"]).iter().map(|t| text(t).to_owned()))
        .collect();
    assert_eq!(scraped, targets, "Prometheus scrapes every replica");

    // Bind mounts of config files point at files in docker/.
    for (_, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            if let Some(source) = text(volume).strip_prefix("./") {
                let source = source.split(':').next().unwrap();
                assert!(repo().join("docker").join(source).exists(), "{source}");
            }
        }
    }
}

/// The Dockerfile's `ARG <arg>` equals `<package>==` in
/// scripts/requirements.txt, and a RUN step installs `<package>==${<arg>}`.
fn assert_pinned_alike(docker: &[(String, String)], arg: &str, package: &str) {
    let pinned = instructions(docker, "ARG")
        .into_iter()
        .find_map(|line| line.strip_prefix(&format!("{arg}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("ARG {arg} in the Dockerfile"));
    let required = read("scripts/requirements.txt")
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix(&format!("{package}=="))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("{package}== in scripts/requirements.txt"));
    assert_eq!(
        pinned, required,
        "the image and make build pin one {package}"
    );
    let install = format!("\"{package}==${{{arg}}}\"");
    assert!(
        instructions(docker, "RUN")
            .iter()
            .any(|run| run.contains(&install)),
        "a RUN step installs {install}"
    );
}

#[test]
fn dockerfile_agrees_with_config_requirements_and_probe() {
    let config = docker_config();
    let docker = dockerfile();
    // One libtorch for the image and `make build`, and one libonnxruntime
    // (ort's load-dynamic checks the version it finds).
    assert_pinned_alike(&docker, "TORCH_VERSION", "torch");
    assert_pinned_alike(&docker, "ONNXRUNTIME_VERSION", "onnxruntime");
    // The public base images stay the defaults; local ones are build args.
    let base_args: Vec<&str> = instructions(&docker, "ARG")
        .into_iter()
        .filter(|arg| arg.starts_with("RUST_IMAGE=") || arg.starts_with("RUNTIME_IMAGE="))
        .collect();
    assert_eq!(
        base_args,
        [
            "RUST_IMAGE=rust:1.95.0-bookworm",
            "RUNTIME_IMAGE=debian:12.11-slim"
        ]
    );
    let froms = instructions(&docker, "FROM");
    assert_eq!(
        froms,
        ["${RUST_IMAGE} AS build", "${RUNTIME_IMAGE} AS runtime"]
    );

    let arg = |name: &str| {
        instructions(&docker, "ARG")
            .into_iter()
            .find_map(|arg| arg.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("ARG {name}=..."))
    };
    assert!(arg("SITE").starts_with(&format!("{}/lib/python3.", arg("VENV"))));

    let copies = instructions(&docker, "COPY");
    // build.rs bakes LIBTORCH/lib into the binary as its rpath, and
    // libtorch_cuda finds nvidia/*/lib relative to itself: the runtime stage
    // copies the listed libraries with `cp --parents` from the root of the
    // build stage to its own root, so each lands at the very path the build
    // stage used.
    assert!(instructions(&docker, "ENV").contains(&"LIBTORCH=${SITE}/torch"));
    let runs = instructions(&docker, "RUN");
    assert!(runs.iter().any(|run| run
        .contains("scripts/container/runtime_libs.py /usr/local/bin/seresnext-serve \"${SITE}\"")
        && run.contains("> /runtime-libs.txt")));
    assert!(runs.iter().any(|run| run
        .starts_with("--mount=type=bind,from=build,source=/,target=/build")
        && run.contains("runtime-libs.txt | xargs cp --parents -t /")));
    // A RUN's cache key does not cover what its bind mount shows: the
    // copied files' checksums must come in before it, or a build reuses a
    // copy made from another list (a CPU image once kept 3.56 GB of CUDA
    // libraries that way).
    // The binary's links are checked against the variant after the CPU
    // variant's patchelf, as the last step of the build.
    let build = runs
        .iter()
        .find(|run| run.contains("cargo build --release"))
        .expect("the RUN that builds the binary");
    let check = build.find(
        "scripts/container/check_links.sh /usr/local/bin/seresnext-serve \"${TORCH_DEVICE}\"",
    );
    assert!(
        matches!((build.find("patchelf --remove-needed"), check), (Some(before), Some(after)) if before < after),
        "{build}"
    );
    let position = |wanted: &dyn Fn(&(String, String)) -> bool| docker.iter().position(wanted);
    let checksums = position(&|(keyword, args)| {
        keyword == "COPY" && args.starts_with("--from=build /runtime-libs.sha256 ")
    });
    let copy = position(&|(keyword, args)| keyword == "RUN" && args.contains("xargs cp --parents"));
    assert!(
        matches!((checksums, copy), (Some(before), Some(after)) if before < after),
        "the runtime stage copies /runtime-libs.sha256 before the libraries"
    );

    let port = config.server.port.to_string();
    assert_eq!(instructions(&docker, "EXPOSE"), [port.as_str()]);
    assert!(copies.contains(&"docker/config.toml /etc/seresnext/config.toml"));
    assert!(
        copies.contains(&"--chmod=0755 docker/healthcheck.sh /usr/local/bin/seresnext-healthcheck")
    );
    let cmd: Vec<String> = serde_json::from_str(instructions(&docker, "CMD")[0]).expect("CMD");
    assert_eq!(cmd, ["serve", "--config", "/etc/seresnext/config.toml"]);
    let entrypoint: Vec<String> =
        serde_json::from_str(instructions(&docker, "ENTRYPOINT")[0]).expect("ENTRYPOINT");
    assert_eq!(entrypoint, ["seresnext-serve"]);
    let healthcheck = instructions(&docker, "HEALTHCHECK");
    assert!(healthcheck[0].ends_with(r#"CMD ["/usr/local/bin/seresnext-healthcheck"]"#));
    let volumes = instructions(&docker, "VOLUME");
    assert_eq!(volumes, [r#"["/weights", "/cache/huggingface"]"#]);
    assert!(instructions(&docker, "ENV")
        .iter()
        .any(|env| env.contains("HF_HOME=/cache/huggingface")));
    let user = instructions(&docker, "USER");
    assert_eq!(user, ["10001:10001"], "numeric non-root user");

    // The probe script defaults to the configured port.
    assert!(
        read("docker/healthcheck.sh").contains(&format!("SERESNEXT_PORT:-{}", config.server.port))
    );
    // A checkpoint file lives on the /weights volume (Hub weights live in
    // the HF_HOME cache volume); random weights never ship.
    for model in &config.models {
        if let WeightsSource::File(path) = &model.weights {
            assert!(path.starts_with("/weights/"), "{path:?}");
        }
        assert!(
            !matches!(model.weights, WeightsSource::Random),
            "the image must not serve random weights"
        );
    }
}

#[test]
fn kubernetes_manifests_agree_with_each_other_and_the_config() {
    let config = docker_config();
    let configmap = yaml("docker/k8s/configmap.yaml");
    assert_eq!(
        text(&configmap["data"]["config.toml"]),
        read("docker/config.toml"),
        "the ConfigMap embeds docker/config.toml verbatim"
    );

    let deployment = yaml("docker/k8s/deployment.yaml");
    let pod = &deployment["spec"]["template"];
    let pod_labels = pod["metadata"]["labels"].as_mapping().expect("pod labels");
    let selects_pods = |selector: &Yaml| {
        let selector = selector.as_mapping().expect("matchLabels");
        !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
    };
    assert!(selects_pods(&deployment["spec"]["selector"]["matchLabels"]));
    let container = &list(&pod["spec"]["containers"])[0];
    let http = list(&container["ports"])
        .iter()
        .find(|p| p["name"] == "http")
        .expect("a port named http");
    assert_eq!(
        http["containerPort"].as_u64(),
        Some(u64::from(config.server.port))
    );
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    assert_eq!(
        container["resources"]["limits"]["nvidia.com/gpu"].as_u64(),
        Some(1)
    );

    // preStop sleeps for the shutdown grace; the termination period covers
    // preStop, then the server's own grace and drain after SIGTERM.
    let pre_stop: Vec<&str> = list(&container["lifecycle"]["preStop"]["exec"]["command"])
        .iter()
        .map(text)
        .collect();
    assert_eq!(pre_stop[0], "sleep");
    let sleep_ms = pre_stop[1].parse::<u64>().expect("sleep seconds") * 1000;
    assert_eq!(sleep_ms, config.server.shutdown_grace_ms);
    let termination_ms = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds")
        * 1000;
    assert!(
        termination_ms >= sleep_ms + shutdown_ms(&config),
        "terminationGracePeriodSeconds too short for preStop + grace + drain"
    );

    // The config lands where the image's CMD reads it; the Hub cache where
    // HF_HOME points; the user is the image's.
    let mounts = list(&container["volumeMounts"]);
    let mount_of = |volume: &str| {
        text(&mounts.iter().find(|m| m["name"] == volume).expect(volume)["mountPath"]).to_owned()
    };
    assert_eq!(
        mount_of("config") + "/config.toml",
        "/etc/seresnext/config.toml"
    );
    let volumes = list(&pod["spec"]["volumes"]);
    let config_volume = volumes.iter().find(|v| v["name"] == "config").unwrap();
    assert_eq!(
        config_volume["configMap"]["name"],
        configmap["metadata"]["name"]
    );
    assert_eq!(mount_of("weights"), "/weights");
    let hf_home = list(&container["env"])
        .iter()
        .find(|e| e["name"] == "HF_HOME")
        .unwrap();
    assert_eq!(mount_of("hub-cache"), text(&hf_home["value"]));
    assert_eq!(
        pod["spec"]["securityContext"]["runAsUser"].as_u64(),
        Some(10001)
    );

    let service = yaml("docker/k8s/service.yaml");
    assert!(selects_pods(&service["spec"]["selector"]));
    let service_port = &list(&service["spec"]["ports"])[0];
    assert_eq!(service_port["targetPort"], "http");

    let monitor = yaml("docker/k8s/servicemonitor.yaml");
    let service_labels = service["metadata"]["labels"].as_mapping().unwrap();
    let monitor_selector = monitor["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .unwrap();
    assert!(monitor_selector
        .iter()
        .all(|(k, v)| service_labels.get(k) == Some(v)));
    let endpoint = &list(&monitor["spec"]["endpoints"])[0];
    assert_eq!(endpoint["port"], service_port["name"]);
    assert_eq!(endpoint["path"], "/metrics");

    let pdb = yaml("docker/k8s/pdb.yaml");
    assert!(selects_pods(&pdb["spec"]["selector"]["matchLabels"]));

    // HPA metric = what the adapter rule serves = a gauge the service exports.
    let hpa = yaml("docker/k8s/hpa.yaml");
    assert_eq!(
        hpa["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    let metric = text(&list(&hpa["spec"]["metrics"])[0]["pods"]["metric"]["name"]);
    let adapter = yaml("docker/k8s/prometheus-adapter-rules.yaml");
    let rules: Yaml = serde_yaml_ng::from_str(text(&adapter["data"]["config.yaml"])).unwrap();
    let rule = &list(&rules["rules"])[0];
    assert_eq!(text(&rule["name"]["as"]), metric);
    assert_eq!(metric_names(text(&rule["seriesQuery"])), [metric]);
    assert_eq!(
        exported_families().get(metric).map(String::as_str),
        Some("gauge")
    );

    // kustomization.yaml applies every manifest but itself and the adapter's.
    let kustomization = yaml("docker/k8s/kustomization.yaml");
    let listed: BTreeSet<&str> = list(&kustomization["resources"]).iter().map(text).collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo().join("docker/k8s"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != "kustomization.yaml" && name != "prometheus-adapter-rules.yaml")
        .collect();
    assert_eq!(listed, present.iter().map(String::as_str).collect());
}

fn show(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn check_links(binary: &Path, device: &str) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/container/check_links.sh"))
        .arg(binary)
        .arg(device)
        .output()
        .expect("run scripts/container/check_links.sh")
}

/// The image build's link check (docker/Dockerfile), on this build's own
/// binary: build.rs links libtorch_cuda whenever the wheel has it, so the
/// binary fits the GPU image and not the CPU-only one. A binary that needs
/// no libtorch at all fits only the CPU-only image.
#[test]
fn link_check_tells_a_gpu_binary_from_a_cpu_only_one() {
    let ours = Path::new(env!("CARGO_BIN_EXE_seresnext-serve"));
    let libtorch = std::env::var("LIBTORCH").expect("LIBTORCH, set by the Makefile");
    let wheel_has_cuda = Path::new(&libtorch).join("lib/libtorch_cuda.so").exists();
    let (gpu, cpu) = (check_links(ours, "cuda"), check_links(ours, "cpu"));
    assert_eq!(gpu.status.success(), wheel_has_cuda, "{}", show(&gpu));
    assert!(!cpu.status.success(), "{}", show(&cpu));
    let needs = if wheel_has_cuda {
        "libtorch_cuda.so"
    } else {
        "libtorch.so"
    };
    assert!(
        String::from_utf8_lossy(&cpu.stderr).contains(&format!("needs {needs}")),
        "{}",
        show(&cpu)
    );

    let plain = Path::new("/bin/sh");
    let (gpu, cpu) = (check_links(plain, "cuda"), check_links(plain, "cpu"));
    assert!(!gpu.status.success(), "{}", show(&gpu));
    assert!(String::from_utf8_lossy(&gpu.stderr).contains("would see no GPU"));
    assert!(cpu.status.success(), "{}", show(&cpu));
    assert_eq!(check_links(plain, "tpu").status.code(), Some(2));
}

/// hadolint, the compose-spec schema, Kubernetes schemas, the
/// prometheus-operator CRD schema, promtool and nginx -t.
#[test]
fn registry_validators_pass() {
    let output = Command::new("bash")
        .arg(repo().join("scripts/deploy/validate_deploy.sh"))
        .output()
        .expect("run scripts/deploy/validate_deploy.sh");
    assert!(output.status.success(), "{}", show(&output));
}

fn probe(port: u16) -> Output {
    Command::new("bash")
        .arg(repo().join("docker/healthcheck.sh"))
        .env("SERESNEXT_PORT", port.to_string())
        .output()
        .expect("run docker/healthcheck.sh")
}

/// The HEALTHCHECK script: healthy against a real server; unhealthy when
/// nothing listens or the answer is not 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probe_script_tells_healthy_from_unhealthy() {
    let server = support::server::start_server(|_| {}).await;
    let port = server.server.addr.port();
    let healthy = tokio::task::spawn_blocking(move || probe(port))
        .await
        .unwrap();
    assert!(healthy.status.success(), "{}", show(&healthy));
    server.stop().await;

    // Nothing listening: the port of a listener that was just closed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert!(!probe(closed).status.success());

    // A listener that answers 503.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request);
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
    });
    let unhealthy = probe(port);
    answer.join().unwrap();
    assert!(!unhealthy.status.success(), "{}", show(&unhealthy));
}

#[test]
fn compose_test_override_replaces_every_image_it_brings_up_with_a_local_one() {
    let compose = yaml("docker/compose.yaml");
    let services = compose["services"].as_mapping().expect("services");
    let test = yaml("docker/compose.test.yaml");
    let overridden = test["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = overridden.keys().map(text).collect();
    assert_eq!(
        names,
        BTreeSet::from(["nginx", "prometheus", "seresnext-1", "seresnext-2"])
    );
    for (name, service) in overridden {
        assert!(services.contains_key(name), "{name:?} not in compose.yaml");
        let image = text(&service["image"]);
        assert!(image.contains("localhost/"), "{name:?}: {image}");
    }
    // The peers' local images are built from the Containerfiles beside it.
    for peer in ["nginx", "prometheus"] {
        assert!(repo()
            .join(format!("docker/test/{peer}.Containerfile"))
            .exists());
    }
}
