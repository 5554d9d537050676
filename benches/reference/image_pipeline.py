"""torchvision's ImageNet input pipeline over an image folder, the reference
of crates/tasks/examples/image_pipeline.rs (run both by
run-image-pipeline.sh):

    python image_pipeline.py generate DIR COUNT    # COUNT JPEGs of 500 x 375 in DIR/<class>/
    python image_pipeline.py run DIR train|eval WORKERS BATCH

`run` times one pass of ImageFolder + DataLoader(num_workers=WORKERS,
shuffle=True) with RandomResizedCrop(224) + RandomHorizontalFlip (train) or
Resize(256) + CenterCrop(224) (eval), then ToTensor + Normalize, from
before the folder is indexed to the last batch, and prints one JSON line.
"""

import json
import pathlib
import sys
import time

import numpy as np
from PIL import Image

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
CLASSES = 10


def generate(root, count):
    """JPEGs of ImageNet's typical size and file size (about 110 kB):
    smooth structure plus noise, quality 90."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:375, 0:500].astype(np.float64)
    for i in range(count):
        f = 5 + i % 17
        base = np.stack(
            [
                127 + 120 * np.sin(x / f + i) * np.cos(y / (f + 3)),
                255 * ((x + 3 * i) % 500) / 500,
                127 + 127 * np.sin(np.hypot(x - 250, y - 187) / (f + 1)),
            ],
            axis=-1,
        )
        pixels = np.clip(base + rng.normal(0, 18, base.shape), 0, 255).astype(np.uint8)
        path = root / f"n{i % CLASSES:08d}" / f"img_{i:06d}.JPEG"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, quality=90)


def run(root, name, workers, batch):
    import torch
    from torchvision import datasets, transforms

    torch.set_num_threads(1)
    if name == "train":
        steps = [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip()]
    else:
        steps = [transforms.Resize(256), transforms.CenterCrop(224)]
    transform = transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    start = time.perf_counter()
    folder = datasets.ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(folder, batch_size=batch, shuffle=True, num_workers=workers)
    images = sum(len(labels) for _, labels in loader)
    seconds = time.perf_counter() - start
    print(json.dumps({"side": "torchvision", "transform": name, "images": images,
                      "seconds": round(seconds, 3), "images_per_s": round(images / seconds, 1)}))


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(pathlib.Path(sys.argv[2]), int(sys.argv[3]))
    else:
        run(pathlib.Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
