/**
 * The processing engine, as embedding code uses it (`kappa/engine`): the pipeline DSL users write,
 * the engine that runs it, loading a config, and the settings the CLI shows. A config file needs
 * only the DSL, which the package root (`kappa`, src/index.ts) re-exports.
 */
export {
  topic,
  from,
  view,
  defineApp,
  Stream,
  GroupedStream,
  type TopicDef,
  type ViewDef,
  type OutputDef,
  type AppDef,
  type Aggregation,
  type InferRow,
  type WindowColumns,
  type KeyValue,
  type ViewOptions,
  type TopicOptions,
  type ServerConfig,
  type TokenConfig,
  type WebhookConfig,
} from './dsl.ts';
export {
  count,
  sum,
  min,
  max,
  avg,
  first,
  last,
  aggregate,
  type TypedAggregate,
  type Scalar,
} from './dsl-aggregates.ts';
export type { Aggregate, CustomAggregate } from './aggregates.ts';
export { tumbling, hopping, parseDuration, type WindowSpec, type WindowOptions, type Duration } from './windows.ts';
export { compileView, type ViewPlan, type TaskState } from './plan.ts';
export {
  Engine,
  parseFrom,
  type EngineOptions,
  type TaskStatus,
  type RequestResult,
  type ViewChange,
} from './engine.ts';
export { loadApp, defaultConfigPath } from './config.ts';
export { WORKER_HEAP_MB_DEFAULT } from './worker-pool.ts';
export {
  threshold,
  anomaly,
  alertsTopic,
  AlertSchema,
  type Alert,
  type Severity,
  type ThresholdRule,
  type AnomalyRule,
} from './alerts.ts';
