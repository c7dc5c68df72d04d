/** Option objects of the public API: an unknown key is an error (a typo must not be silently ignored). */
import { VbpError, type ErrorCode } from '../errors';

export function checkOptionKeys(
  options: unknown,
  allowed: readonly string[],
  where: string,
  code: ErrorCode = 'INVALID_ARGUMENT',
): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new VbpError(code, `${where}: options must be an object`);
  }
  const unknown = Object.keys(options).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    throw new VbpError(
      code,
      `${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${allowed.join(', ')})`,
    );
  }
}
