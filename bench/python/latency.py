"""Forward latency of a TorchScript model in Python (torch.jit.load, inference_mode), the way torch-vbp's
addon runs it.

usage: latency.py MODEL.pt --shape 1,3,224,224 --threads T [--warmup W] [--device cuda]
Serves timing requests so that a caller can interleave its own runs with these: after warm-up it prints
"ready", then for every line "N" read from stdin it runs N timed forwards and prints their times (ms) as
one JSON list; it ends at end of input.
On a GPU each run takes the input from host memory and brings the output back, as a torch-vbp forward
does with JavaScript arrays (and the copy back waits for the GPU).
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
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = torch.jit.load(args.model, map_location=device).eval()
    shape = [int(s) for s in args.shape.split(",")]
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(x.to(device)).cpu()
        print("ready", flush=True)
        for line in sys.stdin:
            times = []
            for _ in range(int(line)):
                start = time.perf_counter()
                model(x.to(device)).cpu()
                times.append((time.perf_counter() - start) * 1000)
            print(json.dumps(times), flush=True)


if __name__ == "__main__":
    main()
