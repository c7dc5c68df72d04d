/**
 * NumPy .npy files, read as np.load reads them (numpy 1.24's format module) and written as np.save writes
 * them (version 1.0, C order, little-endian).
 *
 * The header is a Python literal read as ast.literal_eval reads it (single or double quotes, comments,
 * parentheses, adjacent strings, trailing commas; Python 2's `2L` in versions 1.0 and 2.0): a dict with
 * exactly the keys descr, fortran_order and shape (a duplicate key: the last counts), fortran_order a bool,
 * shape a tuple of non-negative ints. Versions 1.0, 2.0 and 3.0; bytes after the data are ignored, as np.load
 * ignores them. The dtypes read are those a JavaScript typed array holds: float16 (raw bits in a
 * Uint16Array), float32, float64, int8/16/32/64, uint8/16/32/64 and bool, in either byte order (big-endian
 * data is swapped) and either order (Fortran-ordered data is transposed into C order); see DESCR_CODES for
 * the descr spellings. Refused with DATA: complex, float128/longdouble, datetime/timedelta, strings, bytes,
 * void, objects, structured and subarray dtypes, the platform-dependent spellings (l, L, p, P, int, uint,
 * intp, uintp, long, ulong, int_, uint_), negative dimensions.
 */
import fs from 'node:fs';
import { VbpError } from '../errors';
import { numel, type Tensor, type TypedArray, type DType } from '../tensor';
import { readFailure, readFileChecked } from '../util/files';
import { dtypeOfTensor } from './dtypes';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** numpy's max_header_size: longer headers are refused by np.load (without allow_pickle). */
const MAX_HEADER_CHARS = 10000;

interface Kind {
  dtype: DType;
  bytes: number;
  make: (b: ArrayBuffer, o: number, n: number) => TypedArray;
}

