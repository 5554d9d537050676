"""torchvision's ImageNet transforms on a few generated images, as the
reference of untrainable-tasks' image transforms (crates/tasks/tests/imagenet.rs).

    python image_transform.py OUT_DIR

writes OUT_DIR/images/<class>/<name> (JPEG and PNG files made with PIL:
RGB, greyscale and CMYK JPEGs, RGB and RGBA PNGs, some larger and some
smaller than 256 pixels) and OUT_DIR/torchvision.json, which holds for each
image, as torchvision computes it on the PIL image:

- `eval_grid`: Resize(256) + CenterCrop(224) as bytes (before ToTensor), at
  every 8th row and column, RGB interleaved (28 x 28 x 3 values);
- `eval_channel_mean`: the mean of each channel of Resize(256) +
  CenterCrop(224) + ToTensor + Normalize(ImageNet mean, std), all pixels;
- `crop_box` and `crop_grid`: `resized_crop` of that box to 224 x 224 (the
  resize step of RandomResizedCrop), bytes at every 8th row and column.

Run it with torch 2.9.0, torchvision 0.24.0 and Pillow from PyPI (CPU is
enough); the committed fixture in crates/tasks/tests/fixtures/imagenet-reference
was written by this script.
"""

import json
import pathlib
import sys

import numpy as np
import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as F

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
STRIDE = 8


def pattern(width, height, seed, noise=3.0):
    """Smooth gradients, rings and some noise (none for the PNGs, which
    would not compress): content that resizing changes visibly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    r = 127 + 120 * np.sin(x / (9 + seed)) * np.cos(y / 13)
    g = 255 * x / width
    b = 127 + 127 * np.sin(np.hypot(x - width / 3, y - height / 2) / 6)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, noise, (height, width, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def write_images(root):
    """The images, as (class/name, PIL image, save options)."""
    specs = [
        ("cat/rgb-500x375.jpg", Image.fromarray(pattern(500, 375, 1)), {"quality": 85}),
        ("cat/grey-333x500.JPEG", Image.fromarray(pattern(333, 500, 2)).convert("L"), {"quality": 85}),
        ("cat/cmyk-300x280.jpg", Image.fromarray(pattern(300, 280, 3)).convert("CMYK"), {"quality": 85}),
        ("dog/rgb-300x260.png", Image.fromarray(pattern(300, 260, 4, noise=0)), {}),
        ("dog/rgba-160x120.png", Image.fromarray(pattern(160, 120, 5, noise=0)).convert("RGBA"), {}),
    ]
    for name, image, options in specs:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **options)
    return [name for name, _, _ in specs]


def grid(image):
    array = np.asarray(image.convert("RGB"))
    return array[::STRIDE, ::STRIDE, :].reshape(-1).tolist()


def reference(path):
    image = Image.open(path).convert("RGB")  # as torchvision's default loader
    cropped = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])(image)
    tensor = transforms.Normalize(MEAN, STD)(transforms.ToTensor()(cropped))
    w, h = image.size
    box = [h // 7, w // 5, h // 2, w // 3]  # top, left, height, width
    crop = F.resized_crop(image, *box, [224, 224])
    return {
        "size": [h, w],
        "eval_grid": grid(cropped),
        "eval_channel_mean": tensor.mean(dim=(1, 2)).tolist(),
        "crop_box": box,
        "crop_grid": grid(crop),
    }


def main():
    out = pathlib.Path(sys.argv[1])
    names = write_images(out / "images")
    result = {
        "versions": {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "pillow": PIL.__version__,
        },
        "stride": STRIDE,
        "images": {name: reference(out / "images" / name) for name in names},
    }
    (out / "torchvision.json").write_text(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
