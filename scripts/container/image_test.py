#!/usr/bin/env python3
"""`make image-test`: the built image, run for real with podman.

Each check prints one `ok:` line with what it measured, or stops the run
with `FAIL:` and exit 1. Containers are named `seresnext-it-*` and removed
at the end (also on failure). The order follows the issue's list:
user and libraries, readiness with read-only weights, a predict equal to
the host binary's, /metrics, the health check, SIGTERM under load, a start
without weights, two replicas behind nginx with one killed under load,
and the compose file brought up with local images.

Usage: image_test.py --image IMAGE --host-bin BIN --weights FILE --jpeg FILE
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

MODEL = "gluon_seresnext50_32x4d"
# docker/config.toml's weights file: the server checks the SHA-256 prefix
# in a release file's name, so the fixture gets a name of its own and the
# containers are pointed at it with SERESNEXT_WEIGHTS.
RELEASE_WEIGHTS = "gluon_seresnext50_32x4d-90cf2d6e.pth"
CONTAINER_WEIGHTS = "seresnext50-fixture.pth"
PREFIX = "seresnext-it-"
STARTED = time.monotonic()


def log(message):
    print(f"[{time.monotonic() - STARTED:6.1f} s] {message}", flush=True)


def fail(message):
    log(f"FAIL: {message}")
    raise SystemExit(1)


def run(*args, check=True, timeout=120):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        fail(f"{' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}")
    return done


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, timeout=40, headers=None):
    """(status, body bytes); a refused or broken connection raises OSError."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_ready(base, seconds=180, container=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http("GET", f"{base}/readyz", timeout=5)[0] == 200:
                return time.monotonic() - (deadline - seconds)
        except OSError:
            pass
        if container and container_state(container) not in ("running", "created"):
            fail(f"{container} stopped before ready:\n{logs(container)}")
        time.sleep(0.25)
    fail(f"{base}/readyz not 200 within {seconds} s")


def container_state(name):
    done = run("podman", "inspect", "--format", "{{.State.Status}}", name, check=False)
    return done.stdout.strip()


def exit_code(name):
    return int(run("podman", "inspect", "--format", "{{.State.ExitCode}}", name).stdout)


def logs(name):
    done = run("podman", "logs", name, check=False)
    return done.stdout + done.stderr


def start_container(args, name, port, weights_dir, *extra):
    run("podman", "rm", "-f", name, check=False)
    volume = [] if weights_dir is None else ["-v", f"{weights_dir}:/weights:ro"]
    run("podman", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
        "-e", f"SERESNEXT_WEIGHTS=/weights/{CONTAINER_WEIGHTS}", *volume, *extra, args.image)


def predict(base, jpeg, top_k=5):
    status, body = http("POST", f"{base}/v1/models/{MODEL}:predict?top_k={top_k}", jpeg,
                        headers={"Content-Type": "image/jpeg", "Connection": "close"})
    return status, body


def top5(body):
    answer = json.loads(body)
    return [(entry["class_id"], entry["probability"])
            for entry in answer["predictions"][0]["top_k"]]


class Load:
    """Clients posting the JPEG in a loop until stopped. Counts answers by
    status, and requests lost: sent, but the connection failed after the
    request went out (a refused connection is not an accepted request)."""

    def __init__(self, base, jpeg, clients):
        self.base, self.jpeg = base, jpeg
        self.statuses, self.lost, self.refused = {}, [], 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(clients)]

    def client(self):
        while not self.stop.is_set():
            try:
                status, _ = predict(self.base, self.jpeg)
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
            except OSError as error:
                # urllib wraps connection errors in URLError (.reason).
                refused = isinstance(getattr(error, "reason", error), ConnectionRefusedError)
                with self.lock:
                    if refused:
                        self.refused += 1
                    else:
                        self.lost.append(repr(error))
                time.sleep(0.05)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def answered(self):
        with self.lock:
            return sum(self.statuses.values())


