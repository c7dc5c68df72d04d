"""Model definitions for the torch-vbp PyTorch fixtures and reference.

Contents
--------
* ``DeiT``: a small timm-style vision transformer. The attribute names follow
  timm (``blocks.{i}.mlp.fc1`` etc.) because the Node library and the tests
  address modules by these dotted paths. The model is written so that it can be
  both scripted and traced and gives identical results either way.
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
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn


# ---------------------------------------------------------------------------
# DeiT (timm-style ViT)
# ---------------------------------------------------------------------------


class PatchEmbed(nn.Module):
    """Split the image into non-overlapping patches and embed each one."""

    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        if img_size % patch_size != 0:
            raise ValueError("img_size must be a multiple of patch_size")
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)  # [B, E, H/p, W/p]
        return x.flatten(2).transpose(1, 2)  # [B, N, E]


class Attention(nn.Module):
    """Multi-head self-attention written with explicit matmuls."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        # [B, N, 3E] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.matmul(q, k.transpose(-2, -1)) * self.scale  # [B, heads, N, N]
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        x = torch.matmul(attn, v)  # [B, heads, N, head_dim]
        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        return self.proj_drop(x)


class Mlp(nn.Module):
    """Transformer MLP: fc1 -> act -> drop1 -> fc2 -> drop2."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: Optional[int] = None,
        act_layer: Type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        return self.drop2(self.fc2(x))


class Block(nn.Module):
    """Pre-norm transformer block with residual connections."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        act_layer: Type[nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_drop=drop, proj_drop=drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DeiT(nn.Module):
    """Small DeiT (no distillation token); classifies from the cls token."""

    def __init__(
        self,
        img_size: int = 32,
        patch_size: int = 8,
        in_chans: int = 3,
        num_classes: int = 10,
        embed_dim: int = 48,
        depth: int = 3,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        act_layer: Type[nn.Module] = nn.GELU,
        drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = nn.Sequential(
            *[Block(embed_dim, num_heads, mlp_ratio, act_layer=act_layer, drop=drop_rate) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        # Linear/Conv layers keep PyTorch's default init; the learned tokens
        # get a small normal init as in timm.
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        x = self.pos_drop(x + self.pos_embed)
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])


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
