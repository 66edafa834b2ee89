/**
 * Compiles a view definition into what a task runs: the physical table definition, the
 * fingerprint, and `process`, one synchronous function over a whole batch of log records that
 * folds them into the task's dirty rows. No Promise and no closure per event; the only per-event
 * allocations are the decoded value and (for new groups) the row.
 *
 * Event time and determinism: an event's time is the topic's time extractor or the record
 * timestamp; the watermark is the newest event time seen by the task minus the allowed
 * out-of-orderness, and it only moves forward. Nothing here reads the wall clock, so a replay of
 * the same records from the same checkpoint makes the same rows, the same late records and the
 * same dead letters.
 */
import { createHash } from 'node:crypto';
import type { LogRecord } from '../log/index.ts';
import { type RecordSchema, compileSchema, describeIssues } from '../schema/index.ts';
import type { KeyColumn, OutputColumn, StateColumn, ViewDefinition } from '../view/types.ts';
import type { Aggregate } from './aggregates.ts';
import type { KeyValue, Op, ViewDef } from './dsl.ts';
import { windowStarts } from './windows.ts';

export interface DirtyRow {
  key: KeyValue[];
  state: unknown[];
}

/** A record that could not be processed, bound for `<topic>.dlq`. */
export interface DeadLetter {
  record: LogRecord;
  partition: number;
  reason: string;
}

/** An event later than the allowed lateness, bound for the late topic. */
export interface LateEvent {
  record: LogRecord;
  partition: number;
  eventTimeMs: number;
  watermarkMs: number;
}

/** Everything a task carries between batches and flushes. */
export interface TaskState {
  partition: number;
  /** Rows touched since the last flush, by key. */
  dirty: Map<string, DirtyRow>;
  maxEventTimeMs: number;
  watermarkMs: number;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  /** Group-key column names, fixed by the first group seen (or by the store's existing table). */
  keyNames: string[] | null;
}

export interface ViewPlan {
  view: ViewDef;
  fingerprint: string;
  windowed: boolean;
  stateWidth: number;
  /** The table definition; key column types are inferred from a sample row. */
  /** The table definition; key column types are inferred from a sample row, or taken as given (the stored ones). */
  definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): ViewDefinition;
  newTaskState(partition: number, watermarkMs: number): TaskState;
  /** Folds a batch of records (all with offsets >= the task's position) into `state`. */
  process(records: readonly LogRecord[], state: TaskState): void;
}

export const NO_WATERMARK = -8.64e15;

