/**
 * A TorchScript model loaded by LibTorch. Calls on one model run one at a time, in call order (LibTorch
 * work happens on libuv's thread pool, so the event loop keeps running); different models run in parallel.
 */
import { VbpError, callNative, callNativeSync } from './errors';
import { writeAtomically, type WriteOptions } from './fsutil';
import { native, type NativeModel } from './native';
import type { Device } from './device';
import type { Tensor, Value } from './tensor';
import { sum, type MlpBlock, type MlpSpec, type ModelSignature } from './mlp';

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device | string;
}

export interface SubmoduleInfo {
  /** Dotted path from the root ('' for the root). */
  name: string;
  /** Class name without TorchScript's mangling, e.g. 'torch.nn.modules.linear.Linear'. */
  type: string;
}

export interface ParameterInfo {
  name: string;
  shape: number[];
  numel: number;
  dtype: string;
}

export interface MacCount {
  /** Multiply-accumulates of one forward. */
  total: number;
  /** Split by op family: linear, matmul, conv, attention. */
  byKind: Record<string, number>;
}

export interface ModelSummary {
  device: string;
  parameters: number;
  submodules: number;
  parameterTensors: number;
}

/** @internal What operations on a model use: its addon handle and its call queue. */
export interface ModelAccess {
  readonly handle: NativeModel;
  enqueue<T>(job: (handle: NativeModel) => Promise<T>): Promise<T>;
}

/** @internal Keeps a model open for an operation of several steps: dispose() waits for release(). */
export interface ModelLease extends ModelAccess {
  release(): void;
}

export class Model implements ModelAccess {
  #native: NativeModel | undefined;
  #disposed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #leases = 0;
  #leasesDone: Array<() => void> = [];
  #released: Promise<void> | undefined;
  /** Where the model was loaded from, if it was loaded from a file. */
  readonly source?: string;

  /** @internal models are made by loadModel(), clone() and prune(). */
  constructor(handle: NativeModel, source?: string) {
    this.#native = handle;
    this.source = source;
  }

