"""The DeiT definition torch-vbp uses: the bundled model's (models/train_deit_fmnist.py), and the test
fixtures' and reference's (test/python/models.py re-exports it).

A small timm-style vision transformer without distillation token, classifying from the cls token. The
attribute names follow timm (``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.{i}.{norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.act, mlp.fc2}``, ``norm``, ``head``) because the Node library and
the tests address modules by these dotted paths. It can be scripted and traced and gives identical results
either way.

Dropout: a rate of ``None`` makes no dropout module at all (the bundled model's layout); a number, 0.0
included, makes ``nn.Dropout`` modules (``pos_drop``, ``attn.attn_drop``, ``attn.proj_drop``,
``mlp.drop1``, ``mlp.drop2``), as the fixtures have them. A dropout module of rate 0 computes nothing and
draws no random numbers, so both layouts give the same values.
"""

from __future__ import annotations

from typing import Optional, Type

import torch
from torch import nn


def _dropout(rate: Optional[float]) -> Optional[nn.Module]:
    return None if rate is None else nn.Dropout(rate)


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

    def __init__(
        self, dim: int, num_heads: int, attn_drop: Optional[float] = 0.0, proj_drop: Optional[float] = 0.0
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError("embed_dim must be divisible by num_heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.attn_drop = _dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = _dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        # [B, N, 3E] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.matmul(q, k.transpose(-2, -1)) * self.scale  # [B, heads, N, N]
        attn = attn.softmax(dim=-1)
        if self.attn_drop is not None:
            attn = self.attn_drop(attn)
        x = torch.matmul(attn, v)  # [B, heads, N, head_dim]
        x = x.transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        if self.proj_drop is not None:
            x = self.proj_drop(x)
        return x


class Mlp(nn.Module):
    """Transformer MLP: fc1 -> act -> drop1 -> fc2 -> drop2."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int,
        out_features: Optional[int] = None,
        act_layer: Type[nn.Module] = nn.GELU,
        drop: Optional[float] = 0.0,
    ) -> None:
        super().__init__()
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.drop1 = _dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = _dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.fc1(x))
        if self.drop1 is not None:
            x = self.drop1(x)
        x = self.fc2(x)
        if self.drop2 is not None:
            x = self.drop2(x)
        return x


class Block(nn.Module):
    """Pre-norm transformer block with residual connections."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        act_layer: Type[nn.Module] = nn.GELU,
        drop: Optional[float] = 0.0,
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
        drop_rate: Optional[float] = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + num_patches, embed_dim))
        self.pos_drop = _dropout(drop_rate)
        self.blocks = nn.Sequential(
            *[Block(embed_dim, num_heads, mlp_ratio, act_layer=act_layer, drop=drop_rate) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Linear(embed_dim, num_classes)
        # Linear/Conv layers keep PyTorch's default init; the learned tokens get a small normal init as in timm.
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        if self.pos_drop is not None:
            x = self.pos_drop(x)
        x = self.blocks(x)
        x = self.norm(x)
        return self.head(x[:, 0])
