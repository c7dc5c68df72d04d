#!/usr/bin/env python3
"""PyTorch DistributedDataParallel reference of torch-vbp's data-parallel fine-tuning.

The recipe of finetune_reference.py (same seeding, loss, schedule and AdamW in
LibTorch's order), on ``--world-size`` processes with the Gloo backend
(torch.multiprocessing, rendezvous on 127.0.0.1:``--port``): each rank wraps its
eager student in ``torch.nn.parallel.DistributedDataParallel`` (which broadcasts
rank 0's weights and averages the gradients during backward), runs its own
teacher forward, and trains on its part of every step's batch: the items
rank, rank + W, ... of ``--inputs`` [steps, W * B, ...] (DistributedSampler's
rule). Rank 0 writes ``--out`` JSON (per step the loss averaged over every
item of every rank, and the parameter layout) and ``--params`` .npy (rank 0's
parameters after the last step, float64); every rank checks that its
parameters equal rank 0's bit for bit and says so in the JSON.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_reference import AdamWLibTorchOrder, distillation_step, eager_from_torchscript, learning_rate  # noqa: E402


def rank_main(rank: int, args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    world = args.world_size
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=world)
    config = json.loads(args.config)
    student = eager_from_torchscript(args.student, config).train()
    teacher = eager_from_torchscript(args.teacher, config).eval() if args.teacher else None
    model = torch.nn.parallel.DistributedDataParallel(student)
    params = [p for p in model.parameters()]
    optimizer = AdamWLibTorchOrder(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    inputs = torch.from_numpy(np.load(args.inputs))
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64))
    steps = inputs.shape[0]
    losses = []
    for step in range(steps):
        x, y = inputs[step][rank::world], labels[step][rank::world]
        torch.manual_seed(args.seed * 1000003 + step)
        lr = learning_rate(args.schedule, args.lr, step, steps, args.warmup)
        loss, _, _, _ = distillation_step(model, teacher, optimizer, params, x, y, lr, args.alpha, args.temperature, args.clip,
                                          measure_norm=False)
        total = torch.tensor([float(loss) * x.shape[0], float(x.shape[0])], dtype=torch.float64)
        dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
    flat = torch.cat([p.detach().reshape(-1).double() for p in student.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        named = list(student.named_parameters())
        layout, offset = [], 0
        for name, p in named:
            layout.append({"name": name, "shape": list(p.shape), "offset": offset})
            offset += p.numel()
        same = all(bool(torch.equal(gathered[0], g)) for g in gathered)
        Path(args.out).write_text(json.dumps({"loss": losses, "parameters": layout, "ranksIdentical": same, "torch": torch.__version__}))
        np.save(args.params, flat.numpy())
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher")
    parser.add_argument("--config", required=True)
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--clip", type=float, default=0.0)
    parser.add_argument("--schedule", default="constant", choices=["cosine", "constant"])
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--params", required=True)
    args = parser.parse_args()
    mp.spawn(rank_main, args=(args,), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
