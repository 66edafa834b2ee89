/**
 * Compiles an output pipeline (`from(a).filter(...).map(...).to(b)`) into what its tasks run: for
 * each record, decode and check it against `a`'s schema, run the operators, and turn each value
 * that comes out into a record for `b`: checked against `b`'s schema, keyed and timed by `b`'s
 * extractors, JSON-encoded. The records collect in the task's `outputs`, in order; the engine
 * appends them at flush time with an idempotent producer, so a replay from the checkpoint re-sends
 * the same records under the same sequences and the log drops the copies.
 *
 * Determinism, which that relies on: the partition of every record is a function of the record
 * alone (murmur2 of its key as Kafka does; a record without a key goes to its source record's
 * partition number modulo `b`'s partitions), and nothing reads the wall clock.
 *
 * All or nothing per source record: every value it gives is built and checked before any is kept,
 * so a record whose pipeline throws, or one of whose values does not fit `b`'s schema, goes to
 * `<a>.dlq` whole and nothing of it reaches `b`. "Checked" covers everything the flush could trip
 * on: the value has a JSON form (no bigint, no cycle), the key is a string, number or boolean, and
 * the event time and the record timestamp are within the range of dates (as for views, see
 * windows.ts), so no single record can stop the pipeline at its flush. The one thing not undone
 * is what a stateful step (an alert's state) did before a later step threw.
 */
import { createHash } from 'node:crypto';
import { type LogRecord, partitionForKey } from '../log/index.ts';
import { type RecordSchema, compileSchema, describeIssues } from '../schema/index.ts';
import { BatchPositions } from './batch-positions.ts';
import type { KeyValue, OutputDef, TopicDef } from './dsl.ts';
import { describeValue } from './aggregates.ts';
import {
  FoldPause,
  type OutputRecord,
  type OutputSink,
  type TaskPlan,
  type TaskState,
  boundedReason,
  newTaskState,
  reasonOf,
} from './task-plan.ts';
import { sourceFieldsRead } from './fields-read.ts';
import { valueDecoder } from './value-decoder.ts';
import { TableWaitNeeded, joinLate, joinedTables } from './tables.ts';
import { eventTimeProblem } from './windows.ts';
import { type JsonBytes, JsonWriter, jsonText } from './json-bytes.ts';
import { opSignature, runOps } from './ops.ts';

export interface OutputPlan extends TaskPlan {
  kind: 'output';
  output: OutputDef;
  /** Partitions of the target topic, as the log has it (the config's count when the engine created it). */
  targetPartitions: number;
}

