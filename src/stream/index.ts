/**
 * The processing engine, as embedding code uses it (`kappa/engine`): the pipeline DSL users write,
 * the engine that runs it, loading a config, and the settings the CLI shows. A config file needs
 * only the DSL, which the package root (`kappa`, src/index.ts) re-exports.
 */
export * from './dsl-api/index.ts';
export { Stream, GroupedStream } from './dsl.ts';
export { type Scalar } from './dsl-aggregates.ts';
export { parseDuration } from './windows.ts';
export { compileView, type ViewPlan, type TaskState } from './plan.ts';
export {
  Engine,
  parseFrom,
  type EngineOptions,
  type TaskStatus,
  type ClusterStatus,
  type RequestResult,
  type ViewChange,
} from './engine.ts';
export type { DeadLetterTally } from './flush.ts';
export { loadApp, defaultConfigPath } from './config.ts';
export { FormattedValues, SchemaCatalog, jsonSafe, type TopicSchema } from './topic-schemas.ts';
export { formatReader } from './value-decoder.ts';
export { WORKER_HEAP_MB_DEFAULT } from './defaults/index.ts';
export { type ClusterOptions, COORDINATOR_TASK, assignTasks } from './cluster.ts';
