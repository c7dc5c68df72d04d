#!/usr/bin/env python3
"""PyTorch's own outputs on a device, for scripts/cuda-check.ts (the GPU check of issue 10).

usage: device_reference.py --fixtures DIR --device cuda --out DIR

For each fixture model (deit_scripted, deit_traced, vit_torchvision) it runs
torch.jit.load(file, map_location=device) on input_b4.npy with TF32 off (float32 throughout) and writes
OUT/<model>_b4.npy (float32). It writes OUT/deit_fp16.pt, the scripted DeiT fixture in float16 (GPUs have
float16 kernels; CPU LibTorch 1.13 has no float16 convolution), and prints one JSON line describing torch,
CUDA and the device.
"""
import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

MODELS = ["deit_scripted", "deit_traced", "vit_torchvision"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("device_reference.py: this torch sees no CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    os.makedirs(args.out, exist_ok=True)

    x = torch.from_numpy(np.load(os.path.join(args.fixtures, "input_b4.npy")))
    with torch.inference_mode():
        for name in MODELS:
            model = torch.jit.load(os.path.join(args.fixtures, f"{name}.pt"), map_location=device).eval()
            np.save(os.path.join(args.out, f"{name}_b4.npy"), model(x.to(device)).float().cpu().numpy())

    half = torch.jit.load(os.path.join(args.fixtures, "deit_scripted.pt"), map_location="cpu").half()
    torch.jit.save(half, os.path.join(args.out, "deit_fp16.pt"))

    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "memoryGiB": round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1) if device.type == "cuda" else None,
    }
    print(json.dumps(info))


if __name__ == "__main__":
    main()