/** `targetPartitions`: the target topic's partition count in the log (records are routed by it). */
export function compileOutput(output: OutputDef, targetPartitions: number): OutputPlan {
  const source = output.stream.source;
  const ops = output.stream.ops;
  // Only the properties the pipeline reads are made (src/stream/fields-read.ts): when its last map
  // makes a new value; a record written on as it is (then: null) is decoded whole.
  const decodeValue = valueDecoder(source, sourceFieldsRead({ time: source.time, ops, then: null }));
  const maker = recordMaker(output.target, targetPartitions);
  const index = new BatchPositions();
  const values: unknown[] = [];
  const built: OutputRecord[] = [];

  const sourceTime = source.time;
  function processRecord(
    state: TaskState,
    buf: Buffer | null,
    start: number,
    length: number,
    timestamp: number,
    source: { record(i: number): LogRecord },
    i: number,
  ): void {
    // Emptied as cheaply as filled: most records make one value (setting `length` is a runtime call).
    if (values.length === 1) values.pop();
    else if (values.length > 0) values.length = 0;
    if (built.length > 0) built.length = 0; // filled only by records of several values
    maker.reset();
    // No closure here captures a local: one would make V8 allocate this call's variables on the heap, per record.
    let eventTimeMs: number; // of the record being run (stateful steps and joins are given it)
    try {
      const value = decodeValue(buf, start, length, state.catalog);
      try {
        eventTimeMs = sourceTime === null ? timestamp : sourceTime(value);
      } catch (err) {
        throw new TypeError(`pipeline: ${reasonOf(err)}`, { cause: err });
      }
      // An alert's state is keyed by event time; a time outside the range of dates would
      // poison it (and NaN compares false with everything).
      const problem = eventTimeProblem(eventTimeMs);
      if (problem !== null)
        throw new TypeError(
          `${sourceTime === null ? 'the record timestamp' : "the time extractor's event time"} ${problem}`,
        );
      if (state.tables !== null && joinedLate(state, source, i, eventTimeMs)) return;
      try {
        runOps(ops, value, 0, values, state.opState, eventTimeMs, state.tables);
      } catch (err) {
        throw new TypeError(`pipeline: ${reasonOf(err)}`, { cause: err });
      }
      // One value (most pipelines): its record goes to the sink at once, nothing after it can fail.
      if (values.length === 1) return maker.emit(values[0], state.partition, timestamp, state.outputs);
      for (let v = 0; v < values.length; v++) built.push(maker.toRecord(values[v], state.partition, timestamp));
    } catch (err) {
      if (err instanceof FoldPause) {
        err.offset = source.record(i).offset; // the task reads what it waits for, then runs again from this record
        throw err;
      }
      const reason = boundedReason(reasonOf(err));
      return void state.deadLetters.push({ record: source.record(i), partition: state.partition, reason });
    }
    pushAll(state.outputs, built);
  }

  return {
    kind: 'output',
    name: output.name,
    source,
    tables: joinedTables(ops),
    output,
    targetPartitions,
    fingerprint: fingerprintOf(output),
    newTaskState: (partition, watermarkMs) => newTaskState(partition, watermarkMs, 0),
    process(records, state) {
      const source = { record: (i: number) => records[i] };
      for (let i = 0; i < records.length; i++) {
        const v = records[i].value;
        processRecord(state, v, 0, v === null ? -1 : v.length, records[i].timestamp, source, i);
      }
    },
    processBatch(bytes, fromOffset, state) {
      const n = index.load(bytes, fromOffset);
      const decoded = index.bytes; // positions are in the decoded form (a compressed batch is inflated)
      for (let i = 0; i < n; i++) {
        const length = index.valueLength[i];
        processRecord(state, length < 0 ? null : decoded, index.valueStart[i], length, index.timestamps[i], index, i);
      }
      return n;
    },
  };
}

/** Hands `built` to the task's sink; an array (a state made outside a runner, as in tests) gets strings, not bytes. */
function pushAll(sink: OutputSink, built: readonly OutputRecord[]): void {
  if (Array.isArray(sink)) for (const r of built) sink.push({ ...r, value: jsonText(r.value) });
  else for (let b = 0; b < built.length; b++) sink.push(built[b]);
}

/** What makes the records for a target topic from the values a pipeline gives (see recordMaker). */
interface RecordMaker {
  /** The record of one value, its JSON in the writer's bytes (until `reset`) or a string; throws the dead-letter reason. */
  toRecord(value: unknown, partition: number, timestamp: number): OutputRecord;
  /**
   * Adds the record of one value to `sink`, its JSON written straight into the sink's batch when it
   * can; throws the dead-letter reason, having added nothing.
   */
  emit(value: unknown, partition: number, timestamp: number, sink: OutputSink): void;
  /** Starts the writer's bytes over: the values of the last source record were pushed (copied). */
  reset(): void;
}

/**
 * The record maker for `target` (`partition`: the value's source record's; `timestamp`: its source
 * record's timestamp): the value is checked against the target's schema, keyed, timed and
 * JSON-encoded, or the dead-letter reason thrown.
 */
