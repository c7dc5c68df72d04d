/**
 * What a fine-tuning checkpoint holds besides the weights and the optimizer's state (both native, inside the
 * same TorchScript archive): the settings, where in the data the run was, and the report so far. A resumed
 * run checks that its settings and its student match, so that it continues exactly the run it claims to.
 */
import { VbpError, callNativeSync } from '../errors';
import type { Model } from '../model/model';
import type { FinetuneReport } from './report';
import type { CheckpointSettings } from './settings';

/** The epoch in progress when the checkpoint was written. */
export interface PartialEpoch {
  steps: number;
  items: number;
  correct: number;
  lossSum: number;
  ms: number;
}

export interface CheckpointState {
  format: typeof FORMAT;
  version: 1;
  settings: CheckpointSettings;
  /** Steps done in all. */
  step: number;
  /** The epoch to continue, and what of it is done (none when it starts afresh). */
  epoch: number;
  partialEpoch?: PartialEpoch;
  report: FinetuneReport;
}

const FORMAT = 'torch-vbp-finetune';

export function checkpointState(
  settings: CheckpointSettings,
  report: FinetuneReport,
  epoch: number,
  partialEpoch: PartialEpoch | undefined,
): CheckpointState {
  return {
    format: FORMAT,
    version: 1,
    settings,
    step: report.steps,
    epoch,
    ...(partialEpoch ? { partialEpoch } : {}),
    report,
  };
}

function differences(saved: CheckpointSettings, current: CheckpointSettings): string[] {
  // Both sides' keys: a setting only one side has (worldSize, precision: absent means one process, fp32) counts.
  const keys = [...new Set([...Object.keys(current), ...Object.keys(saved)])] as Array<keyof CheckpointSettings>;
  return keys
    .filter((key) => JSON.stringify(saved[key]) !== JSON.stringify(current[key]))
    .map(
      (key) =>
        `${key}: ${JSON.stringify(saved[key]) ?? 'none'} in the checkpoint, ${JSON.stringify(current[key]) ?? 'none'} now`,
    );
}

/** The state inside a loaded checkpoint, checked against this run's settings and student. */
export function readCheckpointState(
  checkpoint: Model,
  file: string,
  settings: CheckpointSettings,
  student: Model,
): CheckpointState {
  const text = callNativeSync(() => checkpoint.handle.checkpointState());
  if (text === null)
    throw new VbpError(
      'INVALID_ARGUMENT',
      `resume: '${file}' is a model, not a fine-tuning checkpoint (it holds no training state)`,
    );
  let state: CheckpointState;
  try {
    state = JSON.parse(text) as CheckpointState;
  } catch (error) {
    throw new VbpError('DATA', `resume: the training state inside '${file}' is not valid JSON`, { cause: error });
  }
  if (
    state?.format !== FORMAT ||
    state.version !== 1 ||
    !Number.isInteger(state.step) ||
    !Number.isInteger(state.epoch) ||
    typeof state.report !== 'object'
  ) {
    throw new VbpError('DATA', `resume: the training state inside '${file}' is not a ${FORMAT} version 1 state`);
  }
  const changed = differences(state.settings, settings);
  if (changed.length > 0) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `resume: '${file}' was written by a run with other settings (${changed.join('; ')}); pass the same options to continue it`,
    );
  }
  const shapes = (m: Model) =>
    m
      .parameters()
      .map((p) => `${p.name}:${p.shape.join('x')}`)
      .join(',');
  if (shapes(checkpoint) !== shapes(student)) {
    throw new VbpError(
      'INVALID_ARGUMENT',
      `resume: '${file}' belongs to another model (its parameters differ from the student's)`,
    );
  }
  return state;
}
