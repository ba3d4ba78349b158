"""Requests to, answers from and batch counts of the Triton peer (triton_server.py).

Standard library only; any python3 runs it.

    triton_request.py body PHOTO BODY_FILE
        Writes the KServe V2 request for one image to BODY_FILE, with the binary
        tensor data extension: the JSON header, then the BYTES element of input
        `image` [1, 1] (4-byte little-endian length, then the file's raw bytes).
        Prints the JSON header's length; send it as
        `Inference-Header-Content-Length: N` with
        `Content-Type: application/octet-stream`. The outputs are asked for as
        JSON, so the answer is plain JSON.

    triton_request.py check RESPONSE_FILE
        Checks an answer: top5_index INT64 [1, 5] of class ids in 0..999 and
        top5_prob FP32 [1, 5], in (0, 1], highest first. Prints
        "<class id> <probability>" of the top class; exits 1 on a bad answer.

    triton_request.py batch-stats METRICS_URL [MODEL]
        Prints "<images> <batches>" for MODEL (seresnext50) from Triton's
        Prometheus metrics: nv_inference_count (images, i.e. batch elements)
        and nv_inference_exec_count (model executions, i.e. batches).
"""

import json
import re
import struct
import sys
import urllib.request

MODEL_NAME = "seresnext50"
OUTPUTS = ("top5_index", "top5_prob")


def body(photo, out):
    with open(photo, "rb") as f:
        data = f.read()
    header = {
        "inputs": [
            {
                "name": "image",
                "shape": [1, 1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": 4 + len(data)},
            }
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": False}} for name in OUTPUTS],
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    with open(out, "wb") as f:
        f.write(head + struct.pack("<I", len(data)) + data)
    print(len(head))


def check(response):
    with open(response, "rb") as f:
        answer = json.load(f)
    outputs = {o["name"]: o for o in answer.get("outputs", [])}
    index, prob = outputs.get("top5_index"), outputs.get("top5_prob")
    problems = []
    if not index or index["datatype"] != "INT64" or index["shape"] != [1, 5]:
        problems.append(f"top5_index: {index}")
    if not prob or prob["datatype"] != "FP32" or prob["shape"] != [1, 5]:
        problems.append(f"top5_prob: {prob}")
    if not problems:
        ids, ps = index["data"], prob["data"]
        if not all(0 <= i < 1000 for i in ids) or len(set(ids)) != 5:
            problems.append(f"class ids {ids}")
        if not all(0 < p <= 1 for p in ps) or ps != sorted(ps, reverse=True) or sum(ps) > 1.0001:
            problems.append(f"probabilities {ps}")
    if problems:
        print(f"triton_request: bad answer in {response}: {'; '.join(problems)}", file=sys.stderr)
        return 1
    print(ids[0], f"{ps[0]:.4f}")
    return 0


def metric(text, name, model):
    """Sum of the samples of `name` labelled model="<model>"."""
    pattern = re.compile(rf'^{name}\{{([^}}]*)\}} (\S+)$', re.MULTILINE)
    return sum(float(value) for labels, value in pattern.findall(text) if f'model="{model}"' in labels)


def batch_stats(url, model=MODEL_NAME):
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    print(int(metric(text, "nv_inference_count", model)), int(metric(text, "nv_inference_exec_count", model)))


def main(argv):
    usage = __doc__.split("\n\n", 2)[2]
    if len(argv) == 3 and argv[0] == "body":
        body(argv[1], argv[2])
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return check(argv[1])
    if len(argv) in (2, 3) and argv[0] == "batch-stats":
        batch_stats(*argv[1:])
        return 0
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