function recordMaker(target: TopicDef<unknown>, targetPartitions: number): RecordMaker {
  const writer = new JsonWriter();
  const targetSchema: RecordSchema<unknown> | null = target.schema
    ? compileSchema(target.schema as object, { name: target.name })
    : null;
  const keyFn = target.key;
  const timeFn = target.time;
  // What `prepare` found for the value being made.
  let outPartition = 0;
  let outKey: string | null = null;
  let outTime = 0;
  return {
    toRecord(value, partition, timestamp) {
      prepare(value, partition, timestamp);
      let bytes: JsonBytes | null;
      try {
        bytes = writer.write(value);
      } catch (err) {
        throw notJson(err); // a getter that throws
      }
      return { partition: outPartition, key: outKey, value: bytes ?? stringified(value), timestamp: outTime };
    },
    emit(value, partition, timestamp, sink) {
      prepare(value, partition, timestamp);
      let written: boolean | undefined;
      try {
        written = sink.pushWritten?.(outPartition, outKey, outTime, writer, value);
      } catch (err) {
        throw notJson(err); // a getter that throws
      }
      if (written !== true)
        sink.push({ partition: outPartition, key: outKey, value: stringified(value), timestamp: outTime });
    },
    reset: () => writer.reset(),
  };

  function prepare(value: unknown, partition: number, timestamp: number): void {
    if (value === undefined) throw new TypeError('pipeline: the value written to() is undefined');
    if (targetSchema !== null && !targetSchema.validate(value))
      throw new TypeError(
        `output to topic "${target.name}" does not match its schema: ${describeIssues(targetSchema.lastIssues())}`,
      );
    outKey = keyFn === null ? null : keyOf(value);
    let time = timestamp;
    if (timeFn !== null) {
      try {
        time = timeFn(value);
      } catch (err) {
        throw new TypeError(`the time extractor of topic "${target.name}" threw: ${reasonOf(err)}`, { cause: err });
      }
      const problem = eventTimeProblem(time);
      if (problem !== null)
        throw new TypeError(`the time extractor of topic "${target.name}" returned a time that ${problem}`);
    }
    outTime = Math.trunc(time);
    outPartition =
      outKey === null
        ? partition % targetPartitions
        : targetPartitions === 1
          ? 0
          : partitionForKey(outKey, targetPartitions);
  }

  function keyOf(value: unknown): string | null {
    let k: KeyValue;
    try {
      k = keyFn!(value);
    } catch (err) {
      throw new TypeError(`the key extractor of topic "${target.name}" threw: ${reasonOf(err)}`, { cause: err });
    }
    if (k === null || k === undefined) return null;
    if (typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'boolean' && typeof k !== 'bigint') {
      throw new TypeError(
        `the key extractor of topic "${target.name}" returned ${describeValue(k)}; keys must be strings, numbers or booleans`,
      );
    }
    return String(k);
  }
}

/** `value` as JSON.stringify writes it; throws the dead-letter reason when it has no JSON form. */
function stringified(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value) as string | undefined;
  } catch (err) {
    throw notJson(err);
  }
  if (json === undefined)
    throw new TypeError(`pipeline: the value written to() has no JSON form (${describeValue(value)})`);
  return json;
}

function notJson(err: unknown): TypeError {
  return new TypeError(`pipeline: the value written to() cannot be encoded as JSON (${reasonOf(err)})`, { cause: err });
}

function fingerprintOf(output: OutputDef): string {
  const parts = {
    source: output.stream.source.name,
    schema: output.stream.source.schema,
    ops: output.stream.ops.map(opSignature),
    fromStart: output.fromStart === true,
    target: output.target.name,
    targetSchema: output.target.schema,
    key: output.target.key?.toString() ?? null,
    time: output.target.time?.toString() ?? null,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/**
 * A joining output's step before its pipeline: waits for the tables to be read up to `t`, sends a
 * record too late for its stream–stream join to the late topic (true), or moves the task's event time
 * on, which its checkpoint keeps so that a restart judges lateness as this run did.
 */
function joinedLate(state: TaskState, source: { record(i: number): LogRecord }, i: number, t: number): boolean {
  const tables = state.tables!;
  if (!tables.ready(t)) throw new TableWaitNeeded(t);
  if (tables.late(t)) {
    joinLate(state, source.record(i), t);
    return true;
  }
  state.watermarkMs = state.maxEventTimeMs = tables.cursorMs;
  return false;
}
