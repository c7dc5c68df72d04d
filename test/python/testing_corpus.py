"""PyTorch's side of test/testing/assert-close.test.ts, test/formats/torch-save.test.ts and
test/cli/check.test.ts: what torch.testing.assert_close and torch.isclose decide on a generated corpus of
tensor pairs, torch.save files of every structure and dtype with a manifest of their exact bytes, pickles that
ask to run code, and a small model with saved inputs and outputs for `vbp check`.

    testing_corpus.py closeness OUT      # OUT/closeness.pt: a list of cases (see make_closeness)
    testing_corpus.py others OUT         # OUT/closeness-others.pt: non-tensor inputs, None, reprs, shares (make_others)
    testing_corpus.py files OUT          # OUT/files/*.pt, OUT/files/*.npy|npz, OUT/manifest.json
    testing_corpus.py evil OUT MARKER    # OUT/evil-*.pt: pickles that would create MARKER if run
    testing_corpus.py model OUT          # OUT/model.pt, inputs/outputs for vbp check
    testing_corpus.py check-written LIST # LIST: JSON [[original, written], ...]; prints JSON results
"""
import collections
import json
import math
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch

torch.manual_seed(0)
GEN = torch.Generator().manual_seed(14)

FLOATS = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
INTS = [torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8]
DTYPES = FLOATS + INTS + [torch.bool]
NAMES = {torch.float16: 'float16', torch.bfloat16: 'bfloat16', torch.float32: 'float32', torch.float64: 'float64',
         torch.int8: 'int8', torch.int16: 'int16', torch.int32: 'int32', torch.int64: 'int64', torch.uint8: 'uint8',
         torch.bool: 'bool'}


def rand_int(lo, hi):
    return int(torch.randint(lo, hi + 1, (1,), generator=GEN))


def rand_float():
    return float(torch.rand(1, generator=GEN))


def rand_shape():
    dims = rand_int(0, 3)
    return tuple(rand_int(0 if rand_float() < 0.05 else 1, 5) for _ in range(dims))


def random_tensor(shape, dtype):
    if dtype == torch.bool:
        return torch.rand(shape, generator=GEN) < 0.5
    if dtype in INTS:
        lo, hi = (0, 200) if dtype == torch.uint8 else (-100, 100)
        return torch.randint(lo, hi, shape, generator=GEN, dtype=torch.int64).to(dtype)
    scale = 10 ** rand_int(-3, 3)
    return (torch.randn(shape, generator=GEN, dtype=torch.float64) * scale).to(dtype)


def tolerances(dtype_a, dtype_e, rtol, atol):
    if rtol is not None:
        return rtol, atol
    return torch.testing._comparison.default_tolerances(dtype_a, dtype_e)


def perturb(expected, dtype, rtol, atol):
    """An `actual` near `expected`: some elements exactly at the tolerance boundary, just inside or outside it,
    some far off, some NaN/Inf/-0."""
    if expected.numel() == 0:
        return expected.clone()
    e = expected.to(torch.float64) if dtype != torch.bool else expected.to(torch.int64).to(torch.float64)
    allowed = atol + rtol * e.abs()
    kind = torch.randint(0, 9, e.shape, generator=GEN)
    sign = torch.where(torch.rand(e.shape, generator=GEN) < 0.5, -1.0, 1.0).to(torch.float64)
    a = e.clone()
    a = torch.where(kind == 1, e + sign * allowed, a)                    # at the boundary
    a = torch.where(kind == 2, e + sign * allowed * (1 + 1e-9), a)       # just outside
    a = torch.where(kind == 3, e + sign * allowed * (1 - 1e-9), a)       # just inside
    a = torch.where(kind == 4, e + sign * (allowed * 10 + 1), a)         # far off
    a = torch.where(kind == 5, e + sign * allowed * 0.5, a)
    if dtype in FLOATS:
        special = torch.tensor([math.nan, math.inf, -math.inf, -0.0, 0.0], dtype=torch.float64)
        pick = special[torch.randint(0, 5, e.shape, generator=GEN)]
        a = torch.where(kind == 6, pick, a)
        return a.to(dtype)
    if dtype == torch.bool:
        return torch.where(kind >= 4, ~expected, expected)
    info = torch.iinfo(dtype)
    a = torch.where(kind == 7, e + sign, a)
    return a.round().clamp(info.min, info.max).to(dtype)


