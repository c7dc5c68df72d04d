/**
 * torch-vbp's caching CPU allocator for LibTorch's tensors (native/core/cpu_cache.cc): installed without any
 * call by the application, serving repeated forwards from the cache, bounded by the largest working set plus
 * the stated slack over many forwards of varying size, emptied when the last model is disposed, and left out
 * with VBP_CPU_ALLOCATOR=default. Run in child processes: the cache is per process.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { repoRoot } from '../helpers';
import type { CpuCacheInfo } from '../../lib';

type CacheStats = CpuCacheInfo;

interface Report {
  atStart: CacheStats;
  largestOnly: CacheStats;
  repeated: CacheStats;
  repeatedMisses: number;
  varied: CacheStats;
  disposed: CacheStats;
  largest: number;
}

/** 1,000 forwards of the bundled model at batch sizes 1-64 (a working set of a few MB). */
function run(env: NodeJS.ProcessEnv = {}, forwards = 1000): Report {
  const out = execFileSync(
    process.execPath,
    [
      path.join(repoRoot, 'test', 'support', 'cpu-cache.js'),
      path.join(repoRoot, 'models', 'deit_fmnist.pt'),
      '64',
      String(forwards),
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    },
  );
  return JSON.parse(out) as Report;
}

describe('caching CPU allocator', () => {
  let report: Report;
  let unslack: Report;
  beforeAll(() => {
    report = run();
    // Without slack, so that the bound itself (twice the largest working set) limits the cache.
    unslack = run({ VBP_CPU_CACHE_SLACK_MB: '0' });
  });

  it('is installed by default, with no call by the application', () => {
    expect(report.atStart.installed).toBe(true);
  });

  it('serves repeated forwards of one shape from the cache (no new system allocations)', () => {
    expect(report.largestOnly.cachedBytes).toBeGreaterThan(0);
    expect(report.repeatedMisses).toBe(0);
    expect(report.repeated.hits).toBeGreaterThan(report.largestOnly.hits);
  });

  it('over 1,000 forwards of batch sizes 1-64: reuses blocks (default slack), and never holds more than twice the largest working set plus the slack', () => {
    expect(report.varied.slackBytes).toBe(16 * 2 ** 20);
    expect(report.varied.hits).toBeGreaterThan(100 * report.varied.misses);
    expect(report.varied.cachedBytes + report.varied.liveBytes).toBeLessThanOrEqual(
      2 * report.varied.peakLiveBytes + report.varied.slackBytes,
    );
    // The bound binds without slack: blocks are freed to stay within it, and the run still works.
    expect(unslack.varied.slackBytes).toBe(0);
    expect(unslack.varied.peakLiveBytes).toBeGreaterThanOrEqual(unslack.largestOnly.peakLiveBytes);
    expect(unslack.varied.cachedBytes + unslack.varied.liveBytes).toBeLessThanOrEqual(2 * unslack.varied.peakLiveBytes);
    expect(unslack.varied.misses).toBeGreaterThan(report.varied.misses);
  });

  it('returns everything it cached when the last model is disposed', () => {
    expect(report.disposed).toMatchObject({ cachedBytes: 0, liveBytes: 0 });
  });

  it('VBP_CPU_ALLOCATOR=default leaves LibTorch its own allocator, and forwards still work', () => {
    const plain = run({ VBP_CPU_ALLOCATOR: 'default' }, 10);
    expect(plain.atStart.installed).toBe(false);
    expect(plain.varied).toMatchObject({ cachedBytes: 0, hits: 0, misses: 0 });
  });
});
