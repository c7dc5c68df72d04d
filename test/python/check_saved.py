#!/usr/bin/env python3
"""Load a TorchScript file with stock PyTorch, run it and describe its Linear layers.

Usage: check_saved.py MODEL.pt INPUT.npy OUT.npy

Used by the tests to prove that a model saved by the Node library (e.g. after
pruning) is a valid TorchScript file for PyTorch itself. The output on INPUT is
written to OUT (float32), and one JSON line is printed to stdout:

    {"ok": true, "linear": {"<path>": {"in_features": int|null,
                                        "out_features": int|null,
                                        "weight_shape": [int, ...]|null}},
     "card": {...}|null}

"card" is the model card torch-vbp stores in the archive (the extra file
model_card.json), read the way a PyTorch user reads it.

A submodule is listed when it has an ``in_features`` attribute or its original
Python class name ends in "Linear". The in/out_features constants may be absent
on traced modules; they are reported as null then.
"""

from __future__ import annotations

import os

# Single-threaded BLAS/OpenMP for reproducible numbers; must precede the imports.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

torch.set_num_threads(1)


def _int_attr(module: torch.nn.Module, name: str) -> Optional[int]:
    try:
        value = getattr(module, name)
    except (AttributeError, RuntimeError):
        return None
    return int(value) if isinstance(value, int) else None


def describe_linears(model: torch.jit.ScriptModule) -> Dict[str, Dict[str, object]]:
    linears: Dict[str, Dict[str, object]] = {}
    for path, module in model.named_modules():
        original = getattr(module, "original_name", type(module).__name__)
        if not (hasattr(module, "in_features") or str(original).endswith("Linear")):
            continue
        weight = getattr(module, "weight", None)
        weight_shape: Optional[List[int]] = list(weight.shape) if isinstance(weight, torch.Tensor) else None
        linears[path] = {
            "in_features": _int_attr(module, "in_features"),
            "out_features": _int_attr(module, "out_features"),
            "weight_shape": weight_shape,
        }
    return linears


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="TorchScript file (.pt)")
    parser.add_argument("input", help="input tensor (.npy)")
    parser.add_argument("output", help="where to write the output tensor (.npy, float32)")
    args = parser.parse_args(argv)

    extra_files = {"model_card.json": ""}
    model = torch.jit.load(args.model, map_location="cpu", _extra_files=extra_files)
    model.eval()
    x = torch.from_numpy(np.load(args.input))
    with torch.no_grad():
        y = model(x)
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"model returned {type(y).__name__}, expected a Tensor")
    np.save(args.output, y.numpy().astype(np.float32))
    card = json.loads(extra_files["model_card.json"]) if extra_files["model_card.json"] else None
    print(json.dumps({"ok": True, "linear": describe_linears(model), "card": card}))


if __name__ == "__main__":
    main()
