"""Makes a small ImageFolder of synthetic photos-like images and torchvision's DeiT evaluation preprocessing
of each (Resize(shorter side) with bicubic interpolation, CenterCrop, ToTensor, Normalize), so that the
Node loader (sharp) can be compared with torchvision on the same files.

usage: image_reference.py OUT_DIR   -> OUT_DIR/images/<class>/<file>, OUT_DIR/expected_<crop>.npy, OUT_DIR/files.json
       image_reference.py --grey OUT_DIR -> OUT_DIR/grey/a/grey.jpg (a greyscale JPEG) and OUT_DIR/grey_expected.npy:
                                          torchvision's Resize(37, bicubic), CenterCrop(32) of it as RGB
       image_reference.py --list ROOT -> prints {"classes": [...], "samples": [[path, label], ...]}: the classes and
                                          files torchvision's ImageFolder finds under ROOT (nothing is decoded)
"""
import json
import os
import sys

import numpy as np
from PIL import Image
import torch
import torchvision.transforms as T

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def smooth_image(rng, width, height):
    """A smooth colour field with some edges: closer to a photo than white noise, which resamplers treat very differently."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 6), rng.uniform(1, 6), rng.uniform(0, 6.28)
        wave = np.sin(2 * np.pi * (fx * x / width + fy * y / height) + phase)
        blob = np.exp(-(((x - rng.uniform(0, width)) / (0.3 * width)) ** 2 + ((y - rng.uniform(0, height)) / (0.3 * height)) ** 2))
        channels.append(0.5 + 0.3 * wave + 0.2 * blob)
    image = np.stack(channels, axis=-1)
    image[int(height * 0.4):int(height * 0.6), int(width * 0.3):int(width * 0.5)] *= 0.5  # a hard edge
    return Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8), "RGB")


def main(out):
    rng = np.random.default_rng(0)
    sizes = [("cat", "a.png", 320, 400), ("cat", "b.jpg", 500, 375), ("dog", "c.png", 256, 256), ("dog", "d.jpg", 640, 480)]
    files = []
    for label, name, width, height in sizes:
        folder = os.path.join(out, "images", label)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name)
        image = smooth_image(rng, width, height)
        image.save(path, quality=95) if name.endswith(".jpg") else image.save(path)
        files.append(path)
    files.sort()  # ImageFolder order: class, then file name
    for crop in (224, 160):
        transform = T.Compose([
            T.Resize(int(round(crop / 0.875)), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(crop),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ])
        batch = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
        np.save(os.path.join(out, f"expected_{crop}.npy"), batch.numpy().astype(np.float32))
    with open(os.path.join(out, "files.json"), "w") as f:
        json.dump(files, f)


def list_folder(root):
    from torchvision.datasets import ImageFolder

    dataset = ImageFolder(root, loader=lambda path: path)
    print(json.dumps({"classes": dataset.classes, "samples": [[path, label] for path, label in dataset.samples]}))


def grey(out):
    """A one-channel JPEG, read as ImageFolder reads every image: convert('RGB')."""
    folder = os.path.join(out, "grey", "a")
    os.makedirs(folder, exist_ok=True)
    pixels = np.asarray(smooth_image(np.random.default_rng(5), 50, 40).convert("L"))
    Image.fromarray(pixels, "L").save(os.path.join(folder, "grey.jpg"), quality=90)
    transform = T.Compose([
        T.Resize(37, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(32),
        T.ToTensor(),
        T.Normalize(MEAN, STD),
    ])
    image = Image.open(os.path.join(folder, "grey.jpg"))
    assert image.mode == "L"
    np.save(os.path.join(out, "grey_expected.npy"), transform(image.convert("RGB")).numpy().astype(np.float32))


if __name__ == "__main__":
    if sys.argv[1] == "--list":
        list_folder(sys.argv[2])
    elif sys.argv[1] == "--grey":
        grey(sys.argv[2])
    else:
        main(sys.argv[1])
