"""Forward latency of a TorchScript model in Python (torch.jit.load, inference_mode), the way torch-vbp's
addon runs it.

usage: latency.py MODEL.pt --shape 1,3,224,224 --threads T [--warmup W]
Serves timing requests so that a caller can interleave its own runs with these: after warm-up it prints
"ready", then for every line "N" read from stdin it runs N timed forwards and prints their times (ms) as
one JSON list; it ends at end of input.
"""
import argparse
import json
import os
import sys
import time

THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
os.environ["OPENBLAS_NUM_THREADS"] = THREADS
os.environ["OMP_NUM_THREADS"] = THREADS

import torch  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = torch.jit.load(args.model).eval()
    shape = [int(s) for s in args.shape.split(",")]
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x)
        print("ready", flush=True)
        for line in sys.stdin:
            times = []
            for _ in range(int(line)):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000)
            print(json.dumps(times), flush=True)


if __name__ == "__main__":
    main()
