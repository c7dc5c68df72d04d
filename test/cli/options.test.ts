/**
 * Every option of every `vbp` command, given an invalid value: exit code 2 (bad usage), a message naming
 * the option, and no output file. The table below must cover every value-taking option the program
 * defines, so a new option without a check here fails this test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildProgram, main } from '../../lib/cli/main';
import { formatNpy, Stats, gatherStats, loadModel, plan, savePlan, writeTensors } from '../../lib';
import { calibrationBatches, fixture, tempDir } from '../helpers';

const dir = tempDir('torch-vbp-options-');
const model = fixture('deit_scripted.pt');
const calib = fixture('calib.npy');
const labels = path.join(dir, 'labels.npy');
const stats = path.join(dir, 'stats.safetensors');
const stats2 = path.join(dir, 'stats2.safetensors');
const planFile = path.join(dir, 'plan.json');
const images = path.join(dir, 'images');
const aFile = path.join(dir, 'a-file');
const checkInputs = path.join(dir, 'check-inputs.pt');
const checkExpected = path.join(dir, 'check-expected.pt');
const out = (name: string): string => path.join(dir, 'out', name);

/** For each command: a valid command line, and per option the arguments that make only that option invalid. */
const CASES: Record<string, { base: string[]; invalid: Record<string, string[]> }> = {
  inspect: {
    base: ['inspect', model],
    invalid: {
      '--device': ['--device', 'tpu'],
      '--threads': ['--threads', '0'],
      '--input-shape': ['--input-shape', '3,0,32'],
    },
  },
  stats: {
    base: ['stats', model, '--data', calib, '--raw', '--out', out('s.safetensors')],
    invalid: {
      '--device': ['--device', 'cuda:x'],
      '--threads': ['--threads', 'many'],
      '--data': ['--data', path.join(dir, 'missing.npy')],
      '--split': ['--split', 'train'], // not for .npy data
      '--labels': ['--labels', path.join(dir, 'missing-labels.npy')],
      '--input-shape': ['--input-shape', '3,32'],
      '--mean': ['--mean', 'x', '--std', '1'],
      '--std': ['--mean', '0.5', '--std', '0'],
      '--crop': ['--crop', '32'], // not for .npy data
      '--resize': ['--resize', '40'],
      '--interpolation': ['--interpolation', 'bicubic'],
      '--channels': ['--channels', '3'],
      '--decode-threads': ['--decode-threads', '2'], // not for .npy data
      '--batch-size': ['--batch-size', '0'],
      '--limit': ['--limit', '-1'],
      '--seed': ['--seed', '1.5'],
      '--covariance-product': ['--covariance', '--covariance-product', 'float16'],
      '--covariance-sampling': ['--covariance', '--covariance-sampling', '1.5'],
      '--shard': ['--shard', '2/2'],
      '--devices': ['--devices', 'cpu;cpu'],
      '--out': ['--out', '/sys/vbp-x.safetensors'],
      '--resume': ['--resume', path.join(dir, 'missing-partial.safetensors')],
      '--scale': ['--scale', '0'],
      '--class-map': ['--class-map', path.join(dir, 'map.json')], // not for .npy data
    },
  },
  launch: {
    base: ['launch'],
    // Each ends with the command to launch (after --), which a real launch would start.
    invalid: {
      '--nproc-per-node': ['--nproc-per-node', '0', '--', 'stats', model],
      '--nnodes': ['--nnodes', 'two', '--', 'stats', model],
      '--node-rank': ['--node-rank', '1', '--', 'stats', model],
      '--master-addr': ['--master-addr', '', '--', 'stats', model],
      '--master-port': ['--master-port', '70000', '--', 'stats', model],
    },
  },
  merge: {
    base: ['merge', stats, stats2, '--out', out('m.safetensors')],
    invalid: { '--out': ['--out', stats] },
  },
  prune: {
    base: ['prune', model, '--stats', stats, '--ratio', '0.5', '--out', out('p.pt')],
    invalid: {
      '--device': ['--device', 'gpu'],
      '--threads': ['--threads', '-2'],
      '--data': ['--data', calib], // together with --stats
      '--split': ['--split', 'validation'],
      '--labels': ['--labels', labels],
      '--input-shape': ['--input-shape', '3,32,32'],
      '--mean': ['--mean', '0.5'],
      '--std': ['--std', '0.5'],
      '--crop': ['--crop', 'x'],
      '--resize': ['--resize', '300'],
      '--interpolation': ['--interpolation', 'cubic'],
      '--channels': ['--channels', '1'],
      '--decode-threads': ['--decode-threads', '0'],
      '--batch-size': ['--batch-size', 'big'],
      '--limit': ['--limit', '0'],
      '--seed': ['--seed', 'abc'],
      '--stats': ['--stats', path.join(dir, 'missing.safetensors')],
      '--plan': ['--plan', planFile], // together with --stats
      '--ratio': ['--ratio', '1.5'],
      '--macs-reduction': ['--macs-reduction', '0.2'], // together with --ratio
      '--params-reduction': ['--params-reduction', 'abc'],
      '--criterion': ['--criterion', 'hessian'],
      '--scope': ['--scope', 'local'],
      '--round-to': ['--round-to', '0'],
      '--compensation': ['--compensation', 'median'],
      '--ridge': ['--ridge', '0.001'], // without --compensation lsq
      '--out': ['--out', model],
      '--plan-out': ['--plan-out', '/sys/vbp-plan.json'],
      '--scale': ['--scale', '255'], // about --data, with --stats
      '--class-map': ['--class-map', path.join(dir, 'map.json')],
    },
  },
  eval: {
    base: ['eval', model, '--data', calib, '--raw', '--labels', labels],
    invalid: {
      '--device': ['--device', 'cuda:abc'],
      '--threads': ['--threads', '1.5'],
      '--data': ['--data', aFile],
      '--split': ['--split', 'test'],
      '--labels': ['--labels', dir],
      '--input-shape': ['--input-shape', 'a,b,c'],
      '--mean': ['--mean', '0.5,0.5', '--std', '1'],
      '--std': ['--mean', '0', '--std', '-1'],
      '--crop': ['--crop', '-5'],
      '--resize': ['--resize', '0'],
      '--interpolation': ['--interpolation', 'area'],
      '--channels': ['--channels', 'rgb'],
      '--decode-threads': ['--decode-threads', 'all'],
      '--batch-size': ['--batch-size', '-1'],
      '--limit': ['--limit', 'all'],
      '--scale': ['--scale', 'x'],
      '--class-map': ['--class-map', path.join(dir, 'map.json')],
    },
  },
  finetune: {
    base: ['finetune', model, '--teacher', model, '--data', calib, '--raw', '--labels', labels, '--out', out('f.pt')],
    invalid: {
      '--precision': ['--precision', 'fp8'],
      '--train-transform': ['--train-transform', 'mixup'],
      '--device': ['--device', 'cuda:-1'],
      '--threads': ['--threads', 'x'],
      '--data': ['--data', path.join(dir, 'missing.npy')],
      '--split': ['--split', 'train'],
      '--labels': ['--labels', path.join(dir, 'missing-labels.npy')],
      '--input-shape': ['--input-shape', '0,32,32'],
      '--mean': ['--mean', '0.5'],
      '--std': ['--mean', '0.5', '--std', 'x'],
      '--crop': ['--crop', '32'],
      '--resize': ['--resize', '40'],
      '--interpolation': ['--interpolation', 'bicubic'],
      '--channels': ['--channels', '3'],
      '--decode-threads': ['--decode-threads', '2'], // not for .npy data
      '--batch-size': ['--batch-size', '0'],
      '--limit': ['--limit', '0'],
      '--teacher': ['--teacher', path.join(dir, 'missing.pt')],
      '--out': ['--out', model],
      '--epochs': ['--epochs', '0'],
      '--lr': ['--lr', '0'],
      '--weight-decay': ['--weight-decay', '-0.1'],
      '--schedule': ['--schedule', 'step'],
      '--warmup-steps': ['--warmup-steps', '1.5'],
      '--temperature': ['--temperature', '0'],
      '--alpha': ['--alpha', '1.5'],
      '--clip-norm': ['--clip-norm', 'x'],
      '--trainable': ['--trainable', ','],
      '--seed': ['--seed', '-1'],
      '--checkpoint': ['--checkpoint', '/sys/vbp-ckpt.pt'],
      '--checkpoint-every': ['--checkpoint-every', '0', '--checkpoint', out('c.pt')],
      '--resume': ['--resume', path.join(dir, 'missing-ckpt.pt')],
      '--scale': ['--scale', '-1'],
      '--class-map': ['--class-map', path.join(dir, 'map.json')],
    },
  },
  bench: {
    base: ['bench', model, '--input-shape', '3,32,32', '--runs', '1', '--warmup', '0', '--batch-sizes', '1'],
    invalid: {
      '--device': ['--device', 'CPU'],
      '--threads': ['--threads', '0'],
      '--input-shape': ['--input-shape', '3,-32,32'],
      '--batch-sizes': ['--batch-sizes', '1,0'],
      '--runs': ['--runs', '0'],
      '--warmup': ['--warmup', 'x'],
    },
  },
  check: {
    base: ['check', model, '--inputs', checkInputs, '--expected', checkExpected],
    invalid: {
      '--device': ['--device', 'tpu'],
      '--threads': ['--threads', '0'],
      '--inputs': ['--inputs', path.join(dir, 'missing-inputs.pt')],
      '--expected': ['--expected', dir],
      '--rtol': ['--rtol', '-1', '--atol', '0'],
      '--atol': ['--rtol', '0', '--atol', 'x'],
    },
  },
  demo: {
    base: ['demo', '--out', out('demo')],
    invalid: {
      '--device': ['--device', 'tpu:0'],
      '--threads': ['--threads', '0'],
      '--out': ['--out', aFile],
      '--model': ['--model', path.join(dir, 'missing.pt')],
      '--data': ['--data', dir],
      '--calibration': ['--calibration', '0'],
      '--ratios': ['--ratios', '0.2,1.5'],
      '--test-limit': ['--test-limit', 'x'],
      '--finetune-items': ['--finetune-items', '-1'],
    },
  },
};

