/**
 * The members of a tar archive (POSIX ustar, GNU long names, pax extended headers), found by reading the 512-byte
 * headers only: a member's bytes are read later, where they are needed. What Python's tarfile lists as regular
 * files, with the same names, data offsets and sizes.
 */
import fs from 'node:fs';
import { VbpError } from '../errors';

export interface TarMember {
  name: string;
  /** Where the member's bytes start in the archive. */
  offset: number;
  size: number;
}

const BLOCK = 512;

/** A NUL-terminated field of the header. */
function text(header: Buffer, start: number, length: number): string {
  const field = header.subarray(start, start + length);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? length : end).toString('utf8');
}

/** An octal number field, or GNU's base-256 form (first byte's high bit set) for sizes of 8 GiB and more. */
function number(header: Buffer, start: number, length: number): number {
  if (header[start] & 0x80) {
    let value = header[start] & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + header[i];
    return value;
  }
  const digits = text(header, start, length).trim();
  return digits === '' ? 0 : parseInt(digits, 8);
}

/** The header's checksum: its bytes summed with the checksum field read as spaces. */
function checksumOk(header: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
  return sum === number(header, 148, 8);
}

/** pax records "LENGTH key=value\n". */
function paxRecords(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const length = parseInt(data.subarray(at, space).toString('ascii'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const equals = record.indexOf('=');
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1);
    at += length;
  }
  return records;
}

/** The regular-file members of `file`, in archive order; DATA naming the file and offset for a damaged header. */
export function listTar(file: string): TarMember[] {
  const fd = fs.openSync(file, 'r');
  try {
    const fileSize = fs.fstatSync(fd).size;
    const header = Buffer.alloc(BLOCK);
    const members: TarMember[] = [];
    const damaged = (offset: number, why: string): VbpError =>
      new VbpError('DATA', `'${file}' is not a readable tar archive: ${why} at byte ${offset}`);
    const readData = (offset: number, size: number): Buffer => {
      const data = Buffer.alloc(size);
      if (fs.readSync(fd, data, 0, size, offset) !== size)
        throw damaged(offset, 'a member ends past the end of the file');
      return data;
    };
    let next: { name?: string; size?: number } = {};
    let offset = 0;
    while (offset + BLOCK <= fileSize) {
      fs.readSync(fd, header, 0, BLOCK, offset);
      if (header.every((b) => b === 0)) break; // the end-of-archive blocks
      if (!checksumOk(header)) throw damaged(offset, 'a header with a wrong checksum');
      const type = String.fromCharCode(header[156] || 0x30);
      const regular = type === '0' || type === '7';
      // A pax size applies to the file after it, not to the headers in between.
      const size = regular && next.size !== undefined ? next.size : number(header, 124, 12);
      const dataOffset = offset + BLOCK;
      if (dataOffset + size > fileSize)
        throw damaged(offset, `a member of ${size} bytes ends past the end of the file`);
      const ustar = header.subarray(257, 263).toString('latin1') === 'ustar\0';
      const prefix = ustar ? text(header, 345, 155) : '';
      const name =
        (regular ? next.name : undefined) ?? (prefix ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100));
      if (type === 'L') next = { ...next, name: text(readData(dataOffset, size), 0, size) };
      else if (type === 'x') {
        const records = paxRecords(readData(dataOffset, size));
        next = {
          ...next,
          ...(records.path !== undefined ? { name: records.path } : {}),
          ...(records.size !== undefined ? { size: Number(records.size) } : {}),
        };
      } else {
        // Regular files ('0', and '\0' or '7' as tarfile reads them); directories, links and the rest carry no item.
        if (regular) members.push({ name, offset: dataOffset, size });
        if (type !== 'g') next = {};
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    }
    return members;
  } finally {
    fs.closeSync(fd);
  }
}
