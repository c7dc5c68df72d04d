"""Byte-level .safetensors cases and what the `safetensors` package decides about each (issue 21 part D).

    safetensors_cases.py record OUT.json   # needs the safetensors package (not Debian's Python): see below

Builds every case from bytes (valid files of every dtype, tensors in any header order, zero-sized tensors,
duplicate names, metadata forms; and damaged ones: overlapping, shared, uncovered or trailing data,
offsets and shapes written as JSON floats, metadata that is not a map of strings, invalid UTF-8, lone
surrogates, control characters, nesting deeper than serde_json allows, ...), runs the package's own reader
(`safetensors.deserialize`, the Rust crate) on it and writes

    {"safetensors": VERSION, "cases": [{"name", "b64", "ok", "tensors": [[name, dtype, shape, hex]] | "error"}]}

The test (test/formats/safetensors.test.ts) reads the committed test/python/corpus/safetensors-cases.json, so
the suite needs neither this script nor the package. To regenerate:

    python3 -m venv /tmp/st-venv && /tmp/st-venv/bin/pip install safetensors numpy
    /tmp/st-venv/bin/python test/python/safetensors_cases.py record test/python/corpus/safetensors-cases.json
"""
import base64
import json
import struct
import sys


def header_bytes(header):
    return header.encode('utf8') if isinstance(header, str) else header


def file_of(header, data=b'', length=None):
    h = header_bytes(header)
    return struct.pack('<Q', len(h) if length is None else length) + h + data


def entry(dtype, shape, begin, end):
    return {'dtype': dtype, 'shape': shape, 'data_offsets': [begin, end]}


def j(obj):
    return json.dumps(obj)


def data(n):
    return bytes((i * 37 + 11) % 256 for i in range(n))


SIZES = {'BOOL': 1, 'U8': 1, 'I8': 1, 'F8_E5M2': 1, 'F8_E4M3': 1, 'F8_E8M0': 1, 'F8_E4M3FNUZ': 1, 'F8_E5M2FNUZ': 1,
         'I16': 2, 'U16': 2, 'F16': 2, 'BF16': 2, 'I32': 4, 'U32': 4, 'F32': 4, 'I64': 8, 'U64': 8, 'F64': 8, 'C64': 8}


