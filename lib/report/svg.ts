/** Small, dependency-free SVG charts for the HTML report. */
import { escapeHtml as escape } from './html';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

const FRAME: Frame = { width: 640, height: 320, left: 60, right: 160, top: 20, bottom: 50 };
const PLOT_WIDTH = FRAME.width - FRAME.left - FRAME.right;

/** Legend text is 11 px; an average glyph of sans-serif fonts is at most about 0.62 em wide. */
const LEGEND_FONT_PX = 11;
const GLYPH_EM = 0.62;

/** A frame whose right margin holds the longest legend label whole (the plot keeps its width). */
function frameFor(names: string[]): Frame {
  const longest = Math.max(0, ...names.map((n) => n.length));
  const right = Math.max(FRAME.right, Math.ceil(12 + 18 + longest * LEGEND_FONT_PX * GLYPH_EM + 8));
  return { ...FRAME, right, width: FRAME.left + PLOT_WIDTH + right };
}

function niceTicks(min: number, max: number, count = 5): number[] {
  const span = max - min || 1;
  const step = 10 ** Math.floor(Math.log10(span / count));
  const unit = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= count) ?? step * 10;
  const ticks: number[] = [];
  for (let t = Math.ceil(min / unit) * unit; t <= max + 1e-9; t += unit) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function axes(
  f: Frame,
  yTicks: Array<{ value: number; y: number; label: string }>,
  xLabel: string,
  yLabel: string,
): string {
  const plotRight = f.width - f.right;
  const plotBottom = f.height - f.bottom;
  return [
    `<line x1="${f.left}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="#333"/>`,
    `<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${plotBottom}" stroke="#333"/>`,
    ...yTicks.map(
      (t) =>
        `<line x1="${f.left - 4}" y1="${t.y}" x2="${plotRight}" y2="${t.y}" stroke="#ddd"/><text x="${f.left - 6}" y="${t.y + 4}" text-anchor="end" font-size="11">${escape(t.label)}</text>`,
    ),
    `<text x="${(f.left + plotRight) / 2}" y="${f.height - 10}" text-anchor="middle" font-size="12">${escape(xLabel)}</text>`,
    `<text transform="translate(14 ${(f.top + plotBottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(yLabel)}</text>`,
  ].join('');
}

function legend(f: Frame, names: string[]): string {
  const x = f.width - f.right + 12;
  return names
    .map(
      (name, i) =>
        `<rect x="${x}" y="${f.top + i * 18}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${x + 18}" y="${f.top + i * 18 + 10}" font-size="${LEGEND_FONT_PX}">${escape(name)}</text>`,
    )
    .join('');
}

function svg(f: Frame, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${f.width} ${f.height}" width="${f.width}" height="${f.height}" role="img" aria-label="${escape(title)}">${body}</svg>`;
}

/** Grouped bars: one group per category, one bar per series. */
export function barChart(
  title: string,
  categories: string[],
  series: Array<{ name: string; values: number[] }>,
  yLabel: string,
): string {
  const f = frameFor(series.map((s) => s.name));
  const max = Math.max(...series.flatMap((s) => s.values), 1);
  const ticks = niceTicks(0, max);
  const top = ticks[ticks.length - 1] || max;
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const y = (v: number): number => f.top + plotH * (1 - v / top);
  const group = plotW / categories.length;
  const bar = (group * 0.8) / series.length;
  const bars = series.flatMap((s, si) =>
    s.values.map((v, ci) => {
      const x = f.left + ci * group + group * 0.1 + si * bar;
      return `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(bar - 1).toFixed(1)}" height="${(f.top + plotH - y(v)).toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${escape(`${s.name}, ${categories[ci]}: ${v}`)}</title></rect>`;
    }),
  );
  const labels = categories.map(
    (c, ci) =>
      `<text x="${(f.left + ci * group + group / 2).toFixed(1)}" y="${f.top + plotH + 16}" text-anchor="middle" font-size="11">${escape(c)}</text>`,
  );
  const yTicks = ticks.map((t) => ({ value: t, y: y(t), label: String(t) }));
  return svg(
    f,
    title,
    axes(f, yTicks, '', yLabel) +
      bars.join('') +
      labels.join('') +
      legend(
        f,
        series.map((s) => s.name),
      ),
  );
}

