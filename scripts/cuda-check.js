#!/usr/bin/env node
// CUDA smoke check, needing only the compiled library (dist/) and the addon, not jest or the dev tree:
//   node scripts/cuda-check.js FIXTURES_DIR [--out FILE.json]
// FIXTURES_DIR is what test/python/make_fixtures.py writes. For each fixture model it checks that forward on
// 'cuda' equals forward on 'cpu' (max abs diff <= 1e-4), then runs statistics and pruning on CUDA and on
// the CPU and reports how far they differ. Exit code 0: all checks passed; 1: a check failed; 2: no GPU.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const vbp = require('../dist/lib');

const TOLERANCE = 1e-4;
const [fixtures, ...rest] = process.argv.slice(2);
const outFile = rest[0] === '--out' ? rest[1] : undefined;
if (!fixtures) {
  console.error('usage: cuda-check.js FIXTURES_DIR [--out FILE.json]');
  process.exit(2);
}

function maxAbsDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

function maxRelDiff(a, b) {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-12));
  return worst;
}

function calibration() {
  const calib = vbp.readNpy(path.join(fixtures, 'calib.npy'));
  const per = calib.data.length / calib.shape[0];
  return [0, 1, 2, 3].map((i) => ({ data: calib.data.slice(i * 16 * per, (i + 1) * 16 * per), shape: [16, ...calib.shape.slice(1)] }));
}

async function main() {
  const info = vbp.versionInfo();
  const report = { info, cudaAvailable: vbp.cudaAvailable(), cudaDeviceCount: vbp.cudaDeviceCount(), checks: [] };
  if (!report.cudaAvailable) {
    console.log(JSON.stringify(report, null, 2));
    console.error('no CUDA device available to this LibTorch');
    return 2;
  }
  const input = vbp.readNpy(path.join(fixtures, 'input_b4.npy'));
  let ok = true;
  for (const name of ['deit_scripted', 'deit_traced', 'vit_torchvision']) {
    const file = path.join(fixtures, `${name}.pt`);
    const cpu = await vbp.loadModel(file, { device: 'cpu' });
    const gpu = await vbp.loadModel(file, { device: 'cuda' });
    const forward = maxAbsDiff((await gpu.forward(input)).data, (await cpu.forward(input)).data);

    const statsCpu = await vbp.gatherStats(cpu, calibration());
    const statsGpu = await vbp.gatherStats(gpu, calibration());
    let meanDiff = 0;
    let varDiff = 0;
    statsCpu.layers.forEach((layer, i) => {
      meanDiff = Math.max(meanDiff, maxRelDiff(statsGpu.layers[i].mean, layer.mean));
      varDiff = Math.max(varDiff, maxRelDiff(statsGpu.variance(i), statsCpu.variance(i)));
    });
    const planCpu = vbp.plan(statsCpu, { ratio: 0.5 });
    const planGpu = vbp.plan(statsGpu, { ratio: 0.5 });
    const sameSelection = JSON.stringify(planCpu.layers.map((l) => l.pruned)) === JSON.stringify(planGpu.layers.map((l) => l.pruned));
    const prunedCpu = await vbp.prune(cpu, planCpu);
    const prunedGpu = await vbp.prune(gpu, planCpu); // the same plan on both devices
    const pruned = maxAbsDiff((await prunedGpu.model.forward(input)).data, (await prunedCpu.model.forward(input)).data);
    const saved = path.join(require('node:os').tmpdir(), `cuda-pruned-${name}.pt`);
    await prunedGpu.model.save(saved);
    const reloaded = await vbp.loadModel(saved, { device: 'cpu' });
    const reloadDiff = maxAbsDiff((await reloaded.forward(input)).data, (await prunedCpu.model.forward(input)).data);
    const check = {
      model: name,
      forwardMaxAbsDiff: forward,
      statsMeanMaxRelDiff: meanDiff,
      statsVarianceMaxRelDiff: varDiff,
      sameSelectionAt50: sameSelection,
      prunedForwardMaxAbsDiff: pruned,
      cudaSavedReloadedOnCpuMaxAbsDiff: reloadDiff,
      passed: forward <= TOLERANCE && pruned <= TOLERANCE && reloadDiff <= TOLERANCE,
    };
    ok = ok && check.passed;
    report.checks.push(check);
    for (const m of [cpu, gpu, prunedCpu.model, prunedGpu.model, reloaded]) m.dispose();
  }
  report.passed = ok;
  const text = JSON.stringify(report, null, 2);
  console.log(text);
  if (outFile) fs.writeFileSync(outFile, text + '\n');
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`cuda-check failed: ${error.code ?? ''} ${error.message}`);
    process.exit(1);
  },
);
