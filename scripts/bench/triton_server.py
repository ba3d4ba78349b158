"""The Triton peer of `make bench`: timm's seresnext50_32x4d behind NVIDIA Triton.

    target/bench-tools/triton-venv/bin/python scripts/bench/triton_server.py \\
        --port 8000 --metrics-port 8002 --grpc-port 8001 --threads 2 \\
        --weights target/fixtures/models/gluon_seresnext50_32x4d.safetensors

Written as a PyTriton user writes one: PyTriton 0.7.0 starts the tritonserver
2.51 it bundles (its C++ HTTP/gRPC front ends and dynamic batcher) and binds a
Python callable as model `seresnext50`, here on CPU.

Request (KServe V2, binary tensor data extension): one BYTES input `image` of
shape [1, 1] holding the raw JPEG/PNG file. The callable decodes each image with
PIL, preprocesses it with timm's own eval transform (`resolve_data_config` +
`create_transform`), runs the batch under `torch.inference_mode`, and answers
softmax top-5 per image: `top5_index` INT64 [1, 5] (ImageNet class ids) and
`top5_prob` FP32 [1, 5], highest first. scripts/bench/triton_request.py writes
such a request.

Batching: max batch size --max-batch-size (8), queue delay --batch-delay-ms (5);
PyTriton also sets preferred_batch_size [max]. The metrics port counts images
(`nv_inference_count`) and batches (`nv_inference_exec_count`).

--weights loads a timm state dict (the fixture `.safetensors`); without it the
model is randomly initialised (timing does not depend on the values).

The model is ready when GET /v2/models/seresnext50/ready answers 200
(/v2/health/ready turns 200 before the model is loaded).

Stopping: SIGTERM or SIGINT to this process, or SIGTERM to its whole process
group, stops Triton cleanly (about 8 s) and removes PyTriton's workspace, which
lives in $PYTRITON_HOME or, when unset, in a temporary folder made here. For
that, the process started is a small supervisor that runs the server proper as
its child in a session of its own (see supervise()).
"""

import argparse
import io
import logging
import os
import shutil
import signal
import sys
import sysconfig
import tempfile
import time

MODEL_NAME = "seresnext50"
TOP_K = 5


def fix_libpython_path():
    """Make Triton's Python backend stub load this interpreter's libpython.

    The stub links `libpython3.X.so.1.0` through the loader path, which can find
    the system Python's library (same soname, another build, another standard
    library); model load then fails in the stub. Putting this interpreter's own
    library folder first in LD_LIBRARY_PATH, which tritonserver inherits, fixes it.
    """
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and os.path.exists(os.path.join(libdir, soname)):
        rest = os.environ.get("LD_LIBRARY_PATH")
        os.environ["LD_LIBRARY_PATH"] = libdir + (":" + rest if rest else "")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000, help="HTTP port")
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--host", default="127.0.0.1", help="address the HTTP and gRPC front ends bind to")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--model", default="seresnext50_32x4d", help="timm model name")
    parser.add_argument("--weights", default="", help="timm state dict (.safetensors or .pth)")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-delay-ms", type=float, default=5.0, help="dynamic batcher max queue delay")
    parser.add_argument("--verbose", action="store_true", help="PyTriton debug logs and tritonserver output")
    return parser.parse_args()


class SEResNeXt:
    """timm's model, preprocessing and a batched top-5 infer function."""

    def __init__(self, args):
        import timm  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        self.torch, self.image_module = torch, Image
        if args.threads:
            torch.set_num_threads(args.threads)
        model = timm.create_model(args.model, pretrained=False, checkpoint_path=args.weights or "")
        self.model = model.eval()
        config = timm.data.resolve_data_config({}, model=self.model)
        self.transform = timm.data.create_transform(**config, is_training=False)

    def decode(self, data):
        image = self.image_module.open(io.BytesIO(bytes(data))).convert("RGB")
        return self.transform(image)

    def infer(self, image):
        """image: BYTES [n, 1] → top5_index INT64 [n, 5], top5_prob FP32 [n, 5]."""
        import numpy as np  # noqa: PLC0415

        x = self.torch.stack([self.decode(row[0]) for row in image])
        with self.torch.inference_mode():
            top = self.model(x).softmax(-1).topk(TOP_K, dim=-1)
        return {
            "top5_index": top.indices.numpy().astype(np.int64),
            "top5_prob": top.values.numpy().astype(np.float32),
        }


