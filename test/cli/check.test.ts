/**
 * vbp check: a model run on inputs saved by PyTorch, compared with PyTorch's saved outputs (assertClose's
 * semantics); exit 0 on a match, 1 on a mismatch. The files come from test/python/testing_corpus.py.
 */
import path from 'node:path';
import { runPython, tempDir, vbp } from '../helpers';

const dir = tempDir('torch-vbp-check-');

beforeAll(() => {
  runPython('testing_corpus.py', ['model', dir]);
});

describe('vbp check', () => {
  it("passes (exit 0) on PyTorch's outputs, tuple and dict included", () => {
    const r = vbp([
      'check',
      path.join(dir, 'model.pt'),
      '--inputs',
      path.join(dir, 'inputs.pt'),
      '--expected',
      path.join(dir, 'outputs.pt'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("[1]['hidden']");
    expect(r.stdout).toContain('PASS');
  });

  it('fails (exit 1) with the comparison when an output differs, and --json says so', () => {
    const args = [
      'check',
      path.join(dir, 'model.pt'),
      '--inputs',
      path.join(dir, 'inputs.pt'),
      '--expected',
      path.join(dir, 'outputs-wrong.pt'),
    ];
    const r = vbp(args);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('Mismatched elements: 1 / 12');
    expect(r.stdout).toContain('The failure occurred for item [0]');
    const json = vbp([...args, '--json']);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as {
      pass: boolean;
      outputs: Array<{ path: string; pass: boolean; mismatches: number }>;
    };
    expect(report.pass).toBe(false);
    expect(report.outputs.map((o) => [o.path, o.mismatches])).toEqual([
      ['[0]', 1],
      ["[1]['hidden']", 0],
      ["[1]['sum']", 0],
    ]);
    // loose enough tolerances accept the difference
    expect(vbp([...args, '--rtol', '0.1', '--atol', '0.1']).status).toBe(0);
  });

  it('takes a single tensor as the one input and compares a single output', () => {
    const r = vbp([
      'check',
      path.join(dir, 'single.pt'),
      '--inputs',
      path.join(dir, 'single-input.pt'),
      '--expected',
      path.join(dir, 'single-output.pt'),
      '--json',
    ]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      pass: true,
      outputs: [{ path: '(output)', shape: [4, 3], dtype: 'float32' }],
    });
  });
});
