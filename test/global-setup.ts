/**
 * Makes the test fixtures and the PyTorch reference outputs with test/python (Debian's torch), once: they
 * are rebuilt when a script under test/python, or the DeiT definition they use (models/deit.py), changes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export default function globalSetup(): void {
  const root = path.resolve(__dirname, '..');
  const scripts = path.join(root, 'test', 'python');
  const out = path.join(root, 'test', 'fixtures');
  const hash = crypto.createHash('sha256');
  for (const file of fs
    .readdirSync(scripts)
    .filter((f) => f.endsWith('.py'))
    .sort()) {
    hash.update(file).update(fs.readFileSync(path.join(scripts, file)));
  }
  hash.update('deit.py').update(fs.readFileSync(path.join(root, 'models', 'deit.py')));
  const stamp = path.join(out, '.stamp');
  const digest = hash.digest('hex');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === digest) return;

  // VBP_FIXTURE_PYTHON: the torch that makes the fixtures when the tests' references come from another (test:compat).
  const python = process.env.VBP_FIXTURE_PYTHON ?? process.env.VBP_PYTHON ?? '/usr/bin/python3';
  const env = process.env; // threads pinned by jest.config.js (test/support/pin-threads.js)
  fs.rmSync(out, { recursive: true, force: true });
  execFileSync(python, [path.join(scripts, 'make_fixtures.py'), '--out', out], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  execFileSync(python, [path.join(scripts, 'vbp_reference.py'), '--fixtures', out, '--out', path.join(out, 'ref')], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  fs.writeFileSync(stamp, digest);
}