class Stop(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM/SIGINT: PyTriton's serve() stops
    Triton on KeyboardInterrupt, and the `with` block does at any other point."""


STOPPING = []  # not empty once a signal asked for the stop


def on_signal(signum, _frame):
    STOPPING.append(signum)
    # One stop is enough: a second signal while Triton shuts down would
    # interrupt the shutdown and leave tritonserver behind.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("triton_server").info("signal %d: stopping Triton", signum)
    raise Stop


WORKER_ENV = "TRITON_SERVER_WORKER"
STOP_TIMEOUT_S = 60


def supervise():
    """Run this script again as the server, in a session of its own; pass it SIGTERM/SIGINT.

    Callers stop the server with SIGTERM to its process group. Sent to the
    server itself, that signal would also reach the processes PyTriton starts
    (tritonserver, the Python backend stub, the tensor store): killed before
    PyTriton stops Triton, they fail the requests in flight, and tritonserver
    waits out its 30 s exit timeout for the dead model. So this small process
    leads the caller's group, the server runs in a new session below it (still
    its child, so a process-tree RSS count sees it), and a signal here becomes
    one SIGTERM to the server, which stops Triton in order. Should this process
    be killed outright, the kernel sends the server SIGTERM (PR_SET_PDEATHSIG).
    """
    import ctypes  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    parent = os.getpid()

    def die_with_parent():
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    child = subprocess.Popen(
        [sys.executable, *sys.argv],
        env=dict(os.environ, **{WORKER_ENV: "1"}),
        start_new_session=True,
        preexec_fn=die_with_parent,  # noqa: PLW1509 (no threads here)
    )
    deadline = None

    def forward(_signum, _frame):
        nonlocal deadline
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            code = child.wait(timeout=1)
            return code if code >= 0 else 128 - code
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() > deadline:
                print(f"triton_server: not stopped after {STOP_TIMEOUT_S} s, killing it", file=sys.stderr)
                os.killpg(child.pid, signal.SIGKILL)
                deadline = None


def main():
    args = parse_args()
    if os.environ.get(WORKER_ENV) != "1":
        return supervise()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    log = logging.getLogger("triton_server")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    own_home = None
    if not os.environ.get("PYTRITON_HOME"):
        own_home = tempfile.mkdtemp(prefix="pytriton-")
        os.environ["PYTRITON_HOME"] = own_home  # read when pytriton is imported
    fix_libpython_path()

    started = time.monotonic()
    try:
        import numpy as np  # noqa: PLC0415
        from pytriton.decorators import batch  # noqa: PLC0415
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor  # noqa: PLC0415
        from pytriton.triton import Triton, TritonConfig  # noqa: PLC0415

        net = SEResNeXt(args)
        log.info("model %s loaded in %.1f s", args.model, time.monotonic() - started)

        @batch
        def infer(image):
            return net.infer(image)

        config = TritonConfig(
            http_address=args.host,
            http_port=args.port,
            grpc_address=args.host,
            grpc_port=args.grpc_port,
            metrics_port=args.metrics_port,
            allow_gpu_metrics=False,
        )
        with Triton(config=config) as triton:
            triton.bind(
                model_name=MODEL_NAME,
                infer_func=infer,
                inputs=[Tensor(name="image", dtype=np.bytes_, shape=(1,))],
                outputs=[
                    Tensor(name="top5_index", dtype=np.int64, shape=(TOP_K,)),
                    Tensor(name="top5_prob", dtype=np.float32, shape=(TOP_K,)),
                ],
                config=ModelConfig(
                    max_batch_size=args.max_batch_size,
                    batcher=DynamicBatcher(max_queue_delay_microseconds=int(args.batch_delay_ms * 1000)),
                ),
                strict=True,
            )
            log.info("Triton serving %s after %.1f s", MODEL_NAME, time.monotonic() - started)
            # serve() returns when tritonserver or the model's proxy dies;
            # leaving the `with` stops Triton either way.
            triton.serve()
        if STOPPING:
            log.info("Triton stopped")
            return 0
        log.error("Triton or the model's proxy ended by itself")
        return 1
    except KeyboardInterrupt:
        log.info("Triton stopped")
        return 0
    finally:
        if own_home:
            shutil.rmtree(own_home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
