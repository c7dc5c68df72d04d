#!/usr/bin/env python3
"""Eager-PyTorch reference of torch-vbp's fine-tuning recipe (finetune()).

The student and the teacher are rebuilt as eager ``models.DeiT`` modules (the
architecture given as JSON, each block's MLP width read from the weights) and
loaded with the weights of the TorchScript files; nothing of torch-vbp is used.

Recipe, step by step (step s counted from 0):
* ``torch.manual_seed(seed * 1000003 + s)`` (torch-vbp reseeds the same way);
* student in train mode, teacher in eval mode under no_grad;
* loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL, KL =
  ``kl_div(log_softmax(s / T), log_softmax(t / T), reduction='batchmean',
  log_target=True)``; without a teacher, loss = CE;
* ``clip_grad_norm_(params, clip)`` when clip > 0;
* learning rate: warm-up lr * (s + 1) / warmup for s < warmup, then cosine
  lr * (1 + cos(pi * (s - warmup) / (total - warmup))) / 2 (or constant);
* AdamW(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay): by default
  (``--optimizer libtorch``) the update written out below in the order of
  operations of LibTorch's C++ ``torch::optim::AdamW``, which torch-vbp
  trains with, and of PyTorch 1.13's eager ``torch.optim.AdamW(foreach=False)``
  (equal to it bit for bit there, checked by test/recovery/finetune.test.ts);
  ``--optimizer torch`` uses the installed torch's own class. PyTorch >= 2.0's
  eager AdamW moves the first moment with ``lerp_``, which rounds differently
  from ``mul_`` + ``add_``: after a few steps, parameters whose gradients are
  tiny differ by ~1e-3 relative, so a check of torch-vbp built against
  LibTorch 2.x compares with the written-out update.

Batches: ``--inputs`` [steps, B, ...] float32 and ``--labels`` [steps, B] int
.npy files, used in order. Writes ``--out`` JSON (per-step loss, CE, KD, lr,
grad norm, and per parameter its name, shape and offset) and ``--params`` .npy
(all parameters after the last step, flattened, concatenated, float64).
With ``--time``, also times the steps (after ``--warmup-steps`` untimed ones).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import models  # noqa: E402


def eager_from_torchscript(file: str, config: Dict[str, object]) -> models.DeiT:
    """models.DeiT with `config`, each block's fc1/fc2 resized to the file's widths, loaded with its weights."""
    state = torch.jit.load(file, map_location="cpu").state_dict()
    model = models.DeiT(**config)  # type: ignore[arg-type]
    for i, block in enumerate(model.blocks):
        hidden = state[f"blocks.{i}.mlp.fc1.weight"].shape[0]
        dim = state[f"blocks.{i}.mlp.fc1.weight"].shape[1]
        block.mlp.fc1 = nn.Linear(dim, hidden)
        block.mlp.fc2 = nn.Linear(hidden, state[f"blocks.{i}.mlp.fc2.weight"].shape[0])
    model.load_state_dict({k: v.clone() for k, v in state.items()}, strict=True)
    return model


class AdamWLibTorchOrder(torch.optim.Optimizer):
    """Decoupled weight decay Adam (Loshchilov & Hutter), one tensor at a time, in LibTorch's C++ order."""

    def __init__(self, params: List[torch.Tensor], lr: float, betas: Tuple[float, float], eps: float, weight_decay: float):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self) -> None:  # type: ignore[override]
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                step = state["step"]
                exp_avg, exp_avg_sq, grad = state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1 - lr * decay)
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(eps)
                p.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