def with_specials(expected, dtype):
    if dtype not in FLOATS or expected.numel() == 0:
        return expected
    e = expected.clone()
    flat = e.view(-1)
    for _ in range(rand_int(0, 2)):
        flat[rand_int(0, flat.numel() - 1)] = [math.nan, math.inf, -math.inf, -0.0, 0.0][rand_int(0, 4)]
    return e


def promote_for_isclose(a, e):
    dtype = torch.promote_types(a.dtype, e.dtype)
    a, e = a.to(dtype), e.to(dtype)
    if dtype.is_floating_point:
        return a.to(torch.float64), e.to(torch.float64)
    return a.to(torch.int64), e.to(torch.int64)


def make_closeness(out, count=640):
    cases = []
    while len(cases) < count:
        i = len(cases)
        dtype = DTYPES[i % len(DTYPES)]
        check_dtype = True
        other = dtype
        if i % 11 == 5:  # mixed dtypes, compared with check_dtype=False (and a few with it, failing)
            other = DTYPES[rand_int(0, len(DTYPES) - 1)]
            check_dtype = i % 22 != 5
        shape = rand_shape()
        custom = rand_float() < 0.4
        rtol = atol = None
        if custom:
            rtol = [0.0, 1e-4, 1e-3, 0.05, 0.3][rand_int(0, 4)]
            atol = [0.0, 1e-6, 1e-3, 0.5, 2.0][rand_int(0, 4)]
        equal_nan = rand_float() < 0.3
        expected = with_specials(random_tensor(shape, dtype), dtype)
        r, a_tol = tolerances(other, dtype, rtol, atol)
        actual = perturb(expected, dtype, r, a_tol).to(other) if rand_float() < 0.9 else expected.to(other)
        if i % 17 == 3:  # shapes that broadcast (or not): assert_close refuses them
            actual = actual.unsqueeze(0) if rand_float() < 0.5 else torch.cat([actual.reshape(-1), actual.reshape(-1)])
        kwargs = dict(equal_nan=equal_nan, check_dtype=check_dtype)
        if custom:
            kwargs.update(rtol=rtol, atol=atol)
        message = None
        try:
            torch.testing.assert_close(actual, expected, **kwargs)
        except AssertionError as error:
            message = str(error)
        mask = None
        if actual.shape == expected.shape and (not check_dtype or actual.dtype == expected.dtype):
            pa, pe = promote_for_isclose(actual, expected)
            r, a_tol = tolerances(actual.dtype, expected.dtype, rtol, atol)
            mask = torch.isclose(pa, pe, rtol=r, atol=a_tol, equal_nan=equal_nan)
        case = {'actual': actual, 'expected': expected, 'equal_nan': equal_nan, 'check_dtype': check_dtype,
                'message': message, 'mask': mask}
        if custom:
            case['rtol'] = rtol
            case['atol'] = atol
        cases.append(case)
    # Structures: paths in messages, length and key mismatches.
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    y = x.clone()
    y[1, 2] += 1
    structures = [
        ([x, {'b': x, 'a': y}], [x, {'b': x, 'a': x}]),
        ({'out': (x, x)}, {'out': (x, y)}),
        ([x, x], [x, x, x]),
        ({'a': x, 'c': x}, {'a': x, 'b': x}),
        ([x, {'k': x}], [x, {'k': x}]),
    ]
    for actual, expected in structures:
        message = None
        try:
            torch.testing.assert_close(actual, expected)
        except AssertionError as error:
            message = str(error)
        cases.append({'actual': actual, 'expected': expected, 'equal_nan': False, 'check_dtype': True, 'message': message,
                      'mask': None})
    torch.save(cases, os.path.join(out, 'closeness.pt'))
    print(json.dumps({'cases': len(cases), 'failing': sum(c['message'] is not None for c in cases)}))


def outcome(actual, expected, **kwargs):
    """assert_close's verdict: (None, None) or (exception class name, message)."""
    try:
        torch.testing.assert_close(actual, expected, **kwargs)
        return None, None
    except Exception as error:  # AssertionError, TypeError (no pair), RuntimeError (torch's own failures)
        return type(error).__name__, str(error)


