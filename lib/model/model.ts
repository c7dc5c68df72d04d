/**
 * A TorchScript model loaded by LibTorch, and its model card.
 *
 * Concurrency contract: every call that reaches LibTorch goes through the model's queue and runs after
 * the calls made before it, one at a time (on libuv's thread pool, so the event loop keeps running);
 * different models run in parallel. forwardSync() is the one call that runs on the calling thread: it
 * refuses with BUSY while anything is queued or running on the model, so it never runs alongside them.
 */
import fs from 'node:fs';
import { VbpError, callNative, callNativeSync } from '../errors';
import {
  checkModelCard,
  formatModelCard,
  modelCardPath,
  parseModelCard,
  readModelCard,
  type ModelCard,
} from '../formats/model-card';
import { native, type NativeModel } from '../native/addon';
import type { Device } from '../native/runtime';
import type { Tensor, Value } from '../tensor';
import { uniformArray } from '../util/random';
import { writeAllAtomically, type PendingOutput, type WriteOptions } from '../util/files';
import { checkOptionKeys } from '../util/options';
import type { MlpBlock, MlpSpec, ModelSignature } from './mlp';
import { signatureFromNorms } from './mlp';

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. */
  device?: Device | string;
  /**
   * The model card to use. By default the card beside the file (model.pt -> model.json) or, when there is
   * none, the one inside the archive; `false` ignores both.
   */
  card?: ModelCard | false;
}

export interface SaveOptions extends WriteOptions {
  /** Also write the model card beside the file (model.pt -> model.json), when the model has one. Default true. */
  cardBeside?: boolean;
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
interface ModelAccess {
  readonly handle: NativeModel;
  enqueue<T>(job: (handle: NativeModel) => Promise<T>): Promise<T>;
}

/** @internal Keeps a model open for an operation of several steps: dispose() waits for release(). */
export interface ModelLease extends ModelAccess {
  release(): void;
}

const DISPOSED_MESSAGE = 'this model has been disposed';

export class Model {
  #native: NativeModel | undefined;
  #disposed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #pending = 0;
  #leases = 0;
  #leasesDone: Array<() => void> = [];
  #released: Promise<void> | undefined;
  #card: ModelCard | undefined;
  /** Where the model was loaded from, if it was loaded from a file. */
  readonly source?: string;

  /** @internal models are made by loadModel(), clone() and prune(). */
  constructor(handle: NativeModel, source?: string, card?: ModelCard) {
    this.#native = handle;
    this.source = source;
    this.#card = card;
  }

