/**
 * Every failure of torch-vbp is a VbpError with a stable `code`; native failures keep LibTorch's useful
 * message (never a C++ backtrace) and, for TorchScript interpreter failures, the script traceback in `detail`.
 */
export type ErrorCode =
  | 'MODEL_NOT_FOUND' // the model file does not exist or cannot be read
  | 'MODEL_LOAD' // the file is not a loadable TorchScript model
  | 'MODEL_SAVE' // writing a model failed
  | 'INPUT' // an argument is not a tensor { data, shape }
  | 'INPUT_SHAPE' // a tensor's shape does not fit its data or the model
  | 'INPUT_DTYPE' // a tensor's element type does not fit the model
  | 'FORWARD' // the model's forward failed for another reason
  | 'DEVICE' // a bad device string, or a device this build or machine cannot use
  | 'DISPOSED' // the model was disposed
  | 'NO_MLP' // no fc1 -> activation -> fc2 block found
  | 'MLP_SPEC' // an explicit MLP list does not fit the model
  | 'NON_FINITE' // NaN or Inf seen in inputs or activations
  | 'STATS' // statistics are malformed, empty or belong to another model
  | 'PLAN' // a plan is malformed, out of range or belongs to another model
  | 'PRUNE' // pruning failed
  | 'ABORTED' // cancelled with an AbortSignal
  | 'DATA' // a data set is missing or malformed
  | 'IO' // a file could not be read or written
  | 'OUTPUT_EXISTS' // an output path exists and overwriting was not asked for
  | 'INVALID_ARGUMENT' // a bad option value
  | 'INTERNAL'; // a bug in torch-vbp: please report it

export class VbpError extends Error {
  readonly code: ErrorCode;
  /** TorchScript traceback or other context, when there is one. */
  readonly detail?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; detail?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VbpError';
    this.code = code;
    if (options?.detail) this.detail = options.detail;
  }
}

export function isVbpError(error: unknown, code?: ErrorCode): error is VbpError {
  return error instanceof VbpError && (code === undefined || error.code === code);
}

/** Converts an error thrown by the addon (an Error with a `code`) into a VbpError. */
export function fromNative(error: unknown): VbpError {
  if (error instanceof VbpError) return error;
  // Duck-typed: errors made by the addon belong to the main realm, not to a vm context (e.g. jest's).
  if (typeof error === 'object' && error !== null && typeof (error as Error).message === 'string') {
    const { code, detail, message } = error as Error & { code?: string; detail?: string };
    return new VbpError((code as ErrorCode) ?? 'INTERNAL', message, { cause: error, detail });
  }
  return new VbpError('INTERNAL', String(error));
}

/** Runs a native call (sync or async) and rethrows its failures as VbpError. */
export async function callNative<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fromNative(error);
  }
}

export function callNativeSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw fromNative(error);
  }
}
