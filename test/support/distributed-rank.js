// One rank of a data-parallel run, for test/distributed: joins the group from torchrun's variables (RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT, VBP_DIST_TIMEOUT), runs TASK and prints one JSON line.
//   node test/support/distributed-rank.js TASK '{"...": ...}'
// Tasks: collectives, stats, eval, finetune, single (finetune alone), die (rank 1 leaves without a word after joining),
// hang (rank 1 stays away from the collective), mismatch (finetune with this rank's own options). With
// args.perRank, rank r's options are args overridden by args.perRank[r] (stats, eval and mismatch).
'use strict';
const fs = require('node:fs');
const vbp = require('../../dist/lib');
// The internal collectives (the same module instance the library uses).
const group = require('../../dist/lib/distributed/group');

function npy(file) {
  return vbp.readNpy(file);
}

/** Rows rank, rank + W, ... of a [N, ...] float32 array (DistributedSampler's rule without padding). */
function rowsOf(tensor, rank, world) {
  const per = tensor.data.length / tensor.shape[0];
  const rows = [];
  for (let i = rank; i < tensor.shape[0]; i += world) rows.push(i);
  const data = new Float32Array(rows.length * per);
  rows.forEach((r, k) => data.set(tensor.data.subarray(r * per, (r + 1) * per), k * per));
  return { data, shape: [rows.length, ...tensor.shape.slice(1)], dtype: 'float32' };
}

async function finetuneTask(args, info) {
  const student = await vbp.loadModel(args.student);
  const teacher = args.teacher ? await vbp.loadModel(args.teacher) : undefined;
  const inputs = npy(args.inputs); // [steps, globalBatch, ...]
  const labels = npy(args.labels); // [steps, globalBatch]
  const steps = inputs.shape[0];
  const per = inputs.data.length / steps;
  const world = info ? info.worldSize : 1;
  const rank = info ? info.rank : 0;
  const yielded = args.yieldSteps ?? steps; // fewer: the run ends early (a run that stopped), its checkpoint kept
  const data = async function* () {
    for (let s = 0; s < yielded; s++) {
      const step = { data: inputs.data.subarray(s * per, (s + 1) * per), shape: inputs.shape.slice(1) };
      const all = Int32Array.from(labels.data.subarray(s * labels.shape[1], (s + 1) * labels.shape[1]), Number);
      const mine = [];
      for (let i = rank; i < all.length; i += world) mine.push(all[i]);
      yield { input: rowsOf(step, rank, world), labels: Int32Array.from(mine) };
    }
  };
  let lastProgress = null;
  const { model, report } = await vbp.finetune(student, {
    onProgress: (p) => (lastProgress = p),
    teacher,
    data,
    stepsPerEpoch: steps,
    batchSize: labels.shape[1] / world,
    schedule: 'constant',
    lr: args.lr ?? 1e-3,
    seed: args.seed ?? 0,
    ...(args.checkpoint ? { checkpoint: { path: args.checkpoint, every: args.checkpointEvery ?? steps } } : {}),
    ...(args.resume ? { resume: args.resume } : {}),
  });
  const parameters = [];
  for (const p of model.parameters()) parameters.push(Array.from((await model.parameter(p.name)).data));
  fs.writeFileSync(
    `${args.out}.${rank}.json`,
    JSON.stringify({ parameters, names: model.parameters().map((p) => p.name) }),
  );
  await Promise.all([model.dispose(), student.dispose(), teacher?.dispose()]);
  return {
    loss: report.loss,
    distributed: report.distributed ?? null,
    communicationMs: report.timings.communicationMs ?? null,
    items: report.items,
    progress: lastProgress && {
      globalBatch: lastProgress.globalBatch ?? null,
      communicationMs: lastProgress.communicationMs ?? null,
    },
  };
}

async function statsTask(args, info) {
  const model = await vbp.loadModel(args.model);
  const calib = npy(args.calib);
  const batchSize = args.batchSize;
  const part = rowsOf(calib, info.rank, info.worldSize);
  const batches = [];
  for (let i = 0; i < part.shape[0]; i += batchSize) {
    const n = Math.min(batchSize, part.shape[0] - i);
    const per = part.data.length / part.shape[0];
    batches.push({
      data: part.data.slice(i * per, (i + n) * per),
      shape: [n, ...part.shape.slice(1)],
      dtype: 'float32',
    });
  }
  const stats = await vbp.gatherStats(model, batches, { covariance: Boolean(args.covariance) });
  fs.writeFileSync(`${args.out}.${info.rank}`, stats.toBuffer());
  await model.dispose();
  return { items: stats.info.items, batches: stats.info.batches };
}

async function main() {
  const [task, json] = process.argv.slice(2);
  const args = JSON.parse(json ?? '{}');
  vbp.setNumThreads(1);
  let info = null;
  const result = {};
  try {
    if (task !== 'single') info = await vbp.initDistributed(args.options ?? {});
    result.rank = info?.rank ?? 0;
    const own = args.perRank && info ? { ...args, ...args.perRank[info.rank] } : args;
    if (task === 'collectives') {
      const sum = Float64Array.of(info.rank + 1, 0.5, 1e-300);
      await group.allreduceSum([sum]);
      const parts = await group.allgatherBytes(Buffer.from(`rank ${info.rank} `.repeat(info.rank + 1)));
      result.sum = Array.from(sum);
      result.gathered = parts.map((b) => Buffer.from(b).toString());
    } else if (task === 'stats') {
      Object.assign(result, await statsTask(own, info));
    } else if (task === 'finetune' || task === 'single' || task === 'mismatch') {
      Object.assign(
        result,
        await finetuneTask(task === 'mismatch' ? own : args, info),
      );
    } else if (task === 'eval') {
      const model = await vbp.loadModel(own.model);
      const data = new vbp.NpyDataset(own.items, own.labels);
      const e = await vbp.evaluate(model, data, { batchSize: 5, keepLogits: true, limit: own.limit });
      await model.dispose();
      Object.assign(result, {
        items: e.items,
        correct1: e.correct1,
        predictions: Array.from(e.predictions),
        logits: Array.from(e.logits),
      });
    } else if (task === 'hang') {
      // Rank 1 joins, then does not reach the collective for 8 s.
      if (info.rank === 1) await new Promise((resolve) => setTimeout(resolve, 8000));
      else {
        const started = Date.now();
        await group.allreduceSum([new Float64Array(4)]).catch((error) => {
          result.elapsedMs = Date.now() - started;
          throw error;
        });
      }
    } else if (task === 'die') {
      if (info.rank === 1) process.exit(3);
      const started = Date.now();
      await group.allreduceSum([new Float64Array(4)]);
      result.elapsedMs = Date.now() - started;
    }
  } catch (error) {
    result.error = { code: error.code, message: error.message };
  }
  vbp.destroyDistributed();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main();
