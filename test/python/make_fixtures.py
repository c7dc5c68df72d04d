#!/usr/bin/env python3
"""Write the TorchScript models, inputs and reference outputs used by the tests.

Usage: make_fixtures.py --out DIR

Everything is seeded with ``torch.manual_seed(0)`` and generated in a fixed
order, so re-running the script rewrites the same fixtures (the tensors are
bit-identical; the zip containers of the .pt files may differ in metadata).
See README.md for the list of files.
"""

from __future__ import annotations

import os

# Single-threaded BLAS/OpenMP for reproducible numbers; must precede the imports.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import json
import sys
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import damaged_archives  # noqa: E402  (path set up above)
import models  # noqa: E402

torch.set_num_threads(1)

NUM_CONSTANT_NEURONS = 24
CALIB_IMAGES = 64


def save_npy(path: Path, tensor: torch.Tensor) -> None:
    np.save(path, tensor.detach().cpu().numpy().astype(np.float32))


def write_json(path: Path, obj: object) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def script_and_save(model: nn.Module, path: Path) -> None:
    torch.jit.save(torch.jit.script(model), str(path))


def trace_and_save(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    torch.jit.save(traced, str(path))


@torch.no_grad()
def run_saved(path: Path, x: torch.Tensor) -> torch.Tensor:
    """Output of the saved TorchScript file (what the Node side will load)."""
    module = torch.jit.load(str(path))
    module.eval()
    return module(x)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# ---------------------------------------------------------------------------
# Analytic MAC count
# ---------------------------------------------------------------------------


def deit_macs(cfg: Dict[str, object]) -> Dict[str, int]:
    """Multiply-accumulates of one [1, C, S, S] image through the DeiT fixture.

    Counts Linear, Conv and attention matmuls only (no norms, softmax,
    activations or bias adds). The head sees the cls token only.
    """
    img, patch, chans = int(cfg["img_size"]), int(cfg["patch_size"]), int(cfg["in_chans"])
    embed, depth, heads = int(cfg["embed_dim"]), int(cfg["depth"]), int(cfg["num_heads"])
    hidden = int(embed * float(cfg["mlp_ratio"]))
    classes = int(cfg["num_classes"])
    patches = (img // patch) ** 2
    tokens = patches + 1
    head_dim = embed // heads

    macs = {
        "patch_embed": patches * embed * chans * patch * patch,
        "qkv": depth * tokens * embed * 3 * embed,
        # q @ k^T and attn @ v: each heads * T * T * head_dim
        "attn_matmuls": depth * 2 * heads * tokens * tokens * head_dim,
        "proj": depth * tokens * embed * embed,
        "fc1": depth * tokens * embed * hidden,
        "fc2": depth * tokens * hidden * embed,
        "head": embed * classes,
    }
    macs["total"] = sum(macs.values())
    return macs


@torch.no_grad()
def measured_linear_conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Cross-check: Linear + Conv2d MACs measured with forward hooks."""
    total = 0

    def hook(module: nn.Module, inputs: Tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return total


# ---------------------------------------------------------------------------
# Fixture sections
# ---------------------------------------------------------------------------


def make_inputs(out: Path) -> Dict[str, torch.Tensor]:
    inputs = {
        "input_b1": torch.randn(1, 3, 32, 32),
        "input_b4": torch.randn(4, 3, 32, 32),
        "calib": torch.randn(CALIB_IMAGES, 3, 32, 32),
    }
    for name, tensor in inputs.items():
        save_npy(out / f"{name}.npy", tensor)
    return inputs


def make_deit(out: Path, inputs: Dict[str, torch.Tensor]) -> nn.Module:
    model = models.build_deit_fixture()
    depth = int(models.DEIT_FIXTURE_CONFIG["depth"])
    models.perturb_mlp_weights(model, models.deit_mlp_pairs(depth))
    model.eval()
    torch.save(model.state_dict(), out / "deit_eager.pth")

    script_and_save(model, out / "deit_scripted.pt")
    # Trace with a batch size that differs from both test inputs, so the
    # dynamic batch dimension is exercised.
    trace_and_save(model, torch.randn(2, 3, 32, 32), out / "deit_traced.pt")

    with torch.no_grad():
        for batch in ("b1", "b4"):
            x = inputs[f"input_{batch}"]
            eager = model(x)
            for kind in ("scripted", "traced"):
                y = run_saved(out / f"deit_{kind}.pt", x)
                diff = max_abs_diff(y, eager)
                if diff > 1e-6:
                    raise RuntimeError(f"deit_{kind} differs from eager on {batch}: {diff}")
                save_npy(out / f"out_deit_{kind}_{batch}.npy", y)
    return model


def make_dropout_deits(out: Path) -> None:
    """The DeiT fixture with dropout 0.1, for fine-tuning's handling of train/eval mode: scripted (reads
    `training`), traced in eval mode (dropout frozen off) and traced in train mode (frozen on)."""
    torch.manual_seed(5)
    config = dict(models.DEIT_FIXTURE_CONFIG, drop_rate=0.1)
    model = models.DeiT(**config)  # type: ignore[arg-type]
    script_and_save(model.eval(), out / "deit_dropout_scripted.pt")
    trace_and_save(model.eval(), torch.randn(2, 3, 32, 32), out / "deit_dropout_traced_eval.pt")
    trace_and_save(model.train(), torch.randn(2, 3, 32, 32), out / "deit_dropout_traced_train.pt")


def make_bfloat16_deit(out: Path, deit: nn.Module, inputs: Dict[str, torch.Tensor]) -> None:
    """The DeiT fixture's weights in bfloat16 (CPU LibTorch has bfloat16 kernels; float16 convolutions are
    GPU-only), and its output on input_b4 given in bfloat16, widened to float32."""
    half = copy.deepcopy(deit).to(torch.bfloat16).eval()
    script_and_save(half, out / "deit_bf16.pt")
    with torch.no_grad():
        save_npy(out / "out_deit_bf16_b4.npy", run_saved(out / "deit_bf16.pt", inputs["input_b4"].to(torch.bfloat16)).float())


def make_torchvision_vit(out: Path, inputs: Dict[str, torch.Tensor]) -> None:
    model = models.build_torchvision_vit()
    with torch.no_grad():
        # torchvision zero-initialises the head (all-zero logits); give it a
        # default nn.Linear init instead.
        model.heads.head.reset_parameters()
    models.perturb_mlp_weights(model, models.tv_vit_mlp_pairs(models.TV_VIT_CONFIG["num_layers"]))
    model.eval()
    torch.save(model.state_dict(), out / "vit_torchvision_eager.pth")
    script_and_save(model, out / "vit_torchvision.pt")
    with torch.no_grad():
        for batch in ("b1", "b4"):
            x = inputs[f"input_{batch}"]
            y = run_saved(out / "vit_torchvision.pt", x)
            diff = max_abs_diff(y, model(x))
            if diff > 1e-5:
                raise RuntimeError(f"vit_torchvision differs from eager on {batch}: {diff}")
            save_npy(out / f"out_vit_torchvision_{batch}.npy", y)


def make_variants(out: Path) -> None:
    vdir = out / "mlp_variants"
    vdir.mkdir(parents=True, exist_ok=True)
    x = torch.randn(*models.VARIANT_INPUT_SHAPE)
    save_npy(vdir / "variant_input.npy", x)

    expected: List[Dict[str, object]] = []
    for name, (ctor, mlps) in models.VARIANTS.items():
        model = ctor().eval()
        script_and_save(model, vdir / f"{name}_scripted.pt")
        trace_and_save(model, x, vdir / f"{name}_traced.pt")
        with torch.no_grad():
            y_script = run_saved(vdir / f"{name}_scripted.pt", x)
            y_trace = run_saved(vdir / f"{name}_traced.pt", x)
            if max_abs_diff(y_script, y_trace) > 1e-6 or max_abs_diff(y_script, model(x)) > 1e-6:
                raise RuntimeError(f"variant {name}: scripted/traced/eager disagree")
        save_npy(vdir / f"variant_out_{name}.npy", y_script)

        mlp_entries = [
            {"fc1": fc1, "fc2": fc2, "hidden": hidden, "activation": act} for fc1, fc2, hidden, act in mlps
        ]
        for kind in ("scripted", "traced"):
            expected.append({"file": f"{name}_{kind}.pt", "mlps": mlp_entries})
    write_json(vdir / "expected.json", expected)


def make_constant_deit(out: Path, deit: nn.Module, inputs: Dict[str, torch.Tensor]) -> None:
    """DeiT copy with NUM_CONSTANT_NEURONS input-independent hidden neurons per block."""
    model = copy.deepcopy(deit).eval()
    depth = int(models.DEIT_FIXTURE_CONFIG["depth"])
    constant: Dict[str, List[int]] = {}
    with torch.no_grad():
        for fc1_path, _ in models.deit_mlp_pairs(depth):
            fc1 = models.get_submodule(model, fc1_path)
            idx = torch.randperm(fc1.out_features)[:NUM_CONSTANT_NEURONS].sort().values
            fc1.weight[idx] = 0.0
            # |b| in [0.5, 1.5] with a random sign: GELU(b) is clearly non-zero.
            sign = torch.randint(0, 2, (len(idx),)).float() * 2 - 1
            fc1.bias[idx] = sign * torch.empty(len(idx)).uniform_(0.5, 1.5)
            constant[fc1_path] = [int(i) for i in idx]
    script_and_save(model, out / "deit_constant.pt")
    write_json(out / "constant_neurons.json", constant)
    save_npy(out / "out_deit_constant_b4.npy", run_saved(out / "deit_constant.pt", inputs["input_b4"]))


def make_layouts(out: Path) -> None:
    """MLP inputs laid out [T, B, D] and [B * T, D], and a model that asserts a batch of two or more."""
    ldir = out / "layouts"
    ldir.mkdir(parents=True, exist_ok=True)
    x = torch.randn(*models.LAYOUT_INPUT_SHAPE)
    save_npy(ldir / "layout_input.npy", x)
    for name, ctor in (("seq_first", models.SequenceFirst), ("flattened", models.Flattened), ("needs_batch", models.NeedsBatch)):
        model = ctor().eval()
        script_and_save(model, ldir / f"{name}.pt")
        save_npy(ldir / f"out_{name}.npy", run_saved(ldir / f"{name}.pt", x))


def make_macs(out: Path, deit: nn.Module) -> None:
    macs = deit_macs(models.DEIT_FIXTURE_CONFIG)
    measured = measured_linear_conv_macs(deit, torch.zeros(1, 3, 32, 32))
    if measured != macs["total"] - macs["attn_matmuls"]:
        raise RuntimeError(f"MAC cross-check failed: hooks {measured}, analytic {macs}")
    result: Dict[str, int] = dict(macs)
    result["params"] = sum(p.numel() for p in deit.parameters())
    write_json(out / "macs_deit.json", result)


class _Tied(nn.Module):
    """Two Linear layers that share one weight tensor (tied parameters), then a classifier head."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(6, 16)
        self.mid = nn.Linear(16, 16)
        self.mid2 = nn.Linear(16, 16)
        self.mid2.weight = self.mid.weight
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x))
        h = torch.relu(self.mid(h))
        return self.head(torch.relu(self.mid2(h)))


