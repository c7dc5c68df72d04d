"""torch.save files of PyTorch >= 2.3's dtypes (issue 23, item 7), written by a PyTorch 2 (not Debian's 1.13).

    torch2_corpus.py make OUT_DIR        # OUT_DIR/*.pt and OUT_DIR/manifest.json, OUT_DIR/closeness.pt, OUT_DIR/float8-values.json
    torch2_corpus.py check-written LIST  # LIST: JSON [[written, manifest entry file]]; torch.load of what the tests wrote

uint16/uint32/uint64 and the float8 kinds have no legacy storage class: PyTorch saves them as an
UntypedStorage (its size in bytes) rebuilt by torch._utils._rebuild_tensor_v3 with the dtype. The files are
small and committed under test/python/corpus/torch2 with their manifest (every tensor's dtype, shape and
bytes, C order), so test/formats/torch-save-torch2.test.ts needs no PyTorch 2. To regenerate:

    python3 -m venv /tmp/st-venv && /tmp/st-venv/bin/pip install numpy 'torch==2.13.0+cpu'
    /tmp/st-venv/bin/python test/python/torch2_corpus.py make test/python/corpus/torch2
"""
import collections
import json
import math
import os
import sys

import torch

torch.manual_seed(0)
NEW = [torch.uint16, torch.uint32, torch.uint64]
FLOAT8 = [torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz, torch.float8_e8m0fnu]


def name(dtype):
    return str(dtype).replace('torch.', '')


def leaf(t):
    c = t.detach().contiguous()
    return {'__tensor__': True, 'dtype': name(c.dtype), 'shape': list(c.shape), 'hex': bytes(c.reshape(-1).view(torch.uint8).numpy().tobytes()).hex()}


def manifest_of(value):
    if isinstance(value, torch.Tensor):
        return leaf(value)
    if isinstance(value, (list, tuple)):
        return [manifest_of(v) for v in value]
    if isinstance(value, dict):
        return {'__dict__': [[str(k), manifest_of(v)] for k, v in value.items()]}
    return value


def unsigned(dtype, shape, gen):
    top = {torch.uint16: 2 ** 16, torch.uint32: 2 ** 32, torch.uint64: 2 ** 63}[dtype]
    values = torch.randint(0, 2 ** 62, shape, generator=gen, dtype=torch.int64) % top
    t = values.to(dtype) if dtype != torch.uint64 else values.view(torch.uint64)
    flat = t.reshape(-1)
    if flat.numel() > 1 and dtype == torch.uint64:
        flat[0] = torch.tensor(-1, dtype=torch.int64).view(torch.uint64)  # 2^64 - 1
    elif flat.numel() > 1:
        flat[0] = top - 1
    return t


def float8(dtype, shape, gen):
    return (torch.randn(shape, generator=gen) * 4).to(dtype)