def repr_tensors():
    """Tensors whose repr torch prints in 'None mismatch': every branch of torch/_tensor_str.py's formatter."""
    g = torch.Generator().manual_seed(18)
    out = []
    for scale in [1e-6, 1e-3, 1.0, 37.0, 1e4, 1e9]:
        out.append(torch.randn(5, generator=g) * scale)
    out += [
        torch.tensor(1.5), torch.tensor(-0.0), torch.tensor(3.0), torch.tensor(7), torch.tensor(True), torch.tensor(1e-7),
        torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, -2.0, 300.0]), torch.tensor([1.0, 2e5]), torch.tensor([1.0, 1e9]),
        torch.tensor([0.0, 0.0]), torch.tensor([0.0, -0.0, 1.0]), torch.tensor([math.nan, math.inf, -math.inf]),
        torch.tensor([math.nan, 1.5, -2.25]), torch.tensor([math.inf, 1e-5, 1.0]), torch.tensor([0.03125, 0.09375, 1.0]),
        torch.tensor([123456.5, 0.5]), torch.tensor([1e-4, 1.0]), torch.tensor([9.99995, 1.0]), torch.tensor([0.5, 2.5, -1.5], dtype=torch.float64),
        torch.randn(3, 4, generator=g), torch.randn(2, 3, 4, generator=g) * 100, torch.randn(30, generator=g), torch.randn(7, 13, generator=g) * 1e-5,
        torch.randn(2, 2, 2, 2, generator=g), torch.arange(20.0).reshape(4, 5), torch.arange(-5, 25).to(torch.float32) * 1e8,
        torch.randn(4, generator=g, dtype=torch.float64), torch.randn(4, generator=g).to(torch.float16), torch.randn(4, generator=g).to(torch.bfloat16),
        torch.tensor([65504.0, 1.0], dtype=torch.float16), torch.arange(12, dtype=torch.int64).reshape(3, 4) - 5,
        torch.tensor([1, -200, 3], dtype=torch.int32), torch.tensor([1, 2, 255], dtype=torch.uint8), torch.tensor([-128, 127], dtype=torch.int8),
        torch.tensor([1, 2], dtype=torch.int16), torch.tensor([True, False, True]), torch.tensor([[True], [False]]),
        torch.tensor([2 ** 62, -1]), torch.arange(40), torch.arange(100).reshape(10, 10),
        torch.zeros(0), torch.zeros(0, 3), torch.zeros(2, 0, 3, dtype=torch.int64), torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.bool),
        torch.zeros(0, dtype=torch.float64),
        torch.arange(2000.0), torch.arange(2000.0).reshape(40, 50), torch.randn(3, 400, generator=g), torch.arange(1001),
        torch.arange(1100.0).reshape(10, 10, 11) / 7, torch.randn(1001, generator=g) > 0, torch.arange(1000.0),
        torch.randn(40, 30, generator=g).to(torch.float16), torch.randn(2, 600, generator=g).to(torch.float64),
    ]
    # and random ones: shapes, dtypes, scales, rounding, NaN/Inf
    for _ in range(60):
        shape = tuple(int(torch.randint(1, 6, (1,), generator=g)) for _ in range(int(torch.randint(0, 4, (1,), generator=g))))
        dtype = DTYPES[int(torch.randint(0, len(DTYPES), (1,), generator=g))]
        t = random_tensor(shape, dtype)
        if dtype in FLOATS and float(torch.rand(1, generator=g)) < 0.5:
            t = (t.to(torch.float64).round() * 10 ** int(torch.randint(-2, 10, (1,), generator=g))).to(dtype)
        out.append(with_specials(t, dtype))
    return out