def cases():
    out = []

    def add(name, raw):
        out.append((name, raw))

    one = lambda h, n: add(h[0], file_of(h[1], data(n)))  # noqa: E731
    # Valid files: every dtype, with a shape of 2 x 3.
    for dtype, size in SIZES.items():
        raw = data(6 * size)
        if dtype == 'BOOL':
            raw = bytes(b % 2 for b in raw)
        add(f'dtype {dtype}', file_of(j({'t': entry(dtype, [2, 3], 0, 6 * size)}), raw))
    add('dtype F4 (two per byte)', file_of(j({'t': entry('F4', [2, 4], 0, 4)}), data(4)))
    add('dtype F6_E2M3', file_of(j({'t': entry('F6_E2M3', [4], 0, 3)}), data(3)))
    one(('several tensors in offset order', j({'a': entry('F32', [2], 0, 8), 'b': entry('I64', [1], 8, 16), 'c': entry('U8', [3], 16, 19)})), 19)
    one(('several tensors, header order not offset order', j({'c': entry('U8', [3], 16, 19), 'a': entry('F32', [2], 0, 8), 'b': entry('I64', [1], 8, 16)})), 19)
    one(('scalar (shape [])', j({'s': entry('F64', [], 0, 8)})), 8)
    one(('zero-sized tensor after data', j({'b': entry('F32', [1], 0, 4), 'a': entry('F32', [0], 4, 4)})), 4)
    one(('zero-sized tensor at offset 0 before data', j({'b': entry('F32', [1], 0, 4), 'a': entry('F32', [0, 3], 0, 0)})), 4)
    add('only zero-sized tensors', file_of(j({'a': entry('F32', [0], 0, 0)})))
    add('empty header {}', file_of('{}'))
    add('empty header padded like ours', file_of('{}      '))
    add('metadata only', file_of(j({'__metadata__': {'format': 'pt'}})))
    one(('metadata null', '{"__metadata__": null, "a": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('metadata after the tensors', j({'a': entry('F32', [1], 0, 4), '__metadata__': {'k': 'v'}})), 4)
    one(('metadata with a duplicate key (last wins)', '{"__metadata__": {"x": "1", "x": "2"}, "a": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('duplicate tensor name (last wins)', '{"a": ' + j(entry('F32', [1], 0, 4)) + ', "a": ' + j(entry('F32', [2], 0, 8)) + '}'), 8)
    one(('extra field in a tensor', '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": [1, {"y": null}]}}'), 4)
    one(('dtype as a map (serde enum form)', '{"a": {"dtype": {"F32": null}, "shape": [1], "data_offsets": [0, 4]}}'), 4)
    one(('dtype as a map with a value', '{"a": {"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}}'), 4)
    one(('dtype as a map of two', '{"a": {"dtype": {"F32": null, "F16": null}, "shape": [1], "data_offsets": [0, 4]}}'), 4)
    one(('dtype as an empty map', '{"a": {"dtype": {}, "shape": [1], "data_offsets": [0, 4]}}'), 4)
    one(('whitespace around the header', ' \r\n\t{"a": ' + j(entry('F32', [1], 0, 4)) + '} \n\t\r'), 4)
    one(('non-ASCII name', '{"blöcke → ü": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('escaped name', '{"\\u0061\\/\\n": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('surrogate pair escape', '{"a\\ud83d\\ude00": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('DEL and U+2028 in a name', '{"a\x7f\u2028": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('NUL escape in a name', '{"a\\u0000": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('tensor named __proto__', '{"__proto__": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('nesting 125 levels below a tensor', '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": ' + '[' * 125 + ']' * 125 + '}}'), 4)
    one(('max u64 offsets on a zero-sized tensor', '{"a": ' + j(entry('F32', [1], 0, 4)) + ', "b": {"dtype": "U8", "shape": [0], "data_offsets": [18446744073709551615, 18446744073709551615]}}'), 4)

    # Damaged files.
    one(('overlapping tensors', j({'a': entry('F32', [2], 0, 8), 'b': entry('F32', [2], 4, 12)})), 12)
    one(('tensors sharing bytes', j({'a': entry('F32', [2], 0, 8), 'b': entry('F32', [2], 0, 8)})), 8)
    one(('bytes left uncovered between tensors', j({'a': entry('F32', [1], 0, 4), 'b': entry('F32', [1], 8, 12)})), 12)
    one(('bytes left uncovered at the start', j({'a': entry('F32', [1], 4, 8)})), 8)
    one(('trailing data', j({'a': entry('F32', [2], 0, 8)})), 9)
    one(('data missing at the end', j({'a': entry('F32', [2], 0, 8)})), 7)
    one(('offsets end before they begin', j({'a': entry('U8', [0], 0, 0), 'b': entry('U8', [0], 4, 0)})), 0)
    one(('size does not fit the shape', j({'a': entry('F32', [2], 0, 4)})), 4)
    one(('size does not fit the dtype', j({'a': entry('F64', [1], 0, 4)})), 4)
    for text in ['8.0', '8e0', '8E0', '0.8e1', '-0', '-8', '8.5', '08', '+8', '18446744073709551616']:
        one((f'end offset written {text}', '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, ' + text + ']}}'), 8)
    for text in ['2.0', '2e0', '1.5', '-2', '-0', '"2"', 'null', 'true']:
        one((f'dimension written {text}', '{"a": {"dtype": "F32", "shape": [' + text + '], "data_offsets": [0, 8]}}'), 8)
    one(('shape not an array', '{"a": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}'), 8)
    one(('shape null', '{"a": {"dtype": "F32", "shape": null, "data_offsets": [0, 8]}}'), 8)
    one(('shape that overflows 64 bits', '{"a": {"dtype": "U8", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}'), 4)
    one(('shape that overflows 64 bits in bytes', '{"a": {"dtype": "F64", "shape": [4294967296, 536870912], "data_offsets": [0, 4]}}'), 4)
    one(('three offsets', '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8, 8]}}'), 8)
    one(('one offset', '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8]}}'), 8)
    one(('offsets as an object', '{"a": {"dtype": "F32", "shape": [2], "data_offsets": {"0": 0, "1": 8}}}'), 8)
    one(('missing data_offsets', '{"a": {"dtype": "F32", "shape": [2]}}'), 8)
    one(('missing dtype', '{"a": {"shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('missing shape', '{"a": {"dtype": "F32", "data_offsets": [0, 8]}}'), 8)
    one(('a field twice', '{"a": {"dtype": "F32", "dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('an extra field twice', '{"a": {"dtype": "F32", "x": 1, "x": 2, "shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('dtype a number', '{"a": {"dtype": 1, "shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('dtype lower case', '{"a": {"dtype": "f32", "shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('dtype unknown', '{"a": {"dtype": "I4", "shape": [2], "data_offsets": [0, 8]}}'), 8)
    one(('tensor entry not an object', '{"a": 1}'), 0)
    one(('tensor entry an array', '{"a": ["F32", [2], [0, 8]]}'), 8)
    for name, meta in [('a number value', '{"x": 1}'), ('a list', '["x"]'), ('a string', '"x"'), ('a nested map', '{"x": {"y": "z"}}'),
                       ('a null value', '{"x": null}'), ('a number', '1'), ('true', 'true')]:
        one((f'__metadata__ is {name}', '{"__metadata__": ' + meta + ', "a": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('__metadata__ twice', '{"__metadata__": {}, "__metadata__": {}, "a": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('__metadata__ twice, once escaped', '{"__metadata__": {}, "\\u005f_metadata__": {}}'), 0)
    for name, raw in [('a stray byte 0xff', b'\xff'), ('a lone continuation byte', b'\x80'), ('an overlong slash', b'\xc0\xaf'),
                      ('an encoded surrogate', b'\xed\xa0\x80'), ('a truncated sequence', b'\xe2\x82'), ('a code point past U+10FFFF', b'\xf4\x90\x80\x80')]:
        add(f'invalid UTF-8: {name}', file_of(b'{"a' + raw + b'": ' + j(entry('F32', [1], 0, 4)).encode() + b'}', data(4)))
    add('UTF-8 byte order mark', file_of(b'\xef\xbb\xbf{"a": ' + j(entry('F32', [1], 0, 4)).encode() + b'}', data(4)))
    for name, esc in [('a lone leading surrogate', '\\ud800'), ('a leading surrogate then a letter', '\\ud800\\u0041'),
                      ('a lone trailing surrogate', '\\udc00'), ('two leading surrogates', '\\ud800\\ud800'), ('a short \\u escape', '\\u12'),
                      ('an unknown escape', '\\x41'), ('a single quote escape', "\\'")]:
        one((f'name with {name}', '{"a' + esc + '": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    for name, ch in [('a tab', '\t'), ('a newline', '\n'), ('U+0001', '\x01'), ('U+001F', '\x1f')]:
        one((f'raw {name} in a name', '{"a' + ch + '": ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('a comment', '{"a": ' + j(entry('F32', [1], 0, 4)) + ' /* x */}'), 4)
    one(('a trailing comma', '{"a": ' + j(entry('F32', [1], 0, 4)) + ',}'), 4)
    one(('a trailing NUL', '{"a": ' + j(entry('F32', [1], 0, 4)) + '}\x00'), 4)
    one(('trailing garbage after the header', '{"a": ' + j(entry('F32', [1], 0, 4)) + '}x'), 4)
    one(('two objects', '{} {}'), 0)
    one(('single-quoted strings', "{'a': " + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('unquoted key', '{a: ' + j(entry('F32', [1], 0, 4)) + '}'), 4)
    one(('nesting 126 levels below a tensor', '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": ' + '[' * 126 + ']' * 126 + '}}'), 4)
    one(('nesting 126 maps below a tensor', '{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": ' + '{"k":' * 126 + 'null' + '}' * 126 + '}}'), 4)
    for name, text in [('an array', '[]'), ('null', 'null'), ('a number', '1'), ('a string', '"x"'), ('empty', ''), ('only spaces', '   ')]:
        add(f'header is {name}', file_of(text))
    add('file of 0 bytes', b'')
    add('file of 7 bytes', b'\x02\x00\x00\x00\x00\x00\x00')
    add('header length past the end', file_of('{}', length=50))
    add('header length over 100000000', file_of('{}', length=100_000_001))
    add('header length 2^64 - 1', file_of('{}', length=2 ** 64 - 1))
    return out


def record(target):
    import safetensors
    from safetensors import deserialize
    results = []
    for name, raw in cases():
        case = {'name': name, 'b64': base64.b64encode(raw).decode()}
        try:
            tensors = deserialize(raw)
            case['ok'] = True
            case['tensors'] = [[n, v['dtype'], list(v['shape']), bytes(v['data']).hex()] for n, v in tensors]
        except Exception as error:  # the package raises SafetensorError (and a few others)
            case['ok'] = False
            case['error'] = f'{type(error).__name__}: {error}'[:300]
        results.append(case)
    with open(target, 'w') as f:
        json.dump({'safetensors': safetensors.__version__, 'cases': results}, f, indent=1, ensure_ascii=True)
        f.write('\n')
    print(json.dumps({'cases': len(results), 'ok': sum(c['ok'] for c in results)}))


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'record':
        record(sys.argv[2])
    else:
        raise SystemExit(__doc__)
