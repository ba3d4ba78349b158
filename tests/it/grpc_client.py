#!/usr/bin/env python3
"""Drives seresnext-serve's KServe V2 gRPC API with the real `tritonclient[grpc]`.

    grpc_client.py answers HOST:PORT NORMALIZED_DIR IMAGE...
    grpc_client.py auth HOST:PORT KEY IMAGE
    grpc_client.py load HOST:PORT STREAMS REQUESTS IMAGE
    grpc_client.py draining HOST:PORT IMAGE

Run with .venv-grpc's Python (make grpc-tools). Each mode prints one JSON
document; tests/it/grpc.rs checks it.

- answers: liveness, readiness, metadata; per image the probabilities of a
  BYTES input in raw_input_contents (tritonclient's own encoding) and in
  typed bytes_contents, of an FP32 [1,3,224,224] input (DIR/<name>.f32, our
  preprocessing) raw and typed, and the classification extension; then
  the errors: unknown model, bad datatype, a 1 µs deadline (request
  parameter and gRPC deadline).
- auth: calls without a key, with a wrong one and with the right one.
- load: STREAMS threads, each its own channel, REQUESTS calls each; the
  status codes, with the retry-after metadata of each RESOURCE_EXHAUSTED.
- draining: one ModelInfer, expected UNAVAILABLE.
"""

import json
import os
import sys
import threading

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

MODEL = "gluon_seresnext50_32x4d"


def code_of(error):
    """'NOT_FOUND' from tritonclient's 'StatusCode.NOT_FOUND'."""
    return str(error.status()).rsplit(".", 1)[-1]


def bytes_input(data):
    tensor = grpcclient.InferInput("image_bytes", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([data], dtype=np.object_))
    return tensor


def probabilities(result):
    return result.as_numpy("probabilities")[0].astype(float).tolist()


def raw_stub(url):
    return service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(url))


def typed_request(name, datatype, shape, contents):
    request = service_pb2.ModelInferRequest(model_name=MODEL)
    tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
    tensor.contents.CopyFrom(contents)
    return request


def typed_probabilities(stub, request):
    response = stub.ModelInfer(request)
    raw = response.raw_output_contents[0]
    return np.frombuffer(raw, dtype="<f4").astype(float).tolist()


def error_code(call):
    try:
        call()
    except InferenceServerException as error:
        return code_of(error)
    return "OK"


def answers(url, normalized_dir, images):
    client = grpcclient.InferenceServerClient(url)
    stub = raw_stub(url)
    metadata = client.get_model_metadata(MODEL, as_json=True)
    server = client.get_server_metadata(as_json=True)
    report = {
        "server_live": client.is_server_live(),
        "server_ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(MODEL),
        "server_metadata": server,
        "model_metadata": metadata,
        "unknown_model_metadata": error_code(lambda: client.get_model_metadata("nope")),
        "images": [],
    }
    for path in images:
        data = open(path, "rb").read()
        name = os.path.basename(path)
        normalized = np.fromfile(os.path.join(normalized_dir, name + ".f32"), dtype="<f4")
        fp32 = grpcclient.InferInput("input", [1, 3, 224, 224], "FP32")
        fp32.set_data_from_numpy(normalized.reshape(1, 3, 224, 224))
        top5 = client.infer(
            MODEL,
            [bytes_input(data)],
            outputs=[grpcclient.InferRequestedOutput("probabilities", class_count=5)],
            request_id="top5",
        )
        report["images"].append(
            {
                "image": name,
                "bytes_raw": probabilities(client.infer(MODEL, [bytes_input(data)])),
                "bytes_typed": typed_probabilities(
                    stub,
                    typed_request(
                        "image_bytes", "BYTES", [1],
                        service_pb2.InferTensorContents(bytes_contents=[data]),
                    ),
                ),
                "fp32_raw": probabilities(client.infer(MODEL, [fp32])),
                "fp32_typed": typed_probabilities(
                    stub,
                    typed_request(
                        "input", "FP32", [1, 3, 224, 224],
                        service_pb2.InferTensorContents(fp32_contents=normalized.tolist()),
                    ),
                ),
                "classification": [
                    (lambda p, i, label: [float(p), int(i), label])(*s.decode().split(":", 2))
                    for s in top5.as_numpy("probabilities")[0]
                ],
                "classification_id": top5.get_response().id,
            }
        )
    data = open(images[0], "rb").read()
    wrong_type = grpcclient.InferInput("image_bytes", [1], "FP32")
    wrong_type.set_data_from_numpy(np.zeros([1], dtype=np.float32))
    report["errors"] = {
        "unknown_model": error_code(lambda: client.infer("nope", [bytes_input(data)])),
        "bad_datatype": error_code(lambda: client.infer(MODEL, [wrong_type])),
        "tiny_timeout_parameter": error_code(
            lambda: client.infer(MODEL, [bytes_input(data)], timeout=1)
        ),
        "tiny_grpc_deadline": error_code(
            lambda: client.infer(MODEL, [bytes_input(data)], client_timeout=0.001)
        ),
    }
    return report


def auth(url, key, image):
    data = open(image, "rb").read()
    client = grpcclient.InferenceServerClient(url)

    def infer(headers):
        return error_code(lambda: client.infer(MODEL, [bytes_input(data)], headers=headers))

    return {
        "live_without_key": client.is_server_live(),
        "metadata_without_key": error_code(lambda: client.get_model_metadata(MODEL)),
        "infer_without_key": infer(None),
        "infer_wrong_key": infer({"authorization": "Bearer wrong"}),
        "infer_right_key": infer({"authorization": f"Bearer {key}"}),
    }


def load(url, streams, requests, image):
    data = open(image, "rb").read()
    request = service_pb2.ModelInferRequest(model_name=MODEL)
    request.inputs.add(name="image_bytes", datatype="BYTES", shape=[1])
    request.raw_input_contents.append(len(data).to_bytes(4, "little") + data)
    results = []
    lock = threading.Lock()
    start = threading.Barrier(streams)

    def stream():
        stub = raw_stub(url)
        start.wait()
        for _ in range(requests):
            try:
                stub.ModelInfer(request)
                outcome = {"code": "OK"}
            except grpc.RpcError as error:
                trailing = dict(error.trailing_metadata() or ())
                outcome = {
                    "code": error.code().name,
                    "retry_after": trailing.get("retry-after"),
                    "error_type": trailing.get("error-type"),
                }
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=stream) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"results": results}


def draining(url, image):
    data = open(image, "rb").read()
    client = grpcclient.InferenceServerClient(url)
    return {"infer": error_code(lambda: client.infer(MODEL, [bytes_input(data)]))}


def main(argv):
    mode, url, *rest = argv
    if mode == "answers":
        report = answers(url, rest[0], rest[1:])
    elif mode == "auth":
        report = auth(url, rest[0], rest[1])
    elif mode == "load":
        report = load(url, int(rest[0]), int(rest[1]), rest[2])
    elif mode == "draining":
        report = draining(url, rest[0])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
