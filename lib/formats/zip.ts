/**
 * Zip archives as PyTorch (torch.save) and NumPy (np.savez, np.savez_compressed) write them: the central
 * directory (ZIP64 aware), stored and deflated entries checked against their CRC-32, and a writer of stored
 * entries aligned like PyTorch's. Failures are DATA errors naming the file.
 */
import zlib from 'node:zlib';
import { VbpError } from '../errors';

interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  headerOffset: number;
}

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const END = 0x06054b50;
const END64 = 0x06064b50;
const LOCATOR64 = 0x07064b50;

let table: Uint32Array | undefined;

function crc32(data: Uint8Array): number {
  if (typeof (zlib as { crc32?: unknown }).crc32 === 'function')
    return (zlib as unknown as { crc32: (d: Uint8Array) => number }).crc32(data) >>> 0;
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

/** Reads zip archives held in memory. */
export class ZipReader {
  readonly entries: ZipEntry[];
  private readonly buffer: Buffer;

  constructor(
    bytes: Uint8Array,
    private readonly file: string,
    private readonly what: string,
  ) {
    this.buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.entries = this.readDirectory();
  }

  fail(message: string): never {
    throw new VbpError('DATA', `'${this.file}' is not a valid ${this.what}: ${message}`);
  }

  private readDirectory(): ZipEntry[] {
    const b = this.buffer;
    // The end record sits in the last 22 + 65535 (comment) bytes.
    let end = -1;
    for (let at = b.length - 22; at >= Math.max(0, b.length - 22 - 65535); at--) {
      if (b.readUInt32LE(at) === END) {
        end = at;
        break;
      }
    }
    if (end < 0) this.fail('no zip end-of-central-directory record (truncated?)');
    let count = b.readUInt16LE(end + 10);
    let size = b.readUInt32LE(end + 12);
    let offset = b.readUInt32LE(end + 16);
    if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
      const locator = end - 20;
      if (locator < 0 || b.readUInt32LE(locator) !== LOCATOR64) this.fail('ZIP64 locator missing');
      const end64 = this.safeNumber(b.readBigUInt64LE(locator + 8));
      if (end64 + 56 > b.length || b.readUInt32LE(end64) !== END64) this.fail('ZIP64 end record missing');
      count = this.safeNumber(b.readBigUInt64LE(end64 + 32));
      size = this.safeNumber(b.readBigUInt64LE(end64 + 40));
      offset = this.safeNumber(b.readBigUInt64LE(end64 + 48));
    }
    if (offset + size > b.length)
      this.fail(
        `central directory (offset ${offset}, ${size} bytes) runs past the end of the file (${b.length} bytes)`,
      );
    const entries: ZipEntry[] = [];
    let at = offset;
    for (let i = 0; i < count; i++) {
      if (at + 46 > offset + size || b.readUInt32LE(at) !== CENTRAL)
        this.fail(`central directory entry ${i} is damaged`);
      const flags = b.readUInt16LE(at + 8);
      const method = b.readUInt16LE(at + 10);
      const crc = b.readUInt32LE(at + 16);
      let compressedSize = b.readUInt32LE(at + 20);
      let uncompressed = b.readUInt32LE(at + 24);
      const nameLength = b.readUInt16LE(at + 28);
      const extraLength = b.readUInt16LE(at + 30);
      const commentLength = b.readUInt16LE(at + 32);
      let headerOffset = b.readUInt32LE(at + 42);
      if (at + 46 + nameLength + extraLength > b.length)
        this.fail(`central directory entry ${i} runs past the end of the file`);
      const name = b.toString(flags & 0x800 ? 'utf8' : 'latin1', at + 46, at + 46 + nameLength);
      // ZIP64 sizes and offset, in this order, for the fields set to 0xffffffff.
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = b.readUInt16LE(extra);
        const length = b.readUInt16LE(extra + 2);
        if (id === 0x0001) {
          let field = extra + 4;
          const next = (): number => {
            if (field + 8 > extra + 4 + length) this.fail(`ZIP64 field of '${name}' is too short`);
            const value = this.safeNumber(b.readBigUInt64LE(field));
            field += 8;
            return value;
          };
          if (uncompressed === 0xffffffff) uncompressed = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (headerOffset === 0xffffffff) headerOffset = next();
        }
        extra += 4 + length;
      }
      entries.push({ name, method, crc32: crc, compressedSize, size: uncompressed, headerOffset });
      at = extraEnd + commentLength;
    }
    return entries;
  }

  private safeNumber(value: bigint): number {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('a ZIP64 size or offset is out of range');
    return Number(value);
  }

  find(name: string): ZipEntry | undefined {
    return this.entries.find((e) => e.name === name);
  }

  /** The entry's bytes, inflated when deflated, checked against its CRC-32. */
  read(entry: ZipEntry): Buffer {
    const b = this.buffer;
    const at = entry.headerOffset;
    if (at + 30 > b.length || b.readUInt32LE(at) !== LOCAL)
      this.fail(`the local header of '${entry.name}' is missing (bad offset ${at})`);
    const start = at + 30 + b.readUInt16LE(at + 26) + b.readUInt16LE(at + 28);
    if (start + entry.compressedSize > b.length) {
      this.fail(
        `'${entry.name}' needs ${entry.compressedSize} bytes at offset ${start}, past the end of the file (${b.length} bytes)`,
      );
    }
    const raw = b.subarray(start, start + entry.compressedSize);
    let data: Buffer;
    if (entry.method === 0) {
      if (entry.size !== entry.compressedSize)
        this.fail(`stored entry '${entry.name}' has different sizes (${entry.size} and ${entry.compressedSize})`);
      data = raw;
    } else if (entry.method === 8) {
      try {
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
      } catch (error) {
        return this.fail(`deflated entry '${entry.name}' cannot be inflated (${(error as Error).message})`);
      }
      if (data.length !== entry.size)
        this.fail(`'${entry.name}' inflates to ${data.length} bytes, its header says ${entry.size}`);
    } else {
      return this.fail(
        `'${entry.name}' uses compression method ${entry.method} (only stored and deflated entries are read)`,
      );
    }
    const crc = crc32(data);
    if (crc !== entry.crc32) this.fail(`'${entry.name}' fails its CRC-32 check (damaged data)`);
    return data;
  }
}

