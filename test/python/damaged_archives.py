"""Targeted damage to TorchScript archives for test/hardening.test.ts: each case breaks one rule the native
archive checks enforce (native/core/archive_check.cc, zip_directory.cc, pickle_scan.cc), inside an
otherwise valid archive (CRCs right), so that LibTorch itself would load it.

    storage_shifted.pt  one storage claims 64 more elements than its record holds, another record is padded
                        with as many bytes (the totals still agree)
    stride_wrap.pt      a tensor of size [2^33 + 1] and stride [2^31]: size x stride wraps a signed 64-bit product
    list_tensor.pt      a tensor inside a List[Tensor] attribute claims 1000 elements of a 4-element storage
    zip64_extra.pt      the last directory entry's ZIP64 extra block claims more bytes than the entry has
    huge_record.pt      a directory entry claims a 2 GiB record in a small file
    calls_tap.pt        not damaged: its code calls torch.ops.vbp.tap(x, 1), the statistics tap's old name

usage: damaged_archives.py OUT_DIR   (uses Debian's torch to script the source models)
"""
import pickletools
import struct
import sys
import zipfile
from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

Op = List  # [name, arg]


def read_ops(data: bytes) -> List[Op]:
    return [[op.name, arg] for op, arg, _ in pickletools.genops(data)]


def encode_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    return b"\x8a\x08" + struct.pack("<q", value)


def write_ops(ops: List[Op]) -> bytes:
    out = bytearray()
    for name, arg in ops:
        if name == "PROTO":
            out += b"\x80" + bytes([arg])
        elif name == "GLOBAL":
            module, attr = arg.split(" ")
            out += b"c" + module.encode() + b"\n" + attr.encode() + b"\n"
        elif name == "BINUNICODE":
            raw = arg.encode("utf-8")
            out += b"X" + struct.pack("<I", len(raw)) + raw
        elif name in ("BININT", "BININT1", "BININT2", "LONG1"):
            out += encode_int(arg)
        elif name == "BINFLOAT":
            out += b"G" + struct.pack(">d", arg)
        elif name in ("BINPUT", "BINGET"):
            out += (b"q" if name == "BINPUT" else b"h") + bytes([arg])
        elif name in ("LONG_BINPUT", "LONG_BINGET"):
            out += (b"r" if name == "LONG_BINPUT" else b"j") + struct.pack("<I", arg)
        else:
            code = pickletools.opcodes[[o.name for o in pickletools.opcodes].index(name)].code
            out += code.encode("latin-1")
    return bytes(out)


def storage_ids(ops: List[Op]) -> List[int]:
    """Indexes of the BINPERSID ops, each preceded by its ('storage', type, key, location, numel) tuple."""
    return [i for i, (name, _) in enumerate(ops) if name == "BINPERSID"]


def int_ops_before(ops: List[Op], end: int, count: int) -> List[int]:
    found = []
    i = end - 1
    while i >= 0 and len(found) < count:
        if ops[i][0] in ("BININT", "BININT1", "BININT2", "LONG1"):
            found.append(i)
        i -= 1
    return found[::-1]


def string_before(ops: List[Op], end: int, which: int) -> str:
    strings = [arg for name, arg in ops[:end] if name == "BINUNICODE"]
    return strings[-which]


def rewrite(src: Path, dst: Path, edit, pad: Tuple[str, int] = None, extra_for_last: bytes = None) -> None:
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for n, (name, data) in enumerate(entries):
            if name.endswith("/data.pkl"):
                data = write_ops(edit(read_ops(data)))
            if pad and name.endswith("/data/" + pad[0]):
                data = data + bytes(pad[1])
            info = zipfile.ZipInfo(name)
            if extra_for_last is not None and n == len(entries) - 1:
                info.extra = extra_for_last
            z.writestr(info, data)


def set_last_entry_field(path: Path, offset: int, size: int, value: int) -> None:
    """Overwrites a field of the last central-directory entry (offsets as in the zip specification)."""
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x01\x02")
    data[at + offset : at + offset + size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(data))


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class CallsNeg(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.neg(x)


def replace_in_code(src: Path, dst: Path, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            if "/code/" in name and name.endswith(".py"):
                data = data.replace(old, new)
            z.writestr(name, data)


class WithList(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.extra: List[torch.Tensor] = [torch.arange(4.0)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.extra[0].sum()


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    small, with_list = out / "source_small.pt", out / "source_list.pt"
    torch.jit.save(torch.jit.script(Small().eval()), str(small))
    torch.jit.save(torch.jit.script(WithList().eval()), str(with_list))

    def shift_storage(ops: List[Op]) -> List[Op]:
        first = storage_ids(ops)[0]  # a.weight: storage '0', 16 elements
        numel = int_ops_before(ops, first, 1)[0]
        ops[numel][1] += 64
        return ops

    # Storage '0' claims 64 more floats; record '1' (a.bias) gets the 256 bytes, so the totals agree.
    rewrite(small, out / "storage_shifted.pt", shift_storage, pad=("1", 256))

    def wrap_stride(ops: List[Op]) -> List[Op]:
        first = storage_ids(ops)[0]
        # After BINPERSID (and its BINPUT): offset, MARK, 16, 4, TUPLE, MARK, 4, 1, TUPLE
        i = first + 1
        while ops[i][0] != "MARK":
            i += 1
        size_end = next(j for j in range(i, len(ops)) if ops[j][0] == "TUPLE")
        stride_start = next(j for j in range(size_end, len(ops)) if ops[j][0] == "MARK")
        stride_end = next(j for j in range(stride_start, len(ops)) if ops[j][0] == "TUPLE")
        return ops[: i + 1] + [["LONG1", 2**33 + 1]] + ops[size_end : stride_start + 1] + [["LONG1", 2**31]] + ops[stride_end:]

    rewrite(small, out / "stride_wrap.pt", wrap_stride)

    def grow_list_tensor(ops: List[Op]) -> List[Op]:
        first = storage_ids(ops)[0]
        i = first + 1
        while ops[i][0] != "MARK":
            i += 1
        size_end = next(j for j in range(i, len(ops)) if ops[j][0] in ("TUPLE", "TUPLE1"))
        # [.. MARK 4 TUPLE] or [4 TUPLE1]: the size becomes (1000,)
        sizes = int_ops_before(ops, size_end, 1)
        ops[sizes[0]][1] = 1000
        return ops

    rewrite(with_list, out / "list_tensor.pt", grow_list_tensor)

    # A ZIP64 block (id 1) that claims 24 bytes where the entry has 4, and a size field that sends the
    # reader into it: the last entry, so that reading on would leave the directory.
    zip64 = out / "zip64_extra.pt"
    rewrite(small, zip64, lambda ops: ops, extra_for_last=struct.pack("<HH", 1, 24) + bytes(4))
    set_last_entry_field(zip64, 24, 4, 0xFFFFFFFF)

    huge = out / "huge_record.pt"
    rewrite(small, huge, lambda ops: ops)
    set_last_entry_field(huge, 20, 4, 0x7FFFFFFF)  # compressed size
    set_last_entry_field(huge, 24, 4, 0x7FFFFFFF)  # uncompressed size

    calls = out / "source_neg.pt"
    torch.jit.save(torch.jit.script(CallsNeg().eval()), str(calls))
    replace_in_code(calls, out / "calls_tap.pt", b"torch.neg(x)", b"ops.vbp.tap(x, 1)")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
    print(f"damaged archives written to {sys.argv[1]}")
