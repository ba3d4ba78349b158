"""This machine's fp32 compute ceiling, for the report's roofline line: the
best GFLOP/s of a large single-precision matrix multiply (torch.mm, which
runs oneDNN/MKL's tuned SGEMM) at the benchmark's thread count. No exact
fp32 engine runs a convolution network faster than this per FLOP, so it
bounds the images/s any server can reach on the machine.

    python scripts/bench/ceiling.py --threads 2 [--size 4096 --repeats 5]

Prints one JSON line: {"gflops": ..., "size": ..., "threads": ...}.
"""
import argparse
import json
import time

import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    left = torch.randn(args.size, args.size)
    right = torch.randn(args.size, args.size)
    torch.mm(left, right)  # first call: allocation and kernel selection
    best = 0.0
    for _ in range(args.repeats):
        started = time.perf_counter()
        torch.mm(left, right)
        took = time.perf_counter() - started
        best = max(best, 2 * args.size**3 / took / 1e9)
    print(json.dumps({"gflops": round(best, 1), "size": args.size, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
