/**
 * Brace patterns of shard lists, as WebDataset's braceexpand reads them: `train-{000000..000127}.tar` (a numeric
 * range, zero-padded to the wider bound), `{a,b,c}` (alternatives), several braces in one pattern.
 */
import { VbpError } from '../errors';

const MAX_EXPANSION = 10_000_000;

export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) {
    if (pattern.includes('}')) throw new VbpError('INVALID_ARGUMENT', `'${pattern}': a '}' without its '{'`);
    return [pattern];
  }
  const close = pattern.indexOf('}', open);
  if (close < 0) throw new VbpError('INVALID_ARGUMENT', `'${pattern}': a '{' without its '}'`);
  const body = pattern.slice(open + 1, close);
  const [head, tail] = [pattern.slice(0, open), pattern.slice(close + 1)];
  let choices: string[];
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body);
  if (range) {
    const [low, high] = [Number(range[1]), Number(range[2])];
    const width = Math.max(range[1].replace('-', '').length, range[2].replace('-', '').length);
    const padded = range[1].startsWith('0') || range[2].startsWith('0');
    const step = low <= high ? 1 : -1;
    if (Math.abs(high - low) + 1 > MAX_EXPANSION)
      throw new VbpError('INVALID_ARGUMENT', `'${pattern}': the range {${body}} has more than ${MAX_EXPANSION} values`);
    choices = [];
    for (let v = low; step > 0 ? v <= high : v >= high; v += step)
      choices.push(
        padded
          ? String(Math.abs(v))
              .padStart(width, '0')
              .replace(/^/, v < 0 ? '-' : '')
          : String(v),
      );
  } else if (body.includes(',')) {
    choices = body.split(',');
  } else {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `'${pattern}': {${body}} is neither a range {FIRST..LAST} nor a list {a,b,...}`,
    );
  }
  const rest = expandBraces(tail);
  return choices.flatMap((choice) => rest.map((r) => `${head}${choice}${r}`));
}
