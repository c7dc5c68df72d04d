/**
 * forward() in a fresh Node process that makes no allocator call, against Python's torch.jit.load of the
 * same file (plain Python: no allocator settings either), alternated run by run after warm-up:
 *   node dist/bench/fresh-forward.js MODEL C,H,W --batch B --runs N --threads T
 * Prints one JSON line: the minimum of N runs on each side and their ratio (Node / Python).
 */
import { loadModel, setNumThreads } from '../lib';
import { probeInput } from '../lib/model/model';
import { PythonTimer } from './python-timer';
import { flag } from './util';

async function main(): Promise<void> {
  const [file, shapeText] = process.argv.slice(2);
  const threads = Number(flag('--threads', '1'));
  const batch = Number(flag('--batch', '1'));
  const runs = Number(flag('--runs', '15'));
  setNumThreads(threads);
  const shape = [batch, ...shapeText.split(',').map(Number)];
  const input = probeInput(shape);
  const model = await loadModel(file);
  const python = new PythonTimer(process.env.VBP_PYTHON ?? '/usr/bin/python3', file, shape, threads, {
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
  });
  await python.ready();
  for (let i = 0; i < 3; i++) await model.forward(input);
  const node: number[] = [];
  const py: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await model.forward(input);
    node.push(performance.now() - started);
    py.push(...(await python.time(1)));
  }
  python.close();
  await model.dispose();
  const nodeMs = Math.min(...node);
  const pythonMs = Math.min(...py);
  process.stdout.write(JSON.stringify({ batch, runs, nodeMs, pythonMs, ratio: nodeMs / pythonMs }) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error.code ?? ''} ${error.message}\n`);
  process.exit(1);
});