const KINDS: Record<string, Kind> = {
  f2: { dtype: 'float16', bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  f4: { dtype: 'float32', bytes: 4, make: (b, o, n) => new Float32Array(b, o, n) },
  f8: { dtype: 'float64', bytes: 8, make: (b, o, n) => new Float64Array(b, o, n) },
  i1: { dtype: 'int8', bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  i2: { dtype: 'int16', bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  i4: { dtype: 'int32', bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  i8: { dtype: 'int64', bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  u1: { dtype: 'uint8', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  u2: { dtype: 'uint16', bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  u4: { dtype: 'uint32', bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  u8: { dtype: 'uint64', bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
  b1: { dtype: 'bool', bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
};

/**
 * The descr spellings read. A byte order (`<` little, `>` big, `=` or `|` native) may precede a kind code
 * (f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1) or one of numpy's one-letter codes; dtype names take none.
 */
const DESCR_CODES: Record<string, string> = {
  '?': 'b1',
  b: 'i1',
  B: 'u1',
  h: 'i2',
  H: 'u2',
  i: 'i4',
  I: 'u4',
  q: 'i8',
  Q: 'u8',
  e: 'f2',
  f: 'f4',
  d: 'f8',
};
const DESCR_NAMES: Record<string, string> = {
  bool: 'b1',
  bool_: 'b1',
  float16: 'f2',
  half: 'f2',
  float32: 'f4',
  single: 'f4',
  float64: 'f8',
  double: 'f8',
  float: 'f8',
  float_: 'f8',
  int8: 'i1',
  byte: 'i1',
  int16: 'i2',
  short: 'i2',
  int32: 'i4',
  intc: 'i4',
  int64: 'i8',
  longlong: 'i8',
  uint8: 'u1',
  ubyte: 'u1',
  uint16: 'u2',
  ushort: 'u2',
  uint32: 'u4',
  uintc: 'u4',
  uint64: 'u8',
  ulonglong: 'u8',
};
/** Spellings whose size depends on the platform that wrote the file (C long, pointer size): refused. */
const PLATFORM_DEPENDENT = new Set([
  'l',
  'L',
  'p',
  'P',
  'int',
  'uint',
  'intp',
  'uintp',
  'long',
  'ulong',
  'int_',
  'uint_',
]);

const NATIVE_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(file: string, message: string): never {
  throw new VbpError('DATA', `'${file}' is not a readable .npy file: ${message}`);
}

// ------------------------------------------------------------------------------ Python literals

/** A Python literal value, as far as a .npy header needs one. */
type Py =
  | { type: 'str'; value: string }
  | { type: 'bytes' }
  | { type: 'int'; value: bigint }
  | { type: 'float' }
  | { type: 'complex' }
  | { type: 'bool'; value: boolean }
  | { type: 'None' }
  | { type: 'tuple'; items: Py[] }
  | { type: 'list'; items: Py[] }
  | { type: 'set' }
  | { type: 'dict'; entries: Array<[Py, Py]> };

type Token =
  | { kind: 'op'; text: string; at: number }
  | { kind: 'name'; text: string; at: number }
  | { kind: 'number'; value: Py; at: number }
  | { kind: 'string'; value: Py; at: number; fstring: boolean }
  | { kind: 'newline'; at: number }
  | { kind: 'end'; at: number };

class LiteralError extends Error {}

const NUMBER = new RegExp(
  '^(?:' +
    '(?:(?:[0-9](?:_?[0-9])*)?\\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\\.)(?:[eE][+-]?[0-9](?:_?[0-9])*)?[jJ]?' + // point floats
    '|[0-9](?:_?[0-9])*[eE][+-]?[0-9](?:_?[0-9])*[jJ]?' + // exponent floats
    '|0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+' +
    '|[0-9](?:_?[0-9])*[jJ]' + // imaginary integers
    '|[1-9](?:_?[0-9])*|0(?:_?0)*' +
    ')',
);

/** Python's tokenizer, for the tokens a literal uses; `dropLongSuffix`: numpy's filter of Python 2's `2L`. */
function tokenize(source: string, dropLongSuffix: boolean): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  let depth = 0;
  let lastWasNumber = false;
  let lineStart = true;
  let afterNewline = false;
  const fail = (why: string): never => {
    throw new LiteralError(`${why} at character ${at}`);
  };
  while (at < source.length) {
    const c = source[at];
    if (c === ' ' || c === '\t' || c === '\f') {
      if (lineStart && afterNewline && depth === 0) {
        // indentation of a line after the first: an unexpected indent in eval mode, unless the line is blank
        let end = at;
        while (end < source.length && ' \t\f'.includes(source[end])) end++;
        if (
          end < source.length &&
          !'\r\n#'.includes(source[end]) &&
          !(source[end] === '\\' && '\r\n'.includes(source[end + 1] ?? ''))
        )
          fail('an unexpected indent');
      }
      at++;
      continue;
    }
    if (c === '\\' && (source[at + 1] === '\n' || source[at + 1] === '\r')) {
      at += source[at + 1] === '\r' && source[at + 2] === '\n' ? 3 : 2;
      continue;
    }
    if (c === '\n' || c === '\r') {
      at += c === '\r' && source[at + 1] === '\n' ? 2 : 1;
      if (depth === 0 && tokens.length > 0 && tokens[tokens.length - 1].kind !== 'newline')
        tokens.push({ kind: 'newline', at });
      lastWasNumber = false;
      lineStart = true;
      afterNewline = true;
      continue;
    }
    if (c === '#') {
      while (at < source.length && source[at] !== '\n' && source[at] !== '\r') at++;
      lastWasNumber = false;
      continue;
    }
    lineStart = false;
    const start = at;
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(source.slice(at, at + 64));
    const prefix =
      word &&
      /^(?:[rRuUbBfF]|[bB][rR]|[rR][bB]|[fF][rR]|[rR][fF])$/.test(word[0]) &&
      (source[at + word[0].length] === "'" || source[at + word[0].length] === '"')
        ? word[0]
        : undefined;
    if (c === "'" || c === '"' || prefix !== undefined) {
      const flags = (prefix ?? '').toLowerCase();
      at += flags.length;
      const quote = source.startsWith(source[at].repeat(3), at) ? source[at].repeat(3) : source[at];
      at += quote.length;
      let raw = '';
      for (;;) {
        if (at >= source.length) fail('a string that does not end');
        if (source.startsWith(quote, at)) break;
        const ch = source[at];
        if (quote.length === 1 && (ch === '\n' || ch === '\r')) fail('a string that does not end on its line');
        if (ch === '\\' && at + 1 < source.length) {
          raw += ch + source[at + 1];
          at += 2;
          continue;
        }
        raw += ch;
        at++;
      }
      at += quote.length;
      tokens.push({ kind: 'string', value: stringValue(raw, flags, fail), at: start, fstring: flags.includes('f') });
      lastWasNumber = false;
      continue;
    }
    if (word) {
      at += word[0].length;
      if (dropLongSuffix && lastWasNumber && word[0] === 'L') {
        lastWasNumber = false;
        continue;
      }
      tokens.push({ kind: 'name', text: word[0], at: start });
      lastWasNumber = false;
      continue;
    }
    const number = /[0-9.]/.test(c) ? NUMBER.exec(source.slice(at, at + 400)) : null;
    if (number && !(c === '.' && !/[0-9]/.test(source[at + 1] ?? ''))) {
      const text = number[0];
      at += text.length;
      if (/[0-9]/.test(source[at] ?? '')) fail('an invalid number');
      const clean = text.replace(/_/g, '');
      let value: Py;
      if (/[jJ]$/.test(clean)) value = { type: 'complex' };
      else if (/^0[xXoObB]/.test(clean)) value = { type: 'int', value: BigInt(clean.toLowerCase()) };
      else if (/[.eE]/.test(clean)) value = { type: 'float' };
      else value = { type: 'int', value: BigInt(clean) };
      tokens.push({ kind: 'number', value, at: start });
      lastWasNumber = true;
      continue;
    }
    if ('()[]{}'.includes(c)) depth += '([{'.includes(c) ? 1 : -1;
    if (depth < 0) fail(`an unmatched '${c}'`);
    if ('()[]{},:+-'.includes(c)) {
      tokens.push({ kind: 'op', text: c, at: start });
      at++;
      lastWasNumber = false;
      continue;
    }
    fail(`the character ${JSON.stringify(c)}, which is not part of a Python literal`);
  }
  if (depth !== 0) throw new LiteralError('a bracket that is not closed');
  tokens.push({ kind: 'end', at });
  return tokens;
}

function stringValue(raw: string, flags: string, fail: (why: string) => never): Py {
  const bytes = flags.includes('b');
  if (bytes) {
    // eslint-disable-next-line no-control-regex -- the ASCII range, NUL included
    if (/[^\x00-\x7f]/.test(raw)) fail('a bytes literal with a character that is not ASCII');
    return { type: 'bytes' };
  }
  if (flags.includes('r')) return { type: 'str', value: raw };
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] !== '\\') {
      out += raw[i];
      continue;
    }
    const e = raw[++i];
    const simple: Record<string, string> = {
      '\\': '\\',
      "'": "'",
      '"': '"',
      a: '\x07',
      b: '\b',
      f: '\f',
      n: '\n',
      r: '\r',
      t: '\t',
      v: '\v',
      '\n': '',
      '\r': '',
    };
    if (Object.prototype.hasOwnProperty.call(simple, e)) {
      if (e === '\r' && raw[i + 1] === '\n') i++;
      out += simple[e];
    } else if (/[0-7]/.test(e)) {
      const digits = /^[0-7]{1,3}/.exec(raw.slice(i, i + 3))![0];
      out += String.fromCodePoint(parseInt(digits, 8));
      i += digits.length - 1;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const digits = raw.slice(i + 1, i + 1 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits)) fail(`a truncated \\${e} escape`);
      const code = parseInt(digits, 16);
      if (code > 0x10ffff) fail('a \\U escape past U+10FFFF');
      out += String.fromCodePoint(code);
      i += n;
    } else if (e === 'N') {
      fail('a \\N{...} escape, which is not read');
    } else {
      out += `\\${e}`;
    }
  }
  return { type: 'str', value: out };
}

/** ast.literal_eval for the literals above (throws LiteralError where Python would fail). */
function literalEval(source: string, dropLongSuffix: boolean): Py {
  const tokens = tokenize(source.replace(/^[ \t]+/, ''), dropLongSuffix);
  let i = 0;
  const peek = (): Token => tokens[i];
  const isOp = (text: string): boolean => {
    const t = tokens[i];
    return t.kind === 'op' && t.text === text;
  };
  const fail = (why: string): never => {
    throw new LiteralError(`${why} at character ${tokens[i].at}`);
  };
  const expect = (text: string): void => {
    if (!isOp(text)) fail(`expected '${text}'`);
    i++;
  };

  // A comma-separated list up to `close` (an op, or the end): [items, whether a comma was seen].
  const sequence = (close: string | null): [Py[], boolean] => {
    const items: Py[] = [];
    let comma = false;
    const closes = (): boolean => (close === null ? peek().kind === 'end' || peek().kind === 'newline' : isOp(close));
    while (!closes()) {
      items.push(expression());
      if (closes()) break;
      expect(',');
      comma = true;
    }
    return [items, comma];
  };

  const number = (t: Token): Py => (t.kind === 'number' ? t.value : fail('a value that is not a literal'));
  // Python's UnaryOp and BinOp as literal_eval takes them: a sign on a number, a real plus or minus an imaginary
  const expression = (): Py => {
    let value: Py;
    if (isOp('+') || isOp('-')) {
      const negative = isOp('-');
      i++;
      const operand = atom();
      if (operand.type !== 'int' && operand.type !== 'float' && operand.type !== 'complex')
        fail('a sign on something that is not a number');
      value = operand.type === 'int' && negative ? { type: 'int', value: -operand.value } : operand;
    } else {
      value = atom();
    }
    if (isOp('+') || isOp('-')) {
      i++;
      const right = atom();
      if ((value.type !== 'int' && value.type !== 'float') || right.type !== 'complex')
        fail('an addition or subtraction, which is not a literal');
      value = { type: 'complex' };
    }
    return value;
  };

  const atom = (): Py => {
    const t = peek();
    if (t.kind === 'string') {
      let value = t.value;
      let fstring = t.fstring;
      i++;
      while (peek().kind === 'string') {
        const next = peek() as Extract<Token, { kind: 'string' }>;
        if ((value.type === 'bytes') !== (next.value.type === 'bytes')) fail('bytes and str literals side by side');
        if (value.type === 'str' && next.value.type === 'str')
          value = { type: 'str', value: value.value + next.value.value };
        fstring ||= next.fstring;
        i++;
      }
      if (fstring) fail('an f-string, which is not a literal');
      return value;
    }
    if (t.kind === 'number') {
      i++;
      return number(t);
    }
    if (t.kind === 'name') {
      i++;
      if (t.text === 'True' || t.text === 'False') return { type: 'bool', value: t.text === 'True' };
      if (t.text === 'None') return { type: 'None' };
      if (t.text === 'set' && isOp('(')) {
        i++;
        expect(')');
        return { type: 'set' };
      }
      return fail(`the name ${t.text}, which is not a literal`);
    }
    if (isOp('(')) {
      i++;
      const [items, comma] = sequence(')');
      expect(')');
      return items.length === 1 && !comma ? items[0] : { type: 'tuple', items };
    }
    if (isOp('[')) {
      i++;
      const [items] = sequence(']');
      expect(']');
      return { type: 'list', items };
    }
    if (isOp('{')) {
      i++;
      if (isOp('}')) {
        i++;
        return { type: 'dict', entries: [] };
      }
      const first = expression();
      if (!isOp(':')) {
        while (isOp(',')) {
          i++;
          if (isOp('}')) break;
          expression();
        }
        expect('}');
        return { type: 'set' };
      }
      const entries: Array<[Py, Py]> = [];
      let key = first;
      for (;;) {
        expect(':');
        entries.push([key, expression()]);
        if (isOp('}')) break;
        expect(',');
        if (isOp('}')) break;
        key = expression();
      }
      expect('}');
      for (const [k] of entries)
        if (k.type === 'list' || k.type === 'dict' || k.type === 'set') fail(`an unhashable dict key (a ${k.type})`);
      return { type: 'dict', entries };
    }
    return fail(
      t.kind === 'end' || t.kind === 'newline'
        ? 'the end of the header where a value is expected'
        : 'a token that does not start a literal',
    );
  };

  while (peek().kind === 'newline') i++;
  const [items, comma] = sequence(null);
  if (items.length === 0) fail('an empty header');
  while (peek().kind === 'newline') i++;
  if (peek().kind !== 'end') fail('more after the literal');
  return items.length === 1 && !comma ? items[0] : { type: 'tuple', items };
}

function pyRepr(value: Py): string {
  switch (value.type) {
    case 'str':
      return `'${value.value}'`;
    case 'int':
      return String(value.value);
    case 'bool':
      return value.value ? 'True' : 'False';
    case 'tuple':
      return `(${value.items.map(pyRepr).join(', ')}${value.items.length === 1 ? ',' : ''})`;
    case 'list':
      return `[${value.items.map(pyRepr).join(', ')}]`;
    default:
      return `a ${value.type}`;
  }
}

// ------------------------------------------------------------------------------ header

interface NpyHeader {
  kind: Kind;
  /** Byte order of the data: true when it is little-endian. */
  little: boolean;
  fortran: boolean;
  shape: number[];
  /** Where the data starts. */
  offset: number;
  descr: string;
}

function parseDescr(descr: Py, file: string): { kind: Kind; little: boolean; text: string } {
  if (descr.type === 'list') fail(file, 'it holds a structured dtype (a list of fields), which is not read');
  if (descr.type === 'tuple') fail(file, 'it holds a subarray dtype, which is not read');
  if (descr.type !== 'str') fail(file, `descr is ${pyRepr(descr)}, not a dtype string`);
  const text = descr.value;
  const supported = 'the dtypes read are float16/32/64, int8/16/32/64, uint8/16/32/64 and bool';
  if (PLATFORM_DEPENDENT.has(text) || (/^[<>=|]/.test(text) && PLATFORM_DEPENDENT.has(text.slice(1)))) {
    fail(
      file,
      `descr '${text}' has a size that depends on the platform that wrote it, which is not read (write a sized dtype such as '<i8')`,
    );
  }
  let order = '';
  let code: string | undefined = DESCR_NAMES[text];
  if (code === undefined) {
    order = /^[<>=|]/.test(text) ? text[0] : '';
    const rest = text.slice(order.length);
    code = KINDS[rest] ? rest : DESCR_CODES[rest];
  }
  if (code === undefined || !KINDS[code]) {
    const what = /^[<>=|]?[cF]|complex/.test(text)
      ? 'complex numbers'
      : /^[<>=|]?[gG]|f1[026]|longdouble|float128|float96/.test(text)
        ? 'extended-precision floats'
        : /^[<>=|]?[mM]|datetime|timedelta/.test(text)
          ? 'dates and times'
          : /^[<>=|]?[SUaV]|str|bytes|void/.test(text)
            ? 'strings, bytes and void'
            : /^[<>=|]?O|object/.test(text)
              ? 'Python objects'
              : 'this dtype';
    fail(file, `descr '${text}' (${what}) is not read: ${supported}`);
  }
  const kind = KINDS[code];
  const little = order === '<' ? true : order === '>' ? false : NATIVE_LITTLE;
  return { kind, little, text };
}

/** The header of a .npy file: dtype, order, shape and where the data starts (throws DATA naming `file`). */
function parseHeader(buffer: Buffer, file: string): NpyHeader {
  if (buffer.length < 8 || !buffer.subarray(0, 6).equals(MAGIC)) fail(file, 'missing \\x93NUMPY magic');
  const [major, minor] = [buffer[6], buffer[7]];
  if (!((major === 1 || major === 2 || major === 3) && minor === 0))
    fail(file, `format version ${major}.${minor} is not supported (np.load reads 1.0, 2.0 and 3.0)`);
  const headerStart = major === 1 ? 10 : 12;
  if (buffer.length < headerStart) fail(file, 'it ends inside the header length');
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  // no header of more bytes can decode to MAX_HEADER_CHARS characters or fewer (UTF-8: at most 4 bytes each)
  if (headerLength > (major === 3 ? 4 : 1) * MAX_HEADER_CHARS)
    fail(file, `its header length ${headerLength} is over np.load's limit of ${MAX_HEADER_CHARS} characters`);
  if (headerStart + headerLength > buffer.length)
    fail(file, `its header (${headerLength} bytes) runs past the end of the file`);
  const bytes = buffer.subarray(headerStart, headerStart + headerLength);
  let header: string;
  if (major === 3) {
    try {
      header = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      return fail(file, 'its version 3.0 header is not valid UTF-8');
    }
  } else {
    header = bytes.toString('latin1');
  }
  const characters = major === 3 ? [...header].length : header.length; // Python counts code points
  if (characters > MAX_HEADER_CHARS)
    fail(file, `its header has ${characters} characters, more than np.load's limit of ${MAX_HEADER_CHARS}`);
  // numpy's filter of version 1.0 and 2.0 headers (tokenize, then untokenize) fails on a header that
  // starts with a lone carriage return
  if (major <= 2 && /^\r(?!\n)/.test(header))
    fail(file, "its header starts with a lone carriage return, which np.load's header filter refuses");
  let value: Py;
  try {
    value = literalEval(header, major <= 2);
  } catch (error) {
    if (!(error instanceof LiteralError)) throw error;
    return fail(file, `cannot parse header ${JSON.stringify(header)}: ${error.message}`);
  }
  if (value.type !== 'dict') fail(file, `header is ${pyRepr(value)}, not a dictionary`);
  // A duplicate key: the last one counts, as in a Python dict.
  const fields = new Map<string, Py>();
  const others: string[] = [];
  for (const [key, item] of value.entries) {
    if (key.type === 'str') fields.set(key.value, item);
    else others.push(pyRepr(key));
  }
  const keys = [...fields.keys()];
  if (others.length || keys.length !== 3 || !['descr', 'fortran_order', 'shape'].every((k) => fields.has(k))) {
    fail(
      file,
      `header has the keys ${[...keys.map((k) => `'${k}'`), ...others].sort().join(', ')}, expected exactly 'descr', 'fortran_order' and 'shape'`,
    );
  }
  const shapeValue = fields.get('shape') as Py;
  if (shapeValue.type !== 'tuple' || !shapeValue.items.every((d) => d.type === 'int'))
    fail(file, `shape is ${pyRepr(shapeValue)}, not a tuple of ints`);
  const dims = shapeValue.items.map((d) => (d as { value: bigint }).value);
  if (dims.some((d) => d < 0n)) fail(file, `shape ${pyRepr(shapeValue)} has a negative dimension`);
  if (dims.some((d) => d > BigInt(Number.MAX_SAFE_INTEGER))) fail(file, `shape ${pyRepr(shapeValue)} is too large`);
  const fortranValue = fields.get('fortran_order') as Py;
  if (fortranValue.type !== 'bool') fail(file, `fortran_order is ${pyRepr(fortranValue)}, not a bool`);
  const { kind, little, text } = parseDescr(fields.get('descr') as Py, file);
  return {
    kind,
    little,
    fortran: fortranValue.value,
    shape: dims.map(Number),
    offset: headerStart + headerLength,
    descr: text,
  };
}

/** Parses a .npy file's bytes into a tensor (the data is copied into its own aligned buffer, in C order). */
export function parseNpy(bytes: Uint8Array, file = '<buffer>'): Tensor {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { kind, little, fortran, shape, offset, descr } = parseHeader(buffer, file);
  const count = numel(shape);
  const size = count * kind.bytes;
  if (!Number.isSafeInteger(size)) fail(file, `shape [${shape.join(', ')}] is too large`);
  if (buffer.length - offset < size) {
    fail(file, `shape [${shape.join(', ')}] of ${descr} needs ${size} bytes, the file has ${buffer.length - offset}`);
  }
  const copy = new ArrayBuffer(size);
  const out = new Uint8Array(copy);
  const source = buffer.subarray(offset, offset + size);
  const b = kind.bytes;
  if (fortran && shape.length > 1 && count > 1) {
    // Fortran order: element (i0, ..., in) is at sum(ik * prod(shape[:k])); gathered into C order.
    const strides = shape.map((_, d) => shape.slice(0, d).reduce((x, y) => x * y, 1));
    const index = new Array<number>(shape.length).fill(0);
    let position = 0;
    for (let i = 0; i < count; i++) {
      out.set(source.subarray(position * b, position * b + b), i * b);
      for (let d = shape.length - 1; d >= 0; d--) {
        index[d]++;
        position += strides[d];
        if (index[d] < shape[d]) break;
        position -= shape[d] * strides[d];
        index[d] = 0;
      }
    }
  } else {
    out.set(source);
  }
  if (b > 1 && little !== NATIVE_LITTLE) {
    for (let i = 0; i < size; i += b) out.subarray(i, i + b).reverse();
  }
  // numpy's True is any non-zero byte; ours is 1.
  if (kind.dtype === 'bool') for (let i = 0; i < size; i++) out[i] = out[i] ? 1 : 0;
  return { data: kind.make(copy, 0, count), shape, dtype: kind.dtype };
}

/** The shape of the array in a .npy file, from its header alone (the data is not read). */
export function readNpyShape(file: string): number[] {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const prefix = Buffer.alloc(12);
    const got = fs.readSync(fd, prefix, 0, 12, 0);
    const headerLength = got >= 10 && prefix[6] === 1 ? prefix.readUInt16LE(8) : got >= 12 ? prefix.readUInt32LE(8) : 0;
    const head = Buffer.alloc(Math.min(12 + headerLength, 1 << 20));
    const read = fs.readSync(fd, head, 0, head.length, 0);
    return parseHeader(head.subarray(0, read), file).shape;
  } catch (error) {
    if (error instanceof VbpError) throw error;
    throw readFailure('.npy file', file, error);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function readNpy(file: string): Tensor {
  return parseNpy(readFileChecked(file, '.npy file'), file);
}

const WRITE_DESCR: Partial<Record<DType, string>> = {
  float16: '<f2',
  float32: '<f4',
  float64: '<f8',
  int8: '|i1',
  int16: '<i2',
  int32: '<i4',
  int64: '<i8',
  uint8: '|u1',
  uint16: '<u2',
  uint32: '<u4',
  uint64: '<u8',
  bool: '|b1',
};

/** Serialises a tensor as a version 1.0 .npy file. */
export function formatNpy(t: Tensor): Buffer {
  const dtype = dtypeOfTensor(t);
  const descr = WRITE_DESCR[dtype];
  if (!descr)
    throw new VbpError(
      'INPUT_DTYPE',
      `a ${dtype} tensor cannot be stored in a .npy file (NumPy has no bfloat16 nor float8)`,
    );
  if (!NATIVE_LITTLE && descr !== '|b1' && descr !== '|i1' && descr !== '|u1')
    throw new VbpError('INTERNAL', '.npy files are written on little-endian machines only');
  const shape = t.shape.length === 1 ? `(${t.shape[0]},)` : `(${t.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    prefix,
    Buffer.from(header, 'latin1'),
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  ]);
}
