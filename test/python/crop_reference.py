"""torchvision's training augmentation (RandomResizedCrop, RandomHorizontalFlip), for test/data/augment.test.ts.

usage: crop_reference.py boxes CASES.json        -> JSON [[top, left, height, width, draws used], ...]
         CASES: [{"width": W, "height": H, "draws": [u, ...]}]: RandomResizedCrop.get_params (scale (0.08, 1), ratio
         (3/4, 4/3)) run with its random numbers taken from the given uniforms in [0, 1), in the order it asks for
         them (uniform_(a, b) -> a + (b - a) u, randint(0, n) -> floor(u n)), so that the rule is compared, not the
         generator
       crop_reference.py distribution W H N SEED  -> JSON [[top, left, height, width], ...]: N real draws after
         torch.manual_seed(SEED)
       crop_reference.py resized IMAGES.npy CASES.json SIZE OUT.npy
         IMAGES: uint8 [N, H, W]; CASES: [{"image": k, "top", "left", "height", "width", "flip"}]: torchvision's
         resized_crop of the PIL 'L' image (bilinear, as RandomResizedCrop's default), hflip when flip, as float32
         pixels in [0, 255] -> OUT [len(CASES), SIZE, SIZE]
       crop_reference.py files CASES.json SIZE OUT.npy
         CASES: [{"file": F, "top", "left", "height", "width", "flip"}]: the same of RGB image files, bicubic (an image
         folder's default interpolation) -> OUT float32 [len(CASES), 3, SIZE, SIZE] in [0, 255]
"""
import json
import math
import sys

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
import torchvision.transforms.transforms as transforms_module
from PIL import Image

SCALE = (0.08, 1.0)
RATIO = (3.0 / 4.0, 4.0 / 3.0)


class GivenDraws:
    """Stands in for the `torch` that get_params calls: its random numbers come from a list."""

    def __init__(self, draws):
        self.draws = list(draws)
        self.used = 0

    def _next(self):
        value = self.draws[self.used]
        self.used += 1
        return value

    class _Value:
        def __init__(self, owner, value=None):
            self.owner, self.value = owner, value

        def uniform_(self, low, high):
            return GivenDraws._Value(self.owner, float(low) + (float(high) - float(low)) * self.owner._next())

        def item(self):
            return self.value

    def empty(self, *_):
        return GivenDraws._Value(self)

    def tensor(self, values):
        return list(values)

    def log(self, values):
        return [math.log(v) for v in values]

    def exp(self, value):
        return GivenDraws._Value(self, math.exp(value.value))

    def randint(self, low, high, size=None):
        return GivenDraws._Value(self, low + math.floor(self._next() * (high - low)))


def boxes(cases_file):
    out = []
    real_torch = transforms_module.torch
    try:
        for case in json.load(open(cases_file)):
            shim = GivenDraws(case["draws"])
            transforms_module.torch = shim
            image = real_torch.zeros(1, case["height"], case["width"])
            i, j, h, w = T.RandomResizedCrop.get_params(image, list(SCALE), list(RATIO))
            out.append([int(i), int(j), int(h), int(w), shim.used])
    finally:
        transforms_module.torch = real_torch
    print(json.dumps(out))


def distribution(width, height, n, seed):
    torch.manual_seed(seed)
    image = torch.zeros(1, height, width)
    print(json.dumps([list(T.RandomResizedCrop.get_params(image, list(SCALE), list(RATIO))) for _ in range(n)]))


def resized(images_file, cases_file, size, out_file):
    images = np.load(images_file)
    out = []
    for case in json.load(open(cases_file)):
        image = Image.fromarray(images[case["image"]], "L")
        crop = F.resized_crop(image, case["top"], case["left"], case["height"], case["width"], [size, size],
                              interpolation=T.InterpolationMode.BILINEAR)
        if case["flip"]:
            crop = F.hflip(crop)
        out.append(np.asarray(crop, dtype=np.float32))
    np.save(out_file, np.stack(out))


def files(cases_file, size, out_file):
    out = []
    for case in json.load(open(cases_file)):
        image = Image.open(case["file"]).convert("RGB")
        crop = F.resized_crop(image, case["top"], case["left"], case["height"], case["width"], [size, size],
                              interpolation=T.InterpolationMode.BICUBIC)
        if case["flip"]:
            crop = F.hflip(crop)
        out.append(np.asarray(crop, dtype=np.float32).transpose(2, 0, 1))
    np.save(out_file, np.stack(out))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "boxes":
        boxes(sys.argv[2])
    elif mode == "distribution":
        distribution(*(int(a) for a in sys.argv[2:6]))
    elif mode == "files":
        files(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "resized":
        resized(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        raise SystemExit(__doc__)
