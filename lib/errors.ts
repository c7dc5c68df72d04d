/**
 * Every failure of torch-vbp is a VbpError with a stable `code`; native failures keep LibTorch's useful
 * message (never a C++ backtrace) and, for TorchScript interpreter failures, the script traceback in `detail`.
 *
 * ERROR_CODES is the one list of codes. `native: true` marks the codes that native/core/errors.h may
 * raise; test/errors.test.ts fails when the two lists differ.
 */
export const ERROR_CODES = {
  MODEL_NOT_FOUND: { native: true, meaning: 'the model file does not exist or cannot be read' },
  MODEL_LOAD: { native: true, meaning: 'the file is not a loadable TorchScript model' },
  MODEL_SAVE: { native: true, meaning: 'writing a model failed' },
  INPUT: { native: true, meaning: 'an argument is not a tensor { data, shape }' },
  INPUT_SHAPE: { native: true, meaning: "a tensor's shape does not fit its data or the model" },
  INPUT_DTYPE: { native: true, meaning: "a tensor's element type does not fit the model" },
  FORWARD: { native: true, meaning: "the model's forward failed in the model's own code" },
  DEVICE: { native: true, meaning: 'a bad device string, or a device this build or machine cannot use' },
  DISPOSED: { native: true, meaning: 'the model was disposed' },
  BUSY: { native: false, meaning: 'forwardSync() while calls on the model are queued or running' },
  NO_MLP: { native: true, meaning: 'no fc1 -> activation -> fc2 block found' },
  MLP_SPEC: { native: true, meaning: 'an explicit MLP list does not fit the model' },
  NON_FINITE: { native: true, meaning: 'NaN or Inf seen in the activations or in a training loss' },
  STATS: { native: true, meaning: 'statistics are malformed, empty or belong to another model' },
  PLAN: { native: true, meaning: 'a plan is malformed, out of range or belongs to another model' },
  PRUNE: { native: true, meaning: 'pruning failed' },
  NOT_TRAINABLE: {
    native: true,
    meaning: 'the model cannot be fine-tuned: no parameters, or train-mode behaviour frozen into a traced graph',
  },
  ABORTED: { native: true, meaning: 'cancelled with an AbortSignal (in a data-parallel run: on any rank)' },
  DATA: {
    native: true,
    meaning: 'a data set, model card or tensor file is malformed, does not fit the model, or asks to run code',
  },
  IO: { native: true, meaning: 'a file or folder could not be read or written' },
  OUTPUT_EXISTS: { native: false, meaning: 'an output path exists and overwriting was not asked for' },
  INVALID_ARGUMENT: { native: true, meaning: 'a bad option value or a missing option' },
  ADDON_NOT_BUILT: {
    native: false,
    meaning: 'the native addon has not been built for this machine (no local build, no matching prebuild)',
  },
  LIBTORCH_MISMATCH: {
    native: true,
    meaning: 'the LibTorch loaded at run time is not the one the addon was built against, or that one cannot be found',
  },
  DISTRIBUTED: {
    native: true,
    meaning:
      'joining or using a process group failed: a port in use, ranks that disagree, a rank that stopped or timed out, or no backend in this build',
  },
  INTERNAL: { native: true, meaning: 'a bug in torch-vbp: please report it' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, value);
}

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

/**
 * Converts an error thrown by the addon (an Error with a `code`) into a VbpError. A code outside
 * ERROR_CODES is a bug in torch-vbp and becomes INTERNAL, naming the code.
 */
export function fromNative(error: unknown): VbpError {
  if (error instanceof VbpError) return error;
  // Duck-typed: errors made by the addon belong to the main realm, not to a vm context (e.g. jest's).
  if (typeof error === 'object' && error !== null && typeof (error as Error).message === 'string') {
    const { code, detail, message } = error as Error & { code?: unknown; detail?: string };
    if (isErrorCode(code)) return new VbpError(code, message, { cause: error, detail });
    const unknown = code === undefined ? '' : ` (unknown error code '${String(code)}')`;
    return new VbpError('INTERNAL', `${message}${unknown}`, { cause: error, detail });
  }
  return new VbpError('INTERNAL', String(error));
}

/** Wraps anything thrown into a VbpError (INTERNAL for what is not one already). */
export function asVbpError(error: unknown): VbpError {
  if (error instanceof VbpError) return error;
  return new VbpError('INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
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
