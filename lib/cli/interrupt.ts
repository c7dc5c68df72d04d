/**
 * Ctrl-C (SIGINT) and SIGTERM. Outside `interruptible()` the process ends at once (exit 130 / 143), after
 * giving the terminal its cursor and line wrap back. Inside it (calibration in `vbp stats`, training in
 * `vbp finetune`) the first signal aborts the work's AbortSignal instead: the work stops between two steps,
 * the command keeps what was done (partial statistics, a checkpoint), says so and how to resume, and then
 * exits 130 / 143. A second signal ends the process at once.
 */
import { VbpError } from '../errors';

export const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };
const SIGNALS = Object.keys(SIGNAL_EXIT) as NodeJS.Signals[];
export const TERMINAL_RESTORE = '\x1b[?25h\x1b[?7h'; // show the cursor, line wrap on

/** Progress bars to stop (and the terminal to restore) before anything else happens on a signal. */
const restorers = new Set<() => void>();
let controller: AbortController | undefined;
let received: NodeJS.Signals | undefined;
let terminalTouched = false;
let installed = false;

function onSignal(signal: NodeJS.Signals): void {
  for (const restore of [...restorers]) restore();
  if (controller && !controller.signal.aborted) {
    received = signal;
    controller.abort(new VbpError('ABORTED', `interrupted by ${signalName(signal)}`));
    process.stderr.write(
      `\nvbp: ${signalName(signal)}: stopping after the current step to keep what is done (${signalName(signal)} again quits at once)\n`,
    );
    return;
  }
  if (terminalTouched) process.stderr.write(TERMINAL_RESTORE);
  process.exit(SIGNAL_EXIT[signal] ?? 1);
}

/** Listens while a progress bar or an interruptible section needs it; a process without either keeps Node's default. */
function update(): void {
  const wanted = restorers.size > 0 || controller !== undefined;
  if (wanted === installed) return;
  installed = wanted;
  for (const signal of SIGNALS) {
    if (wanted) process.on(signal, onSignal);
    else process.removeListener(signal, onSignal);
  }
}

export function signalName(signal: NodeJS.Signals | undefined): string {
  return signal === 'SIGINT' ? 'Ctrl-C' : (signal ?? 'a signal');
}

/** Registers what stops a progress bar on a signal; returns the function that unregisters it. */
export function onSignalRestore(restore: () => void): () => void {
  terminalTouched = true;
  const wrapped = (): void => {
    restore();
    process.stderr.write(TERMINAL_RESTORE);
  };
  restorers.add(wrapped);
  update();
  return () => {
    restorers.delete(wrapped);
    update();
  };
}

/**
 * Runs `work` with an AbortSignal that the first Ctrl-C or SIGTERM aborts. Only one section at a time
 * (commands run one job each).
 */
export async function interruptible<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  if (controller) throw new VbpError('INTERNAL', 'interruptible() sections cannot nest');
  controller = new AbortController();
  received = undefined;
  update();
  try {
    return await work(controller.signal);
  } finally {
    controller = undefined;
    update();
  }
}

/** The signal that interrupted the last interruptible() section, if one did. */
export function interruptedBy(): NodeJS.Signals | undefined {
  return received;
}

/** Whether a progress bar changed the terminal in this process (its state is restored again at the end). */
export function terminalWasTouched(): boolean {
  return terminalTouched;
}

/**
 * A command stopped by a signal or a failure after keeping its work: `kept` (for --json) says what was
 * written and how to continue.
 */
export class KeptWorkError extends VbpError {
  constructor(
    error: VbpError,
    message: string,
    readonly kept: Record<string, unknown>,
  ) {
    super(error.code, message, { cause: error, detail: error.detail });
    this.name = 'KeptWorkError';
  }
}
