/**
 * torch.save's zip format (PyTorch >= 1.6): `<archive>/data.pkl`, a pickle whose tensors refer to storages
 * held as raw little-endian records `<archive>/data/<key>`.
 *
 * The pickle is read by a small pickle machine that knows a fixed list of names (the tensor and parameter
 * rebuilders, storage types, OrderedDict, torch.Size) and refuses every other global before anything else
 * happens: nothing in a file is ever executed. Why not LibTorch's unpickler (torch::jit::pickle_load): it
 * turns collections.OrderedDict into None, so every state_dict fails on an internal assert, and it does not
 * know torch._utils._rebuild_parameter.
 */
import { VbpError } from '../errors';
import { numel, type DType, type Tensor, type TypedArray, type Value } from '../tensor';
import { checkTensor, DTYPES } from './dtypes';
import { isZip, writeZip, ZipReader } from './zip';

/** PyTorch's legacy storage classes (torch.save writes them for the dtypes that have one). */
const STORAGES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
/** What torch.save files are read with, for messages. */
const READ_DTYPES =
  'the dtypes read are float16/32/64, bfloat16, int8/16/32/64, uint8/16/32/64, bool and float8_e4m3fn/e5m2/e4m3fnuz/e5m2fnuz/e8m0fnu';

const STORAGE_OF = Object.fromEntries(Object.entries(STORAGES).map(([name, dtype]) => [dtype, name])) as Partial<
  Record<DType, string>
>;

/**
 * torch dtypes that a pickle may name (as the dtype of _rebuild_tensor_v3) but that are not read: they are
 * inert values, refused with DATA when a tensor is built with one.
 */
const OTHER_TORCH_DTYPES = [
  'complex32',
  'complex64',
  'complex128',
  'float4_e2m1fn_x2',
  'bits1x8',
  'bits2x4',
  'bits4x2',
  'bits8',
  'bits16',
  'qint8',
  'quint8',
  'qint32',
  'quint4x2',
  'quint2x4',
  'uint1',
  'uint2',
  'uint3',
  'uint4',
  'uint5',
  'uint6',
  'uint7',
  'int1',
  'int2',
  'int3',
  'int4',
  'int5',
  'int6',
  'int7',
];

// ---------------------------------------------------------------------------------------------- reading

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}

class PyDict {
  readonly map = new Map<unknown, unknown>();
}

class PyTuple {
  constructor(readonly items: unknown[]) {}
}

interface Storage {
  /** 'untyped' for torch.storage.UntypedStorage (PyTorch >= 2: its tensors say their dtype, its size is in bytes). */
  dtype: DType | 'untyped';
  buffer: ArrayBuffer;
  /** Elements (bytes when untyped). */
  length: number;
}

const ALLOWED = new Set([
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'collections.OrderedDict',
  'torch.Size',
  'torch.storage.UntypedStorage',
  ...Object.keys(STORAGES).map((s) => `torch.${s}`),
  // dtypes, as the last argument of _rebuild_tensor_v3: values, never called
  ...Object.keys(DTYPES).map((d) => `torch.${d}`),
  ...OTHER_TORCH_DTYPES.map((d) => `torch.${d}`),
]);

class Unpickler {
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private at = 0;

  constructor(
    private readonly data: Buffer,
    private readonly file: string,
    private readonly loadStorage: (pid: unknown) => Storage,
  ) {}

  fail(message: string): never {
    throw new VbpError('DATA', `'${this.file}' is not a valid torch.save file: ${message}`);
  }

