/**
 * The pipeline DSL a `kappa.config.ts` needs (topics, streams, views, outputs, aggregates, windows,
 * alerts, defineApp), as one list: the package root (`kappa`, src/index.ts) and the engine entry
 * (`kappa/engine`, src/stream/index.ts) both re-export it. Re-exports only. `Stream` and
 * `GroupedStream` are types here; `kappa/engine` exports the classes too.
 */
export {
  topic,
  from,
  view,
  defineApp,
  type Stream,
  type GroupedStream,
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
  type KafkaConfig,
  type TokenConfig,
  type WebhookConfig,
} from '../dsl.ts';
export { table, type TableDef, type TableOptions, type WindowJoinOptions } from '../tables.ts';
export { avro, protobuf, jsonSchema, type TopicFormat, type FormatOptions } from '../dsl-formats.ts';
export {
  count,
  sum,
  min,
  max,
  avg,
  first,
  last,
  aggregate,
  countDistinct,
  topN,
  type TypedAggregate,
} from '../dsl-aggregates.ts';
export type { Aggregate, CustomAggregate } from '../aggregates.ts';
export { tumbling, hopping, session, type WindowSpec, type WindowOptions, type Duration } from '../windows.ts';
export {
  threshold,
  anomaly,
  alertsTopic,
  AlertSchema,
  type Alert,
  type Severity,
  type ThresholdRule,
  type AnomalyRule,
} from '../alerts.ts';
