/**
 * Code health as part of the suite: `npm run lint` (ESLint and Prettier) and `npm run typecheck` (tsc over
 * lib/, bench/, scripts/ and test/ with noUnusedLocals/noUnusedParameters) pass. `npm run format` fixes
 * what Prettier reports.
 */
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const repoRoot = path.resolve(__dirname, '..');

/** The output of `npm run <script>` when it fails, '' when it passes. */
function failureOf(script: string): string {
  const r = spawnSync('npm', ['run', '--silent', script], { cwd: repoRoot, encoding: 'utf8' });
  return r.status === 0 ? '' : `npm run ${script} exited ${r.status}:\n${r.stdout}${r.stderr}`;
}

describe('code health', () => {
  it('npm run lint passes (ESLint, Prettier)', () => {
    expect(failureOf('lint')).toBe('');
  });

  it('npm run typecheck passes', () => {
    expect(failureOf('typecheck')).toBe('');
  });
});
