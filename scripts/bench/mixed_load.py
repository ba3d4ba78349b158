#!/usr/bin/env python3
"""Mixed-load run (`make mixed-load`, not part of `make test`): a few heavy
requests (40 JPEGs of 7000 x 7000 each) at once beside a stream of one-image
requests, against a release build serving one model on the CPU, 127.0.0.1
only. Shows what fair decode sharing buys the small requests and what the
heavy ones get (answered, refused with 503 + Retry-After, or 504).

    scripts/bench/mixed_load.py --bin target/release/seresnext-serve \
        --weights target/fixtures/models/gluon_seresnext50_32x4d.safetensors \
        --small target/fixtures/photos/<one>.jpg

The small stream (`--small-clients` closed-loop clients) runs for
`--warm-seconds` before the heavy requests come, as a server's steady
traffic would; the mixed window then runs from their arrival until they are
answered, and at least `--min-mixed-seconds`.

Prints: small-request p50/p99 in the mixed window against an idle server's,
heavy requests answered / 503 / 504 / other, images/s in the mixed window
(heavy and small) against the heavy requests alone, and the server's peak
RSS (VmHWM).
Only the standard library and PIL (to make the heavy JPEGs, once, under
target/mixed_load/).
"""

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

MODEL = "gluon_seresnext50_32x4d"


def heavy_jpegs(directory, side, distinct):
    """`distinct` JPEGs of side x side, made once: smooth gradients with a
    little noise, about 0.7 MB each, so 40 fit one request body."""
    from PIL import Image, ImageChops

    os.makedirs(directory, exist_ok=True)
    paths = []
    for seed in range(distinct):
        path = os.path.join(directory, f"heavy_{side}_{seed}.jpg")
        if not os.path.exists(path):
            gradient = Image.linear_gradient("L").resize((side, side))
            noise = Image.effect_noise((side, side), 8 + seed)
            red = ImageChops.add(gradient, noise, scale=2.0)
            green = gradient.rotate(90 * (seed + 1))
            blue = ImageChops.multiply(gradient, noise)
            image = Image.merge("RGB", (red, green, blue))
            image.save(path + ".tmp", "JPEG", quality=60)
            os.replace(path + ".tmp", path)
        paths.append(path)
    return [open(path, "rb").read() for path in paths]


