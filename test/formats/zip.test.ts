/**
 * Zip archives (lib/formats/zip.ts), the container of torch.save files and .npz: what writeZip writes Python's
 * zipfile reads (stored entries, CRC-32, data aligned to 64 bytes as PyTorch aligns it); what Python writes,
 * stored or deflated, ZipReader reads; damaged archives are DATA errors naming the file. Damaged archives at
 * random are in test/fuzz.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { VbpError } from '../../lib';
import { isZip, writeZip, ZipReader } from '../../lib/formats/zip';
import { python, tempDir } from '../helpers';

const dir = tempDir('torch-vbp-zip-');
const entries = [
  { name: 'archive/data.pkl', data: Buffer.from('not really a pickle') },
  { name: 'archive/data/0', data: Buffer.from(Float32Array.from({ length: 100 }, (_, i) => i).buffer) },
  { name: 'archive/ünïcode name', data: Buffer.alloc(0) },
];

function errorOf(work: () => unknown): VbpError {
  try {
    work();
  } catch (error) {
    if (error instanceof VbpError) return error;
    throw error;
  }
  throw new Error('no error');
}

describe('zip archives', () => {
  it("writeZip's archives read back, with each entry's data at a multiple of 64 bytes, and Python's zipfile reads them", () => {
    const bytes = writeZip(entries);
    expect(isZip(bytes)).toBe(true);
    const zip = new ZipReader(bytes, 'written.zip', 'zip archive');
    expect(zip.entries.map((e) => e.name)).toEqual(entries.map((e) => e.name));
    for (const entry of entries) expect(zip.read(zip.find(entry.name)!).equals(entry.data)).toBe(true);
    for (const entry of zip.entries) {
      const start =
        entry.headerOffset +
        30 +
        bytes.readUInt16LE(entry.headerOffset + 26) +
        bytes.readUInt16LE(entry.headerOffset + 28);
      expect({ name: entry.name, aligned: start % 64 }).toEqual({ name: entry.name, aligned: 0 });
    }
    const file = path.join(dir, 'written.zip');
    fs.writeFileSync(file, bytes);
    const listing = execFileSync(
      python,
      [
        '-c',
        'import sys, zipfile, json; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(json.dumps({i.filename: z.read(i).hex() for i in z.infolist()}))',
        file,
      ],
      { encoding: 'utf8' },
    );
    expect(JSON.parse(listing)).toEqual(Object.fromEntries(entries.map((e) => [e.name, e.data.toString('hex')])));
  });

  it("reads Python's stored and deflated entries", () => {
    const file = path.join(dir, 'python.zip');
    execFileSync(python, [
      '-c',
      "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n z.writestr('stored.txt', 'stored ' * 50, zipfile.ZIP_STORED)\n z.writestr('deflated.txt', 'deflated ' * 50, zipfile.ZIP_DEFLATED)",
      file,
    ]);
    const zip = new ZipReader(fs.readFileSync(file), file, 'zip archive');
    expect(zip.entries.map((e) => e.method)).toEqual([0, 8]);
    expect(zip.read(zip.find('stored.txt')!).toString()).toBe('stored '.repeat(50));
    expect(zip.read(zip.find('deflated.txt')!).toString()).toBe('deflated '.repeat(50));
  });

  it('damaged archives are DATA errors naming the file: a changed data byte fails the CRC-32, a cut archive its directory', () => {
    const bytes = writeZip(entries);
    const zip = new ZipReader(bytes, 'damaged.zip', 'zip archive');
    const entry = zip.find('archive/data/0')!;
    const start =
      entry.headerOffset +
      30 +
      bytes.readUInt16LE(entry.headerOffset + 26) +
      bytes.readUInt16LE(entry.headerOffset + 28);
    const flipped = Buffer.from(bytes);
    flipped[start + 5] ^= 0xff;
    const crc = errorOf(() => new ZipReader(flipped, 'damaged.zip', 'zip archive').read(entry));
    expect(crc.code).toBe('DATA');
    expect(crc.message).toMatch(/damaged\.zip.*fails its CRC-32 check/);
    const cut = errorOf(() => new ZipReader(bytes.subarray(0, bytes.length - 30), 'cut.zip', 'zip archive'));
    expect(cut.code).toBe('DATA');
    expect(cut.message).toContain('cut.zip');
  });
});