/** Runs `vbp args` in this process; returns the exit code and what went to stderr. */
async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  const quiet = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return { code: await main(['node', 'vbp', ...args]), stderr };
  } finally {
    write.mockRestore();
    quiet.mockRestore();
  }
}

beforeAll(async () => {
  fs.mkdirSync(path.join(dir, 'out'));
  fs.writeFileSync(aFile, 'x');
  await writeTensors(checkInputs, calibrationBatches(0, 1)[0]);
  await writeTensors(checkExpected, calibrationBatches(0, 1)[0]);
  fs.writeFileSync(
    labels,
    formatNpy({ data: BigInt64Array.from({ length: 64 }, (_, i) => BigInt(i % 10)), shape: [64] }),
  );
  const m = await loadModel(model);
  const s: Stats = await gatherStats(m, calibrationBatches(0, 1));
  await s.save(stats);
  await (await gatherStats(m, calibrationBatches(1, 1))).save(stats2);
  fs.writeFileSync(path.join(dir, 'map.json'), '{"cls": "x"}');
  await savePlan(plan(s, { ratio: 0.5 }), planFile);
  await m.dispose();
  fs.mkdirSync(path.join(images, 'cls'), { recursive: true });
});

describe('every option, given an invalid value', () => {
  it('the table covers every value-taking option of every command', () => {
    const program = buildProgram(async () => undefined);
    for (const command of program.commands) {
      const valueOptions = command.options.filter((o) => o.required || o.optional).map((o) => o.long!);
      expect({ command: command.name(), options: Object.keys(CASES[command.name()]?.invalid ?? {}).sort() }).toEqual({
        command: command.name(),
        options: valueOptions.sort(),
      });
    }
  });

  const cases = Object.entries(CASES).flatMap(([command, { base, invalid }]) =>
    Object.entries(invalid).map(([option, args]) => [command, option, base, args] as const),
  );
  it.each(cases)('vbp %s %s: exit code 2, naming the option, writing nothing', async (_command, option, base, args) => {
    const result = await run([...base, ...args]);
    expect({ code: result.code, namesOption: result.stderr.includes(option) }).toEqual({ code: 2, namesOption: true });
    expect(result.stderr).toMatch(/^vbp: error \[[A-Z_]+\]: |^error: /);
    expect(fs.readdirSync(path.join(dir, 'out'))).toEqual([]);
  });

  it("a second main() in one process does not inherit the first one's failure", async () => {
    expect((await run(['inspect', path.join(dir, 'missing.pt')])).code).toBe(2);
    expect((await run(['prune', model, '--data', calib, '--raw', '--ratio', '0.999', '--out', out('x.pt')])).code).toBe(
      1,
    );
    expect((await run(['inspect', model])).code).toBe(0);
    expect((await run(['prune', model, '--ratio', '2', '--stats', stats, '--out', out('x.pt')])).code).toBe(2);
    expect((await run(['--help'])).code).toBe(0);
  });
});