/**
 * A zip archive of stored entries, each entry's data aligned to 64 bytes (as PyTorch aligns its records),
 * with ZIP64 records when the archive outgrows 4 GiB.
 */
export function writeZip(entries: Array<{ name: string; data: Uint8Array }>): Buffer {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const big = entry.data.length >= 0xffffffff || offset >= 0xffffffff;
    const zip64Local = big ? 20 : 0;
    const base = offset + 30 + name.length + zip64Local;
    // Padding extra field ('FB', as PyTorch) so that the data starts at a multiple of 64.
    const pad = (64 - ((base + 4) % 64)) % 64;
    const local = Buffer.alloc(30 + name.length + zip64Local + 4 + pad);
    const crc = crc32(entry.data);
    local.writeUInt32LE(LOCAL, 0);
    local.writeUInt16LE(big ? 45 : 20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(big ? 0xffffffff : entry.data.length, 18);
    local.writeUInt32LE(big ? 0xffffffff : entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(zip64Local + 4 + pad, 28);
    name.copy(local, 30);
    let at = 30 + name.length;
    if (big) {
      local.writeUInt16LE(0x0001, at);
      local.writeUInt16LE(16, at + 2);
      local.writeBigUInt64LE(BigInt(entry.data.length), at + 4);
      local.writeBigUInt64LE(BigInt(entry.data.length), at + 12);
      at += 20;
    }
    local.writeUInt16LE(0x4246, at); // 'FB'
    local.writeUInt16LE(pad, at + 2);

    const zip64Central = big ? 28 : 0;
    const header = Buffer.alloc(46 + name.length + zip64Central);
    header.writeUInt32LE(CENTRAL, 0);
    header.writeUInt16LE(big ? 45 : 20, 4);
    header.writeUInt16LE(big ? 45 : 20, 6);
    header.writeUInt16LE(0x800, 8);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(big ? 0xffffffff : entry.data.length, 20);
    header.writeUInt32LE(big ? 0xffffffff : entry.data.length, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt16LE(zip64Central, 30);
    header.writeUInt32LE(big ? 0xffffffff : offset, 42);
    name.copy(header, 46);
    if (big) {
      const x = 46 + name.length;
      header.writeUInt16LE(0x0001, x);
      header.writeUInt16LE(24, x + 2);
      header.writeBigUInt64LE(BigInt(entry.data.length), x + 4);
      header.writeBigUInt64LE(BigInt(entry.data.length), x + 12);
      header.writeBigUInt64LE(BigInt(offset), x + 20);
    }
    chunks.push(local, Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength));
    central.push(header);
    offset += local.length + entry.data.length;
  }
  const directory = Buffer.concat(central);
  const needs64 = offset >= 0xffffffff || entries.length >= 0xffff;
  const tail: Buffer[] = [];
  if (needs64) {
    const end64 = Buffer.alloc(56);
    end64.writeUInt32LE(END64, 0);
    end64.writeBigUInt64LE(44n, 4);
    end64.writeUInt16LE(45, 12);
    end64.writeUInt16LE(45, 14);
    end64.writeBigUInt64LE(BigInt(entries.length), 24);
    end64.writeBigUInt64LE(BigInt(entries.length), 32);
    end64.writeBigUInt64LE(BigInt(directory.length), 40);
    end64.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(LOCATOR64, 0);
    locator.writeBigUInt64LE(BigInt(offset + directory.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(end64, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END, 0);
  end.writeUInt16LE(needs64 ? 0xffff : entries.length, 8);
  end.writeUInt16LE(needs64 ? 0xffff : entries.length, 10);
  end.writeUInt32LE(needs64 ? 0xffffffff : directory.length, 12);
  end.writeUInt32LE(needs64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...chunks, directory, ...tail, end]);
}
