"""timm eager forward throughput, the in-process reference for `seresnext-serve bench`.

    python scripts/bench/bench_timm.py --model seresnext50_32x4d --threads 2 --batch-sizes 1,8

Prints one JSON line per batch size, in the same shape as the Rust bench.
Options: --channels-last, --amp (CUDA autocast fp16), --device cpu|cuda,
--no-cudnn-benchmark. cuDNN benchmark mode is on for CUDA by default, as in our
server (src/model/mod.rs): without it timm runs cuDNN's heuristic choice of
convolution algorithm, and the comparison would flatter us.
"""
import argparse

import timm
import torch
from timing import time_passes


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="seresnext50_32x4d")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--weights", help="a .safetensors state dict (default: timm's random init)")
    parser.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=None,
                        help="autotune convolution algorithms per shape (default: on for CUDA)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # Each batch size is a new shape: its warm-up passes carry the autotuning.
    torch.backends.cudnn.benchmark = (device.type == "cuda" if args.cudnn_benchmark is None
                                      else args.cudnn_benchmark)
    model = timm.create_model(args.model, pretrained=False)
    if args.weights:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.weights))
    model = model.eval().to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        x = torch.randn(batch_size, 3, 224, 224, device=device)
        if args.channels_last:
            x = x.to(memory_format=torch.channels_last)

        def step():
            with torch.inference_mode(), torch.autocast(device.type, enabled=args.amp):
                out = model(x).softmax(-1).float().cpu()
            return out

        time_passes(step, model=f"timm/{args.model}", device=args.device, batch_size=batch_size,
                    warmup=args.warmup, iterations=args.iterations)


if __name__ == "__main__":
    main()
