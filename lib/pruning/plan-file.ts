/** The plan file: JSON, checked when read (a plan may come from anywhere, edited by hand). */
import fs from 'node:fs';
import { VbpError } from '../errors';
import { readFileChecked, writeAllAtomically, type PendingOutput, type WriteOptions } from '../util/files';
import type { Plan } from './plan';

function isIndexList(value: unknown, hidden: number): value is number[] {
  return (
    Array.isArray(value) &&
    value.every((v, i) => Number.isInteger(v) && v >= 0 && v < hidden && (i === 0 || v > value[i - 1]))
  );
}

/** Checks that a value (e.g. parsed from a file) is a well-formed plan; throws PLAN naming what is wrong. */
export function validatePlan(value: unknown, source = 'plan'): Plan {
  const fail = (why: string): never => {
    throw new VbpError('PLAN', `${source} is not a valid plan: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return fail('not an object');
  const p = value as Plan;
  if (p.format !== 'torch-vbp-plan') fail(`format is '${String(p.format)}', expected 'torch-vbp-plan'`);
  if (p.version !== 1) fail(`version ${String(p.version)} is not supported`);
  if (!Array.isArray(p.layers) || p.layers.length === 0) fail('it has no layers');
  if (!p.model || !Array.isArray(p.model.layers)) fail('model signature is missing');
  if (!Array.isArray(p.inputShape)) fail('inputShape is missing');
  const layersSeen = new Set<string>();
  p.layers.forEach((l, i) => {
    if (typeof l !== 'object' || l === null) fail(`layers[${i}] is not an object`);
    for (const name of [l.fc1, l.fc2]) {
      if (layersSeen.has(name)) fail(`layer '${name}' appears in more than one block`);
      layersSeen.add(name);
    }
    const where = `layers[${i}]`;
    if (typeof l.fc1 !== 'string' || typeof l.fc2 !== 'string') fail(`${where}: fc1 and fc2 must be strings`);
    if (!Number.isInteger(l.hidden) || l.hidden < 1) fail(`${where}: hidden must be a positive integer`);
    if (!isIndexList(l.keep, l.hidden)) fail(`${where}.keep must hold ascending, unique indices in [0, ${l.hidden})`);
    if (!isIndexList(l.pruned, l.hidden))
      fail(`${where}.pruned must hold ascending, unique indices in [0, ${l.hidden})`);
    if (l.keep.length === 0) fail(`${where} keeps no neuron; at least one must stay`);
    if (l.keep.length + l.pruned.length !== l.hidden || l.keep.some((j) => l.pruned.includes(j))) {
      fail(`${where}: keep and pruned must split the ${l.hidden} neurons`);
    }
    if (
      !Array.isArray(l.prunedMeans) ||
      l.prunedMeans.length !== l.pruned.length ||
      !l.prunedMeans.every(Number.isFinite)
    ) {
      fail(`${where}.prunedMeans must hold one finite mean per pruned neuron`);
    }
  });
  return p;
}

/** The plan file as one output of a set written together (savePlan() writes it alone). */
export function planOutput(p: Plan, file: string): PendingOutput {
  const text = JSON.stringify(p, null, 1) + '\n';
  return { target: file, write: (temporary) => fs.promises.writeFile(temporary, text) };
}

export async function savePlan(p: Plan, file: string, options: WriteOptions = {}): Promise<void> {
  await writeAllAtomically([planOutput(p, file)], options);
}

export async function loadPlan(file: string): Promise<Plan> {
  const text = readFileChecked(file, 'plan file').toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new VbpError('PLAN', `'${file}' is not a valid plan: not JSON (${(error as Error).message})`);
  }
  return validatePlan(value, `'${file}'`);
}