  /** @internal the addon's handle; throws DISPOSED after dispose(). */
  get handle(): NativeModel {
    if (this.#disposed || !this.#native) throw new VbpError('DISPOSED', 'this model has been disposed');
    return this.#native;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Calls in flight or queued on this model. */
  get pending(): number {
    return this.#pending;
  }

  get device(): string {
    return callNativeSync(() => this.handle.device());
  }

  /**
   * @internal Runs `job` after the calls queued before it, one at a time. A call made after dispose()
   * rejects with DISPOSED at once; calls made before it run to the end.
   */
  enqueue<T>(job: (handle: NativeModel) => Promise<T>): Promise<T> {
    if (this.#disposed || !this.#native) return Promise.reject(new VbpError('DISPOSED', 'this model has been disposed'));
    return this.#schedule(this.#native, job);
  }

  #schedule<T>(handle: NativeModel, job: (handle: NativeModel) => Promise<T>): Promise<T> {
    this.#pending++;
    const run = this.#queue.then(() => callNative(() => job(handle)));
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run.finally(() => {
      this.#pending--;
    });
  }

  /**
   * @internal Opens the model for an operation of several steps (statistics, pruning): its steps may still
   * be queued after dispose(), which releases the native model only when every lease is released.
   */
  lease(): ModelLease {
    const handle = this.handle;
    this.#leases++;
    let open = true;
    return {
      handle,
      enqueue: (job) => this.#schedule(handle, job),
      release: () => {
        if (!open) return;
        open = false;
        if (--this.#leases === 0) for (const done of this.#leasesDone.splice(0)) done();
      },
    };
  }

  /** @internal Runs `operation` under a lease, released when it settles. */
  async withLease<T>(operation: (lease: ModelLease) => Promise<T>): Promise<T> {
    const lease = this.lease();
    try {
      return await operation(lease);
    } finally {
      lease.release();
    }
  }

  /** Runs the model's forward on one input tensor, or several as an array. */
  forward(input: Tensor | Tensor[]): Promise<Value> {
    return this.enqueue((handle) => handle.forward(input) as Promise<Value>);
  }

  /**
   * forward() on the calling thread: it saves the thread-pool round trip (about 0.1-0.3 ms on a 2-core VM,
   * which matters only for models that run in about a millisecond) and blocks the event loop meanwhile.
   * Meant for tiny models and for worker_threads; it does not wait for queued calls and may run alongside them.
   */
  forwardSync(input: Tensor | Tensor[]): Value {
    return callNativeSync(() => this.handle.forwardSync(input) as Value);
  }

  /** A deep copy (own parameters, own TorchScript types) on the same device. */
  async clone(): Promise<Model> {
    const handle = await this.enqueue((h) => h.clone());
    return new Model(handle, this.source);
  }

  /**
   * Writes the model as a TorchScript archive that stock PyTorch reads with torch.jit.load. The file
   * appears complete or not at all (written under a temporary name, then renamed).
   */
  async save(file: string, options: WriteOptions = {}): Promise<void> {
    await writeAtomically(file, (temporary) => this.enqueue((h) => h.save(temporary)), options);
  }

  submodules(): SubmoduleInfo[] {
    return callNativeSync(() => this.handle.submodules());
  }

  parameters(): ParameterInfo[] {
    return callNativeSync(() => this.handle.parameters());
  }

  parameterCount(): number {
    return parameterCountOf(this);
  }

  summary(): ModelSummary {
    const parameters = this.parameters();
    return {
      device: this.device,
      parameters: parameters.reduce((sum, p) => sum + p.numel, 0),
      parameterTensors: parameters.length,
      submodules: this.submodules().length,
    };
  }

  /**
   * The MLP blocks (fc1 -> element-wise ops -> fc2), found from the TorchScript graphs by structure, in
   * module order. With `specs`, checks and describes those pairs instead. Rejects with NO_MLP when the
   * model has none.
   */
  mlps(specs?: MlpSpec[]): Promise<MlpBlock[]> {
    return mlpsOf(this, specs);
  }

  /** @internal What ties statistics and plans to this model's MLP layers. */
  signature(specs?: MlpSpec[]): Promise<ModelSignature> {
    return this.withLease((lease) => signatureOf(lease, specs));
  }

  /**
   * Multiply-accumulates of one forward on an input of `inputShape` (e.g. [1, 3, 224, 224]), counted from
   * the linear, matmul, convolution and attention ops LibTorch runs.
   */
  macs(inputShape: number[]): Promise<MacCount> {
    return macsOf(this, inputShape);
  }

  /**
   * Releases the model's native memory. Later calls reject with DISPOSED at once; calls and operations
   * started before dispose() still complete, and the memory is released after the last of them (the
   * promise resolves then). Calling dispose() again is harmless.
   */
  dispose(): Promise<void> {
    if (!this.#released) {
      this.#disposed = true;
      const leasesDone = this.#leases === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#leasesDone.push(resolve));
      this.#released = leasesDone
        .then(() => this.#queue)
        .then(() => {
          this.#native?.dispose();
          this.#native = undefined;
        });
    }
    return this.#released;
  }
}

/** @internal */
export async function mlpsOf(access: ModelAccess, specs?: MlpSpec[]): Promise<MlpBlock[]> {
  const blocks = await access.enqueue((h) => h.mlps(specs));
  if (blocks.length === 0) {
    throw new VbpError(
      'NO_MLP',
      specs ? 'the list of MLP blocks is empty' : 'no MLP block (Linear -> element-wise ops -> Linear) was found in this model',
    );
  }
  return blocks;
}

/** @internal */
export async function signatureOf(access: ModelAccess, specs?: MlpSpec[]): Promise<ModelSignature> {
  const blocks = await mlpsOf(access, specs);
  const norms = await access.enqueue((h) => h.neuronNorms(specs ?? blocks.map(({ fc1, fc2 }) => ({ fc1, fc2 }))));
  return {
    layers: blocks.map((b, i) => ({
      fc1: b.fc1,
      fc2: b.fc2,
      inFeatures: b.inFeatures,
      hidden: b.hidden,
      outFeatures: b.outFeatures,
      fc1SquaredNorm: sum(norms[i].fc1RowSq),
      fc2SquaredNorm: sum(norms[i].fc2ColSq),
    })),
  };
}

/** @internal */
export function macsOf(access: ModelAccess, inputShape: number[]): Promise<MacCount> {
  return access.enqueue((h) => h.countMacs(probeInput(inputShape)));
}

/** @internal */
export function parameterCountOf(access: ModelAccess): number {
  return callNativeSync(() => access.handle.parameters()).reduce((total, p) => total + p.numel, 0);
}

/** A fixed, input-independent probe tensor (values in [-1, 1)) for shape-only work such as counting MACs. */
export function probeInput(shape: number[]): Tensor<Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let state = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    data[i] = state / 2 ** 31 - 1;
  }
  return { data, shape: [...shape], dtype: 'float32' };
}

/** Loads a TorchScript model (scripted or traced) off the main thread, in eval mode. */
export async function loadModel(file: string, options: LoadOptions = {}): Promise<Model> {
  if (typeof file !== 'string' || file.length === 0) {
    throw new VbpError('INVALID_ARGUMENT', 'loadModel(path): path must be a non-empty string');
  }
  const device = options.device ?? 'cpu';
  const handle = await callNative(() => native().loadModel(file, device));
  return new Model(handle, file);
}
