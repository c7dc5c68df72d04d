/** vbp demo as a user runs it (the README's command): its table, results.json and report.html; bad options. */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { repoRoot, tempDir } from '../helpers';

describe('vbp demo', () => {
  it('runs as the README says, prints the table, writes results.json and report.html', () => {
    const out = tempDir('torch-vbp-demo-');
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', '--quick', '--out', out], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    for (const label of [
      'original',
      'VBP (variance + mean-shift)',
      'variance, no mean-shift',
      'magnitude + mean-shift',
      'variance + least squares',
      'compensated + least squares',
      'VBP + fine-tuning (distillation)',
    ]) {
      expect(r.stdout).toContain(label);
    }
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    // Five methods at five ratios, and the VBP models of the two highest ratios fine-tuned.
    expect(results.rows).toHaveLength(1 + 5 * 5 + 2);
    const tuned = results.rows.filter((row: { method: string }) => row.method === 'vbp-finetuned');
    expect(tuned.map((row: { ratio: number }) => row.ratio)).toEqual([0.7, 0.9]);
    // Measured (1,000 test images, 20 steps): 74.4 -> 83.9 % at 90 %; asserted with a wide margin.
    const tuned90 = tuned[1] as { top1: number; finetune: { top1Before: number; steps: number } };
    expect(tuned90.finetune.steps).toBe(20);
    expect(tuned90.top1 - tuned90.finetune.top1Before).toBeGreaterThan(0.04);
    expect([...new Set(results.rows.map((row: { ratio: number }) => row.ratio))]).toEqual([
      0, 0.2, 0.35, 0.5, 0.7, 0.9,
    ]);
    expect(results.data.calibrationImages).toBe(2048);
    const html = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(html.match(/<svg /g)).toHaveLength(4);
    expect(html).toContain('Recovery by fine-tuning (VBP)');
    expect(html).toContain('Kept neurons per MLP block');
    const vbp50 = results.rows.find(
      (row: { method: string; ratio: number }) => row.method === 'vbp' && row.ratio === 0.5,
    );
    expect(vbp50.macs).toBeLessThan(results.rows[0].macs);
    expect(vbp50.speedup.batch1.speedup).toBeGreaterThan(0);
    expect(vbp50.speedup.batch256.low).toBeLessThanOrEqual(vbp50.speedup.batch256.high);
    // Every chart legend fits its picture whole (11 px text, at most 0.62 em per glyph).
    for (const svg of html.match(/<svg [^]*?<\/svg>/g)!) {
      const width = Number(/viewBox="0 0 (\d+)/.exec(svg)![1]);
      for (const [, x, label] of svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" font-size="11">([^<]+)<\/text>/g)) {
        expect(Number(x) + label.length * 11 * 0.62).toBeLessThanOrEqual(width);
      }
    }
    expect(html).toContain('VBP (variance + mean-shift)</text>');
    // Run again into the same folder: refused without --force, before any work.
    const again = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', '--quick', '--out', out], {
      encoding: 'utf8',
    });
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/\[OUTPUT_EXISTS\]: --out: .*results\.json' already exists \(pass --force/);
  });

  it('refuses a file as --out and bad --ratios before making anything', () => {
    const base = tempDir('torch-vbp-demo-bad-');
    const file = path.join(base, 'a-file');
    fs.writeFileSync(file, 'x');
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'vbp.js'), 'demo', ...args], { encoding: 'utf8' });
    const asFile = run('--out', file);
    expect(asFile.status).toBe(2);
    expect(asFile.stderr).toMatch(/\[IO\]: --out: '.*a-file' is a file/);
    const badRatios = run('--out', path.join(base, 'new-folder'), '--ratios', '0.2,1.5');
    expect(badRatios.status).toBe(2);
    expect(badRatios.stderr).toContain('--ratios');
    expect(fs.existsSync(path.join(base, 'new-folder'))).toBe(false);
  });
});
