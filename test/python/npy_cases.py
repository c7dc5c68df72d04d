"""NumPy's side of test/formats/npy.test.ts (issue 21 part D): .npy files and what np.load decides on each.

    npy_cases.py OUT_DIR             # OUT_DIR/<n>.npy and OUT_DIR/npy-cases.json
    npy_cases.py describe FILE...    # what np.load reads from each file (JSON, as in the cases)

Files written by np.save (every dtype, big-endian, Fortran order, versions 2.0 and 3.0, dtypes a JavaScript
typed array cannot hold) and hand-made headers in the spirit of NumPy's test_format.py (bad versions,
headers that are lists, strings or tuples, extra or missing keys, duplicate keys, a missing brace, floats
and bools in the shape, double quotes, comments, Python 2's 2L, every descr spelling, trailing and missing
data, huge headers). Each case is loaded with np.load (allow_pickle=False) and recorded as

    {"name", "file", "ok": true, "dtype": numpy's dtype.str, "kind": dtype.kind, "shape", "hex"}   (hex: C order, little-endian)
    {"name", "file", "ok": false, "error": "ValueError: ..."}

Run with Debian's Python (numpy 1.24), as the test does.
"""
import io
import json
import os
import struct
import sys
import warnings

import numpy as np

warnings.simplefilter('ignore')


def raw(header, data=b'', version=(1, 0), length=None):
    h = header.encode('latin1' if version[0] < 3 else 'utf8') if isinstance(header, str) else header
    n = len(h) if length is None else length
    size = struct.pack('<H', n) if version[0] == 1 else struct.pack('<I', n)
    return b'\x93NUMPY' + bytes(version) + size + h + data


def saved(array, version=None):
    f = io.BytesIO()
    if version is None:
        np.save(f, array)
    else:
        np.lib.format.write_array(f, array, version=version)
    return f.getvalue()


def h(descr="'<f8'", fortran='False', shape='(2, 3)', extra=''):
    return "{'descr': " + descr + ", 'fortran_order': " + fortran + ", 'shape': " + shape + ", " + extra + "}"


D8 = np.arange(6, dtype='<f8').tobytes()


