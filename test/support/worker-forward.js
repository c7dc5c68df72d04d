// Loads a model and runs forward inside a worker_thread, for test/concurrency.test.ts.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const vbp = require('../../dist/lib');

(async () => {
  const model = await vbp.loadModel(workerData.model);
  const input = vbp.readNpy(workerData.input);
  parentPort.postMessage({ ready: true });
  for (let i = 0; i < workerData.repeat; i++) {
    const output = await model.forward(input);
    parentPort.postMessage({ output: Array.from(output.data) });
  }
  if (workerData.dispose) await model.dispose();
  parentPort.postMessage({ done: true });
})().catch((error) => parentPort.postMessage({ error: `${error.code} ${error.message}` }));
