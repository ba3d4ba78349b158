"""The LitServe peer of `make bench`: timm's seresnext50_32x4d behind LitServe.

    python scripts/bench/litserve_server.py --port 8000 --threads 2 --max-batch-size 8

Written as a LitServe user writes one: the request is JSON
`{"image": "<base64 JPEG>"}`, decoded with PIL and preprocessed with timm's
own eval transform (`resolve_data_config` + `create_transform`); the model
answers softmax top-5 with labels. Dynamic batching is on (`max_batch_size`,
`batch_timeout`). The CPU inference worker runs with `torch.set_num_threads`.

--weights loads a timm state dict (the fixture `.safetensors`); without it
the model is randomly initialised (timing does not depend on the values).
With $BENCH_BATCH_STATS set, the worker keeps "<images> <batches>" in that
file after every batch, so the runner can report the mean batch size.
"""

import argparse
import base64
import io
import os

import litserve as ls

TOP_K = 5


class SEResNeXtAPI(ls.LitAPI):
    """Decode, preprocess and batch images; answer top-5 per image."""

    def __init__(self, args, **kwargs):
        super().__init__(**kwargs)
        self.args = args
        self.stats_path = os.environ.get("BENCH_BATCH_STATS")
        self.images = 0
        self.batches = 0

    def setup(self, device):
        # torch and timm are imported in the inference worker only, so the
        # HTTP server processes stay as small as LitServe makes them.
        import timm  # noqa: PLC0415
        import torch  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        self.torch, self.image_module = torch, Image
        if self.args.threads:
            torch.set_num_threads(self.args.threads)
        model = timm.create_model(self.args.model, pretrained=False, checkpoint_path=self.args.weights or "")
        self.model = model.eval().to(device)
        self.device = device
        config = timm.data.resolve_data_config({}, model=self.model)
        self.transform = timm.data.create_transform(**config, is_training=False)
        self.labels = timm.data.ImageNetInfo()

    def decode_request(self, request, **kwargs):
        data = base64.b64decode(request["image"])
        image = self.image_module.open(io.BytesIO(data)).convert("RGB")
        return self.transform(image)

    def predict(self, x, **kwargs):
        with self.torch.inference_mode():
            probabilities = self.model(x.to(self.device)).softmax(-1)
            top = probabilities.topk(TOP_K, dim=-1)
        self._count(len(x))
        return [
            [
                {
                    "class_id": int(c),
                    "label": self.labels.index_to_description(int(c)),
                    "probability": float(p),
                }
                for p, c in zip(values, indices, strict=True)
            ]
            for values, indices in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]

    def encode_response(self, output, **kwargs):
        return {"top_k": output}

    def _count(self, images):
        self.images += images
        self.batches += 1
        if self.stats_path:
            with open(self.stats_path, "w", encoding="utf-8") as stats:
                stats.write(f"{self.images} {self.batches}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", default="seresnext50_32x4d")
    parser.add_argument("--weights", default="")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--batch-timeout-ms", type=float, default=2.0)
    args = parser.parse_args()
    api = SEResNeXtAPI(args, max_batch_size=args.max_batch_size, batch_timeout=args.batch_timeout_ms / 1e3)
    server = ls.LitServer(api, accelerator=args.device, devices=1, workers_per_device=1)
    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)


if __name__ == "__main__":
    main()
