/** The demo's outputs for people: a text table for the terminal and an HTML page with charts. */
import { PAPER_DEIT_B } from '../demo/paper';
import type { DemoResult, DemoRow } from '../demo/run';
import type { SpeedUp } from '../measure/latency';
import { formatCount, percent, table } from '../util/format';
import { escapeHtml as escape } from './html';
import { barChart, boxPlot, lineChart } from './svg';

/** '1.13x', or '1.02x (noise)' when the interquartile range of the paired ratios includes 1. */
export function formatSpeedup(s: SpeedUp): string {
  return `${s.speedup.toFixed(2)}x${s.significant ? '' : ' (noise)'}`;
}

function speedup(row: DemoRow): string {
  if (row.method === 'original') return '1.00x / 1.00x';
  return row.speedup ? `${formatSpeedup(row.speedup.batch1)} / ${formatSpeedup(row.speedup.batch256)}` : '';
}

export function demoTable(result: DemoResult): string {
  const original = result.rows[0];
  const rows = result.rows.map((r) => [
    r.label,
    r.method === 'original' ? '0 %' : `${Math.round(r.ratio * 100)} %`,
    percent(r.top1),
    r.method === 'original' ? '' : (100 * (r.top1 - original.top1)).toFixed(2),
    r.method === 'original' ? '' : r.relativeError.toFixed(4),
    r.method === 'original' ? '' : percent(r.agreement, 1),
    formatCount(r.parameters),
    formatCount(r.macs),
    `${(original.macs / r.macs).toFixed(2)}x`,
    speedup(r),
  ]);
  return table(
    [
      'method',
      'pruned',
      'top-1 %',
      'Δ top-1',
      'logit err',
      'agree %',
      'params',
      'MACs',
      'MAC ratio',
      'speed-up b1 / b256',
    ],
    rows,
  );
}

/** What the fine-tuned rows ran: one short epoch of distillation each. */
export function finetuneCaption(tuned: DemoRow[]): string {
  if (tuned.length === 0) return 'no fine-tuning';
  const f = tuned[0].finetune!;
  return `fine-tuned rows: ${f.steps} steps (${f.items} training images, one short epoch) of distillation from the original (AdamW lr 1e-4, batch 128, alpha 0.5, T 2, cosine), ${tuned.map((r) => `${(r.finetune!.ms / 1000).toFixed(0)} s`).join(' and ')}`;
}