def make(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(23)
    values = {}
    for dtype in NEW:
        base = unsigned(dtype, (3, 4), gen)
        values[f'{name(dtype)}-structures'] = {
            'tensor': base,
            'scalar': unsigned(dtype, (), gen),
            'empty': unsigned(dtype, (0, 2), gen),
            'transposed': base.t(),
            'strided': base[::2, 1::2],
            'row': base[1],
            'again': base,
        }
    for dtype in FLOAT8:
        base = float8(dtype, (2, 5), gen)
        values[f'{name(dtype)}-structures'] = {'tensor': base, 'transposed': base.t(), 'row': base[1], 'scalar': float8(dtype, (), gen)}
    net = torch.nn.Linear(3, 2)
    state = collections.OrderedDict((k, v.detach().to(torch.float8_e4m3fn)) for k, v in net.state_dict().items())
    state['steps'] = unsigned(torch.uint64, (1,), gen)
    values['state_dict-float8-uint64'] = state
    values['mixed-legacy-and-new'] = [torch.arange(6, dtype=torch.float32).reshape(2, 3), unsigned(torch.uint32, (2,), gen), (7, 'text', None, 2.5)]
    values['parameter-uint16'] = torch.nn.Parameter(unsigned(torch.uint16, (2, 2), gen), requires_grad=False)
    manifest = []
    for stem, value in values.items():
        file = f'{stem}.pt'
        torch.save(value, os.path.join(out, file))
        manifest.append({'file': file, 'value': manifest_of(value)})
    # dtypes that torch-vbp does not read
    refused = {
        'refused-float4_e2m1fn_x2': torch.zeros(3, dtype=torch.uint8).view(torch.float4_e2m1fn_x2),
        'refused-bits8': torch.zeros(3, dtype=torch.uint8).view(torch.bits8),
        'refused-complex64': torch.zeros(2, dtype=torch.complex64),
    }
    for stem, value in refused.items():
        torch.save(value, os.path.join(out, f'{stem}.pt'))
        manifest.append({'file': f'{stem}.pt', 'refused': name(value.dtype)})
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump({'torch': torch.__version__, 'files': manifest}, f, indent=1)
        f.write('\n')
    print(json.dumps({'files': len(manifest), 'closeness': make_closeness(out, gen)}))


def make_closeness(out, gen):
    """torch.testing.assert_close on the new dtypes (PyTorch 2's decisions and messages) and torch.isclose's mask."""
    cases = []

    def add(actual, expected, **kwargs):
        try:
            torch.testing.assert_close(actual, expected, **kwargs)
            message = None
        except AssertionError as error:
            message = str(error)
        mask = None
        if actual.shape == expected.shape and (actual.dtype == expected.dtype or not kwargs.get('check_dtype', True)):
            a, e = actual, expected
            if a.dtype != e.dtype:  # as assert_close equalizes them: uint16/32/64 count as int64 for the promotion
                dtype = torch.promote_types(*[torch.int64 if x.dtype in NEW else x.dtype for x in (a, e)])
                a, e = a.to(dtype), e.to(dtype)
            rtol, atol = (kwargs['rtol'], kwargs['atol']) if 'rtol' in kwargs else torch.testing._comparison.default_tolerances(actual, expected)
            if not (a.dtype in FLOAT8 and (rtol or atol)):
                mask = torch.isclose(a, e, rtol=rtol, atol=atol, equal_nan=kwargs.get('equal_nan', False))
        case = {'actual': actual, 'expected': expected, 'equal_nan': kwargs.get('equal_nan', False), 'check_dtype': kwargs.get('check_dtype', True),
                'message': message, 'mask': mask}
        if 'rtol' in kwargs:
            case['rtol'], case['atol'] = kwargs['rtol'], kwargs['atol']
        cases.append(case)

    for dtype in NEW:
        for shape in [(5,), (2, 3), (4, 1, 2)]:
            e = unsigned(dtype, shape, gen)
            add(e.clone(), e)
            a = e.clone()
            flat = a.reshape(-1)
            flat[-1] = (flat[-1].to(torch.int64) + 3).to(dtype) if dtype != torch.uint64 else flat[0]
            add(a, e)
            add(a, e, rtol=0.5, atol=2.0)
            add(a, e, rtol=0.0, atol=1e30)
            add(a, e.to(torch.int64) if dtype != torch.uint64 else e.view(torch.int64).clone(), check_dtype=False)
            # (not against float32: PyTorch 2 computes the differences of float32 in float32, 1.13 and torch-vbp in float64)
            add(a, e.to(torch.float64), check_dtype=False)
            add(a, e.to(torch.int32) if dtype == torch.uint16 else e, check_dtype=False)
        add(torch.tensor([1, 2, 3]).to(dtype), torch.tensor([1, 2, 3]).to(torch.int64))  # dtype mismatch
    big = torch.tensor([-1, 0, 5], dtype=torch.int64).view(torch.uint64).clone()  # 2^64 - 1, 0, 5
    add(big, torch.tensor([0, -1, 5], dtype=torch.int64).view(torch.uint64).clone())
    add(big, torch.tensor([1, 0, 5], dtype=torch.uint8), check_dtype=False)
    for dtype in FLOAT8:
        for shape in [(6,), (2, 4)]:
            e = float8(dtype, shape, gen)
            add(e.clone(), e)
            a = e.clone()
            a.reshape(-1)[-1] = (a.reshape(-1)[0].to(torch.float32) * 2 + 1).to(dtype)
            add(a, e)
            add(a, e, rtol=0.0, atol=0.0)
            add(a, e, rtol=0.1, atol=0.1)
        special = torch.tensor([0.0, -0.0, math.nan, 1.0]).to(dtype)
        add(special, torch.tensor([-0.0, 0.0, math.nan, 1.0]).to(dtype))
        add(special, torch.tensor([-0.0, 0.0, math.nan, 1.0]).to(dtype), equal_nan=True)
        add(special, special.to(torch.float32))  # dtype mismatch
    add(torch.tensor([1.0, 2.0]).to(torch.float8_e4m3fn), torch.tensor([1.0, 2.0]).to(torch.float8_e5m2))
    torch.save(cases, os.path.join(out, 'closeness.pt'))
    # every float8 bit pattern as PyTorch decodes it
    values = {}
    for dtype in FLOAT8:
        decoded = torch.arange(256, dtype=torch.int64).to(torch.uint8).view(dtype).to(torch.float64).tolist()
        values[name(dtype)] = ['nan' if math.isnan(v) else 'inf' if v == math.inf else '-inf' if v == -math.inf else v for v in decoded]
    with open(os.path.join(out, 'float8-values.json'), 'w') as f:
        json.dump(values, f)
        f.write('\n')
    return len(cases)


def bits(t):
    c = t.detach().contiguous()
    return name(c.dtype), list(c.shape), bytes(c.reshape(-1).view(torch.uint8).numpy().tobytes()).hex()


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, dict) and b.get('__tensor__') and list(bits(a)) == [b['dtype'], b['shape'], b['hex']]
    if isinstance(a, (list, tuple)):
        return isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and [str(k) for k in a] == [k for k, _ in b['__dict__']] and all(same(a[k], v) for k, (_, v) in zip(a, b['__dict__']))
    return a == b


def check_written(listing):
    with open(listing) as f:
        pairs = json.load(f)
    results = []
    for written, expected in pairs:
        entry = {'written': written}
        for weights_only in (False, True):
            try:
                entry['weightsOnly' if weights_only else 'equal'] = bool(same(torch.load(written, weights_only=weights_only), expected))
            except Exception as error:
                entry['weightsOnly' if weights_only else 'equal'] = str(error)[:200]
        results.append(entry)
    print(json.dumps(results))


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'make':
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == 'check-written':
        check_written(sys.argv[2])
    else:
        raise SystemExit(__doc__)