def make_others(out):
    """assert_close on inputs that are not tensor pairs, and messages that print values or shares."""
    cases = []

    def add(name, actual, expected, documented=None, **kwargs):
        error, message = outcome(actual, expected, **kwargs)
        case = {'name': name, 'actual': actual, 'expected': expected, 'error': error, 'message': message,
                'equal_nan': kwargs.get('equal_nan', False), 'check_dtype': kwargs.get('check_dtype', True),
                'documented': documented}
        if 'rtol' in kwargs:
            case['rtol'] = kwargs['rtol']
            case['atol'] = kwargs['atol']
        cases.append(case)

    # Mismatched shares of many sizes ('{:.1%}' rounds the exact double, half to even).
    for n, k in [(2000, 1), (400, 1), (400, 3), (16, 1), (16, 3), (8, 1), (20000, 1), (2000, 1999), (3, 1), (3, 2), (7, 1),
                 (1000, 999), (10000, 9995), (10000, 5), (10000, 15), (20000, 3), (800, 1), (1600, 1), (4000, 1), (40000, 1), (6, 1)]:
        expected = torch.zeros(n)
        actual = expected.clone()
        actual[:k] = 1.0
        add(f'share {k} / {n}', actual, expected)
    # Integer tensors with tolerances: torch.isclose takes them as float32 (large values round).
    big = torch.tensor([2 ** 24 + 1, 2 ** 40 + 1, 2 ** 62 + 2 ** 39, -(2 ** 53) - 1, 7])
    near = torch.tensor([2 ** 24 - 1, 2 ** 40 + 3, 2 ** 62, -(2 ** 53) + 1, 9])
    add('int64 near 2^24 with atol 1.5', big[:1], near[:1], rtol=0.0, atol=1.5)
    add('int64 near 2^40 with rtol 1e-12', big[1:2], near[1:2], rtol=1e-12, atol=0.0)
    add('int64 large values with tolerances', big, near, rtol=1e-9, atol=1.0)
    add('int64 large values exactly', big, near)
    add('int32 vs int64 large, check_dtype False', big[4:].to(torch.int32), near[4:], check_dtype=False, rtol=0.1, atol=0.5)
    # Numbers (a JavaScript number that is a safe integer stands for a Python int).
    add('ints 2 vs 3', 2, 3)
    add('ints 1 vs 0', 1, 0)
    add('ints 10**9 vs 10**9 + 1', 10 ** 9, 10 ** 9 + 1)
    add('floats 0.5 vs 0.25', 0.5, 0.25)
    add('floats 2.5 vs 3.5', 2.5, 3.5)
    add('floats close 0.1 + 0.2 vs 0.3', 0.1 + 0.2, 0.3)
    add('floats within atol', 1e-8, 2e-8)
    add('floats 1e20 vs 1.00000000001e20', 1e20, 1.00000000001e20)
    add('floats nan vs nan', math.nan, math.nan)
    add('floats nan vs nan, equal_nan', math.nan, math.nan, equal_nan=True)
    add('floats inf vs -inf', math.inf, -math.inf)
    add('floats -0.0 vs 0.0', -0.0, 0.0)
    add('float 3.5 vs int 3', 3.5, 3)
    add('int 3 vs float 3.5, check_dtype False', 3, 3.5, check_dtype=False)
    add('ints with tolerances', 100, 101, rtol=0.001, atol=0.5)
    add('ints within tolerances', 100, 101, rtol=0.01, atol=0.5)
    add('int 3 vs float 3.0', 3, 3.0, documented='a JavaScript number does not say whether it was an int or a float')
    add('floats 2.0 vs 3.0', 2.0, 3.0, documented='a JavaScript number does not say whether it was an int or a float')
    add('floats 1.0 vs 0.0', 1.0, 0.0, documented='a JavaScript number does not say whether it was an int or a float')
    add('int 3 vs float 3.0, check_dtype False', 3, 3.0, check_dtype=False)
    # Booleans
    add('True vs False', True, False)
    add('True vs True', True, True)
    add('True vs 1', True, 1, documented="PyTorch fails with its own RuntimeError; a boolean and a number have no pair")
    # Inputs no pair handles (TypeError)
    x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    add('strings equal', '0', '0')
    add('strings differ', 'a', 'b')
    add('strings in a list', ['a'], ['a'])
    add('strings in a dict', {'k': 'v'}, {'k': 'v'})
    add('tensor vs float', x, 1.5)
    add('float vs tensor', 1.5, x)
    add('tensor vs int', x, 1)
    add('tensor vs list', x, [x])
    add('list vs tensor', [x], x)
    add('dict vs list', {'a': 1}, [1])
    add('string vs tensor', 'a', x)
    add('int vs string', 1, 'a')
    add('bool vs string', True, 'a')
    # None
    add('None vs None', None, None)
    add('[None] vs [None]', [None], [None])
    add('int vs None', 1, None)
    add('None vs int', None, 1)
    add('float vs None', 2.5, None)
    add('string vs None', 'text', None)
    add('string with a quote vs None', "it's", None)
    add('bool vs None', True, None)
    add('list vs None', [1, 2.5, 'a', None, True], None)
    add('strings to escape vs None', ['a\nb\tc\x01\x7f\x85\u00e9\u2028\\\'', 'it\'s "q"', '\U0001F600', '\xa0'], None)
    add('dict vs None', {'b': 1, 'a': 'x'}, None)
    add('None vs list of tensors', None, [x, x])
    add('nested None', [x, {'k': None}], [x, {'k': x}])
    add('list of tensors vs None', [x], None)
    add('dict of tensors vs None', {'a': x}, None)
    for i, t in enumerate(repr_tensors()):
        add(f'repr {i}: {tuple(t.shape)} {t.dtype}', t, None)
    torch.save(cases, os.path.join(out, 'closeness-others.pt'))
    print(json.dumps({'cases': len(cases)}))