def cases():
    out = []
    add = lambda name, content: out.append((name, content))  # noqa: E731
    rng = np.random.default_rng(21)
    # np.save of every dtype a typed array holds, in C order, big-endian and Fortran order.
    for code in ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1']:
        if code == 'b1':
            a = rng.random((3, 4)) < 0.5
        elif code[0] == 'f':
            a = (rng.standard_normal((3, 4)) * 100).astype(code)
        else:
            info = np.iinfo(code)
            a = rng.integers(info.min, info.max, (3, 4), dtype=code, endpoint=True)
        add(f'np.save {code}', saved(a))
        add(f'np.save {code} big-endian', saved(a.astype(a.dtype.newbyteorder('>'))))
        add(f'np.save {code} transposed (fortran_order True)', saved(a.T))
        add(f'np.save {code} Fortran 3-D big-endian', saved(np.asfortranarray(a.reshape(2, 3, 2).astype(a.dtype.newbyteorder('>')))))
    a = np.arange(24, dtype='<i4').reshape(2, 3, 4)
    add('np.save 3-D Fortran', saved(np.asfortranarray(a)))
    add('np.save 4-D Fortran', saved(np.asfortranarray(np.arange(120, dtype='<f4').reshape(2, 3, 4, 5))))
    add('np.save Fortran 1-D', saved(np.asfortranarray(np.arange(5.0))))
    add('np.save Fortran (1, 5)', saved(np.asfortranarray(np.arange(5.0).reshape(1, 5))))
    add('np.save 0-d', saved(np.array(3.5)))
    add('np.save empty (0, 3)', saved(np.zeros((0, 3), dtype='<f4')))
    add('np.save empty Fortran (3, 0)', saved(np.asfortranarray(np.zeros((3, 0), dtype='<f4'))))
    add('np.save 1000 elements', saved(np.arange(1000, dtype='<i8')))
    add('np.save version 2.0', saved(np.arange(6.0).reshape(2, 3), (2, 0)))
    add('np.save version 3.0', saved(np.arange(6.0).reshape(2, 3), (3, 0)))
    add('np.save bool with values 2 and 255', raw(h("'|b1'", shape='(4,)'), bytes([0, 1, 2, 255])))
    # dtypes a typed array does not hold
    add('np.save complex64', saved(np.arange(3, dtype='<c8')))
    add('np.save complex128', saved(np.arange(3, dtype='<c16')))
    add('np.save float128', saved(np.arange(3, dtype=np.longdouble)))
    add('np.save datetime64', saved(np.array(['2020-01-01'], dtype='datetime64[D]')))
    add('np.save timedelta64', saved(np.array([1, 2], dtype='timedelta64[s]')))
    add('np.save unicode strings', saved(np.array(['ab', 'c'])))
    add('np.save bytes', saved(np.array([b'ab', b'c'])))
    add('np.save void', saved(np.zeros(2, dtype='V4')))
    add('np.save structured', saved(np.zeros(2, dtype=[('a', '<f4'), ('b', '<i8')])))
    f = io.BytesIO()
    np.save(f, np.array([1, 'x'], dtype=object), allow_pickle=True)
    add('np.save object (pickled)', f.getvalue())

    # Hand-made headers (numpy's test_format.py: versions, malformed headers).
    base = h()
    add('header ok', raw(base, D8))
    for version in [(1, 1), (2, 2), (0, 0), (4, 0), (1, 255), (255, 0)]:
        add(f'version {version[0]}.{version[1]}', raw(base, D8, version))
    for name, header in [
        ('a list', "['descr', '<f8']"), ('a str', "'hello'"), ('a tuple', "('<f8', False, (2, 3))"), ('a number', '7'), ('None', 'None'),
        ('a set', "{'descr', 'shape', 'fortran_order'}"), ('a dict and a comma', base + ','), ('two dicts', base + ' ' + base),
        ('empty', ''), ('only spaces', '      '),
    ]:
        add(f'header is {name}', raw(header, D8))
    add('extra key', raw(h(extra="'x': 1"), D8))
    add('extra key with a non-str name', raw(h(extra='1: 1'), D8))
    add('missing shape', raw("{'descr': '<f8', 'fortran_order': False}", D8))
    add('missing descr', raw("{'fortran_order': False, 'shape': (2, 3)}", D8))
    add('missing closing brace', raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ", D8))
    add('missing closing brace, version 3.0', raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), ", D8, (3, 0)))
    add('missing closing paren', raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3, }", D8))
    add('duplicate descr <i8 then <f8 (last wins)', raw(h("'<i8'", extra="'descr': '<f8'"), D8))
    add('duplicate shape (last wins)', raw(h(shape='(6,)', extra="'shape': (3, 2)"), D8))
    add('duplicate fortran_order (last wins)', raw(h(fortran='True', extra="'fortran_order': False"), D8))
    add('double-quoted keys', raw('{"descr": "<f8", "fortran_order": False, "shape": (2, 3)}', D8))
    add('triple-quoted descr', raw(h("'''<f8'''"), D8))
    add('raw and unicode string prefixes', raw("{r'descr': u'<f8', R'fortran_order': False, U'shape': (2, 3)}", D8))
    add('bytes keys', raw("{b'descr': '<f8', b'fortran_order': False, b'shape': (2, 3)}", D8))
    add('bytes descr', raw(h("b'<f8'"), D8))
    add('f-string descr', raw(h("f'<f8'"), D8))
    add('adjacent strings', raw(h("'<' 'f8'"), D8))
    add('adjacent str and bytes', raw(h("'<' b'f8'"), D8))
    add('escapes in a key', raw("{'d\\x65scr': '<f\\x38', 'fortran_order': False, 'shape': (2, 3)}", D8))
    add('octal and unicode escapes', raw("{'\\144escr': '\\u003cf8', 'fortran_order': False, 'shape': (2, 3)}", D8))
    add('a \\N escape', raw("{'descr': '\\N{LESS-THAN SIGN}f8', 'fortran_order': False, 'shape': (2, 3)}", D8))
    add('a truncated \\x escape', raw("{'descr': '\\x3', 'fortran_order': False, 'shape': (2, 3)}", D8))
    add('comment', raw("{'descr': '<f8', # the dtype\n 'fortran_order': False, 'shape': (2, 3), }", D8))
    add('comment after the dict', raw(base + '  # done\n', D8))
    add('newlines inside the dict', raw("{\n'descr': '<f8',\n'fortran_order': False,\n'shape': (2,\n 3)\n}", D8))
    add('line continuation', raw("{'descr': '<f8', \\\n'fortran_order': False, 'shape': (2, 3)}", D8))
    add('parenthesised dict', raw('(' + base + ')', D8))
    add('parenthesised values', raw("{'descr': ('<f8'), 'fortran_order': (False), 'shape': ((2), 3)}", D8))
    add('no spaces, no trailing comma', raw("{'descr':'<f8','fortran_order':False,'shape':(2,3)}", D8))
    add('leading spaces', raw('   ' + base, D8))
    add('leading tab', raw('\t' + base, D8))
    add('leading newline', raw('\n' + base, D8))
    add('leading newline, version 3.0', raw('\n' + base, D8, (3, 0)))
    add('leading newline then spaces', raw('\n  ' + base, D8))
    add('leading newline then spaces, version 3.0', raw('\n  ' + base, D8, (3, 0)))
    add('trailing newlines and spaces', raw(base + '\n\n   \n', D8))
    add('second line indented after the dict, version 3.0', raw(base + '\n   \n', D8, (3, 0)))
    add('leading lone CR', raw('\r' + base, D8))
    add('leading lone CR, version 3.0', raw('\r' + base, D8, (3, 0)))
    add('lone CRs between items', raw("{'descr': '<f8',\r'fortran_order': False,\r'shape': (2,\r3)}\r", D8))
    add('CRLF line ends', raw("{'descr': '<f8',\r\n'fortran_order': False,\r\n'shape': (2, 3)}\r\n", D8))
    add('form feed', raw('\f' + base, D8))
    add('NUL padding', raw(base + '\x00\x00', D8))
    add('latin-1 bytes in a key', raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), '\xe9': 1}", D8))
    add('UTF-8 key, version 3.0', raw("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'é': 1}", D8, (3, 0)))
    add('invalid UTF-8, version 3.0', raw(b"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)} \xff", D8, (3, 0)))
    add('header of 10001 characters', raw(base + ' ' * (10001 - len(base)), D8))
    add('header of 10000 characters', raw(base + ' ' * (10000 - len(base)), D8))
    add('header with a comment of 6000 emoji, version 3.0', raw(base + '  # ' + '\U0001F600' * 6000, D8, (3, 0)))
    add('header with a comment of 11000 emoji, version 3.0', raw(base + '  # ' + '\U0001F600' * 11000, D8, (3, 0)))
    add('header length past the end', raw(base, b'', length=len(base) + 50))
    add('file ends inside the header length', b'\x93NUMPY\x01\x00\x10')
    add('file ends inside the magic', b'\x93NUM')
    # shape
    for name, shape in [
        ('a float', '(2.0, 3)'), ('a float exponent', '(2e0, 3)'), ('a bool', '(True, 6)'), ('a list', '[2, 3]'), ('an int', '6'),
        ('a string', "('2', 3)"), ('None', 'None'), ('negative -1', '(-1, 6)'), ('negative -2, -3', '(-2, -3)'), ('hex', '(0x2, 3)'),
        ('octal and binary', '(0o2, 0b11)'), ('underscores', '(0_2, 1_0)'), ('plus signs', '(+2, 3)'), ('double minus', '(--2, 3)'),
        ('a complex', '(2j, 3)'), ('Python 2 longs', '(2L, 3L)'), ('a spaced long', '(2 L, 3)'), ('a lowercase long', '(2l, 3)'),
        ('leading zero', '(02, 3)'), ('zero', '(0, 3)'), ('zeros', '(00, 3)'), ('huge', '(99999999999999999999, 1)'),
        ('empty tuple', '()'), ('one element', '(6,)'), ('one element without comma', '(6)'), ('trailing comma', '(2, 3,)'),
    ]:
        n = 1 if shape in ('()',) else 0 if name in ('zero', 'zeros') else 6
        add(f'shape {name}', raw(h(shape=shape), D8[:8 * n] if n < 6 else D8))
    add('shape Python 2 longs, version 3.0', raw(h(shape='(2L, 3L)'), D8, (3, 0)))
    add('shape Python 2 longs, version 2.0', raw(h(shape='(2L, 3L)'), D8, (2, 0)))
    # fortran_order
    for name, value in [('0', '0'), ('1', '1'), ('None', 'None'), ("'False'", "'False'"), ('true', 'true')]:
        add(f'fortran_order {name}', raw(h(fortran=value), D8))
    add('fortran_order True 2-D', raw(h(fortran='True'), D8))
    # descr spellings
    spellings = ['<f8', '>f8', '=f8', '|f8', 'f8', 'd', '<d', 'double', 'float64', 'float', 'float_', '<f4', 'f', 'single', 'float32', 'e', '<e', '>f2',
                 'half', 'float16', '?', '|b1', 'b1', '<?', '>b1', 'bool', 'bool_', 'b', 'B', 'h', 'H', 'i', 'I', 'q', 'Q', 'l', 'L', 'p', 'P',
                 '>i1', '|i1', '<u1', '>u1', '<i2', '>i2', '<u2', '>u2', '<i4', '>i4', '<u4', '>u4', '<i8', '>i8', '<u8', '>u8', 'int8', 'int16',
                 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'byte', 'ubyte', 'short', 'ushort', 'intc', 'uintc', 'longlong',
                 'ulonglong', 'int', 'uint', 'intp', 'uintp', 'int_', 'long', '<c8', '<c16', 'complex', '<f16', 'g', '<M8[s]', '<m8[s]', '|O', '<U2',
                 '|S4', '|V8', '<f8,', '(2,)<f8', '1<f8', 'f 8', ' <f8', '<f8 ', '<F8', '<I8', 'f1', 'i0', 'u16', '<float64', '>float64', '<bool', 'Float64', '']
    for descr in spellings:
        add(f'descr {descr!r}', raw(h(repr(descr), shape='(6,)'), bytes(range(96))))
    add('descr a list (structured)', raw(h("[('a', '<f8')]", shape='(6,)'), D8))
    add('descr a tuple (subarray)', raw(h("('<f8', (2,))", shape='(3,)'), D8))
    add('descr a number', raw(h('8', shape='(6,)'), D8))
    add('descr None', raw(h('None', shape='(6,)'), D8))
    # data
    add('trailing data', raw(base, D8 + b'trailing bytes'))
    add('one byte short', raw(base, D8[:-1]))
    add('no data', raw(base))
    add('empty array with trailing data', raw(h(shape='(0, 3)'), b'abc'))
    return out