function fingerprintOf(view: ViewDef): string {
  const a = view.aggregation;
  const parts = {
    source: a.stream.source.name,
    schema: a.stream.source.schema,
    time: a.stream.source.time?.toString() ?? null,
    ops: a.stream.ops.map((op) => `${op.kind}:${op.fn.toString()}`),
    window: a.stream.windowSpec,
    key: a.keyFn.toString(),
    aggregates: Object.entries(a.aggregates).map(([name, agg]) => `${name}=${agg.signature}`),
    outOfOrdernessMs: view.outOfOrdernessMs,
    allowedLatenessMs: view.allowedLatenessMs,
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

function sqlType(v: KeyValue): 'INTEGER' | 'REAL' | 'TEXT' {
  if (typeof v === 'number') return Number.isInteger(v) ? 'INTEGER' : 'REAL';
  if (typeof v === 'boolean') return 'INTEGER';
  return 'TEXT';
}

const KEY_NAME = /^[a-z_][a-z0-9_]*$/i;

export function compileView(view: ViewDef): ViewPlan {
  const agg = view.aggregation;
  const source = agg.stream.source;
  const ops: readonly Op[] = agg.stream.ops;
  const windowSpec = agg.stream.windowSpec;
  const keyFn = agg.keyFn;
  const timeFn = source.time;
  const schema: RecordSchema<unknown> | null = source.schema ? compileSchema(source.schema as object, { name: source.name }) : null;
  const aggs: { name: string; agg: Aggregate<unknown>; slot: number }[] = [];
  let width = 0;
  for (const [name, a] of Object.entries(agg.aggregates)) {
    aggs.push({ name, agg: a, slot: width });
    width += a.stateColumns(name).length;
  }
  const outOfOrdernessMs = view.outOfOrdernessMs;
  const allowedLatenessMs = view.allowedLatenessMs;

  function newRow(state: TaskState, keyValues: KeyValue[]): DirtyRow {
    const row: DirtyRow = { key: keyValues, state: new Array(width) };
    for (const a of aggs) a.agg.init(row.state, a.slot);
    return row;
  }

  /** The row key of `value` (group-key fields, then the window bounds) and its map key. */
  function keyOf(state: TaskState, value: unknown, windowStart: number | null): { k: string; keyValues: KeyValue[] } {
    const keyObj = keyFn(value);
    if (keyObj === null || typeof keyObj !== 'object') throw new TypeError(`groupBy() must return an object of key fields, got ${JSON.stringify(keyObj)}`);
    let names = state.keyNames;
    if (names === null) {
      names = Object.keys(keyObj);
      for (const n of names) {
        if (!KEY_NAME.test(n) || n === 'window_start' || n === 'window_end') throw new TypeError(`group key field "${n}" is not usable as a column name`);
      }
      state.keyNames = names;
    }
    const keyValues: KeyValue[] = new Array(names.length + (windowStart === null ? 0 : 2));
    for (let i = 0; i < names.length; i++) {
      const v = keyObj[names[i]];
      if (v === undefined || (v !== null && typeof v === 'object')) throw new TypeError(`group key field "${names[i]}" is ${JSON.stringify(v)}; keys must be strings, numbers, booleans or null`);
      keyValues[i] = typeof v === 'boolean' ? Number(v) : v;
    }
    if (windowStart !== null) {
      keyValues[names.length] = windowStart;
      keyValues[names.length + 1] = windowStart + windowSpec!.sizeMs;
    }
    const k = keyValues.length === 1 ? String(keyValues[0]) + (typeof keyValues[0] === 'string' ? 's' : 'n') : JSON.stringify(keyValues);
    return { k, keyValues };
  }

  function fold(state: TaskState, k: string, keyValues: KeyValue[], value: unknown, timeMs: number): void {
    let row = state.dirty.get(k);
    if (!row) {
      row = newRow(state, keyValues);
      state.dirty.set(k, row);
    }
    for (let i = 0; i < aggs.length; i++) aggs[i].agg.add(row.state, aggs[i].slot, value, timeMs);
  }

  /** Runs the operator chain from op `i` on, collecting the values that survive into `out`. */
  function run(value: unknown, i: number, out: unknown[]): void {
    for (; i < ops.length; i++) {
      const op = ops[i];
      if (op.kind === 'filter') {
        if (!op.fn(value)) return;
      } else if (op.kind === 'map') value = op.fn(value);
      else {
        for (const v of op.fn(value)) run(v, i + 1, out);
        return;
      }
    }
    out.push(value);
  }

  function process(records: readonly LogRecord[], state: TaskState): void {
    for (let r = 0; r < records.length; r++) {
      const record = records[r];
      let value: unknown;
      let timeMs: number;
      try {
        if (record.value === null) throw new TypeError('the record has no value');
        if (schema) {
          const decoded = schema.decode(record.value);
          if (!decoded.ok) throw new TypeError(`schema: ${describeIssues(decoded.issues)}`);
          value = decoded.value;
        } else {
          try {
            value = JSON.parse(record.value.toString('utf8'));
          } catch (err) {
            throw new TypeError(`the value is not JSON (${(err as Error).message})`, { cause: err });
          }
        }
        timeMs = timeFn ? timeFn(value) : record.timestamp;
        if (typeof timeMs !== 'number' || !Number.isFinite(timeMs)) throw new TypeError(`the time extractor returned ${JSON.stringify(timeMs)}, not a time in ms`);
      } catch (err) {
        state.deadLetters.push({ record, partition: state.partition, reason: (err as Error).message });
        continue;
      }
      if (timeMs > state.maxEventTimeMs) {
        state.maxEventTimeMs = timeMs;
        const wm = timeMs - outOfOrdernessMs;
        if (wm > state.watermarkMs) state.watermarkMs = wm;
      }
      let windows: number[] | null = null;
      if (windowSpec) {
        const all = windowStarts(windowSpec, timeMs);
        windows = [];
        for (const s of all) if (s + windowSpec.sizeMs + allowedLatenessMs > state.watermarkMs) windows.push(s);
        if (windows.length === 0) {
          state.late.push({ record, partition: state.partition, eventTimeMs: timeMs, watermarkMs: state.watermarkMs });
          continue;
        }
      }
      // Every user function (operators, then group keys) runs before anything is folded, so a
      // record whose pipeline throws goes to the dead-letter topic having changed no row.
      let keyed: { k: string; keyValues: KeyValue[]; value: unknown }[];
      try {
        const outs: unknown[] = [];
        run(value, 0, outs);
        keyed = [];
        for (const v of outs) {
          if (windows === null) keyed.push({ ...keyOf(state, v, null), value: v });
          else for (const w of windows) keyed.push({ ...keyOf(state, v, w), value: v });
        }
      } catch (err) {
        state.deadLetters.push({ record, partition: state.partition, reason: `pipeline: ${(err as Error).message}` });
        continue;
      }
      for (const x of keyed) fold(state, x.k, x.keyValues, x.value, timeMs);
    }
  }

  function definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): ViewDefinition {
    // Key column types come from a sample row when the table is first created, or from the
    // stored definition when it already exists (so a restart re-registers the same table).
    const keyColumns: KeyColumn[] = Array.isArray(sample) ? sample.slice() : keyNames.map((name, i) => ({ name, type: sqlType(sample.key[i]) }));
    if (windowSpec && !Array.isArray(sample)) keyColumns.push({ name: 'window_start', type: 'INTEGER' }, { name: 'window_end', type: 'INTEGER' });
    const stateColumns: StateColumn[] = [];
    const outputColumns: OutputColumn[] = [];
    for (const a of aggs) {
      stateColumns.push(...a.agg.stateColumns(a.name));
      outputColumns.push(a.agg.outputColumn(a.name));
    }
    return { name: view.name, version, fingerprint, keyColumns, stateColumns, outputColumns };
  }

  const fingerprint = fingerprintOf(view);
  return {
    view,
    fingerprint,
    windowed: windowSpec !== null,
    stateWidth: width,
    definition,
    newTaskState: (partition, watermarkMs) => ({ partition, dirty: new Map(), maxEventTimeMs: watermarkMs === NO_WATERMARK ? NO_WATERMARK : watermarkMs + outOfOrdernessMs, watermarkMs, deadLetters: [], late: [], keyNames: null }),
    process,
  };
}
