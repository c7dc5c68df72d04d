/** What commands print, and the checks on output paths made before any work. */
import path from 'node:path';
import { VbpError } from '../errors';
import { checkWritable } from '../util/files';
import { usageError } from './args';
import { writesOutputs } from './ranks';

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
}

/** Human text on stdout, or with --json one JSON document and nothing else; --quiet prints nothing. */
export function print(options: OutputOptions, human: string, data: unknown): void {
  // The ranks of a data-parallel run agree on the result: rank 0 alone reports it.
  if (!writesOutputs()) return;
  if (options.json) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else if (!options.quiet) process.stdout.write(human + '\n');
}

/** A note for people on stderr (not with --quiet). */
export function warn(options: OutputOptions, message: string): void {
  if (!options.quiet) process.stderr.write(`vbp: warning: ${message}\n`);
}

/**
 * Checks an output path before any work: not an input of the command, its folder writable, not a folder
 * itself, and not existing unless --force. Returns the resolved path.
 */
export function checkOutput(
  out: string | undefined,
  option: string,
  inputs: string[],
  force: boolean | undefined,
): string {
  if (!out) throw usageError(option, 'a file name is required');
  const resolved = path.resolve(out);
  if (inputs.some((input) => path.resolve(input) === resolved)) {
    throw usageError(option, `'${out}' is an input of this command; refusing to overwrite it`, 'OUTPUT_EXISTS');
  }
  try {
    checkWritable(resolved, { overwrite: Boolean(force) }, 'pass --force to replace it');
  } catch (error) {
    if (error instanceof VbpError) throw usageError(option, error.message, error.code);
    throw error;
  }
  return resolved;
}
