/**
 * The process group: initDistributed() joins LibTorch's c10d group (TCPStore rendezvous, Gloo collectives),
 * from torchrun's environment or explicit options; destroyDistributed() leaves it. One group per process, as
 * torch.distributed's default group. The collectives here (internal) run one at a time, in call order, so that
 * every rank issues them in the same order.
 */
import { VbpError } from '../errors';
import { native } from '../native/addon';
import { checkOptionKeys } from '../util/options';

export interface DistributedOptions {
  /** 'gloo' (CPU tensors; the default) or 'nccl' (CUDA, where the LibTorch has it). */
  backend?: 'gloo' | 'nccl';
  /** This process's rank, in [0, worldSize). Default: RANK. */
  rank?: number;
  /** Processes in the group. Default: WORLD_SIZE. */
  worldSize?: number;
  /** This process's rank on its node: a rank asked for 'cuda' uses cuda:localRank. Default: LOCAL_RANK, else rank. */
  localRank?: number;
  /** Where rank 0 serves the rendezvous. Default: MASTER_ADDR, else 127.0.0.1. */
  masterAddr?: string;
  /** Its port. Default: MASTER_PORT, else 29500 (torchrun's). */
  masterPort?: number;
  /**
   * How long joining and every collective may wait for the other ranks, in milliseconds. Default: VBP_DIST_TIMEOUT
   * (seconds), else 30 minutes, torch.distributed's default. A rank that stopped or hangs makes the others stop
   * with DISTRIBUTED after at most this long.
   */
  timeoutMs?: number;
}

export interface DistributedInfo {
  rank: number;
  worldSize: number;
  localRank: number;
  backend: string;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 30 * 60 * 1000;
const OPTION_KEYS = ['backend', 'rank', 'worldSize', 'localRank', 'masterAddr', 'masterPort', 'timeoutMs'];

let current: DistributedInfo | null = null;
let queue: Promise<unknown> = Promise.resolve();

function integerFrom(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/**
 * torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT, and VBP_DIST_TIMEOUT in seconds), or
 * null when RANK and WORLD_SIZE are not both set.
 */
export function distributedFromEnv(env: NodeJS.ProcessEnv = process.env): DistributedOptions | null {
  if (env.RANK === undefined || env.WORLD_SIZE === undefined) return null;
  const options: DistributedOptions = {
    rank: integerFrom(env.RANK, 'RANK', 0),
    worldSize: integerFrom(env.WORLD_SIZE, 'WORLD_SIZE', 1),
  };
  if (env.LOCAL_RANK !== undefined) options.localRank = integerFrom(env.LOCAL_RANK, 'LOCAL_RANK', 0);
  if (env.MASTER_ADDR) options.masterAddr = env.MASTER_ADDR;
  if (env.MASTER_PORT !== undefined) options.masterPort = integerFrom(env.MASTER_PORT, 'MASTER_PORT', 1, 65535);
  if (env.VBP_DIST_TIMEOUT !== undefined)
    options.timeoutMs = integerFrom(env.VBP_DIST_TIMEOUT, 'VBP_DIST_TIMEOUT', 1) * 1000;
  return options;
}

/** The settings initDistributed() would use: explicit options over torchrun's variables over the defaults. */
export function resolveDistributedOptions(options: DistributedOptions = {}): DistributedInfo {
  checkOptionKeys(options, OPTION_KEYS, 'initDistributed()');
  const merged = { ...(distributedFromEnv() ?? {}), ...options };
  if (merged.rank === undefined || merged.worldSize === undefined) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      'initDistributed(): rank and worldSize are needed, as options or as RANK and WORLD_SIZE in the environment (vbp launch and torchrun set them)',
    );
  }
  const worldSize = integerFrom(merged.worldSize, 'worldSize', 1);
  const rank = integerFrom(merged.rank, 'rank', 0, worldSize - 1);
  const backend = merged.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') {
    throw new VbpError('INVALID_ARGUMENT', `backend must be 'gloo' or 'nccl', got ${JSON.stringify(backend)}`);
  }
  return {
    rank,
    worldSize,
    localRank: merged.localRank === undefined ? rank : integerFrom(merged.localRank, 'localRank', 0),
    backend,
    masterAddr: merged.masterAddr ?? '127.0.0.1',
    masterPort: merged.masterPort === undefined ? 29500 : integerFrom(merged.masterPort, 'masterPort', 1, 65535),
    timeoutMs: merged.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : integerFrom(merged.timeoutMs, 'timeoutMs', 1),
  };
}

