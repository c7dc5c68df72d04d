/**
 * What an MLP block and each of its hidden neurons cost: the one place where parameters and MACs of MLP
 * blocks are counted (plans, prune reports, inspect and the demo all use it).
 */
import type { ParameterInfo } from './model';

/** What the arithmetic needs to know of a block. */
interface BlockShape {
  fc1: string;
  fc2: string;
  inFeatures: number;
  hidden: number;
  outFeatures: number;
}

/** Parameters one hidden neuron carries: its fc1 row, its fc1 bias entry (if fc1 has a bias) and its fc2 column. */
export function paramsPerNeuron(block: BlockShape, parameters: readonly ParameterInfo[]): number {
  const hasFc1Bias = parameters.some((p) => p.name === `${block.fc1}.bias`);
  return block.inFeatures + block.outFeatures + (hasFc1Bias ? 1 : 0);
}

/** Multiply-accumulates one hidden neuron costs per input item: its fc1 row and fc2 column, once per token. */
export function macsPerNeuron(block: BlockShape, tokensPerItem: number): number {
  return tokensPerItem * (block.inFeatures + block.outFeatures);
}

/** Multiply-accumulates of a block's fc1 and fc2 per input item at a given width. */
export function blockMacs(block: BlockShape, tokensPerItem: number, hidden = block.hidden): number {
  return hidden * macsPerNeuron(block, tokensPerItem);
}

/** All parameters of a block's two layers (weights and biases), as the model holds them. */
export function blockParams(block: BlockShape, parameters: readonly ParameterInfo[]): number {
  const names = new Set([`${block.fc1}.weight`, `${block.fc1}.bias`, `${block.fc2}.weight`, `${block.fc2}.bias`]);
  return parameters.reduce((total, p) => total + (names.has(p.name) ? p.numel : 0), 0);
}

export function totalParams(parameters: readonly ParameterInfo[]): number {
  return parameters.reduce((total, p) => total + p.numel, 0);
}
