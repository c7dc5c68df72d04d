"""The whole VBP job in Python, timed step by step, with the eager reference of test/python/vbp_reference.py:
load (state_dict into the eager model), calibrate (forward pre-hooks, streaming float64 statistics), plan
(global variance ranking), prune (mean-shift + slicing) and save (torch.jit.script + save).

usage: job.py STATE.pth CONFIG OUT.pt --batches N --batch-size B --ratio R --threads T  -> one JSON line
"""
import argparse
import json
import os
import sys
import time

THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OPENBLAS_NUM_THREADS"] = THREADS  # read when the library loads
os.environ["OMP_NUM_THREADS"] = THREADS

import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "test", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import vbp_reference as ref  # noqa: E402
from make_models import SHAPES  # noqa: E402
from models import DeiT, deit_mlp_pairs  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("state")
    parser.add_argument("config", choices=sorted(SHAPES))
    parser.add_argument("out")
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = SHAPES[args.config]
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(args.batch_size, 3, shape["img_size"], shape["img_size"], generator=generator) for _ in range(args.batches)]

    t = {}
    start = time.perf_counter()
    model = DeiT(**shape)
    model.load_state_dict(torch.load(args.state))
    model.eval()
    mlps = ref.order_mlps(model, deit_mlp_pairs(shape["depth"]))
    t["load"] = time.perf_counter() - start

    mark = time.perf_counter()
    stats = ref.compute_statistics_streaming(model, mlps, batches)
    t["calibrate"] = time.perf_counter() - mark

    mark = time.perf_counter()
    plan = ref.make_plan(model, stats, args.ratio, "variance", "global")
    t["plan"] = time.perf_counter() - mark

    mark = time.perf_counter()
    pruned = ref.prune_model(model, stats, plan, "mean")
    t["prune"] = time.perf_counter() - mark

    mark = time.perf_counter()
    torch.jit.script(pruned).save(args.out)
    t["save"] = time.perf_counter() - mark
    t["total"] = time.perf_counter() - start
    print(json.dumps({"seconds": t, "pruned": int(sum(len(p) for p in plan))}))


if __name__ == "__main__":
    main()
