/**
 * Parsing and checking command-line values. Every failure names the option; main.ts exits 2 for failures
 * found while checking arguments or opening inputs, before any work starts.
 */
import os from 'node:os';
import { VbpError, type ErrorCode } from '../errors';

/** A bad command-line value, found before any work: exit code 2. */
export class UsageError extends VbpError {}

/** Ends a command with an exit code and no error line (e.g. `vbp check` on a mismatch: 1). */
export class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}

/** A bad command-line value, naming the option. */
export function usageError(option: string, message: string, code: ErrorCode = 'INVALID_ARGUMENT'): UsageError {
  return new UsageError(code, `${option}: ${message}`);
}

/** Runs `check`; a VbpError it throws becomes a UsageError naming `option`. */
export function checkingOption<T>(option: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof VbpError)) throw error;
    throw usageError(option, error.message, error.code);
  }
}

/** Codes that say something about this installation, not about the command line: never bad usage. */
const ENVIRONMENT_CODES: ReadonlySet<ErrorCode> = new Set(['INTERNAL', 'LIBTORCH_MISMATCH', 'ADDON_NOT_BUILT']);

/**
 * Opens an input of the command (a model, statistics, a plan, a tensor file): one that is missing, cannot be
 * read or is not what it should be is bad usage (exit 2), like a bad option value. `option` prefixes the
 * message when the failure's own message does not say which input it is about.
 */
export async function readingInput<T>(option: string | undefined, open: () => Promise<T> | T): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (error instanceof UsageError || !(error instanceof VbpError) || ENVIRONMENT_CODES.has(error.code)) throw error;
    throw new UsageError(error.code, option ? `${option}: ${error.message}` : error.message, {
      cause: error,
      detail: error.detail,
    });
  }
}

export function parseInteger(value: string, option: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(
      option,
      `must be an integer${max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : ` >= ${min}`}, got '${value}'`,
    );
  }
  return n;
}

/** 0.5 or 50% -> 0.5, checked to lie in [0, 1). */
export function parseFraction(value: string, option: string): number {
  const text = value.trim();
  const n = text.endsWith('%') ? Number(text.slice(0, -1)) / 100 : Number(text);
  if (text === '' || !Number.isFinite(n) || n < 0 || n >= 1)
    throw usageError(option, `must be a fraction in [0, 1) such as 0.5 or 50%, got '${value}'`);
  return n;
}

/** A number in [min, max] (or above min with `exclusiveMin`), e.g. a learning rate. */
export function parseNumber(value: string, option: string, min: number, max = Infinity, exclusiveMin = false): number {
  const text = value.trim();
  const n = Number(text);
  if (text === '' || !Number.isFinite(n) || n < min || n > max || (exclusiveMin && n === min)) {
    const range =
      max === Infinity ? `${exclusiveMin ? '>' : '>='} ${min}` : `in ${exclusiveMin ? '(' : '['}${min}, ${max}]`;
    throw usageError(option, `must be a number ${range}, got '${value}'`);
  }
  return n;
}

/** A share in (0, 1]. */
export function parseShare(value: string, option: string): number {
  const n = Number(value.trim());
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw usageError(option, `must be a number in (0, 1], got '${value}'`);
  return n;
}

export function parseNumberList(value: string, option: string): number[] {
  const items = value.split(',').map((v) => v.trim());
  const numbers = items.map(Number);
  if (items.some((v) => v === '') || numbers.some((v) => !Number.isFinite(v))) {
    throw usageError(option, `must be comma-separated numbers, got '${value}'`);
  }
  return numbers;
}

/** A shape such as 3,224,224: positive integers. */
export function parseShape(value: string, option: string, rank?: number): number[] {
  const shape = parseNumberList(value, option);
  if (shape.some((d) => !Number.isInteger(d) || d < 1))
    throw usageError(option, `sizes must be positive integers, got '${value}'`);
  if (rank !== undefined && shape.length !== rank)
    throw usageError(option, `needs ${rank} sizes (C,H,W), got '${value}'`);
  return shape;
}

export function parseChoice<T extends string>(value: string, option: string, choices: readonly T[]): T {
  if (!choices.includes(value as T)) throw usageError(option, `must be one of ${choices.join(', ')}, got '${value}'`);
  return value as T;
}

/** 'cpu', 'cuda' or 'cuda:N': the form is checked here; whether the device exists, when the model loads. */
export function parseDevice(value: string, option = '--device'): string {
  if (!/^(cpu|cuda(:\d{1,4})?)$/.test(value))
    throw usageError(option, `must be 'cpu', 'cuda' or 'cuda:N', got '${value}'`);
  return value;
}

/** Thread count; more than the machine's cores is allowed (a user may know better) but warned about. */
export function parseThreads(value: string, option: string, warn: (message: string) => void): number {
  const threads = parseInteger(value, option, 1, 4096);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (threads > cores) {
    warn(
      `${option} ${threads} is more than the ${cores} core(s) of this machine: LibTorch runs much slower with more threads than cores`,
    );
  }
  return threads;
}
