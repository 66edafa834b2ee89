/** The processing engine: the pipeline DSL users write, and the engine that runs it. */
export { topic, from, view, defineApp, Stream, GroupedStream, type TopicDef, type ViewDef, type OutputDef, type AppDef, type Aggregation, type KeyValue, type ViewOptions, type TopicOptions, type ServerConfig, type TokenConfig, type WebhookConfig } from './dsl.ts';
export { count, sum, min, max, avg, first, last, aggregate, type Aggregate, type CustomAggregate } from './aggregates.ts';
export { tumbling, hopping, parseDuration, type WindowSpec, type Duration } from './windows.ts';
export { compileView, type ViewPlan, type TaskState } from './plan.ts';
export { Engine, parseFrom, type EngineOptions, type TaskStatus, type RequestResult, type ViewChange } from './engine.ts';
export { loadApp, defaultConfigPath } from './config.ts';
export { threshold, anomaly, alertsTopic, AlertSchema, type Alert, type Severity, type ThresholdRule, type AnomalyRule } from './alerts.ts';
