"""Images per second of torchvision's ImageFolder pipeline (PIL decode, Resize(256, bicubic), CenterCrop(224),
ToTensor, Normalize) through a DataLoader with one worker per core, batch 64, each worker at 1 torch thread.

usage: imagefolder.py ROOT --workers N [--passes 2]   -> JSON: images/s of the last pass
"""
import argparse
import json
import time

import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def one_thread(_):
    torch.set_num_threads(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transform = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    data = datasets.ImageFolder(args.root, transform=transform)
    loader = DataLoader(data, batch_size=64, num_workers=args.workers, worker_init_fn=one_thread)
    rate = 0.0
    for _ in range(args.passes):
        started = time.perf_counter()
        count = sum(batch[0].shape[0] for batch in loader)
        rate = count / (time.perf_counter() - started)
    print(json.dumps({"images": len(data), "imagesPerSecond": rate, "workers": args.workers}))


if __name__ == "__main__":
    main()
