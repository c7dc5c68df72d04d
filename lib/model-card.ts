/**
 * A model card: the JSON file beside a model (model.pt -> model.json) saying what input the model expects
 * (shape, normalisation) and what its outputs mean (classes). Optional; the CLI uses it for defaults.
 */
import fs from 'node:fs';
import { VbpError } from './errors';

export interface ModelCard {
  /** One item's shape, e.g. [1, 28, 28]. */
  inputShape?: number[];
  mean?: number[];
  std?: number[];
  classes?: string[];
  /** Anything else the card says (training set-up, accuracy, licence...). */
  [key: string]: unknown;
}

export function modelCardPath(modelPath: string): string {
  return modelPath.replace(/\.(pt|pth|torchscript)$/i, '') + '.json';
}

/** The card beside `modelPath`, or undefined when there is none. */
export function readModelCard(modelPath: string): ModelCard | undefined {
  const file = modelCardPath(modelPath);
  if (!fs.existsSync(file)) return undefined;
  try {
    // Accepts top-level fields or an `input` object: { shape, normalization: { mean, std } }.
    type Normalization = { mean?: number[]; std?: number[] };
    const card = JSON.parse(fs.readFileSync(file, 'utf8')) as ModelCard & {
      input?: { shape?: number[]; normalization?: Normalization };
      normalization?: Normalization;
    };
    return {
      ...card,
      inputShape: card.inputShape ?? card.input?.shape,
      mean: card.mean ?? card.input?.normalization?.mean ?? card.normalization?.mean,
      std: card.std ?? card.input?.normalization?.std ?? card.normalization?.std,
    };
  } catch (error) {
    throw new VbpError('IO', `model card '${file}' is not valid JSON: ${(error as Error).message}`);
  }
}