  private need(n: number): number {
    if (this.at + n > this.data.length) this.fail(`its pickle ends early (needs ${n} more bytes at offset ${this.at})`);
    const start = this.at;
    this.at += n;
    return start;
  }
  private u8(): number {
    return this.data[this.need(1)];
  }
  private u16(): number {
    return this.data.readUInt16LE(this.need(2));
  }
  private u32(): number {
    return this.data.readUInt32LE(this.need(4));
  }
  private u64(): number {
    const value = this.data.readBigUInt64LE(this.need(8));
    if (value > BigInt(this.data.length)) this.fail(`a length of ${value} bytes runs past the end of its pickle`);
    return Number(value);
  }
  private text(n: number, encoding: BufferEncoding = 'utf8'): string {
    const start = this.need(n);
    return this.data.toString(encoding, start, start + n);
  }
  private line(): string {
    const end = this.data.indexOf(0x0a, this.at);
    if (end < 0) this.fail('its pickle ends inside a GLOBAL name');
    const text = this.data.toString('utf8', this.at, end);
    this.at = end + 1;
    return text;
  }
  private pop(): unknown {
    if (this.stack.length === 0 || (this.marks.length && this.stack.length <= this.marks[this.marks.length - 1]))
      this.fail('its pickle pops an empty stack');
    return this.stack.pop();
  }
  private top(): unknown {
    if (this.stack.length === 0) this.fail('its pickle reads an empty stack');
    return this.stack[this.stack.length - 1];
  }
  private popMark(): unknown[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('its pickle has no MARK where one is needed');
    return this.stack.splice(mark);
  }
  private global(module: string, name: string): Global {
    const qualified = `${module}.${name}`;
    if (!ALLOWED.has(qualified)) {
      throw new VbpError(
        'DATA',
        `'${this.file}' asks to call or build ${qualified}, which torch-vbp refuses: only tensors, lists, tuples, dicts, strings, numbers, booleans and None are read, and nothing in the file is run`,
      );
    }
    return new Global(module, name);
  }
  private long(bytes: Buffer): number {
    if (bytes.length === 0) return 0;
    let value = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
    if (bytes[bytes.length - 1] & 0x80) value -= 1n << BigInt(8 * bytes.length);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))
      this.fail(`the integer ${value} does not fit a JavaScript number`);
    return Number(value);
  }

  private call(fn: unknown, args: unknown): unknown {
    if (!(fn instanceof Global)) this.fail('its pickle calls something that is not a known function');
    if (!(args instanceof PyTuple)) this.fail(`its pickle calls ${fn.module}.${fn.name} without an argument tuple`);
    const a = args.items;
    switch (`${fn.module}.${fn.name}`) {
      case 'torch._utils._rebuild_tensor_v2':
      case 'torch._utils._rebuild_tensor':
        if (a.length < 4) this.fail('_rebuild_tensor gets too few arguments');
        return this.rebuildTensor(a[0], a[1], a[2], a[3]);
      case 'torch._utils._rebuild_tensor_v3': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
        if (a.length < 7) this.fail('_rebuild_tensor_v3 gets too few arguments');
        const dtype = a[6];
        if (!(dtype instanceof Global) || dtype.module !== 'torch')
          this.fail('_rebuild_tensor_v3 gets a dtype that is not a torch dtype');
        if (!Object.prototype.hasOwnProperty.call(DTYPES, dtype.name)) {
          throw new VbpError(
            'DATA',
            `'${this.file}' holds a tensor of dtype torch.${dtype.name}, which is not read (${READ_DTYPES})`,
          );
        }
        return this.rebuildTensor(a[0], a[1], a[2], a[3], dtype.name as DType);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        if (!isTensorLike(a[0])) this.fail('_rebuild_parameter gets no tensor');
        return a[0];
      case 'collections.OrderedDict': {
        const dict = new PyDict();
        if (a.length > 0) {
          const pairs = a[0];
          const items =
            pairs instanceof PyTuple
              ? pairs.items
              : Array.isArray(pairs)
                ? pairs
                : this.fail('OrderedDict gets a non-sequence');
          for (const pair of items) {
            const kv = pair instanceof PyTuple ? pair.items : Array.isArray(pair) ? pair : [];
            if (kv.length !== 2) this.fail('OrderedDict gets an item that is not a pair');
            dict.map.set(kv[0], kv[1]);
          }
        }
        return dict;
      }
      case 'torch.Size': {
        const dims = a[0] instanceof PyTuple ? a[0].items : [];
        return new PyTuple(dims);
      }
      default:
        return this.fail(`its pickle calls ${fn.module}.${fn.name}, which is not a function`);
    }
  }

  private rebuildTensor(typed: unknown, offset: unknown, size: unknown, stride: unknown, dtype?: DType): Tensor {
    if (!isStorage(typed)) this.fail('a tensor is built from something that is not a storage');
    let storage: { dtype: DType; buffer: ArrayBuffer; length: number };
    if (typed.dtype === 'untyped') {
      if (dtype === undefined)
        this.fail(
          'a tensor is built by _rebuild_tensor_v2 from an untyped storage (which needs _rebuild_tensor_v3 and its dtype)',
        );
      storage = { dtype, buffer: typed.buffer, length: Math.floor(typed.length / DTYPES[dtype].bytes) };
    } else {
      if (dtype !== undefined && dtype !== typed.dtype)
        this.fail(`a tensor of dtype ${dtype} is built from a ${typed.dtype} storage`);
      storage = { dtype: typed.dtype, buffer: typed.buffer, length: typed.length };
    }
    const sizes = size instanceof PyTuple ? size.items : this.fail('a tensor size is not a tuple');
    const strides = stride instanceof PyTuple ? stride.items : this.fail('a tensor stride is not a tuple');
    const ints = (values: unknown[]): values is number[] =>
      values.every((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);
    if (
      !ints(sizes) ||
      !ints(strides) ||
      sizes.length !== strides.length ||
      typeof offset !== 'number' ||
      !Number.isSafeInteger(offset) ||
      offset < 0
    ) {
      this.fail(
        `a tensor has a bad size, stride or offset (size (${sizes.join(', ')}), stride (${strides.join(', ')}), offset ${String(offset)})`,
      );
    }
    const shape = sizes as number[];
    const steps = strides as number[];
    const count = numel(shape);
    const kind = DTYPES[storage.dtype];
    if (count === 0) return { data: kind.make(new ArrayBuffer(0), 0, 0), shape, dtype: storage.dtype };
    let last = offset;
    for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * steps[d];
    if (last >= storage.length) {
      this.fail(
        `a tensor of shape [${shape.join(', ')}] reaches element ${last} of a ${storage.dtype} storage of ${storage.length} elements`,
      );
    }
    let contiguous = true;
    for (let d = shape.length - 1, expected = 1; d >= 0; d--) {
      if (shape[d] !== 1 && steps[d] !== expected) contiguous = false;
      expected *= shape[d];
    }
    const source = kind.make(storage.buffer, 0, storage.length);
    // A contiguous tensor is a view of its storage (tensors that share a storage share memory, as in
    // PyTorch); others are gathered into their own array.
    if (contiguous) return { data: kind.make(storage.buffer, offset * kind.bytes, count), shape, dtype: storage.dtype };
    const out = kind.make(new ArrayBuffer(count * kind.bytes), 0, count) as unknown as { [i: number]: number | bigint };
    const src = source as unknown as { [i: number]: number | bigint };
    const index = new Array<number>(shape.length).fill(0);
    let position = offset;
    for (let i = 0; i < count; i++) {
      out[i] = src[position];
      for (let d = shape.length - 1; d >= 0; d--) {
        index[d]++;
        position += steps[d];
        if (index[d] < shape[d]) break;
        position -= shape[d] * steps[d];
        index[d] = 0;
      }
    }
    return { data: out as unknown as TypedArray, shape, dtype: storage.dtype };
  }

  run(): unknown {
    const d = this.data;
    for (;;) {
      const op = this.u8();
      switch (op) {
        case 0x80:
          this.u8();
          break; // PROTO
        case 0x95:
          this.need(8);
          break; // FRAME
        case 0x2e: {
          // STOP
          if (this.stack.length !== 1) this.fail('its pickle ends with a malformed stack');
          return this.stack[0];
        }
        case 0x28:
          this.marks.push(this.stack.length);
          break; // MARK
        case 0x30:
          this.pop();
          break; // POP
        case 0x31:
          this.popMark();
          break; // POP_MARK
        case 0x32:
          this.stack.push(this.top());
          break; // DUP
        case 0x4e:
          this.stack.push(null);
          break; // NONE
        case 0x88:
          this.stack.push(true);
          break; // NEWTRUE
        case 0x89:
          this.stack.push(false);
          break; // NEWFALSE
        case 0x4a:
          this.stack.push(d.readInt32LE(this.need(4)));
          break; // BININT
        case 0x4b:
          this.stack.push(this.u8());
          break; // BININT1
        case 0x4d:
          this.stack.push(this.u16());
          break; // BININT2
        case 0x8a: {
          const n = this.u8();
          const s = this.need(n);
          this.stack.push(this.long(d.subarray(s, s + n)));
          break;
        } // LONG1
        case 0x8b: {
          const n = this.u32();
          const s = this.need(n);
          this.stack.push(this.long(d.subarray(s, s + n)));
          break;
        } // LONG4
        case 0x47:
          this.stack.push(d.readDoubleBE(this.need(8)));
          break; // BINFLOAT
        case 0x58:
          this.stack.push(this.text(this.u32()));
          break; // BINUNICODE
        case 0x8c:
          this.stack.push(this.text(this.u8()));
          break; // SHORT_BINUNICODE
        case 0x8d:
          this.stack.push(this.text(this.u64()));
          break; // BINUNICODE8
        case 0x54:
          this.stack.push(this.text(this.u32(), 'latin1'));
          break; // BINSTRING
        case 0x55:
          this.stack.push(this.text(this.u8(), 'latin1'));
          break; // SHORT_BINSTRING
        case 0x5d:
          this.stack.push([]);
          break; // EMPTY_LIST
        case 0x7d:
          this.stack.push(new PyDict());
          break; // EMPTY_DICT
        case 0x29:
          this.stack.push(new PyTuple([]));
          break; // EMPTY_TUPLE
        case 0x74:
          this.stack.push(new PyTuple(this.popMark()));
          break; // TUPLE
        case 0x85: {
          const a = this.pop();
          this.stack.push(new PyTuple([a]));
          break;
        } // TUPLE1
        case 0x86: {
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PyTuple([a, b]));
          break;
        } // TUPLE2
        case 0x87: {
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.stack.push(new PyTuple([a, b, c]));
          break;
        } // TUPLE3
        case 0x6c:
          this.stack.push(this.popMark());
          break; // LIST
        case 0x64: {
          // DICT
          const items = this.popMark();
          if (items.length % 2) this.fail('its pickle builds a dict from an odd number of items');
          const dict = new PyDict();
          for (let i = 0; i < items.length; i += 2) dict.map.set(items[i], items[i + 1]);
          this.stack.push(dict);
          break;
        }
        case 0x61: {
          const item = this.pop();
          this.appendTo(this.top(), [item]);
          break;
        } // APPEND
        case 0x65: {
          const items = this.popMark();
          this.appendTo(this.top(), items);
          break;
        } // APPENDS
        case 0x73: {
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        } // SETITEM
        case 0x75: {
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        } // SETITEMS
        case 0x71:
          this.memo.set(this.u8(), this.top());
          break; // BINPUT
        case 0x72:
          this.memo.set(this.u32(), this.top());
          break; // LONG_BINPUT
        case 0x94:
          this.memo.set(this.memo.size, this.top());
          break; // MEMOIZE
        case 0x68:
          this.stack.push(this.get(this.u8()));
          break; // BINGET
        case 0x6a:
          this.stack.push(this.get(this.u32()));
          break; // LONG_BINGET
        case 0x63: {
          const module = this.line();
          const name = this.line();
          this.stack.push(this.global(module, name));
          break;
        } // GLOBAL
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            this.fail('STACK_GLOBAL gets names that are not strings');
          this.stack.push(this.global(module, name));
          break;
        }
        case 0x52: {
          const args = this.pop();
          const fn = this.pop();
          this.stack.push(this.call(fn, args));
          break;
        } // REDUCE
        case 0x81: {
          // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof Global) || `${cls.module}.${cls.name}` !== 'collections.OrderedDict')
            this.fail('its pickle builds an object of a class that is not read');
          this.stack.push(this.call(cls, args));
          break;
        }
        case 0x62: {
          // BUILD: the state of an OrderedDict (a state_dict's _metadata) or of a parameter is dropped
          this.pop();
          const target = this.top();
          if (!(target instanceof PyDict) && !isTensorLike(target))
            this.fail('its pickle sets the state of an object that is not read');
          break;
        }
        case 0x51:
          this.stack.push(this.loadStorage(this.pop()));
          break; // BINPERSID
        default:
          return this.fail(
            `its pickle uses opcode 0x${op.toString(16).padStart(2, '0')} at offset ${this.at - 1}, which is not read (sets, bytes, class instances and the like are not tensors)`,
          );
      }
    }
  }

  private get(key: number): unknown {
    if (!this.memo.has(key)) this.fail(`its pickle refers to memo entry ${key}, which does not exist`);
    return this.memo.get(key);
  }
  private appendTo(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target)) this.fail('its pickle appends to something that is not a list');
    for (const item of items) target.push(item);
  }
  private setItems(target: unknown, items: unknown[]): void {
    if (!(target instanceof PyDict)) this.fail('its pickle sets items of something that is not a dict');
    if (items.length % 2) this.fail('its pickle sets a dict item without a value');
    for (let i = 0; i < items.length; i += 2) target.map.set(items[i], items[i + 1]);
  }
}

