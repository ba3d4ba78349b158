#!/usr/bin/env python3
"""Writes the checkpoint fixtures for tests/weights_formats.rs.

Usage: make_weight_fixtures.py OUT_DIR

A small seeded state dict is saved in every format the Rust weights module
reads, by the real torch, so the tests check our parser against what torch
actually writes rather than against our reading of its source:

  tiny.safetensors          safetensors (contiguous copies; the format has no views)
  tiny_zip.pth              torch.save zip format, pickle protocol 2 (the default)
  tiny_zip_proto4.pth       same with pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL, ...)
  tiny_legacy.pth           _use_new_zipfile_serialization=False (pre-1.6 format)
  tiny_wrapped.pth          {"state_dict": sd, "epoch": .., "args": Namespace(..)} (zip)
  tiny_wrapped_legacy.pth   {"model": {"module." + k: v}} (legacy, DataParallel names)
  tiny_expected.json        per tensor: dtype, shape, values (float64 / int) and
                            the contiguous little-endian bytes in hex
"""

import argparse
import collections
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file


def make_state_dict():
    torch.manual_seed(20240601)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 3, 3)
    sd["bn.weight"] = torch.rand(4) + 0.5
    sd["bn.bias"] = torch.randn(4)
    sd["bn.running_mean"] = torch.randn(4)
    sd["bn.running_var"] = torch.rand(4) + 0.1
    # 0-d int64, like every BatchNorm's counter.
    sd["bn.num_batches_tracked"] = torch.tensor(1234567, dtype=torch.long)
    # Non-contiguous: strides (1, 5).
    sd["fc.weight_t"] = torch.randn(3, 5).t()
    # A Parameter pickles through torch._utils._rebuild_parameter.
    sd["fc.bias"] = torch.nn.Parameter(torch.randn(5), requires_grad=False)
    # Two views of one storage; the second starts at element 8.
    shared = torch.randn(20)
    sd["shared.head"] = shared[:6].view(2, 3)
    sd["shared.tail"] = shared[8:20].view(3, 4)
    # A strided view with an offset: every other element from element 1.
    sd["shared.strided"] = shared[1:13:2]
    sd["half.weight"] = torch.randn(2, 3).half()
    sd["bf16.weight"] = torch.randn(3, 2).bfloat16()
    sd["misc.f64"] = torch.randn(3, dtype=torch.float64)
    sd["misc.i64"] = torch.tensor([-3, 0, 2**40, -(2**62)], dtype=torch.long)
    sd["misc.i32"] = torch.tensor([-7, 1 << 20], dtype=torch.int32)
    sd["misc.i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["misc.i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["misc.u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["misc.bool"] = torch.tensor([True, False, True])
    sd["empty"] = torch.zeros(0, 4)
    # nn.Module.state_dict() attaches this; it pickles as a BUILD on the dict.
    sd._metadata = collections.OrderedDict({"": {"version": 2}, "bn": {"version": 2}})
    return sd


def describe(tensor):
    flat = tensor.detach().contiguous().reshape(-1)
    raw = flat.view(torch.uint8).numpy().tobytes()
    if tensor.dtype.is_floating_point:
        values = flat.double().tolist()
    else:
        values = flat.long().tolist()
    return {
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "shape": list(tensor.shape),
        "values": values,
        "hex": raw.hex(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    out = parser.parse_args().out_dir
    out.mkdir(parents=True, exist_ok=True)
    sd = make_state_dict()

    contiguous = {k: v.detach().contiguous().clone() for k, v in sd.items()}
    save_file(contiguous, out / "tiny.safetensors", metadata={"format": "pt"})
    torch.save(sd, out / "tiny_zip.pth")
    torch.save(sd, out / "tiny_zip_proto4.pth", pickle_protocol=4)
    torch.save(sd, out / "tiny_legacy.pth", _use_new_zipfile_serialization=False)
    wrapped = {
        "epoch": 3,
        "arch": "tiny",
        "args": argparse.Namespace(lr=0.1, model="tiny", amp=True),
        "state_dict": sd,
        "version": 2,
    }
    torch.save(wrapped, out / "tiny_wrapped.pth")
    data_parallel = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save({"model": data_parallel, "optimizer": {"state": {}}}, out / "tiny_wrapped_legacy.pth",
               _use_new_zipfile_serialization=False)

    expected = {
        "torch_version": torch.__version__,
        "tensors": {k: describe(v) for k, v in sd.items()},
    }
    (out / "tiny_expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"wrote weight fixtures to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
