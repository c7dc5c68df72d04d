/**
 * A model card: JSON saying what input a model expects (shape, normalisation) and what its outputs mean
 * (classes). torch-vbp keeps it inside the TorchScript archive (the extra file `model_card.json`) and beside
 * the model (model.pt -> model.json), so that a pruned model and any copy of it are fed the way the
 * original was trained.
 */
import fs from 'node:fs';
import { VbpError } from '../errors';
import { readFileChecked } from '../util/files';

export interface ModelCard {
  /** One item's shape, e.g. [1, 28, 28]. */
  inputShape?: number[];
  /** Per-channel mean and std after scaling pixels to [0, 1]. */
  mean?: number[];
  std?: number[];
  classes?: string[];
  /** Anything else the card says (training set-up, accuracy, licence, pruning history...). */
  [key: string]: unknown;
}

/** The card file beside a model: model.pt -> model.json. */
export function modelCardPath(modelPath: string): string {
  return modelPath.replace(/\.(pt|pth|torchscript)$/i, '') + '.json';
}

function isNumberList(value: unknown, ok: (n: number) => boolean): value is number[] {
  return Array.isArray(value) && value.length > 0 && value.every((n) => typeof n === 'number' && ok(n));
}

/** Checks the fields torch-vbp reads; throws DATA naming the card and the field. */
export function checkModelCard(card: ModelCard, source: string): ModelCard {
  const fail = (why: string): never => {
    throw new VbpError('DATA', `model card ${source}: ${why}`);
  };
  if (card.inputShape !== undefined && !isNumberList(card.inputShape, (n) => Number.isInteger(n) && n > 0)) {
    fail(`inputShape must be a list of positive integers, got ${JSON.stringify(card.inputShape)}`);
  }
  if (card.mean !== undefined && !isNumberList(card.mean, Number.isFinite))
    fail(`mean must be a list of numbers, got ${JSON.stringify(card.mean)}`);
  if (card.std !== undefined && !isNumberList(card.std, (n) => Number.isFinite(n) && n > 0)) {
    fail(`std must be a list of positive numbers, got ${JSON.stringify(card.std)}`);
  }
  if ((card.mean === undefined) !== (card.std === undefined)) fail('mean and std come together');
  if (
    card.classes !== undefined &&
    !(Array.isArray(card.classes) && card.classes.every((c) => typeof c === 'string'))
  ) {
    fail('classes must be a list of strings');
  }
  return card;
}

/** Parses a card's JSON; accepts top-level fields or an `input` object: { shape, normalization: { mean, std } }. */
export function parseModelCard(text: string, source: string): ModelCard {
  type Normalization = { mean?: number[]; std?: number[] };
  let card: ModelCard & { input?: { shape?: number[]; normalization?: Normalization }; normalization?: Normalization };
  try {
    card = JSON.parse(text);
  } catch (error) {
    throw new VbpError('DATA', `model card ${source} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof card !== 'object' || card === null || Array.isArray(card))
    throw new VbpError('DATA', `model card ${source} is not a JSON object`);
  const resolved: ModelCard = { ...card };
  const inputShape = card.inputShape ?? card.input?.shape;
  const mean = card.mean ?? card.input?.normalization?.mean ?? card.normalization?.mean;
  const std = card.std ?? card.input?.normalization?.std ?? card.normalization?.std;
  if (inputShape !== undefined) resolved.inputShape = inputShape;
  if (mean !== undefined) resolved.mean = mean;
  if (std !== undefined) resolved.std = std;
  return checkModelCard(resolved, source);
}

/**
 * The card beside `modelPath`, or undefined when there is none. A card that cannot be read is IO; a malformed one DATA.
 */
export function readModelCard(modelPath: string): ModelCard | undefined {
  const file = modelCardPath(modelPath);
  if (file === modelPath || !fs.existsSync(file)) return undefined;
  return parseModelCard(readFileChecked(file, 'model card').toString('utf8'), `'${file}'`);
}

/** The card's JSON text as torch-vbp writes it (beside the model and inside the archive). */
export function formatModelCard(card: ModelCard): string {
  return JSON.stringify(card, null, 2) + '\n';
}