function isStorage(value: unknown): value is Storage {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Storage).buffer instanceof ArrayBuffer &&
    typeof (value as Storage).dtype === 'string'
  );
}

function isTensorLike(value: unknown): value is Tensor {
  return (
    typeof value === 'object' &&
    value !== null &&
    ArrayBuffer.isView((value as Tensor).data) &&
    Array.isArray((value as Tensor).shape)
  );
}

/** Turns the pickle's values into ours: tuples and lists become arrays, dicts objects (keys as strings). */
function toValue(value: unknown, file: string, seen = new Map<unknown, Value>(), depth = 0): Value {
  if (depth > 1000) throw new VbpError('DATA', `'${file}' holds values nested deeper than 1000 levels`);
  if (value === null || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'string')
    return value;
  if (isTensorLike(value)) return value;
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (value instanceof PyTuple || Array.isArray(value)) {
    const out: Value[] = [];
    seen.set(value, out);
    for (const item of value instanceof PyTuple ? value.items : value) out.push(toValue(item, file, seen, depth + 1));
    return out;
  }
  if (value instanceof PyDict) {
    const out: { [key: string]: Value } = {};
    seen.set(value, out);
    for (const [key, item] of value.map) {
      if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean' && key !== null) {
        throw new VbpError('DATA', `'${file}' holds a dict with a key that is not a string, number, boolean or None`);
      }
      out[String(key)] = toValue(item, file, seen, depth + 1);
    }
    return out;
  }
  throw new VbpError(
    'DATA',
    `'${file}' holds a value that is not a tensor, list, tuple, dict, string, number, boolean or None (a storage type used as a value?)`,
  );
}