/**
 * Joins the process group: waits until every rank has joined (at most timeoutMs). DISTRIBUTED when the port is in
 * use, a rank was started with another world size, the backend is not in this build, or not every rank comes.
 */
export async function initDistributed(options: DistributedOptions = {}): Promise<DistributedInfo> {
  const info = resolveDistributedOptions(options);
  if (current) {
    throw new VbpError(
      'DISTRIBUTED',
      `this process already joined a group (rank ${current.rank} of ${current.worldSize}): call destroyDistributed() first`,
    );
  }
  const compiled = native().distributedBackends();
  if (!compiled.includes(info.backend)) {
    throw new VbpError(
      'DISTRIBUTED',
      `backend '${info.backend}' is not in this build (it has: ${compiled.join(', ') || 'none'}). ` +
        (info.backend === 'nccl'
          ? 'NCCL is for CUDA tensors on a CUDA LibTorch; use gloo here.'
          : "Gloo's headers were not found at build time: on Debian, apt-get install libgloo-dev, then npm run build:native."),
    );
  }
  await native().distributedInit(info);
  current = info;
  return { ...info };
}

/** Leaves the process group (no-op without one). Collectives still queued fail with DISTRIBUTED. */
export function destroyDistributed(): void {
  native().distributedDestroy();
  current = null;
}

/** The group this process joined, or null. */
export function distributedInfo(): DistributedInfo | null {
  return current ? { ...current } : null;
}

/** The device a rank uses for `device`: 'cuda' becomes cuda:LOCAL_RANK inside a group. */
export function rankDevice(device: string): string {
  return current && device === 'cuda' ? `cuda:${current.localRank}` : device;
}

/** Runs collectives one after another, in the order they were asked for. */
function serialised<T>(run: () => Promise<T>): Promise<T> {
  const next = queue.then(run, run);
  queue = next.catch(() => undefined);
  return next;
}

function joined(what: string): DistributedInfo {
  if (!current) throw new VbpError('DISTRIBUTED', `${what}: no process group (call initDistributed() first)`);
  return current;
}

/** @internal In place: every array becomes its element-wise sum over ranks. */
export function allreduceSum(arrays: Array<Float64Array | Float32Array>): Promise<void> {
  joined('allreduce');
  return serialised(() => native().distributedAllreduce(arrays));
}

/** @internal In place: every array becomes rank `root`'s. */
export function broadcast(arrays: Array<Float64Array | Float32Array>, root = 0): Promise<void> {
  joined('broadcast');
  return serialised(() => native().distributedBroadcast(arrays, root));
}

/** @internal Every rank's bytes (of any length), in rank order. */
export async function allgatherBytes(bytes: Uint8Array): Promise<Uint8Array[]> {
  const group = joined('allgather');
  const lengths = (await serialised(() => native().distributedAllgather(Float64Array.of(bytes.length)))).map(
    (a) => a[0],
  );
  const longest = Math.max(...lengths);
  // Whole float64 words, padded: all-gather only copies, so any bit pattern travels as it is.
  const padded = new Uint8Array(Math.ceil(longest / 8) * 8);
  padded.set(bytes);
  const parts = await serialised(() => native().distributedAllgather(new Float64Array(padded.buffer)));
  if (parts.length !== group.worldSize)
    throw new VbpError('INTERNAL', `all-gather returned ${parts.length} parts for ${group.worldSize} ranks`);
  return parts.map((part, rank) => new Uint8Array(part.buffer, part.byteOffset, lengths[rank]));
}

/** @internal Waits for every rank. */
export function barrier(): Promise<void> {
  joined('barrier');
  return serialised(() => native().distributedBarrier());
}