# --------------------------------------------------------------------------------------------- files

def leaf(t):
    c = t.detach().contiguous()
    flat = c.reshape(-1)
    raw = flat.view(torch.uint8) if c.dtype != torch.bool else flat.to(torch.uint8)
    return {'__tensor__': True, 'dtype': NAMES[c.dtype], 'shape': list(c.shape), 'hex': bytes(raw.numpy().tobytes()).hex()}


def manifest_of(value):
    if isinstance(value, torch.Tensor):
        return leaf(value)
    if isinstance(value, (list, tuple)):
        return [manifest_of(v) for v in value]
    if isinstance(value, dict):
        return {'__dict__': [[str(k), manifest_of(v)] for k, v in value.items()]}
    return value


def structures_for(dtype):
    base = random_tensor((4, 6), dtype)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    if dtype in FLOATS:
        net = net.to(dtype)
        state = net.state_dict()
    else:
        state = collections.OrderedDict((k, v.to(dtype)) for k, v in net.state_dict().items())
    return {
        'tensor': base,
        'scalar': random_tensor((), dtype),
        'empty': random_tensor((0, 3), dtype),
        'list': [base, random_tensor((5,), dtype), random_tensor((2, 2, 2), dtype)],
        'tuple': (base[0], 3, 2.5, 'text', None, True),
        'dict': {'zeta': base, 'alpha': random_tensor((3,), dtype), 'nested': {'x': [base[1]], 'n': -7}},
        'state_dict': state,
        'shared': {'whole': base, 'row': base[1], 'cols': base[:, 2:4], 'again': base},
        'views': [base.t(), base[::2, 1::3], base.reshape(2, 12)[:, 5:], base.unsqueeze(0).expand(3, 4, 6), base[2:, :].T],
        'parameter': torch.nn.Parameter(base, requires_grad=False) if dtype in FLOATS else base.clone(),
        'big_dims': random_tensor((2, 1, 3, 1, 2), dtype).permute(4, 2, 0, 3, 1),
    }


def make_files(out):
    folder = os.path.join(out, 'files')
    os.makedirs(folder, exist_ok=True)
    manifest = []
    for dtype in DTYPES:
        for name, value in structures_for(dtype).items():
            file = os.path.join(folder, f'{NAMES[dtype]}-{name}.pt')
            torch.save(value, file)
            manifest.append({'file': file, 'value': manifest_of(value)})
    # NumPy's formats (numpy has no bfloat16).
    for dtype in [d for d in DTYPES if d != torch.bfloat16]:
        t = random_tensor((3, 5), dtype)
        file = os.path.join(folder, f'{NAMES[dtype]}.npy')
        np.save(file, t.numpy())
        manifest.append({'file': file, 'value': leaf(t)})
    arrays = {'first': random_tensor((2, 3), torch.float32), 'second': random_tensor((4,), torch.int64),
              'third': random_tensor((2, 2), torch.bool)}
    for compressed in (False, True):
        file = os.path.join(folder, f'arrays{"-compressed" if compressed else ""}.npz')
        (np.savez_compressed if compressed else np.savez)(file, **{k: v.numpy() for k, v in arrays.items()})
        manifest.append({'file': file, 'value': {'__dict__': [[k, leaf(v)] for k, v in arrays.items()]}})
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)
    print(json.dumps({'files': len(manifest)}))


# --------------------------------------------------------------------------------------------- evil pickles

class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class WritesFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').write('ran')",))


def make_evil(out, marker):
    torch.save({'weight': torch.ones(2), 'payload': RunsCommand(marker)}, os.path.join(out, 'evil-system.pt'))
    torch.save([torch.ones(1), WritesFile(marker)], os.path.join(out, 'evil-eval.pt'))
    # A zip whose data.pkl is a protocol 4 pickle (STACK_GLOBAL) of os.system.
    with zipfile.ZipFile(os.path.join(out, 'evil-protocol4.pt'), 'w') as z:
        z.writestr('archive/data.pkl', pickle.dumps(RunsCommand(marker), protocol=4))
        z.writestr('archive/version', '3\n')
    # The legacy (not zip) format.
    torch.save(RunsCommand(marker), os.path.join(out, 'evil-legacy.pt'), _use_new_zipfile_serialization=False)