/** Whether `bytes` is a torch.save zip archive (a zip with a `<archive>/data.pkl` and no TorchScript code). */
export function isTorchSaveZip(zip: ZipReader): boolean {
  return zip.entries.some((e) => /^[^/]+\/data\.pkl$/.test(e.name) || e.name === 'data.pkl');
}

/** Reads a torch.save zip archive (already opened) into our values. */
export function readTorchSave(zip: ZipReader, file: string): Value {
  const pickle = zip.entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name) || e.name === 'data.pkl');
  if (!pickle) zip.fail('no data.pkl record (not a torch.save archive)');
  const prefix = pickle.name.slice(0, pickle.name.length - 'data.pkl'.length);
  if (zip.entries.some((e) => e.name.startsWith(`${prefix}code/`) || e.name === `${prefix}constants.pkl`)) {
    throw new VbpError(
      'DATA',
      `'${file}' is a TorchScript model (torch.jit.save), not a torch.save file of tensors: load it with loadModel`,
    );
  }
  const byteorder = zip.find(`${prefix}byteorder`);
  if (byteorder && zip.read(byteorder).toString('latin1').trim() !== 'little') {
    throw new VbpError('DATA', `'${file}' was saved on a big-endian machine, which is not read`);
  }
  const storages = new Map<string, Storage>();
  const loadStorage = (pid: unknown): Storage => {
    const fields = pid instanceof PyTuple ? pid.items : [];
    const [kind, type, key, , count] = fields;
    if (
      fields.length < 5 ||
      kind !== 'storage' ||
      !(type instanceof Global) ||
      typeof key !== 'string' ||
      typeof count !== 'number' ||
      !Number.isSafeInteger(count) ||
      count < 0
    ) {
      throw new VbpError(
        'DATA',
        `'${file}' is not a valid torch.save file: a persistent id is not ('storage', type, key, location, size)`,
      );
    }
    const untyped = type.module === 'torch.storage' && type.name === 'UntypedStorage';
    const dtype: DType | 'untyped' | undefined = untyped
      ? 'untyped'
      : type.module === 'torch'
        ? STORAGES[type.name]
        : undefined;
    if (!dtype) {
      throw new VbpError(
        'DATA',
        `'${file}' holds a ${type.module}.${type.name}, not a storage of float16/32/64, bfloat16, int8/16/32/64, uint8 or bool (nor an UntypedStorage of ${READ_DTYPES})`,
      );
    }
    const cached = storages.get(key);
    if (cached) {
      if (cached.dtype !== dtype)
        throw new VbpError(
          'DATA',
          `'${file}' is not a valid torch.save file: storage ${key} is read as ${cached.dtype} and as ${dtype}`,
        );
      return cached;
    }
    const entry = zip.find(`${prefix}data/${key}`);
    if (!entry)
      throw new VbpError(
        'DATA',
        `'${file}' is not a valid torch.save file: the record of storage '${key}' (${prefix}data/${key}) is missing`,
      );
    const bytes = count * (dtype === 'untyped' ? 1 : DTYPES[dtype].bytes);
    if (entry.size < bytes) {
      throw new VbpError(
        'DATA',
        `'${file}' is not a valid torch.save file: storage '${key}' needs ${bytes} bytes (${count} ${dtype === 'untyped' ? 'bytes' : dtype}) but its record holds ${entry.size}`,
      );
    }
    const record = zip.read(entry);
    const buffer = new ArrayBuffer(bytes);
    new Uint8Array(buffer).set(record.subarray(0, bytes));
    const storage = { dtype, buffer, length: count };
    storages.set(key, storage);
    return storage;
  };
  const result = new Unpickler(zip.read(pickle), file, loadStorage).run();
  return toValue(result, file);
}

