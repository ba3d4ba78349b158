"""The timing loop of the Python in-process references (bench_timm.py,
bench_onnxruntime.py): the same warm-up, timed passes and JSON line as
`seresnext-serve bench`, so the figures compare one to one."""

import json
import time


def time_passes(step, *, model, device, batch_size, warmup, iterations):
    """Runs `step` `warmup` times untimed, then `iterations` times timed, and
    prints one JSON line: img/s over the timed passes, p50/p90/min of one."""
    for _ in range(warmup):
        step()
    times = []
    started = time.perf_counter()
    for _ in range(max(1, iterations)):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    times.sort()

    def at(q):
        return times[round((len(times) - 1) * q)] * 1e3

    print(json.dumps({
        "model": model, "device": device, "batch_size": batch_size,
        "iterations": len(times), "images_per_second": batch_size * len(times) / total,
        "p50_ms": at(0.5), "p90_ms": at(0.9), "min_ms": times[0] * 1e3,
    }), flush=True)
