#!/usr/bin/env python3
"""Export a DeiT (timm's pretrained ones, or any timm-style DeiT) to TorchScript with a torch-vbp model card.

For users who have timm, its pretrained DeiT weights and ImageNet, to reproduce the paper's recipe with
``vbp prune``, ``vbp eval`` and ``vbp finetune`` (README: "Reproducing the paper"). The model is scripted
(``torch.jit.script``), so dropout and drop-path follow train()/eval() when fine-tuned, and saved in eval
mode with its card inside the archive (``extra/model_card.json``) and beside it (``MODEL.json``): input
shape, normalisation, interpolation and crop fraction from timm's pretrained configuration, and the class
count.

    # a timm model (weights from timm's cache or hub, as timm itself fetches them; torch-vbp downloads nothing)
    python3 scripts/export_deit.py --timm deit_base_patch16_224 --out deit_b.pt

    # offline: timm's architecture with your own weights (.pth/.pt state dict or .safetensors), or random ones
    python3 scripts/export_deit.py --timm deit_small_patch16_224 --checkpoint my_deit_s.safetensors --out deit_s.pt
    python3 scripts/export_deit.py --timm deit_small_patch16_224 --no-pretrained --seed 0 --out deit_s_random.pt

    # any DeiT class importable as module:Class with keyword arguments (no timm, no downloads)
    python3 scripts/export_deit.py --module test/python/models.py:DeiT \\
        --config '{"img_size": 32, "patch_size": 8, "num_classes": 10}' --seed 0 --out deit_test.pt

A module without a pretrained configuration gets ImageNet's normalisation unless --mean/--std are given.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Dict, Tuple

import torch
from torch import nn

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def load_state_dict(file: str) -> Dict[str, torch.Tensor]:
    """A state dict from a .safetensors file or a torch.save file (a state dict, or a dict holding one under
    'model' or 'state_dict', as training scripts save them)."""
    if file.endswith(".safetensors"):
        try:
            from safetensors.torch import load_file  # type: ignore
        except ImportError:
            sys.exit("export_deit.py: a .safetensors checkpoint needs the safetensors package")
        return load_file(file)
    state = torch.load(file, map_location="cpu")
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            return state[key]
    if not isinstance(state, dict):
        sys.exit(f"export_deit.py: {file} holds no state dict")
    return state


def timm_model(name: str, pretrained: bool, checkpoint: str | None, seed: int) -> Tuple[nn.Module, Dict[str, Any]]:
    try:
        import timm  # type: ignore
    except ImportError:
        sys.exit("export_deit.py: --timm needs timm (pip install timm)")
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=pretrained)
    if checkpoint:
        missing, unexpected = model.load_state_dict(load_state_dict(checkpoint), strict=False)
        if missing or unexpected:
            sys.exit(f"export_deit.py: {checkpoint} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    cfg = dict(getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", {}))
    return model, cfg


def module_model(spec: str, config: Dict[str, Any], seed: int) -> Tuple[nn.Module, Dict[str, Any]]:
    file, _, cls = spec.rpartition(":")
    if not file or not cls:
        sys.exit("export_deit.py: --module takes FILE.py:Class")
    path = Path(file).resolve()
    sys.path.insert(0, str(path.parent))
    loaded = importlib.util.spec_from_file_location(path.stem, path)
    assert loaded and loaded.loader
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    torch.manual_seed(seed)
    return getattr(module, cls)(**config), {}


def input_size(model: nn.Module, cfg: Dict[str, Any], config: Dict[str, Any]) -> list:
    if "input_size" in cfg:
        return list(cfg["input_size"])
    size = config.get("img_size") or getattr(getattr(model, "patch_embed", None), "img_size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else size
    return [int(config.get("in_chans", 3)), int(size), int(size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--timm", help="timm model name, e.g. deit_base_patch16_224")
    source.add_argument("--module", help="FILE.py:Class of a timm-style DeiT")
    parser.add_argument("--config", default="{}", help="--module: keyword arguments as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of a random initialisation (--module, --no-pretrained)")
    parser.add_argument("--no-pretrained", action="store_true", help="--timm: random weights, no download")
    parser.add_argument("--checkpoint", help="--timm: weights from this .pth/.pt/.safetensors file instead of a download")
    parser.add_argument("--mean", type=float, nargs="+")
    parser.add_argument("--std", type=float, nargs="+")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    config = json.loads(args.config)
    if args.timm:
        offline = args.no_pretrained or args.checkpoint is not None
        model, cfg = timm_model(args.timm, not offline, args.checkpoint, args.seed)
    else:
        model, cfg = module_model(args.module, config, args.seed)
    model.eval()
    shape = input_size(model, cfg, config)
    card = {
        "name": args.timm or Path(args.out).stem,
        "description": f"exported by torch-vbp's scripts/export_deit.py from {'timm ' + args.timm if args.timm else args.module}",
        "format": "TorchScript (torch.jit.script), eval mode",
        "inputShape": shape,
        "mean": args.mean or list(cfg.get("mean", IMAGENET_MEAN))[: shape[0]],
        "std": args.std or list(cfg.get("std", IMAGENET_STD))[: shape[0]],
        "num_classes": int(getattr(model, "num_classes", cfg.get("num_classes", 0)) or 0),
        "preprocessing": {
            "interpolation": cfg.get("interpolation", "bicubic"),
            "crop_pct": cfg.get("crop_pct", 0.875),
        },
        "torch_version": torch.__version__,
    }
    text = json.dumps(card, indent=2) + "\n"
    scripted = torch.jit.script(model)
    out = Path(args.out)
    scripted.save(str(out), _extra_files={"model_card.json": text})
    out.with_suffix(".json").write_text(text)
    with torch.no_grad():
        x = torch.randn(2, *shape)
        diff = (torch.jit.load(str(out))(x) - model(x)).abs().max().item()
    print(json.dumps({"out": str(out), "inputShape": shape, "maxDiffToEager": diff}))


if __name__ == "__main__":
    main()
