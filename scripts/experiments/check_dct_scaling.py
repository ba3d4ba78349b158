"""Does DCT-domain downscaling keep parity with timm's preprocessing?

    .venv/bin/python scripts/experiments/check_dct_scaling.py

Decodes large JPEGs (mosaics of the skimage photos, so every tile edge is a
hard one) once in full and once with libjpeg's DCT scaling (PIL's `draft`,
the same reduced IDCT any Rust decoder would use), runs timm's eval
transform on both, and prints the mean and max |difference| in normalized
units. The parity tests bound these at 0.01 and 0.1; the full-decode path
stays at or under 0.0046 / 0.0697 on the fixture photos.
"""
from PIL import Image
import io

import numpy as np
import skimage.data
import timm
from PIL import Image
from timm.data import create_transform, resolve_data_config

TILES = [skimage.data.coffee(), skimage.data.chelsea(), skimage.data.astronaut(), skimage.data.rocket()]


def mosaic(height, width):
    """The photos tiled row by row until the canvas is full."""
    canvas = np.zeros((height, width, 3), np.uint8)
    y, k = 0, 0
    while y < height:
        x, row_height = 0, 0
        while x < width:
            tile = TILES[k % len(TILES)]
            k += 1
            th, tw = tile.shape[:2]
            canvas[y:y + th, x:x + tw] = tile[:max(0, min(th, height - y)), :max(0, min(tw, width - x))]
            x += tw
            row_height = max(row_height, th)
        y += row_height
    return canvas


def main():
    model = timm.create_model("seresnext50_32x4d", pretrained=False)
    transform = create_transform(**resolve_data_config({}, model=model))
    for height, width in [(1600, 2400), (3024, 4032)]:
        encoded = io.BytesIO()
        Image.fromarray(mosaic(height, width)).save(encoded, "JPEG", quality=92)
        data = encoded.getvalue()
        reference = transform(Image.open(io.BytesIO(data)).convert("RGB"))
        for scale in [2, 4, 8]:
            if min(height, width) // scale < 256:
                continue
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", (width // scale, height // scale))
            diff = (transform(image.convert("RGB")) - reference).abs()
            print(f"{width}x{height} JPEG, DCT scale 1/{scale} -> {image.size[0]}x{image.size[1]}: "
                  f"mean |diff| {diff.mean():.4f}, max |diff| {diff.max():.4f}")


if __name__ == "__main__":
    main()
