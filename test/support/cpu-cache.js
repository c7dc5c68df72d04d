// The caching CPU allocator over many forwards of varying batch sizes, for test/native/cpu-cache.test.ts.
//   node test/support/cpu-cache.js MODEL LARGEST_BATCH FORWARDS   (the model's card gives the item shape)
'use strict';
const vbp = require('../../dist/lib');

async function main() {
  const [file, largestText, forwardsText] = process.argv.slice(2);
  vbp.setNumThreads(1);
  const model = await vbp.loadModel(file);
  const largest = Number(largestText);
  const itemShape = model.card.inputShape;
  const pool = vbp.probeInput([largest, ...itemShape]);
  const per = pool.data.length / largest;
  const batchOf = (n) => ({ data: pool.data.subarray(0, n * per), shape: [n, ...itemShape] });
  const atStart = vbp.nativeMemory().cpuCache;

  // The largest working set: forwards of the largest batch only, from an empty cache.
  vbp.releaseCachedMemory();
  for (let i = 0; i < 3; i++) await model.forward(batchOf(largest));
  const largestOnly = vbp.nativeMemory().cpuCache;
  const missesBefore = largestOnly.misses;
  for (let i = 0; i < 10; i++) await model.forward(batchOf(largest));
  const repeated = vbp.nativeMemory().cpuCache;

  // Many forwards of varying batch sizes (a fixed pseudo-random sequence).
  let state = 12345;
  const sizes = [];
  for (let i = 0; i < Number(forwardsText); i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    sizes.push(1 + (state % largest));
  }
  for (const n of sizes) await model.forward(batchOf(n));
  const varied = vbp.nativeMemory().cpuCache;
  await model.dispose();
  const disposed = vbp.nativeMemory().cpuCache;
  process.stdout.write(
    JSON.stringify({
      atStart,
      largestOnly,
      repeatedMisses: repeated.misses - missesBefore,
      repeated,
      varied,
      disposed,
      largest,
    }) + '\n',
  );
}

main().catch((error) => {
  process.stderr.write(`${error.code} ${error.message}\n`);
  process.exit(1);
});
