/** vbp inspect: MLP blocks, parameters and MACs of a model. */
import type { Command } from 'commander';
import { VbpError } from '../../errors';
import { blockMacs, blockParams, totalParams } from '../../model/accounting';
import { probeInput } from '../../model/model';
import type { MlpBlock } from '../../model/mlp';
import { gatherStats } from '../../statistics/gather';
import { formatCount, table } from '../../util/format';
import { parseShape } from '../args';
import { itemShapeOf, openModel, withCommon, withItemShapeHint, type GlobalOptions, type Run } from '../context';
import { print } from '../output';

/** vbp inspect's options, as commander gives them. */
interface InspectCommandOptions extends GlobalOptions {
  inputShape?: string;
}

async function inspect(file: string, options: InspectCommandOptions): Promise<void> {
  if (options.inputShape !== undefined) parseShape(options.inputShape, '--input-shape');
  const model = await openModel(file, options);
  try {
    const mlps: MlpBlock[] = await model.mlps().catch((error: VbpError) => {
      if (error.code === 'NO_MLP') return [];
      throw error;
    });
    const parameters = model.parameters();
    const shape = itemShapeOf(options, model.card);
    let macs: number | undefined;
    let tokens: number[] = [];
    if (shape) {
      await withItemShapeHint(shape, options.inputShape !== undefined, async () => {
        macs = (await model.macs([1, ...shape])).total;
        if (mlps.length) {
          const stats = await gatherStats(model, [probeInput([1, ...shape])]);
          tokens = stats.layers.map((_, i) => stats.tokensPerItem(i));
        }
      });
    }
    const blocks = mlps.map((m, i) => ({
      ...m,
      parameters: blockParams(m, parameters),
      macs: tokens.length ? blockMacs(m, tokens[i]) : undefined,
    }));
    const total = totalParams(parameters);
    const human = [
      `${file}: ${formatCount(total)} parameters${macs !== undefined ? `, ${formatCount(macs)} MACs per input [${shape}]` : ' (pass --input-shape C,H,W for MACs)'}`,
      mlps.length
        ? table(
            ['fc1', 'fc2', 'in -> hidden -> out', 'activation', 'params', 'MACs'],
            blocks.map((b) => [
              b.fc1,
              b.fc2,
              `${b.inFeatures} -> ${b.hidden} -> ${b.outFeatures}`,
              b.activation,
              formatCount(b.parameters),
              b.macs !== undefined ? formatCount(b.macs) : '',
            ]),
          )
        : 'no MLP block (Linear -> element-wise ops -> Linear) found',
    ].join('\n');
    print(options, human, {
      model: file,
      parameters: total,
      macs,
      inputShape: shape,
      card: model.card,
      submodules: model.submodules().length,
      mlps: blocks,
    });
  } finally {
    await model.dispose();
  }
}

export function registerInspect(program: Command, run: Run): void {
  withCommon(program.command('inspect').argument('<model>', 'TorchScript model file'))
    .description('list MLP blocks, parameters and MACs of a model')
    .option('--input-shape <C,H,W>', 'input item shape for MACs (default: from the model card)')
    .action((model: string, options: InspectCommandOptions) => run(options, () => inspect(model, options)));
}
