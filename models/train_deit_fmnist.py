#!/usr/bin/env python3
"""Train the small DeiT on Fashion-MNIST that torch-vbp bundles as its demo model.

Reproducible CPU training (seeded, fixed data order, 1 thread). Reads the
Fashion-MNIST IDX files itself, trains on the 60k train split, evaluates top-1
and top-5 on the 10k test split and writes, into --out (default: this folder):

* ``deit_fmnist.pt``   TorchScript (``torch.jit.script``) of the model in eval
  mode; input ``[B, 1, 28, 28]`` float, normalised with mean 0.2860 and std
  0.3530 (``(pixel / 255 - 0.2860) / 0.3530``), output ``[B, 10]`` logits.
* ``deit_fmnist.json`` metadata (architecture, normalisation, classes,
  training settings, timing, accuracy).

The module names follow timm's DeiT (``patch_embed.proj``, ``cls_token``,
``pos_embed``, ``blocks.N.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1,
mlp.act, mlp.fc2}``, ``norm``, ``head``), so torch-vbp finds the MLP blocks
(``blocks.N.mlp.fc1 -> GELU -> blocks.N.mlp.fc2``) exactly as in a timm model.

Usage::

    python3 models/train_deit_fmnist.py [--out DIR] [--epochs N]
        [--data DIR] [--seed S] [--threads T]

The model is ``DeiT`` of ``models/deit.py``. Requires only PyTorch and NumPy. Bit-identical weights need the same PyTorch
build, thread count and CPU; elsewhere the numbers agree closely but not
exactly. One thread is the default: on a 2-core machine it trained this small
model faster than two (per-op threading overhead dominates), and it keeps the
run independent of other load on the machine's second core.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import struct
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# The model's definition, shared with the test fixtures and the PyTorch reference (models/deit.py; this
# script's folder is on sys.path when it runs).
from deit import DeiT

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

ARCH: Dict[str, object] = dict(
    img_size=28,
    patch_size=7,
    in_chans=1,
    num_classes=10,
    embed_dim=64,
    depth=6,
    num_heads=4,
    mlp_ratio=2.0,
)

TRAIN: Dict[str, object] = dict(
    epochs=4,
    batch_size=128,
    optimizer="AdamW",
    lr=2e-3,
    betas=[0.9, 0.999],
    eps=1e-8,
    weight_decay=0.05,  # on weight matrices only (not biases, norms, cls_token, pos_embed)
    warmup_epochs=0.3,
    schedule="linear warm-up then cosine to 0, per step",
    label_smoothing=0.1,
    augmentation="random horizontal flip (p=0.5)",
)

MEAN = 0.2860
STD = 0.3530
CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"

# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated")
    return data.reshape(dims)


def find_file(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (data_dir / name).exists():
            return data_dir / name
    raise FileNotFoundError(f"{stem}[.gz] not found in {data_dir}")


def load_split(data_dir: Path, split: str) -> Tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(find_file(data_dir, f"{split}-images-idx3-ubyte"))
    labels = read_idx(find_file(data_dir, f"{split}-labels-idx1-ubyte"))
    x = (torch.from_numpy(images.astype(np.float32) / 255.0) - MEAN) / STD
    return x.unsqueeze(1).contiguous(), torch.from_numpy(labels.astype(np.int64))


# ---------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------


def param_groups(model: nn.Module, weight_decay: float) -> List[Dict[str, object]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or name in ("cls_token", "pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> Tuple[float, float, float]:
    model.eval()
    t0 = time.time()
    logits = torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])
    seconds = time.time() - t0
    top5 = logits.topk(5, dim=1).indices
    top1_acc = float((top5[:, 0] == y).float().mean())
    top5_acc = float((top5 == y[:, None]).any(dim=1).float().mean())
    return top1_acc, top5_acc, seconds


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: float, seed: int) -> float:
    bs = int(TRAIN["batch_size"])
    lr = float(TRAIN["lr"])
    opt = torch.optim.AdamW(
        param_groups(model, float(TRAIN["weight_decay"])),
        lr=lr,
        betas=tuple(TRAIN["betas"]),  # type: ignore[arg-type]
        eps=float(TRAIN["eps"]),
    )
    steps_per_epoch = len(x) // bs  # the last partial batch of each epoch is dropped
    total = max(1, int(epochs * steps_per_epoch))
    warmup = max(1, int(float(TRAIN["warmup_epochs"]) * steps_per_epoch))

    def lr_at(step: int) -> float:
        if step < warmup:
            return lr * (step + 1) / warmup
        return lr * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    gen = torch.Generator().manual_seed(seed)  # data order and augmentation only
    model.train()
    step, t0 = 0, time.time()
    while step < total:
        perm = torch.randperm(len(x), generator=gen)
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[i * bs : (i + 1) * bs]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            for group in opt.param_groups:
                group["lr"] = lr_at(step)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=float(TRAIN["label_smoothing"]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0 or step == total:
                print(
                    f"step {step}/{total} epoch {step / steps_per_epoch:.2f} loss {loss.item():.4f} "
                    f"lr {lr_at(step - 1):.2e} {time.time() - t0:.0f}s",
                    flush=True,
                )
    return time.time() - t0


def main() -> None:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=here, help="output folder (default: this script's folder)")
    parser.add_argument("--epochs", type=float, default=float(TRAIN["epochs"]), help="training epochs")
    parser.add_argument("--data", type=Path, default=Path(DEFAULT_DATA), help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch intra-op threads (default 1: faster than 2 for this small model, and results depend on it)",
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    print(f"train {tuple(x_train.shape)}, test {tuple(x_test.shape)}", flush=True)

    # No dropout modules (drop_rate None), as the bundled model was trained and saved.
    model = DeiT(**ARCH, drop_rate=None)  # type: ignore[arg-type]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"DeiT {ARCH}: {n_params} parameters", flush=True)

    train_seconds = train(model, x_train, y_train, args.epochs, args.seed)
    model.eval()
    top1, top5, eval_seconds = evaluate(model, x_test, y_test)
    print(f"test top-1 {top1 * 100:.2f} %, top-5 {top5 * 100:.2f} %, train {train_seconds:.0f} s", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    pt_path = args.out / "deit_fmnist.pt"
    scripted = torch.jit.script(model.eval())
    scripted.save(str(pt_path))

    # Check the saved file: it loads, accepts any batch size and matches eager.
    loaded = torch.jit.load(str(pt_path)).eval()
    with torch.no_grad():
        for b in (1, 3, 64):
            diff = float((loaded(x_test[:b]) - model(x_test[:b])).abs().max())
            if diff > 1e-4:
                raise RuntimeError(f"scripted model differs from eager by {diff} at batch {b}")
    s_top1, _, s_eval_seconds = evaluate(loaded, x_test, y_test)
    if abs(s_top1 - top1) > 1e-4:
        raise RuntimeError(f"scripted top-1 {s_top1} != eager {top1}")

    meta = {
        "name": "deit_fmnist",
        "description": (
            "A small DeiT-style vision transformer trained by the torch-vbp project on Fashion-MNIST "
            "(data: Zalando Research, MIT licence) with models/train_deit_fmnist.py; "
            "it is NOT an ImageNet DeiT and has no ImageNet weights."
        ),
        "file": pt_path.name,
        "format": "TorchScript (torch.jit.script), eval mode",
        "architecture": {"type": "DeiT (timm-style names, no distillation token, cls-token head)", **ARCH,
                         "mlp_hidden": int(int(ARCH["embed_dim"]) * float(ARCH["mlp_ratio"])),
                         "activation": "GELU (exact)", "layer_norm_eps": 1e-6,
                         "tokens": 1 + (int(ARCH["img_size"]) // int(ARCH["patch_size"])) ** 2,
                         "mlp_blocks": [[f"blocks.{i}.mlp.fc1", f"blocks.{i}.mlp.fc2"] for i in range(int(ARCH["depth"]))]},
        "parameters": n_params,
        "input": {"shape": [1, 28, 28], "dtype": "float32", "layout": "[B, 1, 28, 28], any B",
                  "normalization": {"mean": [MEAN], "std": [STD], "formula": "(pixel / 255 - mean) / std"}},
        "output": {"shape": [10], "meaning": "logits over classes"},
        "classes": CLASSES,
        "dataset": {"name": "Fashion-MNIST", "train": 60000, "test": 10000,
                    "licence": "MIT", "source": "Zalando Research (Xiao, Rasul, Vollgraf 2017)"},
        "training": {**TRAIN, "epochs": args.epochs, "seed": args.seed, "threads": args.threads,
                     "loss": "cross-entropy with label smoothing", "device": "cpu"},
        "training_seconds": round(train_seconds, 1),
        "eval_seconds_10k_test": round(s_eval_seconds, 2),
        "test_top1": round(top1, 4),
        "test_top5": round(top5, 4),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "script": "models/train_deit_fmnist.py",
    }
    card = json.dumps(meta, indent=2) + "\n"
    with open(args.out / "deit_fmnist.json", "w") as f:
        f.write(card)
    # The same card inside the archive (extra/model_card.json), so that any copy of the file carries its
    # input normalisation; torch-vbp reads it, and so does torch.jit.load(f, _extra_files=...).
    scripted.save(str(pt_path), _extra_files={"model_card.json": card})
    print(f"wrote {pt_path} ({pt_path.stat().st_size} bytes) and {args.out / 'deit_fmnist.json'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