# --------------------------------------------------------------------------------------------- model

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(6, 8)
        self.fc2 = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, scale: torch.Tensor):
        h = torch.nn.functional.gelu(self.fc1(x))
        y = self.fc2(h) * scale
        return y, {'hidden': h, 'sum': y.sum(dim=1)}


class Single(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor):
        return torch.tanh(self.fc(x))


def make_model(out):
    net = torch.jit.script(Net().eval())
    net.save(os.path.join(out, 'model.pt'))
    x = torch.randn(4, 6, generator=GEN)
    scale = torch.tensor([1.5])
    with torch.no_grad():
        outputs = net(x, scale)
    torch.save((x, scale), os.path.join(out, 'inputs.pt'))
    torch.save(outputs, os.path.join(out, 'outputs.pt'))
    wrong = (outputs[0].clone(), dict(outputs[1]))
    wrong[0][1, 2] += 0.01
    torch.save(wrong, os.path.join(out, 'outputs-wrong.pt'))
    single = torch.jit.script(Single().eval())
    single.save(os.path.join(out, 'single.pt'))
    with torch.no_grad():
        torch.save(x, os.path.join(out, 'single-input.pt'))
        torch.save(single(x), os.path.join(out, 'single-output.pt'))


# --------------------------------------------------------------------------------------------- checks

def read_safetensors(file):
    with open(file, 'rb') as f:
        data = f.read()
    (length,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + length])
    kinds = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64,
             'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8, 'BOOL': torch.bool}
    out = {}
    for name, entry in header.items():
        if name == '__metadata__':
            continue
        begin, end = entry['data_offsets']
        if begin == end:
            out[name] = torch.empty(entry['shape'], dtype=kinds[entry['dtype']])
            continue
        raw = torch.frombuffer(bytearray(data[8 + length + begin:8 + length + end]), dtype=torch.uint8)
        dtype = kinds[entry['dtype']]
        out[name] = (raw.view(dtype) if dtype != torch.bool else raw.to(torch.bool)).reshape(entry['shape'])
    return out


def load_any(file):
    if file.endswith('.npy'):
        return torch.from_numpy(np.load(file))
    if file.endswith('.npz'):
        with np.load(file) as z:
            return {k: torch.from_numpy(z[k]) for k in z.files}
    if file.endswith('.safetensors'):
        return read_safetensors(file)
    return torch.load(file)


def bits_equal(a, b):
    if isinstance(a, torch.Tensor):
        if not isinstance(b, torch.Tensor) or a.dtype != b.dtype or a.shape != b.shape:
            return False
        a, b = a.contiguous(), b.contiguous()
        if a.dtype == torch.bool:
            return torch.equal(a, b)
        return bytes(a.reshape(-1).view(torch.uint8).numpy().tobytes()) == bytes(b.reshape(-1).view(torch.uint8).numpy().tobytes())
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(bits_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(map(str, a.keys())) == list(b.keys()) and all(bits_equal(a[k], b[str(k)]) for k in a)
    return a == b or (isinstance(a, float) and isinstance(b, (int, float)) and float(a) == float(b))


def check_written(listing):
    with open(listing) as f:
        pairs = json.load(f)
    results = []
    for original, written, flatten in pairs:
        expected = load_any(original)
        if flatten and isinstance(expected, torch.Tensor):
            expected = {flatten: expected}
        try:
            got = load_any(written)
            weights_only = None
            if written.endswith('.pt'):
                try:
                    weights_only = bits_equal(expected, torch.load(written, weights_only=True))
                except Exception as error:  # torch 1.13's weights_only reader knows no float scalars
                    weights_only = str(error)[:80]
            results.append({'written': written, 'equal': bits_equal(expected, got), 'weightsOnly': weights_only})
        except Exception as error:
            results.append({'written': written, 'equal': False, 'error': str(error)[:300]})
    print(json.dumps(results))


if __name__ == '__main__':
    command = sys.argv[1]
    if command == 'closeness':
        make_closeness(sys.argv[2])
    elif command == 'others':
        make_others(sys.argv[2])
    elif command == 'files':
        make_files(sys.argv[2])
    elif command == 'evil':
        make_evil(sys.argv[2], sys.argv[3])
    elif command == 'model':
        make_model(sys.argv[2])
    elif command == 'check-written':
        check_written(sys.argv[2])
    else:
        raise SystemExit(f'unknown command {command}')
