/** Number and table formatting for people: the CLI, the reports and the plans' descriptions. */

/** 1234 -> '1.2 k', 3.62e6 -> '3.62 M'. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

/** A fraction as a percentage number without the sign: 0.8807 -> '88.07'. */
export function percent(x: number, digits = 2): string {
  return (x * 100).toFixed(digits);
}

/** A reduction as a signed percentage: 0.123 -> '-12.3 %', 0 -> '0.0 %' (never '-0.0 %'). */
export function reduction(x: number, digits = 1): string {
  const text = (x * 100).toFixed(digits);
  return Number(text) === 0
    ? `${(0).toFixed(digits)} %`
    : `${x > 0 ? '-' : '+'}${Math.abs(Number(text)).toFixed(digits)} %`;
}

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
