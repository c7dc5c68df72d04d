/**
 * `torch-vbp/jest`: importing this file registers `expect(actual).toBeCloseToTensor(expected, options)`
 * with jest's global `expect` (assertClose's semantics and message, plus a table of the first mismatched
 * elements). `matchers` is exported for `expect.extend` elsewhere.
 */
import { isTensor, type Tensor, type Value } from '../tensor';
import { dtypeOfTensor, elementValue } from '../formats/dtypes';
import { closeMismatch, isClose, type CloseOptions } from './assert-close';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace jest {
    interface Matchers<R> {
      /** Passes when `expected` and the received value are close as torch.testing.assert_close sees them. */
      toBeCloseToTensor(expected: Value, options?: CloseOptions): R;
    }
  }
}

interface MatcherUtils {
  isNot?: boolean;
  utils: {
    matcherHint: (name: string, received?: string, expected?: string, options?: { isNot?: boolean }) => string;
    RECEIVED_COLOR: (s: string) => string;
    EXPECTED_COLOR: (s: string) => string;
  };
}

function element(t: Tensor, i: number): string {
  return t.dtype === 'int64' ? String(t.data[i]) : String(elementValue(t, dtypeOfTensor(t), i));
}

/** The first mismatched elements of two tensors of one shape, as "index  expected  received" rows. */
function mismatchTable(
  received: Value,
  expected: Value,
  options: CloseOptions | undefined,
  utils: MatcherUtils['utils'],
  limit = 10,
): string {
  if (!isTensor(received) || !isTensor(expected) || received.shape.join() !== expected.shape.join()) return '';
  let mask: Uint8Array;
  try {
    mask = isClose(received, expected, { ...options, checkDtype: false }).data;
    dtypeOfTensor(received);
  } catch {
    return '';
  }
  const rows: string[] = [];
  const strides = received.shape.map((_, d) => received.shape.slice(d + 1).reduce((a, b) => a * b, 1));
  for (let i = 0; i < mask.length && rows.length < limit; i++) {
    if (mask[i]) continue;
    const index = strides.map((s, d) => Math.floor(i / s) % received.shape[d]);
    rows.push(
      `  [${index.join(', ')}]  ${utils.EXPECTED_COLOR(element(expected, i))}  ${utils.RECEIVED_COLOR(element(received, i))}`,
    );
  }
  return rows.length
    ? `\n\nFirst mismatched elements (index, ${utils.EXPECTED_COLOR('expected')}, ${utils.RECEIVED_COLOR('received')}):\n${rows.join('\n')}`
    : '';
}

export const matchers = {
  toBeCloseToTensor(this: MatcherUtils, received: Value, expected: Value, options?: CloseOptions) {
    const mismatch = closeMismatch(received, expected, options, 'toBeCloseToTensor');
    const hint = this.utils.matcherHint('toBeCloseToTensor', 'received', 'expected', { isNot: this.isNot });
    if (mismatch === undefined) {
      return { pass: true, message: () => `${hint}\n\nExpected the values not to be close, but they are.` };
    }
    return {
      pass: false,
      message: () => `${hint}\n\n${mismatch}${mismatchTable(received, expected, options, this.utils)}`,
    };
  },
};

const globalExpect = (globalThis as { expect?: { extend?: (m: object) => void } }).expect;
if (typeof globalExpect?.extend === 'function') globalExpect.extend(matchers);
