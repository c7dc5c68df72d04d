/**
 * File helpers. Reads fail with IO naming the file and the reason; outputs are written atomically
 * (a temporary file in the same folder, then a rename), alone or as a set that appears together.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { VbpError } from '../errors';

function temporarySibling(target: string): string {
  const suffix = `${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${suffix}`);
}

export interface WriteOptions {
  /** Replace an existing file (default true for the library, false for the CLI). */
  overwrite?: boolean;
}

function reasonOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or folder';
  if (code === 'EISDIR') return 'it is a folder';
  if (code === 'ENOTDIR') return 'a part of the path is not a folder';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return error instanceof Error ? error.message : String(error);
}

/** IO naming `what`, the file and why it could not be read. */
export function readFailure(what: string, file: string, error: unknown): VbpError {
  return new VbpError('IO', `cannot read ${what} '${file}': ${reasonOf(error)}`, { cause: error });
}

/** The contents of a file, or IO naming `what`, the file and why it cannot be read. */
export function readFileChecked(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw readFailure(what, file, error);
  }
}

/** Throws IO unless `file` exists and is a file (not a folder). */
export function checkReadableFile(file: string, what: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    throw new VbpError('IO', `cannot read ${what} '${file}': ${reasonOf(error)}`, { cause: error });
  }
  if (stat.isDirectory()) throw new VbpError('IO', `cannot read ${what} '${file}': it is a folder, not a file`);
}

/**
 * Creates and removes a file in `dir`: the one reliable test that the folder takes new files (permission
 * bits say nothing for root, nor for read-only mounts).
 */
function probeFolder(dir: string, target: string): void {
  const probe = path.join(dir, `.vbp-write-probe-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.closeSync(fs.openSync(probe, 'wx'));
  } catch (error) {
    throw new VbpError('IO', `cannot write '${target}': folder '${dir}' does not take new files (${reasonOf(error)})`, {
      cause: error,
    });
  }
  fs.rmSync(probe, { force: true });
}

/**
 * Checks before any work that `target` can be written: its folder exists and is writable, the target is
 * not a folder, and it does not exist unless `overwrite` is not false.
 */
export function checkWritable(
  target: string,
  options: WriteOptions = {},
  overwriteHint = 'pass overwrite to replace it',
): void {
  const dir = path.dirname(path.resolve(target));
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch {
    throw new VbpError('IO', `cannot write '${target}': folder '${dir}' does not exist`);
  }
  if (!dirStat.isDirectory()) throw new VbpError('IO', `cannot write '${target}': '${dir}' is not a folder`);
  probeFolder(dir, target);
  const existing = fs.statSync(target, { throwIfNoEntry: false });
  if (existing?.isDirectory()) throw new VbpError('IO', `cannot write '${target}': it is a folder`);
  if (existing && options.overwrite === false)
    throw new VbpError('OUTPUT_EXISTS', `'${target}' already exists (${overwriteHint})`);
}

/** One file of an output set: `write` produces it under the temporary path it is given. */
export interface PendingOutput {
  target: string;
  write: (temporaryPath: string) => Promise<void> | void;
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // nothing was written there
  }
}

/**
 * Writes every output under a temporary name, then renames them all over their targets: readers never see
 * a half-written file, and when any write fails none of the outputs appears.
 */
export async function writeAllAtomically(outputs: PendingOutput[], options: WriteOptions = {}): Promise<void> {
  for (const output of outputs) checkWritable(output.target, options);
  const written: Array<{ target: string; temporary: string }> = [];
  try {
    for (const output of outputs) {
      const temporary = temporarySibling(output.target);
      written.push({ target: output.target, temporary });
      await output.write(temporary);
    }
    // Another process may have made a target meanwhile.
    const appeared = outputs.find((output) => options.overwrite === false && fs.existsSync(output.target));
    if (appeared)
      throw new VbpError('OUTPUT_EXISTS', `'${appeared.target}' already exists (pass overwrite to replace it)`);
  } catch (error) {
    for (const { temporary } of written) removeQuietly(temporary);
    if (error instanceof VbpError) throw error;
    const target = written.length ? written[written.length - 1].target : outputs[0]?.target;
    throw new VbpError('IO', `cannot write '${target}': ${reasonOf(error)}`, { cause: error });
  }
  const renamed: string[] = [];
  try {
    for (const { target, temporary } of written) {
      fs.renameSync(temporary, target);
      renamed.push(target);
    }
  } catch (error) {
    // A rename in a folder just checked rarely fails; if one does, take back the ones already made.
    for (const target of renamed) removeQuietly(target);
    for (const { temporary } of written) removeQuietly(temporary);
    throw new VbpError('IO', `cannot write '${written[renamed.length].target}': ${reasonOf(error)}`, { cause: error });
  }
}

export async function writeAtomically(
  target: string,
  write: PendingOutput['write'],
  options: WriteOptions = {},
): Promise<void> {
  await writeAllAtomically([{ target, write }], options);
}

export async function writeFileAtomically(
  target: string,
  data: string | Uint8Array,
  options: WriteOptions = {},
): Promise<void> {
  await writeAtomically(target, (tmp) => fs.promises.writeFile(tmp, data), options);
}
