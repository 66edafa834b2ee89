/**
 * The tasks of output pipelines (`from(a)....to(b)`, and alerts): one per partition of the source
 * topic, each from its checkpoint in the control store (or from the start of the source, every
 * time, for a pipeline with a stateful step, whose state lives only in memory). Each task writes
 * its derived topic through an idempotent producer whose id is stable across restarts (see
 * flush.ts), so records re-sent after a crash are dropped by the log.
 */
import type { Log, Logger, TopicInfo } from '../log/index.ts';
import type { ControlStore, OutputCheckpoint } from '../view/index.ts';
import type { TaskFence } from '../view/index.ts';
import type { AppDef, OutputDef } from './dsl.ts';
import { producerId } from './flush.ts';
import { type OutputPlan, compileOutput } from './output-plan.ts';
import { NO_WATERMARK } from './task-plan.ts';
import type { Task, TaskLoop } from './task-loop.ts';

export interface OutputTasksOptions {
  log: Log;
  control: ControlStore;
  app: AppDef;
  logger: Logger;
  loop: TaskLoop;
  /** Creates a topic the log does not have yet (the engine's, which logs it). */
  ensureTopic: (name: string, partitions: number, retentionMs: number) => Promise<void>;
}

/** What every task of an output shares: its topics, its plan, and the checkpoints saved so far. */
interface OutputContext {
  output: OutputDef;
  source: TopicInfo;
  target: TopicInfo;
  plan: OutputPlan;
  saved: OutputCheckpoint[];
}

async function outputContext(opts: OutputTasksOptions, output: OutputDef): Promise<OutputContext> {
  const { log } = opts;
  const source = await log.topic(output.stream.source.name);
  const target = await log.topic(output.target.name);
  await opts.ensureTopic(`${source.name}.dlq`, source.partitions, -1);
  const plan = compileOutput(output, target.partitions);
  if (plan.tables.some((t) => t.window !== null)) await opts.ensureTopic(`${source.name}.late`, source.partitions, -1);
  return { output, source, target, plan, saved: await opts.control.outputCheckpoints(output.name) };
}

/** Adds the tasks of `output` to the loop, not yet running. */
export async function addOutputTasks(opts: OutputTasksOptions, output: OutputDef): Promise<void> {
  const ctx = await outputContext(opts, output);
  if (ctx.saved.length === 0 && !output.fromStart) await warnIfRenamed(opts, output);
  for (let p = 0; p < ctx.source.partitions; p++) await addOutputTask(opts, ctx, p, null);
}

/**
 * In a cluster: opens the output's task for partition `p` once this process holds its lease, from
 * the checkpoint as committed now (another process may have moved it), not yet running.
 */
export async function openOutputTask(
  opts: OutputTasksOptions,
  output: OutputDef,
  p: number,
  fence: TaskFence,
  stop: AbortSignal,
): Promise<Task> {
  return addOutputTask(opts, await outputContext(opts, output), p, fence, stop);
}

async function addOutputTask(
  opts: OutputTasksOptions,
  ctx: OutputContext,
  p: number,
  fence: TaskFence | null,
  stop?: AbortSignal,
): Promise<Task> {
  const { output, source, target, plan, saved } = ctx;
  // A pipeline with a stateful step rebuilds its state from the start of its source every time.
  const cp = output.fromStart ? undefined : saved.find((c) => c.topic === source.name && c.partition === p);
  const offset = cp ? cp.offset : (await opts.log.offsets(source.name, p)).start;
  const sequences = Array.from({ length: target.partitions }, (_, q) => cp?.sequences[q] ?? 0);
  const savedOffset = saved.find((c) => c.topic === source.name && c.partition === p)?.offset ?? 0;
  const producer = { plan, id: outputProducerId(output, source, target, p), sequences, savedOffset };
  return opts.loop.add({
    plan,
    group: null,
    producer,
    partition: p,
    offset,
    // A stream–stream join judges lateness by it, so a restart judges as the run before it did.
    watermarkMs: cp?.watermark ?? NO_WATERMARK,
    keyNames: null,
    pooled: true,
    fence,
    stop,
  });
}

/**
 * The idempotent producer an output task writes its target partition under: the same across
 * restarts, so what a task sends again after a crash or (for a detector) a replay is dropped.
 *
 * A detector (fromStart) numbers its records from 0 at every start and counts on its replay to
 * give the same records again. That holds only while its source keeps its history: once the
 * source was deleted and created again (`kappa topics delete --force`), the replay gives other
 * alerts, whose numbers the log has seen under this producer, and it would drop them as re-sent.
 * A source newer than the target marks that new history, so its creation time joins the id: a new
 * producer, whose numbering the log starts afresh, and still the same one at every start. (A
 * source created before its target, as `kappa start` creates a config's topics, keeps the id it
 * always had.)
 */
function outputProducerId(output: OutputDef, source: TopicInfo, target: TopicInfo, partition: number): number {
  const id = ['output', output.name, source.name, partition];
  return output.fromStart && source.createdAtMs > target.createdAtMs
    ? producerId(...id, source.createdAtMs)
    : producerId(...id);
}

/**
 * An output with no checkpoint starts from the beginning of its source. If an output that is no
 * longer in the config read the same topic, this may be that one renamed, and its records would
 * be written to the target again: say so, and how to keep its checkpoint.
 */
async function warnIfRenamed(opts: OutputTasksOptions, output: OutputDef): Promise<void> {
  const { app, logger, control } = opts;
  const current = new Set((app.outputs ?? []).map((o) => o.name));
  for (const name of await control.outputs()) {
    if (current.has(name)) continue;
    const cps = (await control.outputCheckpoints(name)).filter((c) => c.topic === output.stream.source.name);
    if (cps.length === 0) continue;
    logger.warn(
      `output ${output.name} starts from the beginning of topic ${output.stream.source.name}, and output ${name}, no longer in the config, had read it up to offsets ${cps.map((c) => `${c.partition}:${c.offset}`).join(', ')}. ` +
        `If ${output.name} is ${name} renamed, its records are being written to ${output.target.name} again: stop now and keep the old name with .to(${output.target.name}, { name: '${name}' }).`,
    );
  }
}
