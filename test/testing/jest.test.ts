/**
 * The jest matcher (lib/testing/jest.ts, 'torch-vbp/jest'): toBeCloseToTensor passes, fails with torch.testing's
 * message and the mismatched elements, and negates; assertClose under node:test.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { matchers } from '../../lib/testing/jest';
import { repoRoot, tempDir } from '../helpers';

expect.extend(matchers);

const dir = tempDir('torch-vbp-jest-');

describe('jest and node:test', () => {
  const x = { data: new Float32Array([1, 2, 3, 4]), shape: [2, 2] };
  const y = { data: new Float32Array([1, 2, 3.5, 4]), shape: [2, 2] };

  it('toBeCloseToTensor passes, fails with the message and the mismatched elements, and negates', () => {
    expect(x).toBeCloseToTensor({ data: new Float32Array([1, 2, 3, 4.00001]), shape: [2, 2] });
    expect(x).not.toBeCloseToTensor(y);
    let message = '';
    try {
      expect(x).toBeCloseToTensor(y);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Mismatched elements: 1 / 4 (25.0%)');
    expect(message).toContain('Greatest absolute difference: 0.5 at index (1, 0) (up to 1e-05 allowed)');
    expect(message).toMatch(/\[1, 0\].*3\.5.*3/);
    expect({ out: [x] }).toBeCloseToTensor({ out: [x] });
  });

  it("assertClose works under node:test (node's AssertionError)", () => {
    const file = path.join(dir, 'node-test.test.js');
    fs.writeFileSync(
      file,
      `const test = require('node:test');\nconst { assertClose } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'lib'))});\n` +
        `test('close', () => assertClose({ data: new Float32Array([1, 2]), shape: [2] }, { data: new Float32Array([1, 2.000001]), shape: [2] }));\n` +
        `test('not close', () => assertClose({ data: new Float32Array([1, 2]), shape: [2] }, { data: new Float32Array([1, 3]), shape: [2] }));\n`,
    );
    const r = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/# pass 1/);
    expect(r.stdout).toMatch(/# fail 1/);
    expect(r.stdout).toContain('Tensor-likes are not close!');
    expect(r.stdout).toMatch(/ERR_ASSERTION/);
  });
});