def learning_rate(schedule: str, lr: float, step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    if schedule == "constant":
        return lr
    span = max(1, total - warmup)
    return lr * (1 + math.cos(math.pi * (step - warmup) / span)) / 2


def distillation_step(student: nn.Module, teacher: Optional[nn.Module], optimizer: torch.optim.Optimizer, params: List[torch.Tensor],
                      x: torch.Tensor, y: torch.Tensor, lr: float, alpha: float, T: float, clip: float,
                      measure_norm: bool = True, autocast: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """One step of the recipe at rate `lr`: (loss, CE, KD, gradient norm; the norm is NaN when not measured).

    With `autocast` (torch.bfloat16), the student's forward and the loss run under torch.autocast on the
    inputs' device, the teacher in float32 outside it, the backward pass after it, as torch-vbp does.
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    mixed = (lambda: torch.autocast(x.device.type, dtype=autocast)) if autocast is not None else contextlib.nullcontext
    t = None
    if teacher is not None:
        with torch.no_grad():
            t = teacher(x)
    with mixed():
        logits = student(x)
        ce = F.cross_entropy(logits, y)
        if t is not None:
            kd = F.kl_div(F.log_softmax(logits / T, 1), F.log_softmax(t / T, 1), reduction="batchmean", log_target=True) * (T * T)
            loss = (1 - alpha) * ce + alpha * kd
        else:
            kd = torch.zeros(())
            loss = ce
    optimizer.zero_grad()
    loss.backward()
    norm = float("nan")
    if clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    elif measure_norm:
        # One host sync for all parameters (a GPU step would otherwise wait once per parameter).
        norm = float(torch.stack([p.grad.double().pow(2).sum() for p in params if p.grad is not None]).sum().sqrt())
    optimizer.step()
    return loss, ce, kd, norm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher")
    parser.add_argument("--config", required=True, help="models.DeiT keyword arguments as JSON")
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--lr", type=float, default=1.5e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--clip", type=float, default=0.0)
    parser.add_argument("--schedule", default="cosine", choices=["cosine", "constant"])
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--total-steps", type=int, help="steps of the whole schedule (default: the batches given)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: forward and loss under torch.autocast")
    parser.add_argument("--scripted-student", action="store_true", help="train the TorchScript file itself instead of its eager twin")
    parser.add_argument("--optimizer", default="libtorch", choices=["libtorch", "torch"],
                        help="AdamW written out in LibTorch's C++ order (default), or the installed torch's class")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="run the batches this many times (timing)")
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--out", required=True)
    parser.add_argument("--params")
    parser.add_argument("--device", default="cpu", help="train there (inputs are copied from host memory each step, as torch-vbp's are)")
    parser.add_argument("--no-tf32", action="store_true", help="float32 matmuls and convolutions without TF32 (GPU parity runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = json.loads(args.config)
    device = torch.device(args.device)
    if args.no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    student: nn.Module
    if args.scripted_student:
        # The TorchScript module itself, op by op as torch-vbp runs it (the graph executor's optimisations off):
        # under autocast a scripted model rounds apart from its eager twin, so mixed precision compares with this.
        torch._C._set_graph_executor_optimize(False)
        student = torch.jit.load(args.student, map_location=device).train()
    else:
        student = eager_from_torchscript(args.student, config).to(device).train()
    teacher: Optional[nn.Module] = eager_from_torchscript(args.teacher, config).to(device).eval() if args.teacher else None
    inputs = torch.from_numpy(np.load(args.inputs))
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64))
    steps = inputs.shape[0] * args.repeat
    total = args.total_steps or steps
    params = [p for p in student.parameters()]
    optimizer: torch.optim.Optimizer
    if args.optimizer == "torch":
        optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay, foreach=False)
    else:
        optimizer = AdamWLibTorchOrder(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    record = {"loss": [], "crossEntropy": [], "distillation": [], "lr": [], "gradNorm": [], "stepMs": []}
    for step in range(steps):
        x, y = inputs[step % inputs.shape[0]], labels[step % inputs.shape[0]]
        started = time.perf_counter()
        x, y = x.to(device), y.to(device)
        torch.manual_seed(args.seed * 1000003 + step)
        lr = learning_rate(args.schedule, args.lr, step, total, args.warmup)
        loss, ce, kd, norm = distillation_step(student, teacher, optimizer, params, x, y, lr, args.alpha, args.temperature, args.clip,
                                               autocast=torch.bfloat16 if args.precision == "bf16" else None)
        record["stepMs"].append((time.perf_counter() - started) * 1000)
        record["loss"].append(float(loss))
        record["crossEntropy"].append(float(ce))
        record["distillation"].append(float(kd))
        record["lr"].append(lr)
        record["gradNorm"].append(norm)

    named = [(n, p.detach()) for n, p in student.named_parameters()]
    offset = 0
    record["parameters"] = []
    for name, p in named:
        record["parameters"].append({"name": name, "shape": list(p.shape), "offset": offset})
        offset += p.numel()
    if args.time:
        timed = record["stepMs"][args.warmup_steps:]
        record["medianStepMs"] = float(np.median(timed)) if timed else None
    if args.params:
        np.save(args.params, torch.cat([p.reshape(-1).double().cpu() for _, p in named]).numpy())
    Path(args.out).write_text(json.dumps(record))


if __name__ == "__main__":
    main()
