"""TorchScript files saved by PyTorch 2.x, for the tests of what LibTorch 1.13 says of them
(test/hardening.test.ts). Needs a torch 2.x (the local wheel mirror's, in a venv); the files are committed.

usage: python torch2_models.py OUT_DIR
"""
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


class FusedAttention(torch.nn.Module):
    """scaled_dot_product_attention, an operator LibTorch 1.13 does not have."""

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(q, q, q)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(FusedAttention().eval()), str(out / "sdpa-model.pt"))
    print(f"written by torch {torch.__version__} to {out}")
