/**
 * Native memory: hundreds of load -> forward -> statistics -> prune -> fine-tune -> clone -> dispose cycles
 * in a child process run with --expose-gc. A leak is memory the C allocator has handed out and not got back
 * (glibc's mallinfo2, reported by nativeMemory()); RSS also counts freed pages that glibc's per-thread arenas
 * and V8's heap sizing keep, so it is bounded here, not required to be flat.
 */
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fixture, repoRoot } from './helpers';

interface Sample {
  cycle: number;
  rssMb: number;
  mallocMb: number;
  liveModels: number;
  liveSessions: number;
  liveTrainers: number;
}

interface Report {
  cycles: number;
  before: { modelBytes: number; liveModels: number };
  loaded: { modelBytes: number; liveModels: number };
  disposed: { modelBytes: number; liveModels: number };
  samples: Sample[];
}

describe('leaks', () => {
  const cycles = Number(process.env.VBP_LEAK_CYCLES ?? 200);
  let report: Report;

  beforeAll(() => {
    const out = execFileSync(
      process.execPath,
      [
        '--expose-gc',
        path.join(repoRoot, 'test', 'support', 'leak-cycles.js'),
        fixture('deit_scripted.pt'),
        fixture('calib.npy'),
        String(cycles),
      ],
      {
        encoding: 'utf8',
      },
    );
    report = JSON.parse(out) as Report;
  });

  it("reports a model's native memory while it lives and nothing after dispose()", () => {
    expect(report.loaded.liveModels - report.before.liveModels).toBe(1);
    expect(report.loaded.modelBytes - report.before.modelBytes).toBe(95530 * 4); // the fixture's float32 parameters
    expect(report.disposed).toMatchObject({ liveModels: 0, modelBytes: 0 });
  });

  it(`no native memory grows over ${cycles} cycles (allocator's live bytes within 1 MB; one leaked model copy per cycle would be ${(cycles * 0.38).toFixed(0)} MB)`, () => {
    const first = report.samples[0];
    const last = report.samples[report.samples.length - 1];
    expect(report.samples.every((s) => s.liveModels === 0 && s.liveSessions === 0 && s.liveTrainers === 0)).toBe(true);
    expect(last.mallocMb - first.mallocMb).toBeLessThan(1);
    // RSS: bounded (measured here: about 0.15 MB per cycle early on, levelling off).
    expect(last.rssMb - first.rssMb).toBeLessThan(160);
  });
});
