#!/usr/bin/env python3
"""Makes the three models' weights on the GPU machine, with its own timm.

    python3 scripts/gpu/make_weights.py OUT_DIR PHOTO_DIR

The bundle carries no weights (they are 110 to 350 MB each); the GPU machine
has torch, timm and safetensors but no network. So each model is timm's
random init under a fixed seed, saved as `<model id>.safetensors` with timm's
key names, as `make fixtures` saves them (scripts/fixtures/make_fixtures.py).

A bare random init would make a poor parity check: its probabilities are
nearly uniform, so fp16 rounding could swap a top-1 that no real model would.
As in make_fixtures.py, the BatchNorm statistics are calibrated on the
bundle's photos and the classifier is aimed so that each photo gets its own
top class with a wide margin: a top-1 that changes then means a broken
pipeline, not noise. Runs on the CPU (a few seconds per model on 16 cores).

A file already there from an earlier run on the same photos is kept.
"""
import json
import os
import pathlib
import sys
import time

import safetensors.torch
import timm
import timm.data
import torch

# Beside this script in the bundle, in scripts/fixtures/ in the repo.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fixtures"))
from calibration import AIMED_CLASSES, calibrate_and_aim, load_upright  # noqa: E402

MODELS = {
    "gluon_seresnext50_32x4d": "seresnext50_32x4d",
    "gluon_seresnext101_32x4d": "seresnext101_32x4d",
    "gluon_seresnext101_64x4d": "seresnext101_64x4d",
}

def main():
    out, photo_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    # The EXIF copy of chelsea is the same picture: aim with distinct photos only.
    photos = sorted(p for p in photo_dir.iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png") and "exif" not in p.name)
    if not photos:
        sys.exit(f"make_weights.py: no photos in {photo_dir}")
    photos = photos[: len(AIMED_CLASSES)]
    stamp = {"photos": [p.name for p in photos], "torch": torch.__version__,
             "timm": timm.__version__}
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    reference = timm.create_model("seresnext50_32x4d", pretrained=False)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=reference))
    batch = torch.stack([transform(load_upright(p)) for p in photos])

    for seed, (model_id, timm_name) in enumerate(MODELS.items()):
        target = out / f"{model_id}.safetensors"
        stamp_file = out / f"{model_id}.stamp.json"
        if target.exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
            print(f"{model_id}: kept {target}", flush=True)
            continue
        started = time.monotonic()
        generator = torch.Generator().manual_seed(1000 + seed)
        torch.manual_seed(1000 + seed)
        model = timm.create_model(timm_name, pretrained=False)
        calibrate_and_aim(model, batch, generator)
        with torch.no_grad():
            probs = model(batch).softmax(-1)
        partial = target.with_suffix(".partial")
        safetensors.torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()},
                                    partial)
        partial.rename(target)
        stamp_file.write_text(json.dumps(stamp))
        top = probs.max(-1)
        print(f"{model_id}: wrote {target} in {time.monotonic() - started:.1f} s; top-1 per photo "
              f"{top.indices.tolist()}, p {[round(p, 3) for p in top.values.tolist()]}", flush=True)


if __name__ == "__main__":
    main()
