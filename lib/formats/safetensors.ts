/**
 * The safetensors container (8-byte little-endian header length, JSON header, raw little-endian data),
 * readable by the `safetensors` Python package and by a few lines of any language. Used for statistics and
 * by readTensors / writeTensors.
 *
 * Read as the `safetensors` package (0.8) reads: the header is UTF-8 and strict JSON (no lone surrogates,
 * no control characters in strings, nothing but whitespace after it), offsets and shapes are JSON integers
 * (not `1.0` nor `1e0`), `__metadata__` (once at most) is null or a map of strings, and the tensors' data,
 * sorted by offsets, covers the data section exactly (no overlap, no shared bytes, no gap, no trailing
 * bytes). Tensors come back in the order of their offsets.
 */
import { VbpError, type ErrorCode } from '../errors';

export type SafeDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U8'
  | 'BOOL'
  | 'U16'
  | 'U32'
  | 'U64'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'F8_E8M0'
  | 'F8_E4M3FNUZ'
  | 'F8_E5M2FNUZ';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data:
    | Float64Array
    | Float32Array
    | BigInt64Array
    | BigUint64Array
    | Int32Array
    | Uint32Array
    | Int16Array
    | Int8Array
    | Uint8Array
    | Uint16Array;
}

/** Bytes per element and the typed array that holds each safetensors dtype (F16, BF16 and F8 as raw bits). */
const KINDS: Record<SafeDType, { bytes: number; array: string }> = {
  F64: { bytes: 8, array: 'Float64Array' },
  F32: { bytes: 4, array: 'Float32Array' },
  F16: { bytes: 2, array: 'Uint16Array' },
  BF16: { bytes: 2, array: 'Uint16Array' },
  I64: { bytes: 8, array: 'BigInt64Array' },
  I32: { bytes: 4, array: 'Int32Array' },
  I16: { bytes: 2, array: 'Int16Array' },
  I8: { bytes: 1, array: 'Int8Array' },
  U8: { bytes: 1, array: 'Uint8Array' },
  BOOL: { bytes: 1, array: 'Uint8Array' },
  U16: { bytes: 2, array: 'Uint16Array' },
  U32: { bytes: 4, array: 'Uint32Array' },
  U64: { bytes: 8, array: 'BigUint64Array' },
  F8_E4M3: { bytes: 1, array: 'Uint8Array' },
  F8_E5M2: { bytes: 1, array: 'Uint8Array' },
  F8_E8M0: { bytes: 1, array: 'Uint8Array' },
  F8_E4M3FNUZ: { bytes: 1, array: 'Uint8Array' },
  F8_E5M2FNUZ: { bytes: 1, array: 'Uint8Array' },
};

/** Dtypes of the format that are valid but not read (sub-byte floats, complex numbers). */
const NOT_READ: Record<string, string> = {
  F4: 'a 4-bit float (two per byte)',
  F6_E2M3: 'a 6-bit float',
  F6_E3M2: 'a 6-bit float',
  C64: 'a complex number',
};

// By tag, not instanceof: arrays made by the addon or another vm context are of another realm.
function dtypeOf(data: SafeTensor['data']): SafeDType {
  const tag = Object.prototype.toString.call(data);
  if (tag === '[object Float64Array]') return 'F64';
  if (tag === '[object Float32Array]') return 'F32';
  if (tag === '[object BigInt64Array]') return 'I64';
  if (tag === '[object BigUint64Array]') return 'U64';
  if (tag === '[object Int32Array]') return 'I32';
  if (tag === '[object Uint32Array]') return 'U32';
  if (tag === '[object Int16Array]') return 'I16';
  if (tag === '[object Int8Array]') return 'I8';
  if (tag === '[object Uint8Array]') return 'U8';
  throw new VbpError('INTERNAL', `cannot store ${tag} in safetensors without a dtype`);
}

function makeArray(dtype: SafeDType, buffer: ArrayBuffer): SafeTensor['data'] {
  switch (KINDS[dtype].array) {
    case 'Float64Array':
      return new Float64Array(buffer);
    case 'Float32Array':
      return new Float32Array(buffer);
    case 'BigInt64Array':
      return new BigInt64Array(buffer);
    case 'BigUint64Array':
      return new BigUint64Array(buffer);
    case 'Int32Array':
      return new Int32Array(buffer);
    case 'Uint32Array':
      return new Uint32Array(buffer);
    case 'Int16Array':
      return new Int16Array(buffer);
    case 'Int8Array':
      return new Int8Array(buffer);
    case 'Uint16Array':
      return new Uint16Array(buffer);
    default:
      return new Uint8Array(buffer);
  }
}

