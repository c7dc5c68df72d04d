"""Eager PyTorch reference of the fine-tuning recipe on Fashion-MNIST, for bench/finetune.ts.

usage: finetune_fmnist.py STUDENT.pt TEACHER.pt CONFIG_JSON DATA_DIR MEAN STD [--lr 1e-4] [--batch 128]
       [--alpha 0.5] [--temperature 2] [--epochs 1] [--seed 0] [--threads 1]

The student and teacher are rebuilt as eager models.DeiT (test/python/finetune_reference.py), trained for
one epoch over the 60k training images in a torch.randperm order (AdamW, cosine per batch, distillation as
in torch-vbp), then evaluated on the 10k test images. Prints one JSON line: top-1 before and after, and the
training time in seconds (data preparation excluded, as on the Node side where batches are prefetched).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from finetune_reference import distillation_step, eager_from_torchscript, learning_rate  # noqa: E402
from fmnist_reference import read_idx, split_files  # noqa: E402


def load(data_dir, split, mean, std):
    images_file, labels_file = split_files(data_dir, split)
    images = torch.from_numpy(read_idx(images_file).astype(np.float32) / 255.0).unsqueeze(1)
    return (images - mean) / std, torch.from_numpy(read_idx(labels_file).astype(np.int64))


@torch.no_grad()
def top1(model, images, labels):
    model.eval()
    correct = 0
    for start in range(0, len(labels), 500):
        correct += int((model(images[start:start + 500]).argmax(1) == labels[start:start + 500]).sum())
    return correct / len(labels)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("student")
    parser.add_argument("teacher")
    parser.add_argument("config")
    parser.add_argument("data")
    parser.add_argument("mean", type=float)
    parser.add_argument("std", type=float)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    student = eager_from_torchscript(args.student, config)
    teacher = eager_from_torchscript(args.teacher, config).eval()
    train_x, train_y = load(args.data, "train", args.mean, args.std)
    test_x, test_y = load(args.data, "test", args.mean, args.std)
    before = top1(student, test_x, test_y)
    params = list(student.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, foreach=False)
    steps_per_epoch = math.ceil(len(train_y) / args.batch)
    total = steps_per_epoch * args.epochs
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    step = 0
    for _ in range(args.epochs):
        student.train()
        order = torch.randperm(len(train_y), generator=generator)
        for start in range(0, len(train_y), args.batch):
            index = order[start:start + args.batch]
            x, y = train_x[index], train_y[index]
            lr = learning_rate("cosine", args.lr, step, total, 0)
            distillation_step(student, teacher, optimizer, params, x, y, lr, args.alpha, args.temperature, 0, measure_norm=False)
            step += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"top1Before": before, "top1After": top1(student, test_x, test_y), "trainSeconds": seconds, "steps": step}))


if __name__ == "__main__":
    main()