/** Lines over a numeric x axis. */
export function lineChart(
  title: string,
  series: Array<{ name: string; points: Array<[number, number]> }>,
  xLabel: string,
  yLabel: string,
): string {
  const f = frameFor(series.map((s) => s.name));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const [yMin, yMax] = [Math.min(yTicks[0], ...ys), Math.max(yTicks[yTicks.length - 1], ...ys)];
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const x = (v: number): number => f.left + (plotW * (v - xMin)) / (xMax - xMin || 1);
  const y = (v: number): number => f.top + plotH * (1 - (v - yMin) / (yMax - yMin || 1));
  const lines = series.map((s, si) => {
    const color = COLORS[si % COLORS.length];
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const dots = s.points.map(
      (p) =>
        `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${color}"><title>${escape(`${s.name}: ${p[1].toFixed(2)} at ${p[0]}`)}</title></circle>`,
    );
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/>${dots.join('')}`;
  });
  const xTicks = [...new Set(xs)]
    .sort((a, b) => a - b)
    .map(
      (v) =>
        `<text x="${x(v).toFixed(1)}" y="${f.height - f.bottom + 16}" text-anchor="middle" font-size="11">${v}</text>`,
    );
  return svg(
    f,
    title,
    axes(
      f,
      yTicks.map((t) => ({ value: t, y: y(t), label: String(t) })),
      xLabel,
      yLabel,
    ) +
      lines.join('') +
      xTicks.join('') +
      legend(
        f,
        series.map((s) => s.name),
      ),
  );
}

/** Box plots on a log10 axis: whiskers p10-p90, box p25-p75, median line, min/max dots. */
export function boxPlot(
  title: string,
  boxes: Array<{
    name: string;
    min: number;
    p10: number;
    p25: number;
    median: number;
    p75: number;
    p90: number;
    max: number;
  }>,
  yLabel: string,
): string {
  const f = { ...FRAME, right: 20 };
  const floor = 1e-12;
  const log = (v: number): number => Math.log10(Math.max(v, floor));
  const lo = Math.floor(Math.min(...boxes.map((b) => log(b.min))));
  const hi = Math.ceil(Math.max(...boxes.map((b) => log(b.max))));
  const plotW = f.width - f.left - f.right;
  const plotH = f.height - f.top - f.bottom;
  const y = (v: number): number => f.top + plotH * (1 - (log(v) - lo) / (hi - lo || 1));
  const slot = plotW / boxes.length;
  const body = boxes.map((b, i) => {
    const cx = f.left + slot * (i + 0.5);
    const w = Math.min(40, slot * 0.5);
    return [
      `<line x1="${cx}" y1="${y(b.p10)}" x2="${cx}" y2="${y(b.p90)}" stroke="#333"/>`,
      `<rect x="${cx - w / 2}" y="${y(b.p75)}" width="${w}" height="${Math.max(1, y(b.p25) - y(b.p75))}" fill="#9ecae1" stroke="#333"/>`,
      `<line x1="${cx - w / 2}" y1="${y(b.median)}" x2="${cx + w / 2}" y2="${y(b.median)}" stroke="#d62728" stroke-width="2"/>`,
      `<circle cx="${cx}" cy="${y(b.min)}" r="2" fill="#333"/><circle cx="${cx}" cy="${y(b.max)}" r="2" fill="#333"/>`,
      `<text x="${cx}" y="${f.height - f.bottom + 16}" text-anchor="middle" font-size="11">${escape(b.name)}</text>`,
      `<title>${escape(`${b.name}: median ${b.median.toExponential(2)}`)}</title>`,
    ].join('');
  });
  const ticks = Array.from({ length: hi - lo + 1 }, (_, k) => lo + k).map((p) => ({
    value: p,
    y: y(10 ** p),
    label: `1e${p}`,
  }));
  return svg(f, title, axes(f, ticks, 'MLP block', yLabel) + body.join(''));
}
