"""A minimal Python client for seresnext-serve, standard library only.

    python examples/client.py http://localhost:8080 cat.jpg [dog.png ...]

Sends each image as a raw body to the V1 predict route and prints one line per
image: the file, then the top classes with their probabilities. Set
SERESNEXT_API_KEY when the server requires a key.
"""
import json
import os
import sys
import urllib.error
import urllib.request

MODEL = os.environ.get("SERESNEXT_MODEL", "gluon_seresnext50_32x4d")


def predict(base_url, path, top_k=3):
    with open(path, "rb") as image:
        body = image.read()
    request = urllib.request.Request(
        f"{base_url}/v1/models/{MODEL}:predict?top_k={top_k}",
        data=body,
        headers={"content-type": "application/octet-stream"},
        method="POST",
    )
    key = os.environ.get("SERESNEXT_API_KEY")
    if key:
        request.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        # Errors are JSON too: {"error": ..., "error_type": ...}.
        detail = json.load(error)
        raise SystemExit(f"{path}: {error.code} {detail['error_type']}: {detail['error']}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    base_url = sys.argv[1].rstrip("/")
    for path in sys.argv[2:]:
        answer = predict(base_url, path)
        classes = ", ".join(f"{c['label']} ({c['probability']:.3f}, id {c['class_id']})"
                            for c in answer["predictions"][0]["top_k"])
        print(f"{path}: {classes}")


if __name__ == "__main__":
    main()