export function demoHtml(result: DemoResult): string {
  const ratios = [...new Set(result.rows.filter((r) => r.method !== 'original').map((r) => r.ratio))];
  const vbp = result.rows.filter((r) => r.method === 'vbp');
  const layerNames = result.layers.map((_, i) => `block ${i}`);
  const kept = barChart(
    'Kept neurons per MLP block (VBP)',
    layerNames,
    [
      { name: 'original', values: result.layers.map((l) => l.hidden) },
      ...vbp.map((r) => ({ name: `${Math.round(r.ratio * 100)} % pruned`, values: r.keptPerLayer })),
    ],
    'hidden neurons kept',
  );
  const variance = boxPlot(
    'Variance of hidden activations per MLP block',
    result.layers.map((l, i) => ({ name: layerNames[i], ...l.variance })),
    'variance (log scale)',
  );
  const methods = ['vbp', 'variance-no-shift', 'magnitude', 'lsq', 'compensated', 'vbp-finetuned'] as const;
  const accuracy = lineChart(
    'Top-1 accuracy against pruning ratio',
    methods
      .filter((m) => result.rows.some((r) => r.method === m))
      .map((m) => ({
        name: result.rows.find((r) => r.method === m)!.label,
        points: [
          [0, 100 * result.rows[0].top1] as [number, number],
          ...ratios.flatMap((ratio) =>
            result.rows
              .filter((r) => r.method === m && r.ratio === ratio)
              .map((r) => [ratio * 100, 100 * r.top1] as [number, number]),
          ),
        ],
      })),
    'MLP neurons pruned (%)',
    'test top-1 (%)',
  );
  const tuned = result.rows.filter((r) => r.method === 'vbp-finetuned');
  const recovery =
    tuned.length === 0
      ? ''
      : `<figure>${barChart(
          'Recovery by fine-tuning (VBP)',
          tuned.map((r) => `${Math.round(r.ratio * 100)} % pruned`),
          [
            { name: 'original', values: tuned.map(() => 100 * result.rows[0].top1) },
            { name: 'right after pruning', values: tuned.map((r) => 100 * r.finetune!.top1Before) },
            { name: 'after fine-tuning', values: tuned.map((r) => 100 * r.top1) },
          ],
          'test top-1 (%)',
        )}<figcaption>${escape(finetuneCaption(tuned))}</figcaption></figure>`;
  const rows = result.rows
    .map(
      (r) =>
        `<tr><td>${escape(r.label)}</td><td>${Math.round(r.ratio * 100)} %</td><td>${percent(r.top1)}</td><td>${percent(r.top5)}</td><td>${r.method === 'original' ? '' : r.relativeError.toFixed(4)}</td><td>${r.method === 'original' ? '' : percent(r.agreement, 1)}</td><td>${formatCount(r.parameters)}</td><td>${formatCount(r.macs)}</td><td>${escape(speedup(r))}</td></tr>`,
    )
    .join('\n');
  const card = result.model.card as { note?: string; description?: string } | undefined;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>torch-vbp demo report</title>
<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
figure{margin:1.5em 0}figcaption{font-size:13px;color:#555}</style></head><body>
<h1>torch-vbp: Variance-Based Pruning demo</h1>
<p>Model: <code>${escape(result.model.file)}</code>, ${formatCount(result.model.parameters)} parameters, ${formatCount(result.model.macs)} MACs per image.
${escape(card?.note ?? card?.description ?? 'A DeiT trained by the torch-vbp project on Fashion-MNIST; not an ImageNet DeiT.')}</p>
<p>Calibration: ${result.data.calibrationImages} training images; evaluation: ${result.data.testImages} test images; ${escape(finetuneCaption(tuned))}.
Machine: ${escape(result.machine.cpu)}, ${result.machine.threads} LibTorch thread(s), LibTorch ${escape(result.machine.torch)} on ${escape(result.machine.device)}.</p>
<table><thead><tr><th>method</th><th>pruned</th><th>top-1 %</th><th>top-5 %</th><th>logit error</th><th>agreement %</th><th>params</th><th>MACs</th><th>speed-up b1 / b256</th></tr></thead><tbody>
${rows}
</tbody></table>
<figure>${accuracy}<figcaption>Test top-1 right after pruning (and after the short fine-tuning, where shown).</figcaption></figure>
${recovery}
<figure>${kept}<figcaption>Global ranking removes different fractions from different blocks.</figcaption></figure>
<figure>${variance}<figcaption>Box p25-p75, whiskers p10-p90, dots min and max; red line the median.</figcaption></figure>
<h2>The paper's DeiT-B (ImageNet-1k), for comparison</h2>
<p>${escape(PAPER_DEIT_B.source)}: original ${PAPER_DEIT_B.original} %; at 50 % of MLP neurons, VBP ${PAPER_DEIT_B.at50.vbp} %, variance without mean-shift ${PAPER_DEIT_B.at50.varianceNoShift} %, weight magnitude ${PAPER_DEIT_B.at50.magnitude} % (right after pruning); 55 %: ${PAPER_DEIT_B.speedupAt55.cpu}x CPU speed-up for ${(PAPER_DEIT_B.speedupAt55.macsReduction * 100).toFixed(1)} % fewer MACs.</p>
<p><small>Generated ${escape(result.createdAt)} by torch-vbp.</small></p>
</body></html>
`;
}
