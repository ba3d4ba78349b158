"""Python ONNX Runtime forward throughput: the reference for our
`--engine onnxruntime` in `make bench`.

    python scripts/bench/bench_onnxruntime.py --model seresnext50_32x4d --threads 2 --batch-sizes 1,8

The graph is what a Python user would ship: timm's model exported with
`torch.onnx.export` (opset 17, TorchScript exporter, dynamic batch axis), run
by the onnxruntime wheel with ORT_ENABLE_ALL, the given intra-op threads,
one inter-op thread. Like ours, the timed call takes a batch of 8-bit crops
to probabilities: the host-side ToTensor/Normalize (numpy) and the softmax
are inside the timing, as a user's serving code would run them. Prints one
JSON line per batch size, in the shape of `seresnext-serve bench`.
"""
import argparse
import os
import tempfile
import warnings

import numpy as np
import onnxruntime as ort
import timm
import torch
from timing import time_passes

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


def export(model_name, weights, path):
    model = timm.create_model(model_name, pretrained=False)
    if weights:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(weights))
    model.eval()
    example = torch.randn(1, 3, 224, 224)
    # The TorchScript exporter is the one the reference graph came
    # from; torch 2.11 warns that it is no longer the default.
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.onnx.export(model, (example,), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="seresnext50_32x4d")
    parser.add_argument("--weights", help="a timm .safetensors state dict (default: random init)")
    parser.add_argument("--onnx-cache", help="where to keep the exported graph (made if missing)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = args.onnx_cache or os.path.join(directory, "model.onnx")
        if not os.path.exists(path):
            export(args.model, args.weights, path + ".tmp")
            os.replace(path + ".tmp", path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        crops = (np.arange(batch_size * 224 * 224 * 3) % 251).astype(np.uint8)
        crops = crops.reshape(batch_size, 224, 224, 3)

        def step():
            x = (crops.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - MEAN) / STD
            logits = session.run(None, {"input": x})[0]
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        time_passes(step, model=f"onnxruntime/{args.model}", device="cpu", batch_size=batch_size,
                    warmup=args.warmup, iterations=args.iterations)


if __name__ == "__main__":
    main()