def check_user_and_libraries(args, name):
    uid = run("podman", "exec", name, "id", "-u").stdout.strip()
    if uid == "0" or uid != "10001":
        fail(f"server runs as uid {uid}")
    ldd = run("podman", "exec", name, "ldd", "/usr/local/bin/seresnext-serve").stdout
    if "not found" in ldd or "libtorch_cpu.so" not in ldd:
        fail(f"ldd of the binary:\n{ldd}")
    env = run("podman", "exec", name, "printenv").stdout
    if "LD_LIBRARY_PATH" in env:
        fail("the image sets LD_LIBRARY_PATH")
    ort = run("podman", "exec", name, "bash", "-c",
              "ls /opt/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.*"
              ).stdout.split()
    if not ort:
        fail("no libonnxruntime in the image")
    ort_ldd = run("podman", "exec", name, "ldd", ort[0]).stdout
    if "not found" in ort_ldd:
        fail(f"ldd of {ort[0]}:\n{ort_ldd}")
    torch_libs = sum(1 for line in ldd.splitlines() if "site-packages" in line)
    log(f"ok: runs as uid {uid}; ldd resolves all {torch_libs} wheel libraries of the binary "
        f"and {os.path.basename(ort[0])}, no LD_LIBRARY_PATH")
    # Each engine classifies once under LD_DEBUG=files, which logs every
    # library the loader maps, linked or opened at run time: none may be
    # missing from the image except the GPU driver's, which the NVIDIA
    # container toolkit mounts on a GPU host. The ONNX Runtime run also shows
    # that libonnxruntime is found with no environment variable.
    for engine in ("libtorch", "onnxruntime"):
        opened, missing = dlopen_audit(name, engine)
        unexpected = sorted(m for m in missing if not m.startswith(DRIVER_LIBRARIES))
        if unexpected:
            fail(f"{engine}: the process tried to load libraries the image lacks: {unexpected}")
        log(f"ok: `classify --engine {engine}` in the container under LD_DEBUG: "
            f"{len(opened)} libraries loaded, none missing"
            + (f" (absent GPU driver: {sorted(missing)})" if missing else ""))


# The driver's libraries come from the host on a GPU machine; here, without
# one, libtorch_cuda looks for them and goes on without CUDA.
DRIVER_LIBRARIES = ("libcuda.so", "libnvidia-ml.so")


def dlopen_audit(name, engine):
    done = run("podman", "exec", "-e", "LD_DEBUG=files", name, "seresnext-serve", "classify",
               "--engine", engine, "--model", MODEL, "--weights",
               f"/weights/{CONTAINER_WEIGHTS}", "/tmp/probe.jpg", check=False, timeout=300)
    if done.returncode != 0 or '"top_k"' not in done.stdout:
        fail(f"classify --engine {engine} in the container:\n{done.stdout}{done.stderr[-3000:]}")
    asked, mapped = set(), set()
    for line in done.stderr.splitlines():
        if "file=" not in line:
            continue
        library = line.split("file=", 1)[1].split(" [", 1)[0].strip()
        if "needed by" in line or "dynamically loaded by" in line:
            asked.add(os.path.basename(library))
        elif "generating link map" in line:
            mapped.add(os.path.basename(library))
    return mapped, asked - mapped


