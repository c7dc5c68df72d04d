"""PyTorch's data-parallel pipeline on Fashion-MNIST, timed, for bench/distributed.ts.

usage: ddp_fmnist.py finetune|stats STUDENT.pt TEACHER.pt CONFIG_JSON DATA_DIR MEAN STD
       --world-size W --port P --batch B --limit N [--lr 1e-4] [--seed 0]

finetune: the recipe of finetune_fmnist.py (eager models.DeiT rebuilt from the TorchScript file, AdamW, cosine
per batch, distillation) over the first N items of a torch.randperm order, in global batches of B; with W > 1,
W processes (gloo, 127.0.0.1:P), each wrapping its student in DistributedDataParallel and training on items
rank, rank + W, ... of every global batch (DistributedSampler's rule), one intra-op thread each.
stats: the streaming float64 statistics of test/python/vbp_reference.py (forward hooks, per batch a two-pass
mean and M2, merged with Chan's formula) over N training items in batches of B per process, each process on
items rank, rank + W, ...; merged across processes with Chan's formula through all_reduce.

Prints one JSON line from rank 0: images, seconds (from a barrier before the first step to one after the last,
data preparation excluded as on the Node side), images per second.
"""
import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import vbp_reference as ref  # noqa: E402
from finetune_fmnist import load  # noqa: E402
from finetune_reference import distillation_step, eager_from_torchscript, learning_rate  # noqa: E402
from models import deit_mlp_pairs  # noqa: E402


def barrier(world):
    if world > 1:
        dist.barrier()


def finetune(rank, world, args, config, train_x, train_y):
    student = eager_from_torchscript(args.student, config).train()
    teacher = eager_from_torchscript(args.teacher, config).eval()
    model = torch.nn.parallel.DistributedDataParallel(student) if world > 1 else student
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, foreach=False)
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(args.seed))[: args.limit]
    steps = math.ceil(len(order) / args.batch)
    barrier(world)
    started = time.perf_counter()
    for step in range(steps):
        index = order[step * args.batch:(step + 1) * args.batch][rank::world]
        lr = learning_rate("cosine", args.lr, step, steps, 0)
        distillation_step(model, teacher, optimizer, params, train_x[index], train_y[index], lr, args.alpha,
                          args.temperature, 0, measure_norm=False)
    barrier(world)
    return len(order), time.perf_counter() - started


def statistics(rank, world, args, config, train_x):
    model = eager_from_torchscript(args.teacher, config).eval()
    mlps = ref.order_mlps(model, deit_mlp_pairs(config["depth"]))
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(args.seed))[: args.limit][rank::world]
    batches = [train_x[order[i:i + args.batch]] for i in range(0, len(order), args.batch)]
    barrier(world)
    started = time.perf_counter()
    with torch.no_grad():
        stats = ref.compute_statistics_streaming(model, mlps, batches)
        if world > 1:
            for s in stats:
                # Chan across processes: the global mean from the summed n * mean, then each M2 around it.
                count = torch.tensor([float(s.count)], dtype=torch.float64)
                mean = torch.from_numpy(s.mean).double()
                total = torch.cat([count, mean * s.count])
                dist.all_reduce(total)
                n, global_mean = total[0], total[1:] / total[0]
                m2 = torch.from_numpy(s.var).double() * s.count + (mean - global_mean) ** 2 * s.count
                dist.all_reduce(m2)
                s.var = (m2 / n).numpy()
    barrier(world)
    return len(order) * world, time.perf_counter() - started


def rank_main(rank, args):
    world = args.world_size
    torch.set_num_threads(1)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=world)
    config = json.loads(args.config)
    train_x, train_y = load(args.data, "train", args.mean, args.std)
    if args.task == "finetune":
        images, seconds = finetune(rank, world, args, config, train_x, train_y)
    else:
        images, seconds = statistics(rank, world, args, config, train_x)
    if rank == 0:
        print(json.dumps({"images": images, "seconds": seconds, "imagesPerSecond": images / seconds,
                          "worldSize": world, "torch": torch.__version__}), flush=True)
    if world > 1:
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=["finetune", "stats"])
    parser.add_argument("student")
    parser.add_argument("teacher")
    parser.add_argument("config")
    parser.add_argument("data")
    parser.add_argument("mean", type=float)
    parser.add_argument("std", type=float)
    parser.add_argument("--world-size", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--limit", type=int, default=7680)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.world_size == 1:
        rank_main(0, args)
    else:
        mp.spawn(rank_main, args=(args,), nprocs=args.world_size, join=True)


if __name__ == "__main__":
    main()
