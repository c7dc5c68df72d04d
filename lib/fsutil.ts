/** File helpers: outputs are written atomically (temporary file in the same folder, then rename). */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { VbpError } from './errors';

export function temporarySibling(target: string): string {
  const suffix = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${suffix}`);
}

export interface WriteOptions {
  /** Replace an existing file (default true for the library, false for the CLI). */
  overwrite?: boolean;
}

function checkTarget(target: string, options: WriteOptions): void {
  const dir = path.dirname(path.resolve(target));
  if (!fs.existsSync(dir)) throw new VbpError('IO', `cannot write '${target}': folder '${dir}' does not exist`);
  if (!fs.statSync(dir).isDirectory()) throw new VbpError('IO', `cannot write '${target}': '${dir}' is not a folder`);
  if (options.overwrite === false && fs.existsSync(target)) {
    throw new VbpError('OUTPUT_EXISTS', `'${target}' already exists (pass overwrite to replace it)`);
  }
  if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
    throw new VbpError('IO', `cannot write '${target}': it is a folder`);
  }
}

/**
 * Lets `write` produce the file under a temporary name, then renames it over `target`, so that readers
 * never see a half-written file and a failure leaves nothing behind.
 */
export async function writeAtomically(
  target: string,
  write: (temporaryPath: string) => Promise<void> | void,
  options: WriteOptions = {},
): Promise<void> {
  checkTarget(target, options);
  const temporary = temporarySibling(target);
  try {
    await write(temporary);
    if (options.overwrite === false && fs.existsSync(target)) {
      throw new VbpError('OUTPUT_EXISTS', `'${target}' already exists (pass overwrite to replace it)`);
    }
    fs.renameSync(temporary, target);
  } catch (error) {
    try {
      fs.rmSync(temporary, { force: true });
    } catch {
      // nothing was written there
    }
    if (error instanceof VbpError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new VbpError('IO', `cannot write '${target}': ${message}`, { cause: error });
  }
}

export async function writeFileAtomically(target: string, data: string | Uint8Array, options: WriteOptions = {}): Promise<void> {
  await writeAtomically(target, (tmp) => fs.promises.writeFile(tmp, data), options);
}

export function readFileChecked(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a folder' : (error as Error).message;
    throw new VbpError('IO', `cannot read ${what} '${file}': ${reason}`, { cause: error });
  }
}