def check_predict_matches_host(args, base, weights_file):
    port = free_port()
    host = subprocess.Popen(
        [args.host_bin, "serve", "--config", "docker/config.toml", "--host", "127.0.0.1",
         "--port", str(port), "--weights", weights_file, "--log-format", "text"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        host_base = f"http://127.0.0.1:{port}"
        wait_ready(host_base, 120)
        with open(args.jpeg, "rb") as handle:
            jpeg = handle.read()
        status_c, body_c = predict(base, jpeg)
        status_h, body_h = predict(host_base, jpeg)
    finally:
        host.terminate()
        host.wait(timeout=60)
    if status_c != 200 or status_h != 200:
        fail(f"predict: container {status_c} {body_c[:200]!r}, host {status_h} {body_h[:200]!r}")
    ours, theirs = top5(body_c), top5(body_h)
    if [c for c, _ in ours] != [c for c, _ in theirs]:
        fail(f"top-5 differ: container {ours}, host {theirs}")
    worst = max(abs(a - b) for (_, a), (_, b) in zip(ours, theirs))
    if worst > 1e-4:
        fail(f"probabilities differ by {worst}")
    log(f"ok: JPEG predict: container and host binary give the same top-5 "
        f"{[c for c, _ in ours]}, max |dp| {worst:.2e}")


def check_metrics(base):
    status, body = http("GET", f"{base}/metrics")
    if status != 200:
        fail(f"/metrics -> {status}")
    with tempfile.NamedTemporaryFile("wb", suffix=".prom") as handle:
        handle.write(body)
        handle.flush()
        with open(handle.name, "rb") as metrics:
            done = subprocess.run(["promtool", "check", "metrics"], stdin=metrics,
                                  capture_output=True, text=True)
    # promtool exits 1 for lint remarks (e.g. a counter's name) but 3 for
    # text it cannot parse: only parsing is checked here.
    if done.returncode not in (0, 1) or "error while linting" in done.stderr:
        fail(f"promtool cannot parse /metrics: {done.stdout}{done.stderr}")
    families = sum(1 for line in body.decode().splitlines() if line.startswith("# TYPE "))
    if b"seresnext_requests_total" not in body:
        fail("/metrics lacks seresnext_requests_total")
    log(f"ok: /metrics parses (promtool), {families} families")


def check_healthcheck(name):
    done = run("podman", "healthcheck", "run", name, check=False)
    if done.returncode != 0:
        fail(f"healthcheck on a serving container: {done.stdout}{done.stderr}")
    pid = run("podman", "inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    # The port goes away for the probe: new connections to it are refused
    # inside the container's network namespace, the process keeps running.
    rule = ["-p", "tcp", "--dport", "8080", "-j", "REJECT", "--reject-with", "tcp-reset"]
    run("nsenter", "-t", pid, "-n", "iptables", "-I", "INPUT", *rule)
    try:
        gone = run("podman", "healthcheck", "run", name, check=False)
    finally:
        run("nsenter", "-t", pid, "-n", "iptables", "-D", "INPUT", *rule)
    if gone.returncode == 0:
        fail("healthcheck stayed healthy with the port gone")
    back = run("podman", "healthcheck", "run", name, check=False)
    if back.returncode != 0:
        fail("healthcheck not healthy again after the port came back")
    log(f"ok: podman healthcheck run: healthy, then '{(gone.stdout + gone.stderr).strip()}' "
        f"with the port refused, then healthy again")


def check_sigterm_under_load(base, name, jpeg):
    with Load(base, jpeg, clients=6) as load:
        while load.answered() < 6:
            time.sleep(0.1)
        before = load.answered()
        started = time.monotonic()
        run("podman", "stop", "-t", "40", name, timeout=90)
        stop_seconds = time.monotonic() - started
    code = exit_code(name)
    if load.lost:
        fail(f"{len(load.lost)} accepted requests lost at SIGTERM: {load.lost[:3]}")
    bad = {s: n for s, n in load.statuses.items() if s not in (200, 503)}
    if bad:
        fail(f"answers other than 200/503 during the stop: {bad}")
    if code != 0:
        fail(f"exit code after SIGTERM {code}\n{logs(name)[-2000:]}")
    log(f"ok: SIGTERM under 6 clients: stop took {stop_seconds:.1f} s, answers "
        f"{load.statuses} ({load.answered() - before} during the stop), 0 lost, "
        f"{load.refused} connections refused after the listener closed, exit code 0")


def check_no_weights(args):
    name = PREFIX + "noweights"
    # No /weights mount and no network: neither the file nor the Hub.
    run("podman", "rm", "-f", name, check=False)
    run("podman", "run", "--name", name, "--network", "none", args.image, check=False,
        timeout=180)
    code = exit_code(name)
    output = logs(name)
    if code == 0:
        fail("started without weights and exited 0")
    if RELEASE_WEIGHTS not in output:
        fail(f"the log does not name the missing weights:\n{output[-2000:]}")
    error_line = next((line for line in output.splitlines() if RELEASE_WEIGHTS in line), "")
    log(f"ok: without weights: exit code {code}; log: {error_line.strip()[:300]}")
    run("podman", "rm", "-f", name, check=False)


def nginx_conf(ports, listen):
    with open("docker/nginx/nginx.conf") as handle:
        conf = handle.read()
    upstreams = "".join(f"        server 127.0.0.1:{p} max_fails=0;\n" for p in ports)
    lines, skipping = [], False
    for line in conf.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("server seresnext-"):
            if not skipping:
                lines.append(upstreams)
                skipping = True
            continue
        if stripped.startswith("listen "):
            line = line.replace(stripped, f"listen 127.0.0.1:{listen};")
        lines.append(line)
    return "".join(lines)


def check_two_replicas_behind_nginx(args, weights_dir, jpeg):
    ports = [free_port(), free_port()]
    names = [PREFIX + "replica-1", PREFIX + "replica-2"]
    for name, port in zip(names, ports):
        start_container(args, name, port, weights_dir)
    for name, port in zip(names, ports):
        wait_ready(f"http://127.0.0.1:{port}", container=name)
    work = tempfile.mkdtemp(prefix="seresnext-nginx-")
    listen = free_port()
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as handle:
        handle.write(nginx_conf(ports, listen).replace(
            "worker_processes auto;", f"worker_processes auto;\npid {work}/nginx.pid;"))
    nginx = subprocess.Popen(["nginx", "-p", work, "-c", conf, "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{listen}"
        wait_ready(base, seconds=20)
        with Load(base, jpeg, clients=6) as load:
            while load.answered() < 10:
                time.sleep(0.1)
            run("podman", "kill", names[0])
            killed_at = load.answered()
            while load.answered() < killed_at + 20:
                time.sleep(0.1)
        failed = {s: n for s, n in load.statuses.items() if s != 200}
        if load.lost or load.refused or failed:
            fail(f"through nginx with a replica killed: lost {load.lost[:3]}, "
                 f"refused {load.refused}, non-200 {failed}")
        log(f"ok: two replicas behind nginx, one killed (SIGKILL) under 6 clients: "
            f"{load.statuses.get(200, 0)} requests, all 200 ({load.answered() - killed_at} "
            f"after the kill), none failed")
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
        for name in names:
            run("podman", "rm", "-f", name, check=False)


def check_compose(args, weights_dir):
    project = ["podman-compose", "-p", "seresnext-it", "-f", "docker/compose.yaml",
               "-f", "docker/compose.test.yaml"]
    env = dict(os.environ, SERESNEXT_WEIGHTS_DIR=weights_dir, SERESNEXT_IMAGE=args.image,
               SERESNEXT_TEST_WEIGHTS=f"/weights/{CONTAINER_WEIGHTS}",
               SERESNEXT_HTTP_PORT=str(free_port()), SERESNEXT_PROMETHEUS_PORT=str(free_port()))
    services = ["seresnext-1", "seresnext-2", "nginx", "prometheus"]
    up = subprocess.run([*project, "up", "-d", *services], env=env, capture_output=True,
                        text=True, timeout=300)
    try:
        if up.returncode != 0:
            fail(f"podman-compose up: {up.stdout[-3000:]}{up.stderr[-3000:]}")
        prometheus = f"http://127.0.0.1:{env['SERESNEXT_PROMETHEUS_PORT']}"
        nginx = f"http://127.0.0.1:{env['SERESNEXT_HTTP_PORT']}"
        deadline = time.monotonic() + 240
        healthy = []
        while time.monotonic() < deadline:
            try:
                status, body = http("GET", f"{prometheus}/api/v1/targets", timeout=5)
                if status == 200:
                    targets = json.loads(body)["data"]["activeTargets"]
                    healthy = sorted(t["labels"]["instance"] for t in targets
                                     if t["health"] == "up")
                    if len(healthy) == 2:
                        break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(2)
        if len(healthy) != 2:
            fail(f"Prometheus scrapes {healthy} as up, want both replicas")
        status, _ = http("GET", f"{nginx}/readyz")
        if status != 200:
            fail(f"nginx /readyz -> {status}")
        query = urllib.request.quote("count(up{job=\"seresnext\"} == 1)")
        _, body = http("GET", f"{prometheus}/api/v1/query?query={query}")
        log(f"ok: compose (docker/compose.yaml + docker/compose.test.yaml, podman-compose): "
            f"two replicas, nginx and Prometheus up; Prometheus scrapes {healthy} as up "
            f"({json.loads(body)['data']['result'][0]['value'][1]} targets with up == 1); "
            f"nginx /readyz 200")
    finally:
        subprocess.run([*project, "down", "-v"], env=env, capture_output=True, timeout=300)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--host-bin", required=True)
    parser.add_argument("--weights", required=True, help="a fixture checkpoint (.pth)")
    parser.add_argument("--jpeg", required=True)
    parser.add_argument("--skip-compose", action="store_true")
    args = parser.parse_args()

    weights_dir = tempfile.mkdtemp(prefix="seresnext-weights-")
    os.chmod(weights_dir, 0o755)
    shutil.copyfile(args.weights, os.path.join(weights_dir, CONTAINER_WEIGHTS))
    os.chmod(os.path.join(weights_dir, CONTAINER_WEIGHTS), 0o644)
    with open(args.jpeg, "rb") as handle:
        jpeg = handle.read()

    name = PREFIX + "main"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        start_container(args, name, port, weights_dir)
        ready = wait_ready(base, container=name)
        log(f"ok: /readyz 200 after {ready:.1f} s, weights mounted read-only at /weights")
        run("podman", "cp", args.jpeg, f"{name}:/tmp/probe.jpg")
        check_user_and_libraries(args, name)
        check_predict_matches_host(args, base, args.weights)
        check_metrics(base)
        check_healthcheck(name)
        check_sigterm_under_load(base, name, jpeg)
        check_no_weights(args)
        check_two_replicas_behind_nginx(args, weights_dir, jpeg)
        if not args.skip_compose:
            check_compose(args, weights_dir)
        log("all image checks passed")
    finally:
        run("podman", "rm", "-f", name, check=False)
        shutil.rmtree(weights_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
