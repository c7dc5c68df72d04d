/** A Python process that times forwards of one model on request (bench/python/latency.py). */
import path from 'node:path';
import readline from 'node:readline';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { packageRoot } from '../lib/util/package-root';

export class PythonTimer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  /** `device`: where PyTorch runs the model (inputs from host memory, outputs back to it, as ours). */
  constructor(
    python: string,
    file: string,
    shape: number[],
    threads: number,
    env: NodeJS.ProcessEnv = {},
    device = 'cpu',
  ) {
    const script = path.join(packageRoot, 'bench', 'python', 'latency.py');
    this.child = spawn(
      python,
      [script, file, '--shape', shape.join(','), '--threads', String(threads), '--device', device],
      {
        env: { ...process.env, ...env },
      },
    );
    this.lines = readline.createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }

  async ready(): Promise<void> {
    const first = await this.lines.next();
    if (first.done || first.value !== 'ready') throw new Error(`latency.py did not start: ${String(first.value)}`);
  }

  async time(runs: number): Promise<number[]> {
    this.child.stdin.write(`${runs}\n`);
    const line = await this.lines.next();
    return JSON.parse(line.value as string) as number[];
  }

  close(): void {
    this.child.stdin.end();
  }
}
