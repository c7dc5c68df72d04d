"""Writes the benchmark models (random weights, seeded; not committed): a DeiT-Base-shaped model (embed 768,
depth 12, 12 heads, MLP 3072, 224x224, patch 16) as TorchScript, plus its eager state_dict for the Python
reference pipeline.

usage: make_models.py OUT_DIR [--small | --name NAME]   (--small: a DeiT-Tiny shape, for --quick runs; NAME one of SHAPES)
Also writes NAME.json: the models.DeiT keyword arguments (the fine-tuning benchmark rebuilds the eager model from them).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
from models import DeiT  # noqa: E402

SHAPES = {
    "deit_base": dict(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    "deit_small": dict(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
    "deit_tiny": dict(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0),
}


def build(name):
    torch.manual_seed(0)
    model = DeiT(**SHAPES[name]).eval()
    # Random init leaves GELU inputs near zero; spread fc1 biases so neurons differ in mean and variance,
    # as in trained models (the pruned layers' widths then differ across blocks).
    with torch.no_grad():
        for block in model.blocks:
            block.mlp.fc1.bias.normal_(0.0, 0.5)
    return model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--name", choices=sorted(SHAPES))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    name = args.name or ("deit_tiny" if args.small else "deit_base")
    model = build(name)
    torch.jit.script(model).save(os.path.join(args.out, f"{name}.pt"))
    torch.save(model.state_dict(), os.path.join(args.out, f"{name}.pth"))
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(SHAPES[name], f)
    print(os.path.join(args.out, f"{name}.pt"))


if __name__ == "__main__":
    main()
