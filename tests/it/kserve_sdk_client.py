#!/usr/bin/env python3
"""Drives seresnext-serve's V1 and V2 APIs with KServe's own Python SDK.

    kserve_sdk_client.py URL NORMALIZED IMAGE... [--model ID]

URL is the server (`http://127.0.0.1:8080`). NORMALIZED holds the FP32
tensor `[N, 3, 224, 224]` (little-endian) of the N images, prepared as the
server prepares uploads. Run with .venv-kserve (`make kserve-tools`).

Everything goes through `kserve.InferenceRESTClient` (httpx, async):

- V2: server readiness, model readiness (ours and an unknown model's); one
  request with every image as a `BYTES` input, in binary data and in JSON
  (base64 elements, which is what the server expects), one with the `FP32`
  tensor in binary data and in JSON, one with the classification extension;
  a request dict that adds `model_version`; and the refusals of a body
  naming another model or version, and of an unknown model.
- V1: model readiness and `:predict` with base64 images, every class.

The SDK has no REST call for metadata, so `GET /v2` and `GET /v2/models/ID`
go through httpx and are parsed with the SDK's own response models
(`kserve.protocol.rest.v2_datamodels`), which reject a wrong shape.

It prints one JSON document; tests/it/kserve_sdk.rs checks it against the
V1 API's answers.
"""

import argparse
import asyncio
import base64
import importlib.metadata
import json
import sys

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput
from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse, ServerMetadataResponse

INPUT_SIZE = 224
CLASSES = 1000


def bytes_input(encoded, binary):
    tensor = InferInput("image_bytes", [len(encoded)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array(encoded, dtype=np.object_), binary_data=True)
    else:
        texts = [base64.b64encode(data).decode("ascii") for data in encoded]
        tensor.set_data_from_numpy(np.array(texts, dtype=np.object_), binary_data=False)
    return tensor


def fp32_input(batch, binary):
    tensor = InferInput("input", list(batch.shape), "FP32")
    tensor.set_data_from_numpy(batch, binary_data=binary)
    return tensor


def probabilities_output(binary, classification=None):
    parameters = {"binary_data": binary}
    if classification:
        parameters["classification"] = classification
    return RequestedOutput("probabilities", parameters=parameters)


def probabilities_of(response):
    """The response's `probabilities` as rows of floats, checked."""
    output = response.get_output_by_name("probabilities")
    values = output.as_numpy()
    assert output.datatype == "FP32" and values.dtype == np.float32, output.datatype
    return values.tolist()


def parse_classification(rows):
    """Triton's "<probability>:<class id>:<label>" strings, per image."""
    parsed = []
    for row in rows:
        entries = []
        for item in row:
            text = item.decode("utf-8") if isinstance(item, bytes) else str(item)
            probability, index, label = text.split(":", 2)
            entries.append([float(probability), int(index), label])
        parsed.append(entries)
    return parsed


async def refusal(call):
    """{"status", "error", "error_type"} of a call the server must refuse."""
    try:
        await call
    except httpx.HTTPStatusError as error:
        body = error.response.json()
        return {
            "status": error.response.status_code,
            "error": body.get("error"),
            "error_type": body.get("error_type"),
        }
    return None


async def run_v2(url, model, encoded, batch):
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=120))
    report = {
        "server_live": await client.is_server_live(url),
        "server_ready": await client.is_server_ready(url),
        "model_ready": await client.is_model_ready(url, model),
        "unknown_model_ready": await client.is_model_ready(url, "no_such_model"),
    }
    async with httpx.AsyncClient(timeout=60) as http:
        for key, path, schema in (
            ("server_metadata", "/v2", ServerMetadataResponse),
            ("model_metadata", f"/v2/models/{model}", ModelMetadataResponse),
        ):
            answer = (await http.get(url + path)).raise_for_status()
            report[key] = schema.model_validate_json(answer.content).model_dump()

    async def infer(tensor, binary, request_id, classification=None):
        output = probabilities_output(binary, classification)
        request = InferRequest(model, [tensor], request_id=request_id, request_outputs=[output])
        response = await client.infer(url, request, model_name=model)
        assert response.id == request_id, (response.id, request_id)
        assert response.model_name == model, response.model_name
        return response

    for kind, binary in (("binary", True), ("json", False)):
        response = await infer(bytes_input(encoded, binary), binary, f"bytes-{kind}")
        report[f"bytes_{kind}"] = probabilities_of(response)
        response = await infer(fp32_input(batch, binary), binary, f"fp32-{kind}")
        report[f"fp32_{kind}"] = probabilities_of(response)
    response = await infer(bytes_input(encoded, True), True, "classification", classification=5)
    output = response.get_output_by_name("probabilities")
    assert output.datatype == "BYTES", output.datatype
    assert output.shape == [len(encoded), 5], output.shape
    report["classification"] = parse_classification(output.as_numpy())

    # A request dict, as the SDK also takes, with the version the metadata
    # reports; InferRequest.to_rest() itself sends only model_name.
    one_image = [bytes_input(encoded[:1], False)]
    request, _ = InferRequest(model, one_image).to_rest()
    request["model_version"] = report["model_metadata"]["versions"][0]
    answer = await client.infer(url, request, model_name=model)
    report["with_model_version"] = probabilities_of(answer)

    other_model = InferRequest("gluon_seresnext101_32x4d", one_image)
    other_version = dict(request, model_version="7")
    unknown = InferRequest("no_such_model", one_image)
    report["errors"] = {
        "other_model": await refusal(client.infer(url, other_model, model_name=model)),
        "other_version": await refusal(client.infer(url, other_version, model_name=model)),
        "unknown_model": await refusal(client.infer(url, unknown, model_name="no_such_model")),
    }
    await client.close()
    return report


async def run_v1(url, model, encoded):
    client = InferenceRESTClient(RESTConfig(protocol="v1", timeout=120))
    request = {
        "instances": [{"image": {"b64": base64.b64encode(data).decode("ascii")}} for data in encoded],
        "parameters": {"top_k": CLASSES},
    }
    answer = await client.infer(url, request, model_name=model)
    rows = []
    for prediction in answer["predictions"]:
        row = [None] * CLASSES
        for entry in prediction["top_k"]:
            row[entry["class_id"]] = entry["probability"]
        rows.append(row)
    report = {
        "model_ready": await client.is_model_ready(url, model),
        "model_name": answer["model_name"],
        "probabilities": rows,
    }
    await client.close()
    return report


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("normalized")
    parser.add_argument("images", nargs="+")
    parser.add_argument("--model", default="gluon_seresnext50_32x4d")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    encoded = []
    for path in args.images:
        with open(path, "rb") as handle:
            encoded.append(handle.read())
    batch = np.fromfile(args.normalized, dtype="<f4")
    batch = batch.reshape(len(encoded), 3, INPUT_SIZE, INPUT_SIZE)

    report = {
        "sdk_version": importlib.metadata.version("kserve"),
        "v2": await run_v2(url, args.model, encoded, batch),
        "v1": await run_v1(url, args.model, encoded),
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main())
