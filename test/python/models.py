"""Model definitions for the torch-vbp PyTorch fixtures and reference.

Contents
--------
* ``DeiT``: a small timm-style vision transformer, defined once in
  ``models/deit.py`` (the bundled model's definition) and re-exported here with
  the fixture's configuration. The attribute names follow timm
  (``blocks.{i}.mlp.fc1`` etc.) because the Node library and the tests address
  modules by these dotted paths.
* ``build_torchvision_vit``: the torchvision ``VisionTransformer`` fixture,
  whose MLP blocks are ``encoder.layers.encoder_layer_{i}.mlp.0`` / ``.3``.
* MLP-discovery variants (``VARIANTS``): tiny modules that exercise the
  Node-side detection of ``fc1 -> activation -> fc2`` blocks with unusual
  names, activations and wiring, including two negatives that must not be
  detected. Each takes a ``[2, 5, 16]`` (batch, tokens, features) input.
* ``perturb_mlp_weights``: turns near-degenerate random-init statistics into
  something realistic (neurons with clearly different variances and non-zero
  means) so that VBP's ranking and mean-shift compensation are meaningful.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------
# DeiT (timm-style ViT): the bundled model's definition, models/deit.py
# ---------------------------------------------------------------------------

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models"))
from deit import Attention, Block, DeiT, Mlp, PatchEmbed  # noqa: E402,F401  (re-exported)


# Configuration of the DeiT fixture (hidden width 48 * 4 = 192).
DEIT_FIXTURE_CONFIG: Dict[str, object] = dict(
    img_size=32,
    patch_size=8,
    in_chans=3,
    num_classes=10,
    embed_dim=48,
    depth=3,
    num_heads=3,
    mlp_ratio=4.0,
    drop_rate=0.0,
)


def build_deit_fixture() -> DeiT:
    """The DeiT fixture architecture with fresh (seed-dependent) weights, eval mode."""
    return DeiT(**DEIT_FIXTURE_CONFIG).eval()  # type: ignore[arg-type]


def deit_mlp_pairs(depth: int) -> List[Tuple[str, str]]:
    return [(f"blocks.{i}.mlp.fc1", f"blocks.{i}.mlp.fc2") for i in range(depth)]


# ---------------------------------------------------------------------------
# torchvision ViT
# ---------------------------------------------------------------------------

TV_VIT_CONFIG: Dict[str, int] = dict(
    image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
)


def build_torchvision_vit() -> nn.Module:
    """torchvision's VisionTransformer fixture, in eval mode.

    Note that torchvision zero-initialises the classification head, so a freshly
    built model outputs zeros; ``make_fixtures.py`` re-initialises it.
    """
    import torchvision

    return torchvision.models.VisionTransformer(**TV_VIT_CONFIG).eval()


def tv_vit_mlp_pairs(num_layers: int) -> List[Tuple[str, str]]:
    return [
        (f"encoder.layers.encoder_layer_{i}.mlp.0", f"encoder.layers.encoder_layer_{i}.mlp.3")
        for i in range(num_layers)
    ]


# ---------------------------------------------------------------------------
# Weight perturbation: realistic activation statistics
# ---------------------------------------------------------------------------


def get_submodule(model: nn.Module, path: str) -> nn.Module:
    """Resolve a dotted module path (works for Sequential indices too)."""
    module = model
    for part in path.split("."):
        module = getattr(module, part)
    return module


@torch.no_grad()
def perturb_mlp_weights(model: nn.Module, mlp_pairs: Sequence[Tuple[str, str]]) -> None:
    """Make post-activation statistics of each MLP clearly non-degenerate.

    Uses the global torch RNG (seed it beforehand). For every hidden neuron j:
    * fc1.bias[j] ~ N(0, 0.5): neurons get non-zero, differing means after the
      activation, so replacing a pruned neuron by its mean (VBP's mean shift)
      matters;
    * fc1.weight[j, :] is scaled by a log-uniform factor in [0.02, 3]: the
      neurons' variances span several orders of magnitude (small factors give
      almost constant neurons whose mean is far from zero);
    * fc2.weight[:, j] is scaled by a log-uniform factor in [0.5, 2], so the
      output-side criteria (WIFV) rank differently from raw variance.
    """
    for fc1_path, fc2_path in mlp_pairs:
        fc1 = get_submodule(model, fc1_path)
        fc2 = get_submodule(model, fc2_path)
        hidden = fc1.out_features
        fc1.bias.normal_(0.0, 0.5)
        row_scale = torch.exp(torch.empty(hidden).uniform_(math.log(0.02), math.log(3.0)))
        fc1.weight.mul_(row_scale[:, None])
        col_scale = torch.exp(torch.empty(hidden).uniform_(math.log(0.5), math.log(2.0)))
        fc2.weight.mul_(col_scale[None, :])


# ---------------------------------------------------------------------------
# MLP-discovery variants (input [2, 5, 16])
# ---------------------------------------------------------------------------

VARIANT_DIM = 16


class UpDownMlp(nn.Module):
    """MLP with non-timm names: up -> ReLU -> down."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.down = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class UpDownBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.mlp = UpDownMlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class VariantReluUpDown(nn.Module):
    """(a) Two residual blocks whose MLPs are named up/down and use ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(UpDownBlock(VARIANT_DIM, 32), UpDownBlock(VARIANT_DIM, 32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class VariantSiluSequential(nn.Module):
    """(b) SiLU MLP expressed as an nn.Sequential (paths ffn.0 / ffn.2)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(VARIANT_DIM)
        self.ffn = nn.Sequential(nn.Linear(VARIANT_DIM, 24), nn.SiLU(), nn.Linear(24, VARIANT_DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ffn(self.norm(x))


class VariantGeluTanh(nn.Module):
    """(c) timm-style Mlp with tanh-approximated GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = Mlp(VARIANT_DIM, 40, act_layer=_gelu_tanh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(x)


def _gelu_tanh() -> nn.Module:
    return nn.GELU(approximate="tanh")


class VariantFunctionalGelu(nn.Module):
    """(d) MLP whose activation is a functional call inside forward."""

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Linear(VARIANT_DIM, 48)
        self.w2 = nn.Linear(48, VARIANT_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.gelu(self.w1(x)))


class VariantFc2NoBias(nn.Module):
    """(e) GELU MLP whose fc2 has no bias (mean-shift must create one)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(VARIANT_DIM, 20)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(20, VARIANT_DIM, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class VariantLayerNormBetween(nn.Module):
    """(f) NEGATIVE: fc1 -> LayerNorm -> GELU -> fc2.

    The names and the activation right before fc2 look like an MLP, but the
    LayerNorm mixes all hidden neurons (its statistics and affine parameters
    span the hidden width), so the hidden neurons cannot be pruned
    independently. Must not be detected.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(VARIANT_DIM, 32)
        self.norm = nn.LayerNorm(32)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(32, VARIANT_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(x))))


class VariantNoMlp(nn.Module):
    """(g) NEGATIVE: a Conv1d over tokens, ReLU, then a single Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(VARIANT_DIM, 8, kernel_size=3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(x.transpose(1, 2)))  # [B, 8, T]
        return self.head(x.mean(dim=2))  # [B, 4]


# name -> (constructor, expected MLPs as (fc1, fc2, hidden, activation))
VariantSpec = Tuple[Callable[[], nn.Module], List[Tuple[str, str, int, str]]]
VARIANTS: Dict[str, VariantSpec] = {
    "a_relu_updown": (
        VariantReluUpDown,
        [("blocks.0.mlp.up", "blocks.0.mlp.down", 32, "relu"), ("blocks.1.mlp.up", "blocks.1.mlp.down", 32, "relu")],
    ),
    "b_silu_sequential": (VariantSiluSequential, [("ffn.0", "ffn.2", 24, "silu")]),
    "c_gelu_tanh": (VariantGeluTanh, [("mlp.fc1", "mlp.fc2", 40, "gelu_tanh")]),
    "d_functional_gelu": (VariantFunctionalGelu, [("w1", "w2", 48, "gelu")]),
    "e_fc2_nobias": (VariantFc2NoBias, [("fc1", "fc2", 20, "gelu")]),
    "f_layernorm_between": (VariantLayerNormBetween, []),
    "g_no_mlp": (VariantNoMlp, []),
}

VARIANT_INPUT_SHAPE = (2, 5, VARIANT_DIM)


# ---------------------------------------------------------------------------
# Layouts of the MLP input other than [B, T, D], and a model that fails on purpose
# ---------------------------------------------------------------------------

LAYOUT_INPUT_SHAPE = (4, 6, VARIANT_DIM)  # [B, T, D]: 6 tokens per item


class SequenceFirst(nn.Module):
    """The MLP sees [T, B, D] (sequence-first, as nn.MultiheadAttention-style code keeps it)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = Mlp(VARIANT_DIM, 32)
        self.head = nn.Linear(VARIANT_DIM, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mlp(x.transpose(0, 1)).transpose(0, 1)
        return self.head(y.mean(dim=1))


class Flattened(nn.Module):
    """The MLP sees [B * T, D] (tokens of all items flattened into one dimension)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = Mlp(VARIANT_DIM, 32)
        self.head = nn.Linear(VARIANT_DIM, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        y = self.mlp(x.reshape(b * t, d)).reshape(b, t, d)
        return self.head(y.mean(dim=1))


class NeedsBatch(nn.Module):
    """Refuses batches of one item with an assert in its own code (whose message mentions a shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = Mlp(VARIANT_DIM, 32)
        self.head = nn.Linear(VARIANT_DIM, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.size(0) > 1, "this model needs batches of two or more items (input shape [N, T, D] with N > 1)"
        return self.head(self.mlp(x).mean(dim=1))
