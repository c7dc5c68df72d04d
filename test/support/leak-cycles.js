// Runs load -> forward -> statistics -> prune -> fine-tune -> dispose cycles and reports memory, for test/leaks.test.ts.
// Run with --expose-gc:  node --expose-gc test/support/leak-cycles.js MODEL CALIB.npy CYCLES
'use strict';
const vbp = require('../../dist/lib');

async function settle() {
  for (let i = 0; i < 3; i++) {
    global.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function cycle(file, batch) {
  const model = await vbp.loadModel(file);
  await model.forward(batch);
  const stats = await vbp.gatherStats(model, [batch]);
  const { model: pruned } = await vbp.prune(model, vbp.plan(stats, { ratio: 0.5 }), { skipMacs: true });
  await pruned.forward(batch);
  const labels = Int32Array.from({ length: batch.shape[0] }, (_, i) => i % 10);
  const { model: tuned } = await vbp.finetune(pruned, {
    teacher: model,
    data: async function* () {
      yield { input: batch, labels };
    },
    schedule: 'constant',
    lr: 1e-3,
  });
  const copy = await model.clone();
  await Promise.all([model.dispose(), pruned.dispose(), copy.dispose(), tuned.dispose()]);
}

async function main() {
  const [file, calib, cyclesText] = process.argv.slice(2);
  vbp.setNumThreads(1);
  const cycles = Number(cyclesText);
  const calibration = vbp.readNpy(calib);
  const per = calibration.data.length / calibration.shape[0];
  const batch = { data: calibration.data.slice(0, 16 * per), shape: [16, ...calibration.shape.slice(1)] };

  // Native memory reported to V8 (AdjustExternalMemory) while a model is alive, and after dispose.
  await settle();
  const before = vbp.nativeMemory();
  const model = await vbp.loadModel(file);
  const loaded = vbp.nativeMemory();
  await model.dispose();
  await settle();
  const disposed = vbp.nativeMemory();

  const warmup = Math.max(10, Math.floor(cycles / 5));
  for (let i = 0; i < warmup; i++) await cycle(file, batch);
  await settle();
  const samples = [];
  for (let i = 0; i < cycles; i++) {
    await cycle(file, batch);
    if ((i + 1) % Math.max(1, Math.floor(cycles / 10)) === 0) {
      await settle();
      const native = vbp.nativeMemory();
      samples.push({
        cycle: i + 1,
        rssMb: process.memoryUsage().rss / 2 ** 20,
        mallocMb: native.mallocInUse / 2 ** 20,
        liveModels: native.liveModels,
        liveSessions: native.liveSessions,
        liveTrainers: native.liveTrainers,
        heapMb: process.memoryUsage().heapUsed / 2 ** 20,
      });
    }
  }
  process.stdout.write(JSON.stringify({ cycles, warmup, before, loaded, disposed, samples }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.code} ${error.message}\n`);
  process.exit(1);
});
