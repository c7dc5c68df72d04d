"""A seeded corpus of broken TorchScript archives for the robustness tests: byte-level damage (flipped bits,
truncation, inserted and deleted runs) and content-level damage inside a well-formed zip (an entry's bytes
flipped, cut, emptied, swapped or replaced with random data, every CRC valid), so the damage reaches
LibTorch's unpickler and TorchScript compiler rather than only its zip reader.

usage: fuzz_corpus.py MODEL.pt OUT_DIR --count N --seed S   -> OUT_DIR/case_NNNN.pt and OUT_DIR/cases.json
"""
import argparse
import json
import os
import random
import zipfile


def byte_damage(rng, data):
    data = bytearray(data)
    kind = rng.choice(["flip", "truncate", "insert", "delete"])
    if kind == "flip":
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        data = data[: rng.randrange(len(data))]
    elif kind == "insert":
        i = rng.randrange(len(data))
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        i = rng.randrange(len(data))
        del data[i : i + rng.randint(1, 256)]
    return kind, bytes(data)


def content_damage(rng, path):
    with zipfile.ZipFile(path) as z:
        entries = [(info.filename, z.read(info.filename)) for info in z.infolist()]
    index = rng.randrange(len(entries))
    name, data = entries[index]
    kind = rng.choice(["flip", "cut", "empty", "random", "swap", "drop"])
    data = bytearray(data)
    if kind == "flip" and data:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "cut" and data:
        data = data[: rng.randrange(len(data))]
    elif kind == "empty":
        data = bytearray()
    elif kind == "random":
        data = bytearray(rng.randrange(256) for _ in range(max(1, len(data) // 2)))
    elif kind == "swap":
        other = rng.randrange(len(entries))
        data = bytearray(entries[other][1])
    entries[index] = (name, bytes(data))
    if kind == "drop":
        del entries[index]
    return f"{kind}:{name}", entries


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    original = open(args.model, "rb").read()
    cases = []
    for n in range(args.count):
        file = os.path.join(args.out, f"case_{n:04d}.pt")
        if n % 2 == 0:
            kind, data = byte_damage(rng, original)
            with open(file, "wb") as f:
                f.write(data)
        else:
            kind, entries = content_damage(rng, args.model)
            with zipfile.ZipFile(file, "w", zipfile.ZIP_STORED) as z:
                for name, data in entries:
                    z.writestr(name, data)
        cases.append({"file": os.path.basename(file), "damage": kind})
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


if __name__ == "__main__":
    main()