  /** @internal the addon's handle; throws DISPOSED after dispose(). */
  get handle(): NativeModel {
    if (this.#disposed || !this.#native) throw new VbpError('DISPOSED', DISPOSED_MESSAGE);
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

  /** What the model expects as input (shape, normalisation) and what its outputs mean, if known. */
  get card(): ModelCard | undefined {
    return this.#card ? structuredClone(this.#card) : undefined;
  }

  /** Attaches a model card (checked), or removes it with undefined; save() writes it with the model. */
  setCard(card: ModelCard | undefined): void {
    this.#card = card === undefined ? undefined : checkModelCard(structuredClone(card), 'given to setCard()');
  }

  /**
   * @internal Runs `job` after the calls queued before it, one at a time. A call made after dispose()
   * rejects with DISPOSED at once; calls made before it run to the end.
   */
  enqueue<T>(job: (handle: NativeModel) => Promise<T>): Promise<T> {
    if (this.#disposed || !this.#native) return Promise.reject(new VbpError('DISPOSED', DISPOSED_MESSAGE));
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
   * @internal Opens the model for an operation of several steps (statistics, pruning): its steps are
   * queued like any call, and may still be queued after dispose(), which releases the native model only
   * when every lease is released.
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
   * forward() on the calling thread: it saves the thread-pool round trip (the benchmark row 'forward latency,
   * bundled, batch 1: forward() / forwardSync()' in README, "Benchmarks", measures it), which matters only for
   * models that run in about a millisecond, and blocks the event loop meanwhile.
   * Meant for tiny models and for worker_threads. Throws BUSY while calls on this model are queued or
   * running (await them first): a model runs one call at a time.
   */
  forwardSync(input: Tensor | Tensor[]): Value {
    const handle = this.handle;
    if (this.#pending > 0) {
      throw new VbpError(
        'BUSY',
        `forwardSync(): ${this.#pending} call(s) on this model are queued or running; await them first (or use forward())`,
      );
    }
    return callNativeSync(() => handle.forwardSync(input) as Value);
  }

  /** A deep copy (own parameters, own TorchScript types) on the same device, with the same card. */
  async clone(): Promise<Model> {
    const handle = await this.enqueue((h) => h.clone());
    return new Model(handle, this.source, this.#card);
  }

  /**
   * Writes the model as a TorchScript archive that stock PyTorch reads with torch.jit.load, with its model
   * card inside (the extra file 'model_card.json') and, unless `cardBeside` is false, beside it. The files
   * appear complete or not at all.
   */
  async save(file: string, options: SaveOptions = {}): Promise<void> {
    checkOptionKeys(options, ['overwrite', 'cardBeside'], 'save()');
    await writeAllAtomically(this.outputsFor(file, options), options);
  }

  /** @internal The files save() writes, for commands that write them together with others. */
  outputsFor(file: string, options: Pick<SaveOptions, 'cardBeside'> = {}): PendingOutput[] {
    const card = this.#card ? formatModelCard(this.#card) : undefined;
    const outputs: PendingOutput[] = [
      { target: file, write: (temporary) => this.enqueue((h) => h.save(temporary, card)) },
    ];
    if (card && options.cardBeside !== false)
      outputs.push({ target: modelCardPath(file), write: (temporary) => fs.promises.writeFile(temporary, card) });
    return outputs;
  }

  submodules(): SubmoduleInfo[] {
    return callNativeSync(() => this.handle.submodules());
  }

  parameters(): ParameterInfo[] {
    return callNativeSync(() => this.handle.parameters());
  }

  /** A copy of the parameter or buffer at a dotted name (e.g. 'blocks.0.mlp.fc2.weight'), on the CPU. */
  parameter(name: string): Promise<Tensor> {
    return this.enqueue((h) => h.namedTensor(name) as Promise<Tensor>);
  }

  parameterCount(): number {
    return this.parameters().reduce((total, p) => total + p.numel, 0);
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
      const leasesDone =
        this.#leases === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.#leasesDone.push(resolve));
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
      specs
        ? 'the list of MLP blocks is empty'
        : 'no MLP block (Linear -> element-wise ops -> Linear) was found in this model',
    );
  }
  return blocks;
}

/** @internal Per-neuron squared weight norms of the blocks. */
export function neuronNormsOf(
  access: ModelAccess,
  blocks: MlpSpec[],
): Promise<Array<{ fc1RowSq: Float64Array; fc2ColSq: Float64Array }>> {
  return access.enqueue((h) => h.neuronNorms(blocks.map(({ fc1, fc2 }) => ({ fc1, fc2 }))));
}

/** @internal */
export async function signatureOf(access: ModelAccess, specs?: MlpSpec[]): Promise<ModelSignature> {
  const blocks = await mlpsOf(access, specs);
  return signatureFromNorms(blocks, await neuronNormsOf(access, blocks));
}

/** @internal */
export function macsOf(access: ModelAccess, inputShape: number[]): Promise<MacCount> {
  return access.enqueue((h) => h.countMacs(probeInput(inputShape)));
}

/** @internal */
export function parametersOf(access: ModelAccess): ParameterInfo[] {
  return callNativeSync(() => access.handle.parameters());
}

/** A fixed, input-independent probe tensor (values in [-1, 1)) for shape-only work such as counting MACs. */
export function probeInput(shape: number[]): Tensor<Float32Array> {
  return {
    data: uniformArray(
      shape.reduce((a, b) => a * b, 1),
      0x9e3779b9,
    ),
    shape: [...shape],
    dtype: 'float32',
  };
}

/** The model card of a file: `override`, else the one beside it, else the one inside the archive. */
function cardOf(file: string, handle: NativeModel, override: ModelCard | false | undefined): ModelCard | undefined {
  if (override === false) return undefined;
  if (override) return checkModelCard(structuredClone(override), 'given to loadModel()');
  const beside = readModelCard(file);
  if (beside) return beside;
  const embedded = callNativeSync(() => handle.embeddedCard());
  return embedded === null ? undefined : parseModelCard(embedded, `inside '${file}'`);
}

/** Loads a TorchScript model (scripted or traced) off the main thread, in eval mode, with its model card. */
export async function loadModel(file: string, options: LoadOptions = {}): Promise<Model> {
  checkOptionKeys(options, ['device', 'card'], 'loadModel()');
  if (typeof file !== 'string' || file.length === 0) {
    throw new VbpError('INVALID_ARGUMENT', 'loadModel(path): path must be a non-empty string');
  }
  const device = options.device ?? 'cpu';
  const handle = await callNative(() => native().loadModel(file, device));
  try {
    return new Model(handle, file, cardOf(file, handle, options.card));
  } catch (error) {
    handle.dispose();
    throw error;
  }
}
