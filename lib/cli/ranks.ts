/**
 * A command as one rank of a data-parallel run: under vbp launch, torchrun --no-python, Slurm's srun or a
 * Kubernetes Indexed Job (RANK and WORLD_SIZE in the environment, README "Several processes"), the data commands
 * join that group before any work; every rank computes, rank 0 alone writes outputs and shows progress.
 */
import { distributedFromEnv, distributedInfo, initDistributed, type DistributedInfo } from '../distributed/group';

/** Joins the group the environment names; null when it names none. */
export async function joinGroupFromEnvironment(): Promise<DistributedInfo | null> {
  if (distributedInfo()) return distributedInfo();
  return distributedFromEnv() ? initDistributed() : null;
}

/** Whether this process writes the command's outputs: rank 0 of a group, or a process on its own. */
export function writesOutputs(): boolean {
  return (distributedInfo()?.rank ?? 0) === 0;
}
