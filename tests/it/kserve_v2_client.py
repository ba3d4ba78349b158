#!/usr/bin/env python3
"""Drives seresnext-serve's KServe V2 API with the real `tritonclient[http]`.

    kserve_v2_client.py URL IMAGE... [--model ID] [--normalized-dir DIR]

URL is the server (`http://127.0.0.1:8080` or `127.0.0.1:8080`). For each
image it runs, through `tritonclient.http.InferenceServerClient`:

- a `BYTES` input with the encoded file, as binary data and as JSON (the
  JSON element is the file base64-encoded, which is what the server expects);
- an `FP32 [1,3,224,224]` input the client preprocessed itself, as binary
  data and as JSON. The tensor comes from `DIR/<file name>.f32` with
  `--normalized-dir`, else from `<image>.input.f32` beside the image (the
  layout of the test fixtures, timm's own preprocessing), else from PIL and
  numpy here (resize 256 bicubic, center crop 224, ImageNet mean/std);
- the classification extension (`class_count=5`), binary and JSON;
- and one request with every image as a batch.

It prints one JSON document: server and model metadata, readiness, and per
image the probabilities and top-5 of each path. tests/kserve_v2.rs compares
them with the V1 API's answers.
"""

import argparse
import base64
import json
import os
import sys

import numpy as np
import tritonclient.http as httpclient

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
INPUT_SIZE = 224
CROP_PCT = 0.875


def pil_preprocess(path):
    """timm's eval transform with PIL and numpy: CHW float32, normalized."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    scale = int(INPUT_SIZE / CROP_PCT)
    width, height = image.size
    if width <= height:
        size = (scale, int(scale * height / width))
    else:
        size = (int(scale * width / height), scale)
    image = image.resize(size, Image.BICUBIC)
    left = int(round((size[0] - INPUT_SIZE) / 2.0))
    top = int(round((size[1] - INPUT_SIZE) / 2.0))
    image = image.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    return ((pixels - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1).copy()


def normalized_input(path, normalized_dir):
    """(CHW float32 tensor, where it came from)."""
    candidates = []
    if normalized_dir:
        candidates.append((os.path.join(normalized_dir, os.path.basename(path) + ".f32"), "given"))
    candidates.append((path + ".input.f32", "fixture"))
    for candidate, source in candidates:
        if os.path.exists(candidate):
            values = np.fromfile(candidate, dtype="<f4")
            return values.reshape(3, INPUT_SIZE, INPUT_SIZE), source
    return pil_preprocess(path), "pil"


def top5(probabilities):
    order = np.argsort(-probabilities, kind="stable")[:5]
    return [[float(probabilities[i]), int(i)] for i in order]


def parse_classification(strings):
    """Triton's "<probability>:<index>:<label>" strings."""
    parsed = []
    for item in strings:
        text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
        probability, index, label = text.split(":", 2)
        parsed.append([float(probability), int(index), label])
    return parsed


def infer_probabilities(client, model, infer_input, binary_output):
    output = httpclient.InferRequestedOutput("probabilities", binary_data=binary_output)
    result = client.infer(model, [infer_input], outputs=[output])
    probabilities = result.as_numpy("probabilities")
    assert probabilities.dtype == np.float32, probabilities.dtype
    return probabilities


def bytes_input(encoded_images, binary):
    tensor = httpclient.InferInput("image_bytes", [len(encoded_images)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array(encoded_images, dtype=np.object_), binary_data=True)
    else:
        texts = [base64.b64encode(data).decode("ascii") for data in encoded_images]
        tensor.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=False)
    return tensor


def fp32_input(batch, binary):
    tensor = httpclient.InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return tensor


def run_image(client, model, path, normalized_dir):
    with open(path, "rb") as handle:
        encoded = handle.read()
    result = {"image": os.path.basename(path)}
    for binary in (True, False):
        kind = "binary" if binary else "json"
        probabilities = infer_probabilities(client, model, bytes_input([encoded], binary), binary)[0]
        result[f"bytes_{kind}"] = {"probabilities": probabilities.tolist(), "top5": top5(probabilities)}

    tensor, source = normalized_input(path, normalized_dir)
    batch = tensor[np.newaxis].astype(np.float32)
    result["fp32_source"] = source
    for binary in (True, False):
        kind = "binary" if binary else "json"
        probabilities = infer_probabilities(client, model, fp32_input(batch, binary), binary)[0]
        result[f"fp32_{kind}"] = {"probabilities": probabilities.tolist(), "top5": top5(probabilities)}

    for binary in (True, False):
        kind = "binary" if binary else "json"
        output = httpclient.InferRequestedOutput("probabilities", binary_data=binary, class_count=5)
        answer = client.infer(model, [bytes_input([encoded], True)], outputs=[output])
        classes = answer.as_numpy("probabilities")
        assert classes.shape == (1, 5), classes.shape
        result[f"classification_{kind}"] = parse_classification(classes[0])
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", default="gluon_seresnext50_32x4d")
    parser.add_argument("--normalized-dir")
    args = parser.parse_args()
    url = args.url.split("://", 1)[-1].rstrip("/")
    client = httpclient.InferenceServerClient(url=url, network_timeout=120.0)

    report = {
        "server_live": client.is_server_live(),
        "server_ready": client.is_server_ready(),
        "server_metadata": client.get_server_metadata(),
        "model_ready": client.is_model_ready(args.model),
        "unknown_model_ready": client.is_model_ready("no_such_model"),
        "model_metadata": client.get_model_metadata(args.model),
        "images": [run_image(client, args.model, path, args.normalized_dir) for path in args.images],
    }

    # Every image in one request: the server batches them and answers in order.
    encoded = []
    for path in args.images:
        with open(path, "rb") as handle:
            encoded.append(handle.read())
    batch = infer_probabilities(client, args.model, bytes_input(encoded, True), True)
    report["batch_top5"] = [top5(row) for row in batch]

    try:
        client.infer("no_such_model", [bytes_input(encoded[:1], True)])
        report["unknown_model_error"] = None
    except Exception as error:  # tritonclient's InferenceServerException
        report["unknown_model_error"] = {"status": error.status(), "message": error.message()}

    client.close()
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