export function encodeSafetensors(
  tensors: Record<string, SafeTensor['data'] | SafeTensor>,
  metadata: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, value] of Object.entries(tensors)) {
    const data = ArrayBuffer.isView(value) ? value : value.data;
    const shape = ArrayBuffer.isView(value) ? [data.length] : value.shape;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const dtype = ArrayBuffer.isView(value) ? dtypeOf(data) : value.dtype;
    if (Object.prototype.toString.call(data) !== `[object ${KINDS[dtype].array}]`)
      throw new VbpError('INTERNAL', `safetensors ${dtype} needs a ${KINDS[dtype].array}`);
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pads the header (in bytes: names may be non-ASCII) so that the data starts 8-byte aligned.
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, ' ')]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, ...chunks]);
}

interface DecodedSafetensors {
  metadata: Record<string, string>;
  tensors: Record<string, SafeTensor>;
}

// ------------------------------------------------------------------------------------------ strict JSON

/** A JSON value as parsed here: numbers keep their text, objects all their members (duplicates too). */
type Json =
  | { kind: 'object'; members: Array<[string, Json]> }
  | { kind: 'array'; items: Json[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; text: string }
  | { kind: 'literal'; value: boolean | null };

/** serde_json's nesting limit: deeper headers are refused. */
const MAX_DEPTH = 128;

class JsonParser {
  private at = 0;
  constructor(
    private readonly text: string,
    private readonly fail: (why: string) => never,
  ) {}

  private error(what: string): never {
    return this.fail(`header is not valid JSON: ${what} at character ${this.at}`);
  }
  private space(): void {
    while (this.at < this.text.length) {
      const c = this.text.charCodeAt(this.at);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.at++;
    }
  }
  document(): Json {
    this.space();
    const value = this.value(0);
    this.space();
    if (this.at !== this.text.length) this.error('trailing characters');
    return value;
  }
  private value(depth: number): Json {
    if (this.at >= this.text.length) this.error('the header ends where a value is expected');
    const c = this.text[this.at];
    if (c === '{' || c === '[') {
      if (depth + 1 >= MAX_DEPTH) this.error(`values nested deeper than ${MAX_DEPTH - 1} levels`);
      return c === '{' ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return { kind: 'string', value: this.string() };
    if (c === '-' || (c >= '0' && c <= '9')) return { kind: 'number', text: this.number() };
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.at)) {
        this.at += word.length;
        return { kind: 'literal', value };
      }
    }
    return this.error('expected a value');
  }
  private object(depth: number): Json {
    this.at++;
    const members: Array<[string, Json]> = [];
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return { kind: 'object', members };
    }
    for (;;) {
      this.space();
      if (this.text[this.at] !== '"') this.error('expected a string key');
      const key = this.string();
      this.space();
      if (this.text[this.at] !== ':') this.error("expected ':'");
      this.at++;
      this.space();
      members.push([key, this.value(depth)]);
      this.space();
      const c = this.text[this.at++];
      if (c === '}') return { kind: 'object', members };
      if (c !== ',') this.error("expected ',' or '}'");
    }
  }
  private array(depth: number): Json {
    this.at++;
    const items: Json[] = [];
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return { kind: 'array', items };
    }
    for (;;) {
      this.space();
      items.push(this.value(depth));
      this.space();
      const c = this.text[this.at++];
      if (c === ']') return { kind: 'array', items };
      if (c !== ',') this.error("expected ',' or ']'");
    }
  }
  private number(): string {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.at, this.at + 400));
    if (!match) this.error('invalid number');
    this.at += match[0].length;
    return match[0];
  }
  private hex4(): number {
    const digits = this.text.slice(this.at, this.at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.error('invalid \\u escape');
    this.at += 4;
    return parseInt(digits, 16);
  }
  private string(): string {
    this.at++;
    let out = '';
    for (;;) {
      if (this.at >= this.text.length) this.error('the header ends inside a string');
      const c = this.text.charCodeAt(this.at);
      if (c === 0x22) {
        this.at++;
        return out;
      }
      if (c < 0x20) this.error('a control character (U+0000 to U+001F) inside a string');
      if (c !== 0x5c) {
        out += this.text[this.at++];
        continue;
      }
      const e = this.text[this.at + 1];
      this.at += 2;
      const simple: Record<string, string> = {
        '"': '"',
        '\\': '\\',
        '/': '/',
        b: '\b',
        f: '\f',
        n: '\n',
        r: '\r',
        t: '\t',
      };
      if (e !== undefined && Object.prototype.hasOwnProperty.call(simple, e)) {
        out += simple[e];
        continue;
      }
      if (e !== 'u') this.error('invalid escape');
      const unit = this.hex4();
      if (unit >= 0xdc00 && unit <= 0xdfff) this.error('a lone trailing surrogate in a \\u escape');
      if (unit >= 0xd800 && unit <= 0xdbff) {
        if (this.text.slice(this.at, this.at + 2) !== '\\u') this.error('a lone leading surrogate in a \\u escape');
        this.at += 2;
        const low = this.hex4();
        if (low < 0xdc00 || low > 0xdfff) this.error('a lone leading surrogate in a \\u escape');
        out += String.fromCharCode(unit, low);
        continue;
      }
      out += String.fromCharCode(unit);
    }
  }
}

