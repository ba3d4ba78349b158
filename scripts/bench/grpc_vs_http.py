#!/usr/bin/env python3
"""KServe V2 over gRPC against KServe V2 over HTTP with binary data, on one
running server, at the same concurrency, interleaved in one run.

    .venv-grpc/bin/python scripts/bench/grpc_vs_http.py \\
        --http localhost:8080 --grpc localhost:8001 --image cat.jpg \\
        [--model gluon_seresnext50_32x4d] [--clients 16] [--seconds 10] [--rounds 3]

Run it with .venv-grpc (make grpc-tools: tritonclient[grpc,http]) against a
release server with `grpc_port` set. Each of `--clients` threads owns one
client (one gRPC channel, or one HTTP connection) and sends one BYTES JPEG
per request, with the probabilities back (FP32 [1,1000]; raw on gRPC, the
binary data extension on HTTP). The protocols alternate, `--rounds` times
`--seconds` each after a warm-up, so a drift in the machine's load hits
both alike. Prints req/s, p50 and p99 latency per protocol.
"""

import argparse
import threading
import time

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient


def grpc_caller(url, model, data):
    client = grpcclient.InferenceServerClient(url)
    tensor = grpcclient.InferInput("image_bytes", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_))
    output = grpcclient.InferRequestedOutput("probabilities")
    return lambda: client.infer(model, [tensor], outputs=[output])


def http_caller(url, model, data):
    client = httpclient.InferenceServerClient(url, connection_timeout=60, network_timeout=60)
    tensor = httpclient.InferInput("image_bytes", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_), binary_data=True)
    output = httpclient.InferRequestedOutput("probabilities", binary_data=True)
    return lambda: client.infer(model, [tensor], outputs=[output])


def phase(factories, seconds):
    """One client per factory, each made and run in its own thread (the
    HTTP client is gevent's, which must stay in the thread that made it),
    for `seconds` once all are connected: latencies and failures."""
    latencies, failures, first_error = [], [0], []
    lock = threading.Lock()
    ready = threading.Barrier(len(factories) + 1)
    deadline = [0.0]

    def run(factory):
        call = factory()
        ready.wait()
        mine, failed = [], 0
        while time.perf_counter() < deadline[0]:
            started = time.perf_counter()
            try:
                call()
                mine.append(time.perf_counter() - started)
            except Exception as error:  # counted, not raised: one failure must not stop the run
                failed += 1
                with lock:
                    if not first_error:
                        first_error.append(repr(error))
        with lock:
            latencies.extend(mine)
            failures[0] += failed

    threads = [threading.Thread(target=run, args=(factory,)) for factory in factories]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    deadline[0] = started + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    if first_error:
        print(f"first failure: {first_error[0]}")
    return latencies, failures[0], time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http", default="localhost:8080")
    parser.add_argument("--grpc", default="localhost:8001")
    parser.add_argument("--model", default="gluon_seresnext50_32x4d")
    parser.add_argument("--image", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = open(args.image, "rb").read()
    callers = {
        "gRPC ModelInfer": [
            lambda: grpc_caller(args.grpc, args.model, data) for _ in range(args.clients)
        ],
        "HTTP V2 binary": [
            lambda: http_caller(args.http, args.model, data) for _ in range(args.clients)
        ],
    }
    for name, protocol in callers.items():
        phase(protocol, min(2.0, args.seconds))  # warm-up: connections, caches
    totals = {name: ([], 0, 0.0) for name in callers}
    for _ in range(args.rounds):
        for name, protocol in callers.items():
            latencies, failures, elapsed = phase(protocol, args.seconds)
            all_latencies, all_failures, all_elapsed = totals[name]
            totals[name] = (all_latencies + latencies, all_failures + failures,
                            all_elapsed + elapsed)
    print(f"{args.clients} concurrent clients, {args.rounds} x {args.seconds:g} s per protocol, "
          f"interleaved; one {len(data)}-byte JPEG per request")
    print(f"{'protocol':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}")
    for name, (latencies, failures, elapsed) in totals.items():
        ms = np.array(latencies) * 1000.0
        rate = len(latencies) / elapsed if elapsed else 0.0
        p50, p99 = (np.percentile(ms, 50), np.percentile(ms, 99)) if len(ms) else (0.0, 0.0)
        print(f"{name:<18}{rate:>9.1f}{p50:>9.1f}{p99:>9.1f}{failures:>8}")


if __name__ == "__main__":
    main()
