/**
 * The `vbp` command line: inspect, stats, merge, prune, finetune, eval, bench, demo and check (one file each in commands/).
 * Errors print one line, `vbp: error [CODE]: message`, and exit 1; bad usage (a bad or missing option
 * value, found before any work) exits 2. --json prints one JSON document on stdout and nothing else.
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
import { registerMerge } from './commands/merge';
import { registerPrune } from './commands/prune';
import { registerStats } from './commands/stats';
import { applyGlobalOptions, type Options } from './context';

/** `vbp --version`: torch-vbp's version and what the addon was built against. */
export function versionText(): string {
  try {
    const info = versionInfo();
    const cuda = info.cuda ? `CUDA ${info.cudaVersion || '(version unknown)'}, ${info.cudaDeviceCount} GPU(s) visible` : 'CPU only (no CUDA)';
    return `torch-vbp ${info.version}\nLibTorch ${info.torch}, ${cuda}\nNode.js ${process.version}, N-API ${info.napiVersion}\naddon ${info.addon}`;
  } catch (error) {
    return `torch-vbp ${packageVersion()}\nnative addon not loadable: ${(error as Error).message}`;
  }
}

export function buildProgram(run: (options: Options, job: () => Promise<void>) => Promise<void>): Command {
  const program = new Command('vbp')
    .description('Variance-Based Pruning of TorchScript vision transformers (torch-vbp)')
    .version(versionText(), '-V, --version', "torch-vbp's version, and the LibTorch and CUDA it was built against")
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [registerInspect, registerStats, registerMerge, registerPrune, registerFinetune, registerEval, registerBench, registerDemo, registerCheck]) register(program, run);
  for (const command of program.commands) command.exitOverride();
  return program;
}

function exitCodeOf(error: VbpError): number {
  return error instanceof UsageError || error.code === 'INVALID_ARGUMENT' ? 2 : 1;
}

/** Runs the command line `argv` (as process.argv) and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const run = async (options: Options, job: () => Promise<void>): Promise<void> => {
    applyGlobalOptions(options);
    await job();
  };
  try {
    await buildProgram(run).parseAsync(argv);
  } catch (error) {
    if (error instanceof ExitWith) {
      exitCode = error.exitCode;
    } else if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0; commander printed its message.
      exitCode = error.exitCode === 0 ? 0 : 2;
    } else {
      const e = asVbpError(error);
      // A bug, not a user error: the stack helps a report, but only when asked for.
      const detail = e.code === 'INTERNAL' ? (process.env.VBP_DEBUG ? `\n${(error as Error).stack ?? ''}` : ' (set VBP_DEBUG=1 for a stack trace)') : '';
      process.stderr.write(`vbp: error [${e.code}]: ${e.message}${detail}\n`);
      exitCode = exitCodeOf(e);
    }
  }
  return exitCode;
}
