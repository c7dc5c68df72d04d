#!/usr/bin/env python3
"""Per-block fc2 output error of pruned models on the calibration data, measured in eager PyTorch.

Usage: block_errors.py FIXTURES PRUNED.pt [PRUNED.pt ...]

For each MLP block of the DeiT fixture, the hidden activations h (fc2's input) of the UNPRUNED model on
calib.npy are captured with forward pre-hooks. A pruned file (written by the Node library) gives each block's
new fc2 weight W2' and bias b2', and its fc1 rows tell which neurons K were kept. The block's output error is
mean over samples of ||W2' h[K] + b2' - (W2 h + b2)||^2 / out_features, in float64: what the block's output
loses, given the same input. Prints one JSON line: {"<file>": [mse of block 0, block 1, ...], ...}.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vbp_reference as ref  # noqa: E402

torch.set_num_threads(1)


def kept_rows(original: torch.Tensor, pruned: torch.Tensor) -> List[int]:
    """Indices of the original fc1 rows the pruned fc1 kept, in order (rows are copied exactly)."""
    keep: List[int] = []
    j = 0
    for row in pruned:
        while not torch.equal(original[j], row):
            j += 1
        keep.append(j)
        j += 1
    return keep


@torch.no_grad()
def main(fixtures: Path, files: List[str]) -> None:
    model, mlps = ref.load_deit(fixtures)
    hidden: Dict[int, List[torch.Tensor]] = {i: [] for i in range(len(mlps))}
    ref._run_with_fc2_inputs(model, mlps, ref.batches_of(np.load(fixtures / "calib.npy")), lambda i, x: hidden[i].append(x))
    result: Dict[str, List[float]] = {}
    for file in files:
        state = torch.jit.load(file).state_dict()
        errors = []
        for i, (fc1_path, fc2_path) in enumerate(mlps):
            h = torch.cat(hidden[i])
            fc1, fc2 = ref._linear(model, fc1_path), ref._linear(model, fc2_path)
            keep = kept_rows(fc1.weight.detach(), state[f"{fc1_path}.weight"])
            w2, b2 = fc2.weight.detach().double(), fc2.bias.detach().double()
            w2p, b2p = state[f"{fc2_path}.weight"].double(), state[f"{fc2_path}.bias"].double()
            diff = h[:, keep] @ w2p.t() + b2p - (h @ w2.t() + b2)
            errors.append(float((diff**2).mean()))
        result[file] = errors
    print(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
