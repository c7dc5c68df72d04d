/**
 * Progress bars on stderr when it is a terminal and the output is for people (VBP_PROGRESS=1 forces them,
 * VBP_PROGRESS=0 turns them off). While a bar is shown the cursor is hidden; Ctrl-C or a SIGTERM gives the
 * terminal its cursor and line wrap back before anything else (interrupt.ts).
 */
import { SingleBar, Presets } from 'cli-progress';
import { onSignalRestore } from './interrupt';

export function progressWanted(options: { json?: boolean; quiet?: boolean }): boolean {
  if (process.env.VBP_PROGRESS === '0') return false;
  if (process.env.VBP_PROGRESS === '1') return !options.quiet;
  return !options.json && !options.quiet && Boolean(process.stderr.isTTY);
}

export class Progress {
  private bar?: SingleBar;
  private unregister?: () => void;

  constructor(private readonly enabled: boolean) {}

  /** With `withDetail`, update() also shows a short text (e.g. the loss and images/s). */
  start(label: string, total: number, withDetail = false): void {
    if (!this.enabled) return;
    this.stop();
    this.bar = new SingleBar(
      {
        format: `${label.padEnd(28)} {bar} {percentage}% | {value}/{total}${withDetail ? ' | {detail}' : ''} | {eta_formatted} left`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
        noTTYOutput: !process.stderr.isTTY,
      },
      Presets.shades_classic,
    );
    this.unregister = onSignalRestore(() => this.stop());
    this.bar.start(total, 0, { detail: '' });
  }

  update(value: number, detail?: string): void {
    this.bar?.update(value, detail === undefined ? undefined : { detail });
  }

  stop(): void {
    if (!this.bar) return;
    this.bar.stop();
    this.bar = undefined;
    this.unregister?.();
    this.unregister = undefined;
  }
}
