"""WebDataset-style tar shards written and listed by Python's tarfile, for test/data/tar-shards.test.ts.

usage: tar_reference.py OUT_DIR  -> OUT_DIR/shard-00000{0..2}.tar, OUT_DIR/folder/<class>/<key>.<ext> (the same
       images as an ImageFolder), and prints JSON {"members": {shard: [[name, offset_data, size], ...]},
       "samples": [[shard, key, image member, label, folder file], ...]}: tarfile's regular files, and the samples in
       archive order
       tar_reference.py --bad OUT_DIR -> OUT_DIR/bad-class.tar (a .cls that is no number), OUT_DIR/bad-image.tar
       (a .jpg that is no JPEG, then a good sample)

The shards mix what writers produce: ustar (GNU long names over 100 characters), pax (a non-ASCII name, a
member with a pax size record), directory entries, a sample with an extra .json member, and a .json-only key.
"""
import io
import json
import os
import sys
import tarfile

import numpy as np
from PIL import Image


def image_bytes(rng, width, height, fmt):
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(1, 4) * x / width + rng.uniform(1, 4) * y / height)) for _ in range(3)]
    image = Image.fromarray(np.clip(np.stack(channels, -1) * 255, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def add(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1700000000
    tar.addfile(info, io.BytesIO(data))


def listing(path):
    with tarfile.open(path) as tar:
        return [[m.name, m.offset_data, m.size] for m in tar.getmembers() if m.isreg()]


def main(out):
    rng = np.random.default_rng(1)
    formats = [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]
    samples = []
    for shard in range(3):
        path = os.path.join(out, f"shard-{shard:06d}.tar")
        with tarfile.open(path, "w", format=formats[shard]) as tar:
            if shard == 1:
                directory = tarfile.TarInfo("images")
                directory.type = tarfile.DIRTYPE
                tar.addfile(directory)
            for k in range(5):
                label = (shard * 5 + k) % 4
                if shard == 0 and k == 2:
                    key = "deep/" + "n" * 110 + f"_{k}"  # a GNU long name
                elif shard == 1 and k == 1:
                    key = f"images/Bild-Übung-{k}"  # pax: a non-ASCII name
                else:
                    key = f"images/{shard:02d}_{k:04d}"
                ext, fmt = ("jpg", "JPEG") if k % 2 == 0 else ("png", "PNG")
                data = image_bytes(rng, 40 + 7 * k, 30 + 5 * shard, fmt)
                add(tar, f"{key}.{ext}", data)
                add(tar, f"{key}.cls", f"{label}\n".encode())
                if k == 3:
                    add(tar, f"{key}.json", b'{"note": "extra"}')
                folder = os.path.join(out, "folder", f"class{label}")
                os.makedirs(folder, exist_ok=True)
                folder_file = os.path.join(folder, f"s{shard}_{k}.{ext}")
                with open(folder_file, "wb") as f:
                    f.write(data)
                samples.append([shard, key, f"{key}.{ext}", label, folder_file])
            add(tar, "images/metadata.json", b"{}")
    members = {f"shard-{s:06d}.tar": listing(os.path.join(out, f"shard-{s:06d}.tar")) for s in range(3)}
    print(json.dumps({"members": members, "samples": samples}))


def bad(out):
    rng = np.random.default_rng(2)
    with tarfile.open(os.path.join(out, "bad-class.tar"), "w") as tar:
        add(tar, "k1.png", image_bytes(rng, 20, 20, "PNG"))
        add(tar, "k1.cls", b"two")
    with tarfile.open(os.path.join(out, "bad-image.tar"), "w") as tar:
        add(tar, "k1.jpg", b"not a jpeg at all")
        add(tar, "k1.cls", b"2")
        add(tar, "k2.png", image_bytes(rng, 20, 20, "PNG"))
        add(tar, "k2.cls", b"1")


if __name__ == "__main__":
    if sys.argv[1] == "--bad":
        bad(sys.argv[2])
    else:
        main(sys.argv[1])
