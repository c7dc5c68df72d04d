"""Independent reads of Fashion-MNIST and a PyTorch evaluation, for the Node loader and evaluate() tests.

usage:
  fmnist_reference.py pixels DATA_DIR SPLIT INDEX...        -> JSON: shape, label histogram, pixels of the items
  fmnist_reference.py evaluate MODEL DATA_DIR MEAN STD N    -> JSON: top-1/top-5 correct counts on the first N test images
"""
import gzip
import json
import sys

import numpy as np
import torch


def read_idx(path):
    with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
        data = f.read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def split_files(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    return f"{data_dir}/{prefix}-images-idx3-ubyte.gz", f"{data_dir}/{prefix}-labels-idx1-ubyte.gz"


def pixels(data_dir, split, indices):
    images_file, labels_file = split_files(data_dir, split)
    images, labels = read_idx(images_file), read_idx(labels_file)
    return {
        "shape": list(images.shape),
        "labels": [int(labels[i]) for i in indices],
        "histogram": np.bincount(labels, minlength=10).tolist(),
        "items": [images[i].reshape(-1).tolist() for i in indices],
    }


def evaluate(model_file, data_dir, mean, std, n):
    torch.set_num_threads(1)
    images_file, labels_file = split_files(data_dir, "test")
    images = torch.from_numpy(read_idx(images_file)[:n].astype(np.float32) / 255.0).unsqueeze(1)
    labels = torch.from_numpy(read_idx(labels_file)[:n].astype(np.int64))
    model = torch.jit.load(model_file).eval()
    correct1 = correct5 = 0
    with torch.no_grad():
        for start in range(0, n, 256):
            logits = model((images[start:start + 256] - mean) / std)
            target = labels[start:start + 256]
            correct1 += int((logits.argmax(1) == target).sum())
            # Top-5 as the Node side counts it: fewer than 5 classes score strictly higher than the true one.
            higher = (logits > logits.gather(1, target[:, None])).sum(1)
            correct5 += int((higher < 5).sum())
    return {"items": n, "correct1": correct1, "correct5": correct5}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "pixels":
        print(json.dumps(pixels(sys.argv[2], sys.argv[3], [int(i) for i in sys.argv[4:]])))
    elif command == "evaluate":
        print(json.dumps(evaluate(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))))
    else:
        sys.exit(f"unknown command {command}")