/** Reads a torch.save file's bytes (throws DATA when they are not one). */
export function parseTorchSave(bytes: Uint8Array, file: string): Value {
  if (!isZip(bytes)) {
    if (bytes.length >= 2 && bytes[0] === 0x80) {
      throw new VbpError(
        'DATA',
        `'${file}' is a torch.save file in the legacy format (before PyTorch 1.6), which is not read: save it again with torch.save's default zip format`,
      );
    }
    throw new VbpError('DATA', `'${file}' is not a torch.save file: it is not a zip archive`);
  }
  return readTorchSave(new ZipReader(bytes, file, 'torch.save file'), file);
}

// ---------------------------------------------------------------------------------------------- writing

class Pickler {
  private readonly chunks: Buffer[] = [Buffer.from([0x80, 0x02])];
  readonly storages: Uint8Array[] = [];

  private op(...bytes: number[]): void {
    this.chunks.push(Buffer.from(bytes));
  }
  private global(module: string, name: string): void {
    this.chunks.push(Buffer.from(`c${module}\n${name}\n`, 'utf8'));
  }
  private string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58;
    head.writeUInt32LE(bytes.length, 1);
    this.chunks.push(head, bytes);
  }
  private int(n: number): void {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -0x80000000 && n <= 0x7fffffff) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(n, 1);
      this.chunks.push(b);
      return;
    }
    // LONG1: little-endian two's complement, as short as the sign allows.
    const bytes: number[] = [];
    let v = BigInt(n);
    for (;;) {
      const byte = Number(v & 0xffn);
      bytes.push(byte);
      v >>= 8n;
      if ((v === 0n && !(byte & 0x80)) || (v === -1n && byte & 0x80)) break;
    }
    this.op(0x8a, bytes.length, ...bytes);
  }
  private float(x: number): void {
    const b = Buffer.alloc(9);
    b[0] = 0x47;
    b.writeDoubleBE(x, 1);
    this.chunks.push(b);
  }
  private tuple(items: number[]): void {
    this.op(0x28);
    for (const item of items) this.int(item);
    this.op(0x74);
  }

  private tensor(t: Tensor, path: string): void {
    const dtype = checkTensor(t, path);
    const key = String(this.storages.length);
    this.storages.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    const strides: number[] = [];
    for (let d = t.shape.length - 1, s = 1; d >= 0; d--) {
      strides.unshift(s);
      s *= t.shape[d];
    }
    // The dtypes with a legacy storage class as torch.save writes them (any PyTorch reads them); the others
    // (uint16/32/64, float8) as PyTorch >= 2.3 does: an UntypedStorage (size in bytes) and
    // _rebuild_tensor_v3 with the dtype.
    const legacy = STORAGE_OF[dtype];
    this.global('torch._utils', legacy ? '_rebuild_tensor_v2' : '_rebuild_tensor_v3');
    this.op(0x28); // MARK: the argument tuple
    this.op(0x28); // the persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel)
    this.string('storage');
    if (legacy) this.global('torch', legacy);
    else this.global('torch.storage', 'UntypedStorage');
    this.string(key);
    this.string('cpu');
    this.int(legacy ? t.data.length : t.data.byteLength);
    this.op(0x74, 0x51); // TUPLE, BINPERSID
    this.int(0);
    this.tuple(t.shape);
    this.tuple(strides);
    this.op(0x89); // requires_grad False
    this.global('collections', 'OrderedDict');
    this.op(0x29, 0x52); // OrderedDict(): no backward hooks
    if (!legacy) this.global('torch', dtype);
    this.op(0x74, 0x52); // TUPLE, REDUCE
  }

  value(v: unknown, path: string, depth = 0): void {
    if (depth > 100)
      throw new VbpError('INVALID_ARGUMENT', `${path}: the value nests deeper than 100 levels (a cycle?)`);
    if (v === null || v === undefined) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'number') return Number.isSafeInteger(v) ? this.int(v) : this.float(v);
    if (typeof v === 'string') return this.string(v);
    if (isTensorLike(v)) return this.tensor(v, path);
    if (Array.isArray(v)) {
      this.op(0x5d);
      if (v.length) {
        this.op(0x28);
        v.forEach((item, i) => this.value(item, `${path}[${i}]`, depth + 1));
        this.op(0x65);
      }
      return;
    }
    if (typeof v === 'object' && Object.getPrototypeOf(v) !== null && Object.getPrototypeOf(v) !== Object.prototype) {
      throw new VbpError(
        'INVALID_ARGUMENT',
        `${path} is a ${(v as object).constructor?.name ?? 'object'}, not a tensor { data, shape }, array or plain object`,
      );
    }
    if (typeof v === 'object') {
      this.op(0x7d);
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length) {
        this.op(0x28);
        for (const [key, item] of entries) {
          this.string(key);
          this.value(item, `${path}.${key}`, depth + 1);
        }
        this.op(0x75);
      }
      return;
    }
    throw new VbpError(
      'INVALID_ARGUMENT',
      `${path} is a ${typeof v}, which torch.save files do not hold here (tensors, arrays, plain objects, numbers, strings, booleans, null)`,
    );
  }

  finish(): Buffer {
    this.op(0x2e);
    return Buffer.concat(this.chunks);
  }
}

/**
 * A torch.save zip archive of `value` that torch.load reads back equal: tensors (contiguous, one storage
 * each, requires_grad False), arrays as lists, plain objects as dicts (insertion order kept), safe integers
 * as ints, other numbers as floats.
 */
export function formatTorchSave(value: Value): Buffer {
  const pickler = new Pickler();
  pickler.value(value, 'value');
  const pickle = pickler.finish();
  return writeZip([
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...pickler.storages.map((data, key) => ({ name: `archive/data/${key}`, data })),
    { name: 'archive/version', data: Buffer.from('3\n') },
  ]);
}