class _RandomOutput(nn.Module):
    """Returns torch.rand(3): shows which state the process's default generator is in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.rand(3) + 0.0 * x.sum()


class _WideInputMlp(nn.Module):
    """fc1 -> GELU -> (doubled) -> fc2: fc2 is given twice fc1's width; the statistics tap sees it first."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.gelu(self.fc1(x))
        return self.fc2(torch.cat([h, h], -1))


class _ConvNet(nn.Module):
    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, out_channels, 3, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def make_hardening(out: Path) -> None:
    """Models for the native hardening tests (test/hardening.test.ts), with PyTorch's results where they have one."""
    hdir = out / "hardening"
    hdir.mkdir(exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script_and_save(_ConvNet(4, 0).eval(), hdir / "conv_stride0.pt")
        script_and_save(_ConvNet(0, 1).eval(), hdir / "conv_empty.pt")
    script_and_save(_RandomOutput().eval(), hdir / "random_output.pt")
    script_and_save(_WideInputMlp().eval(), hdir / "wide_input_mlp.pt")
    wide = nn.Sequential(nn.Linear(1024, 2048), nn.GELU(), nn.Linear(2048, 1024)).eval()
    script_and_save(wide, hdir / "wide_mlp.pt")  # 16 MiB of parameters, in blocks the CPU cache keeps
    damaged_archives.build(hdir / "damaged")

    # Tied parameters: three AdamW steps of PyTorch on the same batch, for the trainer to match.
    tied = _Tied()
    script_and_save(tied.eval(), hdir / "tied.pt")
    x = torch.randn(8, 6)
    labels = torch.arange(8) % 4
    save_npy(hdir / "tied_input.npy", x)
    np.save(hdir / "tied_labels.npy", labels.numpy().astype(np.int32))
    tied.train()
    optimizer = torch.optim.AdamW(tied.parameters(), lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(3):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(tied(x), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    write_json(
        hdir / "tied_reference.json",
        {
            "losses": losses,
            "parameters": {name: p.detach().flatten().tolist() for name, p in tied.named_parameters()},
            "parameterCount": sum(p.numel() for p in tied.parameters()),
        },
    )


def write_manifest(out: Path) -> None:
    import torchvision

    # Only this script's outputs (the top level, mlp_variants/ and layouts/), not e.g. a
    # reference output folder that a test placed inside DIR.
    paths = list(out.glob("*")) + [p for d in ("mlp_variants", "layouts", "hardening") for p in (out / d).glob("*")]
    files = sorted(str(p.relative_to(out)) for p in paths if p.is_file() and p.name != "manifest.json")
    write_json(
        out / "manifest.json",
        {
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "numpy": np.__version__,
            "seed": 0,
            "files": files,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="output directory (created if missing)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    inputs = make_inputs(out)
    deit = make_deit(out, inputs)
    make_torchvision_vit(out, inputs)
    make_dropout_deits(out)
    make_bfloat16_deit(out, deit, inputs)
    make_variants(out)
    make_constant_deit(out, deit, inputs)
    make_layouts(out)
    make_macs(out, deit)
    make_hardening(out)
    write_manifest(out)
    print(f"fixtures written to {out}")


if __name__ == "__main__":
    main()
