/**
 * The `vbp` command line: inspect, stats, merge, prune, finetune, eval, bench, demo, check and launch (one file each in
 * commands/).
 * Errors print one line, `vbp: error [CODE]: message`. Exit codes follow one rule (README, "Exit codes"):
 * 2 for bad usage and inputs that cannot be read (found before any work), 1 for failures of the work,
 * 130 / 143 when Ctrl-C / SIGTERM stopped it. --json prints one JSON document on stdout and nothing else,
 * on a failure too: { "error": { code, message, exitCode, ... } }.
 */
import { Command, CommanderError } from 'commander';
import { VbpError, asVbpError } from '../errors';
import { packageVersion, versionInfo } from '../native/runtime';
import { ExitWith, UsageError } from './args';
import { registerBench } from './commands/bench';
import { registerCheck } from './commands/check';
import { registerDemo } from './commands/demo';
import { registerEval } from './commands/eval';
import { registerFinetune } from './commands/finetune';
import { registerInspect } from './commands/inspect';
import { registerLaunch } from './commands/launch';
import { registerMerge } from './commands/merge';
import { registerPrune } from './commands/prune';
import { registerStats } from './commands/stats';
import { applyGlobalOptions, type GlobalOptions, type Run } from './context';
import { KeptWorkError, SIGNAL_EXIT, TERMINAL_RESTORE, interruptedBy, terminalWasTouched } from './interrupt';

/** `vbp --version`: torch-vbp's version and what the addon was built against; throws when the addon cannot load. */
function versionText(): string {
  const info = versionInfo();
  // What the addon was compiled with, then what this machine has: a CUDA build runs on CPU without a GPU.
  const cuda = info.cuda
    ? `CUDA ${info.cudaVersion || '(version unknown)'}, ${
        info.cudaDeviceCount > 0 ? `${info.cudaDeviceCount} GPU(s) visible` : 'no GPU visible (runs on CPU)'
      }`
    : 'CPU only (no CUDA)';
  return `torch-vbp ${info.version}\nLibTorch ${info.torch}, ${cuda}\nNode.js ${process.version}, N-API ${info.napiVersion}\naddon ${info.addon}`;
}

/** Prints the version; a native addon that cannot load is an error (exit 1), after the package's own version. */
function printVersion(): never {
  let text: string;
  try {
    text = versionText();
  } catch (error) {
    process.stdout.write(`torch-vbp ${packageVersion()}\n`);
    throw asVbpError(error);
  }
  process.stdout.write(text + '\n');
  throw new ExitWith(0);
}

export function buildProgram(run: Run): Command {
  const program = new Command('vbp')
    .description('Variance-Based Pruning of TorchScript vision transformers (torch-vbp)')
    // Not commander's .version(): the text needs the addon, loaded only when asked for (and its failure is an error).
    .option('-V, --version', "torch-vbp's version, and the LibTorch and CUDA it was built against")
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [
    registerInspect,
    registerStats,
    registerMerge,
    registerPrune,
    registerFinetune,
    registerEval,
    registerBench,
    registerDemo,
    registerCheck,
    registerLaunch,
  ])
    register(program, run);
  program.on('option:version', () => printVersion());
  for (const command of program.commands) command.exitOverride();
  return program;
}

function exitCodeOf(error: VbpError): number {
  const signal = interruptedBy();
  if (error.code === 'ABORTED' && signal) return SIGNAL_EXIT[signal] ?? 1;
  return error instanceof UsageError || error.code === 'INVALID_ARGUMENT' ? 2 : 1;
}

/** With --json, a failure is a JSON document on stdout too (the message also goes to stderr). */
function printJsonError(code: string, message: string, exitCode: number, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ error: { code, message, exitCode, ...extra } }, null, 2) + '\n');
}

/** Whether the command line asks for --json (before `--`): also for errors commander finds while parsing. */
function wantsJson(argv: string[], options: GlobalOptions | undefined): boolean {
  if (options) return Boolean(options.json);
  const args = argv.slice(2);
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).includes('--json');
}

/** Runs the command line `argv` (as process.argv) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  let parsed: GlobalOptions | undefined;
  const run: Run = async (options, job) => {
    parsed = options;
    applyGlobalOptions(options);
    await job();
  };
  try {
    await buildProgram(run).parseAsync(argv);
  } catch (error) {
    if (error instanceof ExitWith) {
      exitCode = error.exitCode;
    } else if (error instanceof CommanderError) {
      // --help ends here too, with exit code 0; commander printed its message.
      exitCode = error.exitCode === 0 ? 0 : 2;
      if (exitCode !== 0 && wantsJson(argv, parsed))
        printJsonError('INVALID_ARGUMENT', error.message.replace(/^error: /, ''), exitCode);
    } else {
      const e = asVbpError(error);
      // A bug, not a user error: the stack helps a report, but only when asked for.
      const detail =
        e.code === 'INTERNAL'
          ? process.env.VBP_DEBUG
            ? `\n${(error as Error).stack ?? ''}`
            : ' (set VBP_DEBUG=1 for a stack trace)'
          : '';
      process.stderr.write(`vbp: error [${e.code}]: ${e.message}${detail}\n`);
      exitCode = exitCodeOf(e);
      if (wantsJson(argv, parsed))
        printJsonError(e.code, e.message, exitCode, e instanceof KeptWorkError ? e.kept : {});
    }
  }
  // After an interruption the last bytes on stderr give the terminal back its cursor and line wrap, whatever came after
  // the bar.
  if (interruptedBy() && terminalWasTouched()) process.stderr.write(TERMINAL_RESTORE);
  return exitCode;
}
