"""Makes the parity fixtures the Rust tests compare against, with the venv's timm.

    python scripts/make_fixtures.py OUT_DIR

For each of the three models it writes seeded random-init weights (BatchNorm
statistics calibrated on real photos, gammas and betas perturbed so every layer
matters, and a classifier aimed so each photo gets its own top class) as
`.safetensors`, zip `.pth` and legacy (pre-1.6) `.pth`. It saves sample photos
that ship with scikit-image, timm's eval transform of each, and timm's logits
and probabilities. Tensors are raw little-endian float32 files described by
`manifest.json`.
"""
import io
import json
import pathlib
import sys

import numpy as np
import PIL.Image
import PIL.ImageOps
import safetensors.torch
import skimage.data
import timm
import timm.data
import torch

MODELS = {
    "gluon_seresnext50_32x4d": "seresnext50_32x4d",
    "gluon_seresnext101_32x4d": "seresnext101_32x4d",
    "gluon_seresnext101_64x4d": "seresnext101_64x4d",
}
# One distinct class per photo, so a swapped or broken pipeline changes top-1.
AIMED_CLASSES = [285, 504, 1, 812, 409, 948, 17]
EXIF_ORIENTATION = 0x0112


def save_photos(out: pathlib.Path):
    """Writes the photos the way users send them: JPEG and PNG, colour, gray,
    RGBA, and a JPEG stored sideways with EXIF orientation 6."""
    photos = {}

    def put(name, image, **save_args):
        path = out / name
        image.save(path, **save_args)
        photos[name] = path

    put("chelsea.jpg", PIL.Image.fromarray(skimage.data.chelsea()), quality=90)
    put("coffee.jpg", PIL.Image.fromarray(skimage.data.coffee()), quality=90)
    put("rocket.jpg", PIL.Image.fromarray(skimage.data.rocket()), quality=90)
    put("astronaut_progressive.jpg", PIL.Image.fromarray(skimage.data.astronaut()),
        quality=90, progressive=True)
    put("camera_gray.png", PIL.Image.fromarray(skimage.data.camera()))
    put("logo_rgba.png", PIL.Image.fromarray(skimage.data.logo()))
    # Stored rotated; orientation 6 tells a viewer to turn it 90° clockwise
    # back to upright, so its reference is chelsea.jpg's upright pixels.
    upright = PIL.Image.fromarray(skimage.data.chelsea())
    stored = upright.transpose(PIL.Image.Transpose.ROTATE_90)
    exif = PIL.Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    put("chelsea_exif6.jpg", stored, quality=90, exif=exif.tobytes())
    return photos


def load_upright(path):
    image = PIL.Image.open(path)
    return PIL.ImageOps.exif_transpose(image).convert("RGB")


def calibrate_and_aim(model, batch, generator):
    """Gives every BatchNorm non-trivial affine parameters and statistics from
    real activations, then aims the classifier at one class per photo."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            # Residual branches end small, as in trained ResNets, so the random
            # net is not chaotic: tiny decoder differences stay tiny.
            low, high = (0.1, 0.3) if name.endswith("bn3") else (0.6, 1.4)
            module.weight.data.uniform_(low, high, generator=generator)
            module.bias.data.normal_(0.0, 0.1, generator=generator)
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration pass
    model.train()
    with torch.no_grad():
        model(torch.cat([batch, batch.flip(-1)]))
    model.eval()
    with torch.no_grad():
        features = model.forward_head(model.forward_features(batch), pre_logits=True)
        fc = model.fc
        fc.weight.data.normal_(0.0, 0.5 / features.shape[1] ** 0.5, generator=generator)
        fc.bias.data.zero_()
        # Rows solving features @ aimed.T = 8·I: photo i scores 8 on its own
        # class and 0 on the other photos' classes.
        aimed = 8.0 * torch.linalg.pinv(features).T
        for photo, cls in enumerate(AIMED_CLASSES[: len(batch)]):
            fc.weight.data[cls] += aimed[photo]


def write_f32(path: pathlib.Path, tensor: torch.Tensor):
    array = tensor.detach().to(torch.float32).contiguous().numpy()
    path.write_bytes(array.astype("<f4").tobytes())
    return list(array.shape)


def main():
    out = pathlib.Path(sys.argv[1])
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "models").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(2)
    photos = save_photos(out / "photos")
    manifest = {"photos": [], "models": {}}

    reference = timm.create_model("seresnext50_32x4d", pretrained=False)
    transform = timm.data.create_transform(
        **timm.data.resolve_data_config({}, model=reference))
    inputs = []
    for name, path in photos.items():
        tensor = transform(load_upright(path))
        inputs.append(tensor)
        shape = write_f32(out / "photos" / f"{name}.input.f32", tensor)
        manifest["photos"].append({"file": f"photos/{name}", "input": f"photos/{name}.input.f32",
                                   "input_shape": shape})
    batch = torch.stack(inputs)
    write_f32(out / "inputs.f32", batch)
    manifest["inputs"] = {"file": "inputs.f32", "shape": list(batch.shape)}
    # The EXIF photo is chelsea again: aim with the distinct photos only.
    distinct = torch.stack([t for (n, _), t in zip(photos.items(), inputs) if "exif" not in n])

    for seed, (model_id, timm_name) in enumerate(MODELS.items()):
        generator = torch.Generator().manual_seed(1000 + seed)
        torch.manual_seed(1000 + seed)
        model = timm.create_model(timm_name, pretrained=False)
        calibrate_and_aim(model, distinct, generator)
        state = model.state_dict()
        models = out / "models"
        safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()},
                                    models / f"{model_id}.safetensors")
        torch.save(state, models / f"{model_id}_zip.pth")
        torch.save(state, models / f"{model_id}_legacy.pth", _use_new_zipfile_serialization=False)
        with torch.no_grad():
            logits = model(batch)
        write_f32(models / f"{model_id}.logits.f32", logits)
        write_f32(models / f"{model_id}.probs.f32", logits.softmax(-1))
        manifest["models"][model_id] = {
            "safetensors": f"models/{model_id}.safetensors",
            "zip": f"models/{model_id}_zip.pth",
            "legacy": f"models/{model_id}_legacy.pth",
            "logits": f"models/{model_id}.logits.f32",
            "probs": f"models/{model_id}.probs.f32",
            "top1": logits.argmax(-1).tolist(),
        }
        print(model_id, "top1 per photo:", logits.argmax(-1).tolist(),
              "max prob:", [round(p, 3) for p in logits.softmax(-1).max(-1).values.tolist()])
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