const U64_MAX = (1n << 64n) - 1n;

function describeJson(value: Json): string {
  if (value.kind === 'number') return `the number ${value.text}`;
  if (value.kind === 'literal') return String(value.value);
  return `a${value.kind === 'array' || value.kind === 'object' ? 'n' : ''} ${value.kind}`;
}

/** Parses a safetensors file; failures are `code` errors saying the file is not a valid `what`. */
export function decodeSafetensors(
  bytes: Uint8Array,
  file: string,
  code: ErrorCode = 'DATA',
  what = 'safetensors file',
): DecodedSafetensors {
  const fail: (why: string) => never = (why) => {
    throw new VbpError(code, `'${file}' is not a valid ${what}: ${why}`);
  };
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 8) fail(`it has ${buffer.length} bytes, fewer than its 8-byte header length`);
  const declared = buffer.readBigUInt64LE(0);
  if (declared > 100_000_000n) fail(`its header length ${declared} is over the format's limit of 100000000 bytes`);
  const headerLength = Number(declared);
  if (headerLength > buffer.length - 8)
    fail(`its header length ${headerLength} runs past the end of the file (${buffer.length} bytes)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buffer.subarray(8, 8 + headerLength));
  } catch {
    return fail('its header is not valid UTF-8');
  }
  const header = new JsonParser(text, fail).document();
  if (header.kind !== 'object') return fail(`its header is ${describeJson(header)}, expected a JSON object`);

  const dataStart = 8 + headerLength;
  const dataLength = BigInt(buffer.length - dataStart);
  let metadata: Record<string, string> | undefined;
  // Duplicate tensor names: the last entry counts (as in the safetensors package).
  const entries = new Map<string, { dtype: SafeDType; shape: number[]; begin: bigint; end: bigint; order: number }>();
  const integer = (value: Json, where: string): bigint => {
    if (value.kind !== 'number' || !/^(0|[1-9][0-9]*)$/.test(value.text)) {
      return fail(`${where} is ${describeJson(value)}, expected a non-negative JSON integer`);
    }
    const n = BigInt(value.text);
    if (n > U64_MAX) fail(`${where} is ${value.text}, more than 2^64 - 1`);
    return n;
  };
  for (const [name, entry] of header.members) {
    if (name === '__metadata__') {
      if (metadata !== undefined) fail('its header has __metadata__ twice');
      metadata = {};
      if (entry.kind === 'literal' && entry.value === null) continue;
      if (entry.kind !== 'object') return fail(`__metadata__ is ${describeJson(entry)}, expected a map of strings`);
      const map: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [key, value] of entry.members) {
        if (value.kind !== 'string') fail(`__metadata__ maps '${key}' to ${describeJson(value)}, expected a string`);
        map[key] = value.value;
      }
      metadata = { ...map };
      continue;
    }
    const fields = new Map<string, Json>();
    if (entry.kind === 'array') {
      // serde reads a struct from an array of its fields in order, as the package does
      if (entry.items.length !== 3)
        fail(`tensor '${name}' is an array of ${entry.items.length} values, expected [dtype, shape, data_offsets]`);
      entry.items.forEach((value, i) => fields.set(['dtype', 'shape', 'data_offsets'][i], value));
    } else if (entry.kind === 'object') {
      for (const [key, value] of entry.members) {
        if (fields.has(key) && (key === 'dtype' || key === 'shape' || key === 'data_offsets'))
          fail(`tensor '${name}' has the field ${key} twice`);
        fields.set(key, value);
      }
    } else {
      return fail(`tensor '${name}' is ${describeJson(entry)}, expected an object with dtype, shape and data_offsets`);
    }
    for (const key of ['dtype', 'shape', 'data_offsets'])
      if (!fields.has(key)) fail(`tensor '${name}' has no field ${key}`);
    let dtypeValue = fields.get('dtype') as Json;
    // serde's map form of an enum's unit variant, {"F32": null}, is read as the package reads it
    if (
      dtypeValue.kind === 'object' &&
      dtypeValue.members.length === 1 &&
      dtypeValue.members[0][1].kind === 'literal' &&
      dtypeValue.members[0][1].value === null
    ) {
      dtypeValue = { kind: 'string', value: dtypeValue.members[0][0] };
    }
    if (dtypeValue.kind !== 'string')
      return fail(`tensor '${name}' has a dtype that is ${describeJson(dtypeValue)}, expected a string`);
    const dtype = dtypeValue.value;
    if (Object.prototype.hasOwnProperty.call(NOT_READ, dtype)) {
      fail(
        `tensor '${name}' is of dtype ${dtype} (${NOT_READ[dtype]}), which torch-vbp does not read (it reads ${Object.keys(KINDS).join(', ')})`,
      );
    }
    if (!Object.prototype.hasOwnProperty.call(KINDS, dtype))
      fail(
        `tensor '${name}' has the unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(KINDS).join(', ')})`,
      );
    const shapeValue = fields.get('shape') as Json;
    if (shapeValue.kind !== 'array')
      return fail(`tensor '${name}' has a shape that is ${describeJson(shapeValue)}, expected an array of integers`);
    const dims = shapeValue.items.map((d, i) => integer(d, `dimension ${i} of the shape of tensor '${name}'`));
    const offsetsValue = fields.get('data_offsets') as Json;
    if (offsetsValue.kind !== 'array' || offsetsValue.items.length !== 2) {
      return fail(
        `tensor '${name}' has data_offsets that are ${offsetsValue.kind === 'array' ? `${offsetsValue.items.length} numbers` : describeJson(offsetsValue)}, expected [begin, end]`,
      );
    }
    const begin = integer(offsetsValue.items[0], `the begin offset of tensor '${name}'`);
    const end = integer(offsetsValue.items[1], `the end offset of tensor '${name}'`);
    let count = 1n;
    for (const d of dims) {
      count *= d;
      if (count > U64_MAX) fail(`the shape [${dims.join(', ')}] of tensor '${name}' overflows 64 bits`);
    }
    if (count * BigInt(KINDS[dtype as SafeDType].bytes) > U64_MAX)
      fail(`the shape [${dims.join(', ')}] of tensor '${name}' overflows 64 bits in bytes`);
    const shape = dims.map((d) =>
      d <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(d)
        : fail(`tensor '${name}' has a dimension of ${d}, too large to read`),
    );
    entries.delete(name);
    entries.set(name, { dtype: dtype as SafeDType, shape, begin, end, order: entries.size });
  }

  // The data, sorted by offsets, must cover the data section exactly, tensor after tensor.
  const sorted = [...entries.entries()].sort(([, a], [, b]) =>
    a.begin !== b.begin ? (a.begin < b.begin ? -1 : 1) : a.end !== b.end ? (a.end < b.end ? -1 : 1) : a.order - b.order,
  );
  let covered = 0n;
  for (const [name, t] of sorted) {
    if (t.begin !== covered || t.end < t.begin) {
      const why =
        t.end < t.begin
          ? 'ends before it begins'
          : t.begin < covered
            ? `overlaps the data before it (which ends at ${covered})`
            : `leaves bytes ${covered} to ${t.begin} of the data uncovered`;
      fail(
        `tensor '${name}' has data_offsets [${t.begin}, ${t.end}] that ${why}; the tensors must cover the data exactly, one after another`,
      );
    }
    const bytesNeeded = BigInt(t.shape.reduce((a, b) => a * b, 1)) * BigInt(KINDS[t.dtype].bytes);
    if (t.end - t.begin !== bytesNeeded)
      fail(
        `tensor '${name}' (${t.dtype} [${t.shape.join(', ')}]) needs ${bytesNeeded} bytes, its data_offsets [${t.begin}, ${t.end}] give ${t.end - t.begin}`,
      );
    covered = t.end;
  }
  if (covered !== dataLength) {
    fail(
      covered > dataLength
        ? `its tensors need ${covered} bytes of data, the file has ${dataLength}`
        : `its tensors cover ${covered} of the ${dataLength} bytes of data after the header (trailing bytes)`,
    );
  }
  const tensors: Record<string, SafeTensor> = {};
  for (const [name, t] of sorted) {
    const copy = new ArrayBuffer(Number(t.end - t.begin));
    new Uint8Array(copy).set(buffer.subarray(dataStart + Number(t.begin), dataStart + Number(t.end)));
    // defineProperty: a tensor named __proto__ is an entry like any other
    Object.defineProperty(tensors, name, {
      value: { dtype: t.dtype, shape: t.shape, data: makeArray(t.dtype, copy) },
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { metadata: metadata ?? {}, tensors };
}