def hex_of(a):
    c = np.ascontiguousarray(a)
    if c.dtype.kind == 'b':
        return c.astype(np.uint8).tobytes().hex()
    if c.dtype.kind in 'fiu':
        return c.astype(c.dtype.newbyteorder('<')).tobytes().hex()
    return None


def describe(file):
    try:
        a = np.load(file)
        return {'ok': True, 'dtype': a.dtype.str, 'kind': a.dtype.kind, 'shape': list(a.shape), 'hex': hex_of(a)}
    except Exception as error:
        return {'ok': False, 'error': f'{type(error).__name__}: {error}'[:300]}


def main(out):
    os.makedirs(out, exist_ok=True)
    results = []
    for i, (name, content) in enumerate(cases()):
        file = os.path.join(out, f'{i}.npy')
        with open(file, 'wb') as f:
            f.write(content)
        results.append({'name': name, 'file': file, **describe(file)})
    with open(os.path.join(out, 'npy-cases.json'), 'w') as f:
        json.dump({'numpy': np.__version__, 'cases': results}, f)
    print(json.dumps({'cases': len(results), 'ok': sum(c['ok'] for c in results)}))


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == 'describe':
        print(json.dumps([describe(f) for f in sys.argv[2:]]))
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        raise SystemExit(__doc__)
