#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets into fuzz/regression/<target>/.

Usage: .venv/bin/python scripts/make_fuzz_seeds.py [WEIGHT_FIXTURES_DIR]

Seeds are small valid inputs of every shape a parser accepts, so the fuzzer
starts from deep inside each format instead of having to discover a PNG
signature or a multipart boundary by chance. They are committed (next to the
crash reproducers that `make fuzz` finds), and tests/fuzz_regression.rs
replays all of them in `make test`. The input layouts (what the `\\n`-separated
lines mean) are those of src/http/fuzz.rs.

WEIGHT_FIXTURES_DIR (default target/fixtures/weights, written by `make
fixtures`) supplies the checkpoint seeds: real torch output in every format.
"""

import base64
import io
import json
import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "regression"


def write(target, name, data):
    path = OUT / target / f"seed-{name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def picture(mode="RGB", size=(12, 9)):
    """A small image with some structure, so encoders do real work."""
    image = Image.new("RGB", size)
    image.putdata([((x * 37) % 256, (y * 61) % 256, ((x + y) * 23) % 256)
                   for y in range(size[1]) for x in range(size[0])])
    return image.convert(mode)


def encode(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def images():
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    frame2 = picture("P")
    gif = io.BytesIO()
    picture("P").save(gif, "GIF", save_all=True, append_images=[frame2], duration=10)
    return {
        "baseline.jpg": encode(picture(), "JPEG", quality=80),
        "progressive.jpg": encode(picture(), "JPEG", progressive=True),
        "gray.jpg": encode(picture("L"), "JPEG"),
        "exif6.jpg": encode(picture(), "JPEG", exif=exif.tobytes()),
        "rgb.png": encode(picture(), "PNG"),
        "rgba.png": encode(picture("RGBA"), "PNG"),
        "gray16.png": encode(picture("I;16"), "PNG"),
        "palette.png": encode(picture("P"), "PNG"),
        "lossy.webp": encode(picture(), "WEBP", quality=60),
        "lossless.webp": encode(picture("RGBA"), "WEBP", lossless=True),
        "rgb.bmp": encode(picture(), "BMP"),
        "animated.gif": gif.getvalue(),
    }


def main():
    weights_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/fixtures/weights"
    imgs = images()
    png = imgs["rgb.png"]
    b64 = base64.b64encode(png).decode()

    for name, data in imgs.items():
        write("preprocess", name, data)

    json_bodies = {
        "image.json": {"instances": [{"image": {"b64": b64}}]},
        "three-shapes.json": {
            "instances": [{"b64": b64}, {"image_bytes": {"b64": b64}}, {"image": {"b64": b64}}],
            "parameters": {"top_k": 3, "timeout_ms": 250},
        },
        "data-url.json": {"instances": [{"b64": "data:image/png;base64," + b64}]},
        "url-safe.json": {
            "instances": [{"b64": base64.urlsafe_b64encode(png).decode().rstrip("=")}]
        },
    }
    for name, body in json_bodies.items():
        write("json", name, json.dumps(body).encode())

    boundary = b"XBOUNDARYX"
    parts = b""
    for index, (name, data) in enumerate([("a.png", png), ("b.jpg", imgs["baseline.jpg"])]):
        parts += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"f%d\"; "
                  b"filename=\"%s\"\r\nContent-Type: image/png\r\n\r\n" % (index, name.encode()))
        parts += data + b"\r\n"
    parts += b"--" + boundary + b"--\r\n"
    write("multipart", "two-parts", boundary + b"\n" + parts)

    # predict_request: segment, query, timeout header, content type, body.
    head = b"gluon_seresnext50_32x4d:predict\ntop_k=3\n250\n"
    write("predict_request", "raw", head + b"image/png\n" + png)
    write("predict_request", "no-content-type", b"m:predict\n\n\n\n" + imgs["rgb.bmp"])
    write("predict_request", "json", head + b"application/json\n"
          + json.dumps(json_bodies["three-shapes.json"]).encode())
    write("predict_request", "multipart", head
          + b"multipart/form-data; boundary=" + boundary + b"\n" + parts)

    # v2_infer: Inference-Header-Content-Length (empty: none), then the body.
    v2_json = {
        "id": "seed",
        "inputs": [{"name": "image_bytes", "shape": [1], "datatype": "BYTES", "data": [b64]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 3}}],
    }
    write("v2_infer", "json", b"\n" + json.dumps(v2_json).encode())
    elements = b"".join(len(d).to_bytes(4, "little") + d for d in (png, imgs["baseline.jpg"]))
    header = json.dumps({
        "inputs": [{"name": "image_bytes", "shape": [2, 1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(elements)}}],
        "parameters": {"binary_data_output": True},
    }).encode()
    write("v2_infer", "binary", str(len(header)).encode() + b"\n" + header + elements)
    fp32 = json.dumps({
        "inputs": [{"name": "input", "shape": [1, 3, 224, 224], "datatype": "FP32",
                    "parameters": {"binary_data_size": 16}}],
    }).encode()
    write("v2_infer", "bad-fp32-short", str(len(fp32)).encode() + b"\n" + fp32 + bytes(16))

    for path in sorted(weights_dir.glob("*")):
        if path.suffix in (".pth", ".safetensors"):
            shutil.copyfile(path, OUT / "weights" / f"seed-{path.name}")


if __name__ == "__main__":
    main()
