"""A torchvision evaluation of a TorchScript model on an ImageFolder, for test/data/image-eval.test.ts.

usage: image_eval_reference.py OUT_DIR  -> writes OUT_DIR/images/<class>/<n>.jpg (40 photo-like JPEGs of several
       sizes, 4 classes) and prints nothing
       image_eval_reference.py MODEL ROOT CROP RESIZE MEAN STD -> JSON {"predictions": [...], "labels": [...],
       "correct1": n}: torchvision's ImageFolder with Resize(RESIZE, bicubic), CenterCrop(CROP), ToTensor,
       Normalize(MEAN, STD) (comma-separated), through torch.jit.load(MODEL) in batches of 8
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.transforms as T
from torchvision import datasets

sys.path.insert(0, os.path.dirname(__file__))
from image_reference import smooth_image  # noqa: E402


def write(out):
    rng = np.random.default_rng(3)
    for n in range(40):
        folder = os.path.join(out, "images", f"class{n % 4}")
        os.makedirs(folder, exist_ok=True)
        width, height = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        smooth_image(rng, width, height).save(os.path.join(folder, f"{n:02d}.jpg"), quality=int(rng.integers(70, 96)))


def evaluate(model_file, root, crop, resize, mean, std):
    torch.set_num_threads(1)
    transform = T.Compose([
        T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(crop),
        T.ToTensor(),
        T.Normalize(mean, std),
    ])
    data = datasets.ImageFolder(root, transform=transform)
    model = torch.jit.load(model_file).eval()
    predictions, labels = [], []
    with torch.no_grad():
        for x, y in torch.utils.data.DataLoader(data, batch_size=8):
            predictions += model(x).argmax(1).tolist()
            labels += y.tolist()
    correct = sum(int(p == y) for p, y in zip(predictions, labels))
    print(json.dumps({"predictions": predictions, "labels": labels, "correct1": correct}))


if __name__ == "__main__":
    if len(sys.argv) == 2:
        write(sys.argv[1])
    else:
        floats = lambda text: [float(v) for v in text.split(",")]  # noqa: E731
        evaluate(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), floats(sys.argv[5]), floats(sys.argv[6]))
