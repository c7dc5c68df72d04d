/**
 * vbp launch: starts the local ranks of a data-parallel run, as torchrun does, each a `vbp` command with torchrun's
 * variables (RANK, LOCAL_RANK, GROUP_RANK, LOCAL_WORLD_SIZE, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ...). Rank 0
 * keeps the terminal (its progress bar, its stdout); the other ranks' lines go to stderr, prefixed with their
 * rank. Ctrl-C and SIGTERM go to every rank. When a rank fails, the others are stopped, and the launcher exits
 * with the first failing rank's code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { Command } from 'commander';
import { packageRoot } from '../../util/package-root';
import { ExitWith, parseInteger, usageError } from '../args';
import type { GlobalOptions, Run } from '../context';

interface LaunchOptions extends GlobalOptions {
  nprocPerNode: string;
  nnodes: string;
  nodeRank: string;
  masterAddr: string;
  masterPort: string;
}

/** The commands that run data through a model and join the group (the others would run once per rank). */
const DATA_COMMANDS = ['stats', 'finetune', 'eval', 'prune'];
/** How long the other ranks get to stop after a rank failed or a signal came, before SIGKILL. */
const STOP_GRACE_MS = 10_000;

/** torchrun's variables for local rank `local`. */
export function rankEnvironment(
  local: number,
  perNode: number,
  nodes: number,
  nodeRank: number,
  masterAddr: string,
  masterPort: number,
): Record<string, string> {
  const rank = nodeRank * perNode + local;
  const world = perNode * nodes;
  return {
    RANK: String(rank),
    LOCAL_RANK: String(local),
    GROUP_RANK: String(nodeRank),
    ROLE_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(perNode),
    WORLD_SIZE: String(world),
    ROLE_WORLD_SIZE: String(world),
    ROLE_NAME: 'default',
    MASTER_ADDR: masterAddr,
    MASTER_PORT: String(masterPort),
    TORCHELASTIC_RESTART_COUNT: '0',
    TORCHELASTIC_MAX_RESTARTS: '0',
    // torchrun's default with several ranks per node: one intra-op thread each, unless set.
    ...(perNode > 1 && process.env.OMP_NUM_THREADS === undefined ? { OMP_NUM_THREADS: '1' } : {}),
  };
}

function prefixLines(stream: NodeJS.ReadableStream, prefix: string): void {
  readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    // Progress bars redraw with carriage returns: only a line's last state is worth a line of its own.
    const last = line.split('\r').filter(Boolean).pop() ?? '';
    process.stderr.write(`${prefix}${last}\n`);
  });
}

async function launch(command: string[], options: LaunchOptions): Promise<void> {
  const perNode = parseInteger(options.nprocPerNode, '--nproc-per-node', 1, 1024);
  const nodes = parseInteger(options.nnodes, '--nnodes', 1, 65536);
  const nodeRank = parseInteger(options.nodeRank, '--node-rank', 0, nodes - 1);
  const masterPort = parseInteger(options.masterPort, '--master-port', 1, 65535);
  if (options.masterAddr.trim() === '') throw usageError('--master-addr', "must be rank 0's host name or address");
  if (command.length === 0)
    throw usageError(
      '<command>',
      'give the vbp command to run after --, e.g. vbp launch --nproc-per-node 2 -- finetune ...',
    );
  if (!DATA_COMMANDS.includes(command[0]))
    throw usageError(
      '<command>',
      `'${command[0]}' does not run data through a model; vbp launch runs ${DATA_COMMANDS.join(', ')}`,
    );
  const cli = path.join(packageRoot, 'bin', 'vbp.js');
  const ranks: ChildProcess[] = [];
  let firstFailure: { rank: number; code: number } | undefined;
  let stopping = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stopAll = (signal: NodeJS.Signals): void => {
    for (const child of ranks) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const child of ranks) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      killTimer.unref();
    }
  };
  const forward = (signal: NodeJS.Signals) => () => {
    stopping = true;
    stopAll(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  const exits: Array<Promise<void>> = [];
  for (let local = 0; local < perNode; local++) {
    const env = rankEnvironment(local, perNode, nodes, nodeRank, options.masterAddr, masterPort);
    const isLead = env.RANK === '0';
    const child = spawn(process.execPath, [cli, ...command], {
      env: { ...process.env, ...env, ...(isLead ? {} : { VBP_PROGRESS: '0' }) },
      // A process group of its own: Ctrl-C in the terminal reaches the launcher only, which forwards it once (a
      // second signal would make a rank quit at once, without its checkpoint).
      detached: true,
      stdio: isLead ? ['inherit', 'inherit', process.stderr.isTTY ? 'inherit' : 'pipe'] : ['ignore', 'pipe', 'pipe'],
    });
    ranks.push(child);
    if (child.stdout) prefixLines(child.stdout, `[rank ${env.RANK}] `);
    if (child.stderr) prefixLines(child.stderr, `[rank ${env.RANK}] `);
    exits.push(
      new Promise<void>((resolve) => {
        child.on('exit', (code, signal) => {
          const status = code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1);
          if (status !== 0 && !firstFailure) {
            firstFailure = { rank: Number(env.RANK), code: status };
            if (!stopping) {
              process.stderr.write(
                `vbp launch: rank ${env.RANK} exited with code ${status}; stopping the other ranks\n`,
              );
              stopAll('SIGTERM');
            }
          }
          resolve();
        });
        child.on('error', (error) => {
          process.stderr.write(`vbp launch: rank ${env.RANK} could not start: ${error.message}\n`);
          firstFailure ??= { rank: Number(env.RANK), code: 1 };
          resolve();
        });
      }),
    );
  }
  await Promise.all(exits);
  if (killTimer) clearTimeout(killTimer);
  process.off('SIGINT', onInt);
  process.off('SIGTERM', onTerm);
  if (firstFailure) throw new ExitWith(firstFailure.code);
}

export function registerLaunch(program: Command, run: Run): void {
  program
    .command('launch')
    .description(
      "start the local ranks of a data-parallel run with torchrun's variables: vbp launch --nproc-per-node N -- finetune ...",
    )
    .argument('<command...>', 'the vbp command and its options, after --')
    .option('--nproc-per-node <n>', 'ranks on this node', '1')
    .option('--nnodes <n>', 'nodes in the run', '1')
    .option('--node-rank <r>', "this node's rank", '0')
    .option('--master-addr <address>', "rank 0's host (on every node the same)", '127.0.0.1')
    .option('--master-port <port>', 'its rendezvous port (torchrun: 29500)', '29500')
    .action((command: string[], options: LaunchOptions) => run(options, () => launch(command, options)));
}