def multipart(images):
    boundary = "mixedloadboundary7f3a"
    parts = []
    for index, data in enumerate(images):
        parts.append(
            (
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"i{index}\"; "
                f"filename=\"i{index}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(url, body, content_type, timeout):
    """(status, seconds, retry_after or None)."""
    request = urllib.request.Request(
        url, data=body, headers={"content-type": content_type}, method="POST"
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status, time.monotonic() - started, None
    except urllib.error.HTTPError as error:
        error.read()
        return error.code, time.monotonic() - started, error.headers.get("retry-after")
    except OSError:
        return 0, time.monotonic() - started, None


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def run_heavy(url, heavy_body, content_type, count, images, timeout):
    """`count` heavy requests at once; their outcomes and the wall time."""
    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        outcomes = list(
            pool.map(lambda _: post(url, heavy_body, content_type, timeout), range(count))
        )
    wall = time.monotonic() - started
    done = sum(1 for status, _, _ in outcomes if status == 200)
    return outcomes, wall, done * images / wall


def summarize_heavy(outcomes):
    counts = {"200": 0, "503": 0, "504": 0, "other": 0}
    retry_afters = []
    for status, _, retry_after in outcomes:
        key = str(status) if str(status) in counts else "other"
        counts[key] += 1
        if status == 503 and retry_after:
            retry_afters.append(retry_after)
    return counts, retry_afters


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default="target/release/seresnext-serve")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--small", required=True, help="the one-image request's file")
    parser.add_argument("--port", type=int, default=18083)
    parser.add_argument("--heavy", type=int, default=4)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--side", type=int, default=7000)
    parser.add_argument("--small-clients", type=int, default=2)
    parser.add_argument("--idle-requests", type=int, default=40)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--max-batch", type=int, default=8, help="the model's max_batch_size")
    parser.add_argument("--max-pass-ms", type=int, default=0, help="the model's max_pass_ms")
    parser.add_argument("--warm-seconds", type=float, default=10.0,
                        help="the small stream runs this long before the heavy requests come")
    parser.add_argument("--min-mixed-seconds", type=float, default=20.0,
                        help="the mixed window lasts at least this long after they come")
    parser.add_argument("--skip-alone", action="store_true", help="skip the heavy-alone phase")
    args = parser.parse_args()

    heavy_images = heavy_jpegs("target/mixed_load", args.side, 4)
    heavy_body, content_type = multipart(
        [heavy_images[i % len(heavy_images)] for i in range(args.images)]
    )
    small_body = open(args.small, "rb").read()
    print(f"heavy request body: {len(heavy_body) / 2**20:.1f} MiB", flush=True)

    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write(
        f"""[server]
host = "127.0.0.1"
port = {args.port}
max_body_bytes = {max(64 << 20, len(heavy_body) + (1 << 20))}
[[models]]
id = "{MODEL}"
weights = "{os.path.abspath(args.weights)}"
device = "cpu"
max_batch_size = {args.max_batch}
max_batch_delay_ms = 2
"""
        # Only when set, so the script also runs an older binary (before/after).
        + (f"max_pass_ms = {args.max_pass_ms}\n" if args.max_pass_ms else "")
    )
    config.close()
    log = open(tempfile.mktemp(suffix=".log"), "w")
    server = subprocess.Popen([args.bin, "serve", "--config", config.name], stderr=log)
    base = f"http://127.0.0.1:{args.port}"
    url = f"{base}/v1/models/{MODEL}:predict"
    try:
        for _ in range(900):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None:
                sys.exit(f"server exited; log in {log.name}")
            time.sleep(0.2)

        idle = [post(url, small_body, "image/jpeg", 30)[1] for _ in range(args.idle_requests)]
        print(f"idle small: p50 {percentile(idle, 0.5) * 1000:.0f} ms, "
              f"p99 {percentile(idle, 0.99) * 1000:.0f} ms", flush=True)

        if not args.skip_alone:
            outcomes, wall, rate = run_heavy(
                url, heavy_body, content_type, args.heavy, args.images, args.max_seconds
            )
            counts, _ = summarize_heavy(outcomes)
            print(f"heavy alone: {json.dumps(counts)} in {wall:.1f} s, {rate:.2f} images/s",
                  flush=True)

        # The small stream is already flowing when the heavy requests come
        # (a server's steady traffic); only what happens from then on counts.
        stop = threading.Event()
        small = []
        lock = threading.Lock()

        def small_client():
            while not stop.is_set():
                sent = time.monotonic()
                status, seconds, _ = post(url, small_body, "image/jpeg", 60)
                with lock:
                    small.append((sent, status, seconds))

        clients = [threading.Thread(target=small_client) for _ in range(args.small_clients)]
        for client in clients:
            client.start()
        time.sleep(args.warm_seconds)
        heavy_sent = time.monotonic()
        outcomes, heavy_wall, _ = run_heavy(
            url, heavy_body, content_type, args.heavy, args.images, args.max_seconds
        )
        rest = args.min_mixed_seconds - (time.monotonic() - heavy_sent)
        if rest > 0:
            time.sleep(rest)
        stop.set()
        for client in clients:
            client.join()
        window = time.monotonic() - heavy_sent
        counts, retry_afters = summarize_heavy(outcomes)
        in_window = [(status, seconds) for sent, status, seconds in small if sent >= heavy_sent]
        ok_small = [seconds for status, seconds in in_window if status == 200]
        heavy_images = counts["200"] * args.images
        total_rate = (heavy_images + len(ok_small)) / window
        print(f"mixed small: {len(ok_small)}/{len(in_window)} answered 200, "
              f"p50 {percentile(ok_small, 0.5) * 1000:.0f} ms, "
              f"p99 {percentile(ok_small, 0.99) * 1000:.0f} ms "
              f"(idle p99 {percentile(idle, 0.99) * 1000:.0f} ms)")
        print(f"mixed heavy: {json.dumps(counts)} (503 Retry-After: {retry_afters}) "
              f"in {heavy_wall:.1f} s")
        print(f"mixed images/s: {total_rate:.2f} over {window:.1f} s "
              f"({heavy_images} heavy, {len(ok_small)} small)")
        print(f"peak RSS: {peak_rss_mib(server.pid)} MiB")
    finally:
        server.terminate()
        server.wait(timeout=60)
        os.unlink(config.name)


if __name__ == "__main__":
    main()
