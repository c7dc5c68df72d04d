#!/usr/bin/env python3
"""Eager-PyTorch reference of torch-vbp's SNIP scores (gatherStats with snip: true).

The model is rebuilt as an eager ``models.DeiT`` (weights of the TorchScript file, ``--config`` as JSON), in
eval mode, with only the blocks' fc1 weights and biases taking gradients. For each batch of ``--inputs``
[batches, B, ...] with ``--labels`` [batches, B]: the mean cross-entropy, backward, and per block and neuron
j the sum over fc1's row j of |w * dL/dw| plus |b_j * dL/db_j|, in float64, added up over the batches
(Lee et al. 2019, SNIP: connection sensitivity |w * g|). Writes ``--out`` .npz with one array per block,
``block0``, ``block1``, ...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_reference import eager_from_torchscript  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = eager_from_torchscript(args.model, json.loads(args.config)).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    fc1 = [block.mlp.fc1 for block in model.blocks]
    for layer in fc1:
        layer.weight.requires_grad_(True)
        layer.bias.requires_grad_(True)
    scores = [torch.zeros(layer.out_features, dtype=torch.float64) for layer in fc1]
    inputs = torch.from_numpy(np.load(args.inputs))
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64))
    for x, y in zip(inputs, labels):
        F.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for i, layer in enumerate(fc1):
                s = (layer.weight * layer.weight.grad).abs().sum(1).double() + (layer.bias * layer.bias.grad).abs().double()
                scores[i] += s
                layer.weight.grad = None
                layer.bias.grad = None
    np.savez(args.out, **{f"block{i}": s.numpy() for i, s in enumerate(scores)})


if __name__ == "__main__":
    main()
