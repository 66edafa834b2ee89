/**
 * Compiles a view definition into what a task runs: the physical table definition, the
 * fingerprint, and `processBatch`, one synchronous function over a whole RecordBatch that folds its
 * records into the task's dirty rows (`process` does the same for records already decoded).
 * No Promise, closure or object of ours per event: records are read in place (batch-index.ts),
 * rows are found by their key values (dirty-rows.ts), and a full record is built only for a side
 * output. What is left per event is the decoded value and what the user's functions return. On
 * the process bench this folds at about 0.85 of a bare UTF-8 decode + JSON.parse loop.
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
import { compileFlatDecoder } from '../schema/flat-decoder.ts';
import { validateDefinition } from '../view/definition.ts';
import type { KeyColumn, OutputColumn, StateColumn, VersionTable } from '../view/types.ts';
import { type Aggregate, AggInputs, describeValue, scalarProblem } from './aggregates.ts';
import { BatchPositions } from './batch-positions.ts';
import { type DirtyRow, DirtyRows } from './dirty-rows.ts';
import type { KeyValue, Op, TopicDef, ViewDef } from './dsl.ts';
import { eventTimeProblem, windowProblem, windowStarts } from './windows.ts';

export type { DirtyRow } from './dirty-rows.ts';

/** Where a fold gets the full record of an event it sends to a side output. */
interface RecordSource {
  record(i: number): LogRecord;
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

/** A value bound for a derived topic (`Stream.to`), encoded; strings so it crosses threads cheaply. */
export interface OutputRecord {
  partition: number;
  key: string | null;
  value: string;
  timestamp: number;
}

/** Everything a task carries between batches and flushes. */
export interface TaskState {
  partition: number;
  /** Rows touched since the last flush, by key. */
  dirty: DirtyRows;
  maxEventTimeMs: number;
  watermarkMs: number;
  deadLetters: DeadLetter[];
  late: LateEvent[];
  /** Records for the derived topic of an output pipeline, in order (always empty for a view). */
  outputs: OutputRecord[];
  /** Group-key column names, fixed by the first group seen (or by the store's existing table). */
  keyNames: string[] | null;
  /** The state of each stateful step (by its index among the steps); outputs only. */
  opState: Map<number, Map<unknown, unknown>>;
}

/** What a task runs, for a view (compileView) or a derived-topic output (compileOutput). */
export interface TaskPlan {
  kind: 'view' | 'output';
  /** The view's or output's name. */
  name: string;
  source: TopicDef<unknown>;
  fingerprint: string;
  newTaskState(partition: number, watermarkMs: number): TaskState;
  /** Processes a batch of records (all with offsets >= the task's position) into `state`. */
  process(records: readonly LogRecord[], state: TaskState): void;
  /** Decodes one RecordBatch (its bytes, CRC already checked) and processes its records from `fromOffset` on; returns how many. */
  processBatch(bytes: Buffer, fromOffset: number, state: TaskState): number;
}

export interface ViewPlan extends TaskPlan {
  kind: 'view';
  view: ViewDef;
  windowed: boolean;
  stateWidth: number;
  /** The table definition; key column types are inferred from a sample row, or taken as given (the stored ones). */
  definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): VersionTable;
}

export function newTaskState(partition: number, watermarkMs: number, outOfOrdernessMs: number): TaskState {
  return {
    partition,
    dirty: new DirtyRows(),
    maxEventTimeMs: watermarkMs === NO_WATERMARK ? NO_WATERMARK : watermarkMs + outOfOrdernessMs,
    watermarkMs,
    deadLetters: [],
    late: [],
    outputs: [],
    keyNames: null,
    opState: new Map(),
  };
}

export const NO_WATERMARK = -8.64e15;

/** Longest dead-letter reason kept (it travels in a record header); a longer one is cut. */
export const REASON_CHARS_MAX = 1000;

/**
 * The dead-letter reason for what a user function threw: its message, or the thrown value itself
 * when it is no Error (`throw null` must not turn into a TypeError of ours that stops the task).
 */
export function reasonOf(err: unknown): string {
  try {
    const message = (err as { message?: unknown } | null)?.message;
    return typeof message === 'string' ? message : String(err);
  } catch {
    return 'an exception that cannot be shown as text';
  }
}

export function boundedReason(reason: string): string {
  return reason.length <= REASON_CHARS_MAX ? reason : `${reason.slice(0, REASON_CHARS_MAX)}...`;
}

/**
 * Buffer's own UTF-8 decode of a byte range, which Buffer#toString calls after normalising its
 * arguments; that wrapper cost a tenth of a record's decode + JSON.parse on the process bench.
 * It is not in Node's typings, so it is looked up once, with toString as the fallback.
 */
const utf8Slice = typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === 'function' ? ((Buffer.prototype as unknown as { utf8Slice: (start: number, end: number) => string }).utf8Slice) : null;

/**
 * The function a task decodes record values with: `buf[start, start + length)` (buf null for a
 * null value) → the value, UTF-8 and JSON decoded and checked against the topic's schema. Throws
 * a TypeError whose message is the dead-letter reason.
 */
export function valueDecoder(source: TopicDef<unknown>): (buf: Buffer | null, start: number, length: number) => unknown {
  const schema: RecordSchema<unknown> | null = source.schema ? compileSchema(source.schema as object, { name: source.name }) : null;
  // The common case (a compact object of declared scalar properties) skips JSON.parse; anything
  // else falls back to it (src/schema/flat-decoder.ts). The schema check runs either way.
  const flat = source.schema ? compileFlatDecoder(source.schema as object) : null;

  /** With a schema: the bytes as the schema's strict decode sees them (UTF-8 checked, a BOM skipped); throws the dead-letter reason. */
  function strictDecode(bytes: Uint8Array): unknown {
    const decoded = schema!.decode(bytes);
    if (!decoded.ok) throw new TypeError(`schema: ${describeIssues(decoded.issues)}`);
    return decoded.value;
  }

  /** The value in `buf[start, start + length)`, decoded and checked; throws the dead-letter reason. */
  function decodeValue(buf: Buffer | null, start: number, length: number): unknown {
    if (buf === null) throw new TypeError('the record has no value');
    if (flat !== null) {
      const fast = flat(buf, start, start + length);
      if (fast !== undefined) {
        if (!schema!.validate(fast)) throw new TypeError(`schema: ${describeIssues(schema!.lastIssues())}`);
        return fast;
      }
    }
    const text = utf8Slice === null ? buf.toString('utf8', start, start + length) : utf8Slice.call(buf, start, start + length);
    if (schema === null) {
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new TypeError(`the value is not JSON (${(err as Error).message})`, { cause: err });
      }
    }
    // Buffer#toString is the fastest decode, but it replaces bytes that are not UTF-8 with U+FFFD
    // and keeps a BOM, where the schema's strict decode refuses the one and skips the other. Such a
    // value either contains U+FFFD or fails JSON.parse, so those two cases go the strict way and
    // get exactly its result.
    if (text.indexOf('\uFFFD') !== -1) return strictDecode(buf.subarray(start, start + length));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return strictDecode(buf.subarray(start, start + length));
    }
    if (!schema.validate(value)) throw new TypeError(`schema: ${describeIssues(schema.lastIssues())}`);
    return value;
  }

  return decodeValue;
}

/** What a view's fingerprint hashes, part by part (`describeChange` names the parts that differ). */
export function fingerprintParts(view: ViewDef): Record<string, unknown> {
  const a = view.aggregation;
  return {
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
}

function fingerprintOf(view: ViewDef): string {
  return createHash('sha256').update(JSON.stringify(fingerprintParts(view))).digest('hex').slice(0, 16);
}

const PART_NAMES: Record<string, string> = {
  source: 'the source topic',
  schema: "the source topic's schema",
  time: "the source topic's time extractor",
  window: 'the window',
  key: 'the groupBy key',
  aggregates: 'the aggregates',
  outOfOrdernessMs: 'the allowed out-of-orderness',
  allowedLatenessMs: 'the allowed lateness',
};

/**
 * In words, what differs between two definitions of a view, e.g. "step 2 (filter) and the
 * aggregates". Both must have been loaded the same way (both bundled, or both from source), since
 * the functions are compared by their source text.
 */
export function describeChange(before: ViewDef, after: ViewDef): string {
  const a = fingerprintParts(before);
  const b = fingerprintParts(after);
  const changed: string[] = [];
  const opsA = a.ops as string[];
  const opsB = b.ops as string[];
  if (opsA.length !== opsB.length) changed.push(`the steps (${opsA.length} → ${opsB.length}: ${opsB.map((o) => o.slice(0, o.indexOf(':'))).join(', ') || 'none'})`);
  else opsB.forEach((op, i) => op !== opsA[i] && changed.push(`step ${i + 1} (${op.slice(0, op.indexOf(':'))})`));
  for (const [part, name] of Object.entries(PART_NAMES)) if (JSON.stringify(a[part]) !== JSON.stringify(b[part])) changed.push(name);
  if (changed.length === 0) return 'nothing visible in the definition (a function it calls may have changed)';
  return changed.length === 1 ? changed[0] : `${changed.slice(0, -1).join(', ')} and ${changed[changed.length - 1]}`;
}

function sqlType(v: KeyValue): 'INTEGER' | 'REAL' | 'TEXT' {
  if (typeof v === 'number') return Number.isInteger(v) ? 'INTEGER' : 'REAL';
  if (typeof v === 'boolean') return 'INTEGER';
  return 'TEXT';
}

const KEY_NAME = /^[a-z_][a-z0-9_]*$/i;

/** Whether two row keys are the same row (as DirtyRows compares them; keys hold no NaN). */
function sameKey(a: readonly KeyValue[], b: readonly KeyValue[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * `fingerprint` overrides the computed one: for a version whose logic is loaded from its stored
 * (bundled) code, whose function text differs from the source the fingerprint was computed from.
 */
export function compileView(view: ViewDef, opts: { fingerprint?: string } = {}): ViewPlan {
  const agg = view.aggregation;
  const source = agg.stream.source;
  const ops: readonly Op[] = agg.stream.ops;
  if (ops.some((op) => op.kind === 'stateful')) throw new TypeError(`view "${view.name}": alert and detector steps write to a topic (outputs), they cannot feed a view; make the view read the alerts topic instead`);
  const windowSpec = agg.stream.windowSpec;
  const keyFn = agg.keyFn;
  const timeFn = source.time;
  const decodeValue = valueDecoder(source);
  const aggs: { name: string; agg: Aggregate<unknown>; slot: number }[] = [];
  let width = 0;
  for (const [name, a] of Object.entries(agg.aggregates)) {
    aggs.push({ name, agg: a, slot: width });
    width += a.stateColumns(name).length;
  }
  const outOfOrdernessMs = view.outOfOrdernessMs;
  const allowedLatenessMs = view.allowedLatenessMs;

  const windowSizeMs = windowSpec?.sizeMs ?? 0;
  // The common shape (no flatMap; no window or a tumbling one) has one output and at most one
  // window per event, so it folds each event straight into its row with no per-event arrays.
  const simple = !ops.some((op) => op.kind === 'flatMap') && (windowSpec === null || windowSpec.kind === 'tumbling');
  const hasCustom = aggs.some((a) => a.agg.kind === 'custom');
  // Reused by every fold of this plan: folding is synchronous, so one batch uses them at a time.
  const index = new BatchPositions();
  const keyScratch: KeyValue[] = [];
  const inputs = new AggInputs(aggs.length);
  // The aggregates and their slots as flat arrays, read once per event each.
  const aggCount = aggs.length;
  const aggList = aggs.map((a) => a.agg);
  const aggSlots = aggs.map((a) => a.slot);
  /** Key names taken from the record being folded, kept only if it folds (see keyNamesOf). */
  let pendingKeyNames: string[] | null = null;

  function newState(): unknown[] {
    const state = new Array<unknown>(width);
    for (const a of aggs) a.agg.init(state, a.slot);
    return state;
  }

  /**
   * The task's group-key names: fixed by the first record that folds, so a dead-lettered record
   * whose key object has another shape cannot fix them.
   */
  function keyNamesOf(state: TaskState, keyObj: Record<string, KeyValue>): string[] {
    if (state.keyNames !== null) return state.keyNames;
    if (pendingKeyNames !== null) return pendingKeyNames;
    const names = Object.keys(keyObj);
    for (const n of names) {
      if (!KEY_NAME.test(n) || n === 'window_start' || n === 'window_end') throw new TypeError(`group key field "${n}" is not usable as a column name`);
    }
    // What the store checks when the table is made, checked here on the names alone (under a
    // stand-in view name), so a key object whose names the table cannot have is this record's
    // dead letter instead of a task stopped at its first flush.
    const keyColumns: KeyColumn[] = names.map((name) => ({ name, type: 'TEXT' }));
    if (windowSpec !== null) keyColumns.push({ name: 'window_start', type: 'INTEGER' }, { name: 'window_end', type: 'INTEGER' });
    try {
      validateDefinition({ ...definition(1, keyColumns, names), name: 'v' });
    } catch (err) {
      throw new TypeError(`the group key fields (${names.join(', ') || 'none'}) cannot be columns of the view: ${reasonOf(err)}`, { cause: err });
    }
    return (pendingKeyNames = names);
  }

  /** The record folded: the key names it brought (if the task had none) become the task's. */
  function folded(state: TaskState, timeMs: number): void {
    if (pendingKeyNames !== null) {
      state.keyNames = pendingKeyNames;
      pendingKeyNames = null;
    }
    advance(state, timeMs);
  }

  /**
   * Moves the watermark on with a record that is not a dead letter (a dead letter changes nothing,
   * the watermark included). Deferring this to after the record's own late check changes nothing:
   * its window ends after its event time, so its own time can never make it late.
   */
  function advance(state: TaskState, timeMs: number): void {
    if (timeMs > state.maxEventTimeMs) {
      state.maxEventTimeMs = timeMs;
      const wm = timeMs - outOfOrdernessMs;
      if (wm > state.watermarkMs) state.watermarkMs = wm;
    }
  }

  function deadLetter(state: TaskState, source: RecordSource, i: number, reason: string): void {
    pendingKeyNames = null;
    state.deadLetters.push({ record: source.record(i), partition: state.partition, reason: boundedReason(reason) });
  }

  /**
   * Writes the row key of `value` into `keyScratch` (group-key fields, then the window start) and
   * returns how many values it has. Throws the dead-letter reason for a key that cannot be a row
   * key: each field must be a string, a finite number, a boolean (stored as 0/1) or null.
   */
  function keyValuesOf(state: TaskState, value: unknown, windowStart: number): number {
    const keyObj = keyFn(value);
    if (keyObj === null || typeof keyObj !== 'object') throw new TypeError(`groupBy() must return an object of key fields, got ${describeValue(keyObj)}`);
    const names = keyNamesOf(state, keyObj);
    const n = names.length;
    for (let i = 0; i < n; i++) {
      const v = keyObj[names[i]];
      if (typeof v === 'string' || v === null || (typeof v === 'number' && Number.isFinite(v))) keyScratch[i] = v;
      else if (typeof v === 'boolean') keyScratch[i] = v ? 1 : 0;
      else throw new TypeError(`group key ${names[i]} ${scalarProblem(v)}; group keys must be strings, finite numbers, booleans or null`);
    }
    if (windowSpec === null) return n;
    keyScratch[n] = windowStart;
    return n + 1;
  }

  /** Adds a row at the aggregates' identity under key `values[0..n)`, which the task has not touched since its last flush. */
  function insertRow(state: TaskState, values: KeyValue[], n: number): DirtyRow {
    const key = values.slice(0, n);
    if (windowSpec !== null) key.push((values[n - 1] as number) + windowSizeMs);
    const row: DirtyRow = { key, state: newState() };
    state.dirty.insert(values, n, row);
    return row;
  }

  /** Runs every aggregate's function on `value` into `into`, changing no row; throws the dead-letter reason naming the aggregate. */
  function prepare(rowState: readonly unknown[] | null, value: unknown, into: AggInputs): void {
    let a = 0;
    try {
      for (; a < aggCount; a++) aggList[a].prepare(rowState, aggSlots[a], value, into, a);
    } catch (err) {
      throw new TypeError(`aggregate ${aggs[a].name}: ${reasonOf(err)}`, { cause: err });
    }
  }

  function apply(rowState: unknown[], from: AggInputs, timeMs: number): void {
    for (let a = 0; a < aggCount; a++) aggList[a].apply(rowState, aggSlots[a], from, a, timeMs);
  }

  /** Runs the operator chain from op `i` on, collecting the values that survive into `out`. */
  function run(value: unknown, i: number, out: unknown[]): void {
    for (; i < ops.length; i++) {
      const op = ops[i];
      if (op.kind === 'filter') {
        if (!op.fn(value)) return;
      } else if (op.kind === 'map') value = op.fn(value);
      else if (op.kind === 'flatMap') {
        for (const v of op.fn(value)) run(v, i + 1, out);
        return;
      } else throw new TypeError('a stateful step cannot feed a view'); // refused when compiled
    }
    out.push(value);
  }

  /**
   * Folds one record: `buf[start, start + length)` is its value (`buf` null for a null value).
   * `source.record(i)` builds the full record, needed only when it goes to a side output.
   *
   * All or nothing: every user function (time extractor, operators, group key, the aggregates'
   * extractors) runs and every value it returns is checked before any row, the key names or the
   * watermark change. A record that fails any of it goes to the dead-letter list with the reason
   * and changes nothing, so no single record can leave a row the store would refuse at flush.
   */
  function foldRecord(state: TaskState, buf: Buffer | null, start: number, length: number, timestamp: number, source: RecordSource, i: number): void {
    let value: unknown;
    let timeMs: number;
    try {
      value = decodeValue(buf, start, length);
      timeMs = timeFn ? timeFn(value) : timestamp;
    } catch (err) {
      return deadLetter(state, source, i, reasonOf(err));
    }
    const timeProblem = eventTimeProblem(timeMs);
    if (timeProblem !== null) return deadLetter(state, source, i, `${timeFn ? "the time extractor's event time" : 'the record timestamp'} ${timeProblem}`);
    if (!simple) return foldAny(state, value, timeMs, source, i);
    let windowStart = 0;
    if (windowSpec !== null) {
      windowStart = Math.floor(timeMs / windowSizeMs) * windowSizeMs;
      const problem = windowProblem(windowStart, windowSizeMs);
      if (problem !== null) return deadLetter(state, source, i, `event time ${timeMs}: ${problem}`);
      if (!(windowStart + windowSizeMs + allowedLatenessMs > state.watermarkMs)) {
        state.late.push({ record: source.record(i), partition: state.partition, eventTimeMs: timeMs, watermarkMs: state.watermarkMs });
        return;
      }
    }
    // One output and one row: every user function has run by the time the row is changed.
    let row: DirtyRow | undefined;
    let n: number;
    try {
      for (let o = 0; o < ops.length; o++) {
        const op = ops[o];
        if (op.kind === 'filter') {
          if (!op.fn(value)) return advance(state, timeMs);
        } else value = (op as { fn: (v: unknown) => unknown }).fn(value);
      }
      n = keyValuesOf(state, value, windowStart);
      row = state.dirty.get(keyScratch, n);
      prepare(row === undefined ? null : row.state, value, inputs);
    } catch (err) {
      return deadLetter(state, source, i, `pipeline: ${reasonOf(err)}`);
    }
    if (row === undefined) row = insertRow(state, keyScratch, n);
    apply(row.state, inputs, timeMs);
    folded(state, timeMs);
  }

  /** Any pipeline: flatMap (any number of outputs) and hopping windows (several windows per event). */
  function foldAny(state: TaskState, value: unknown, timeMs: number, source: RecordSource, i: number): void {
    let windows: number[] | null = null;
    if (windowSpec) {
      windows = [];
      for (const s of windowStarts(windowSpec, timeMs)) {
        const problem = windowProblem(s, windowSpec.sizeMs);
        if (problem !== null) return deadLetter(state, source, i, `event time ${timeMs}: ${problem}`);
        if (s + windowSpec.sizeMs + allowedLatenessMs > state.watermarkMs) windows.push(s);
      }
      if (windows.length === 0) {
        state.late.push({ record: source.record(i), partition: state.partition, eventTimeMs: timeMs, watermarkMs: state.watermarkMs });
        return;
      }
    }
    // Every user function (operators, group keys, aggregates) runs for every (output, window) pair
    // before any row is touched. A custom aggregate reads its row, so a pair whose key an earlier
    // pair of this record shares is prepared against that pair's result (`after`), not the row.
    const keys: KeyValue[][] = [];
    const prepared: AggInputs[] = [];
    const after: unknown[][] = [];
    try {
      const outs: unknown[] = [];
      run(value, 0, outs);
      for (const v of outs) {
        for (const w of windows ?? [0]) {
          const key = keyScratch.slice(0, keyValuesOf(state, v, w));
          let base: unknown[] | null = state.dirty.get(key, key.length)?.state ?? null;
          if (hasCustom) {
            const earlier = keys.findIndex((k) => sameKey(k, key));
            if (earlier !== -1) base = after[earlier];
          }
          const into = new AggInputs(aggs.length);
          prepare(base, v, into);
          if (hasCustom) {
            const next = base === null ? newState() : base.slice();
            apply(next, into, timeMs);
            after.push(next);
          }
          keys.push(key);
          prepared.push(into);
        }
      }
    } catch (err) {
      return deadLetter(state, source, i, `pipeline: ${reasonOf(err)}`);
    }
    for (let k = 0; k < keys.length; k++) {
      const row = state.dirty.get(keys[k], keys[k].length) ?? insertRow(state, keys[k], keys[k].length);
      apply(row.state, prepared[k], timeMs);
    }
    folded(state, timeMs);
  }

  function process(records: readonly LogRecord[], state: TaskState): void {
    const source: RecordSource = { record: (i) => records[i] };
    for (let r = 0; r < records.length; r++) {
      const v = records[r].value;
      foldRecord(state, v, 0, v === null ? -1 : v.length, records[r].timestamp, source, r);
    }
  }

  function processBatch(bytes: Buffer, fromOffset: number, state: TaskState): number {
    const n = index.load(bytes, fromOffset);
    const starts = index.valueStart;
    const lengths = index.valueLength;
    const timestamps = index.timestamps;
    for (let i = 0; i < n; i++) {
      const length = lengths[i];
      foldRecord(state, length < 0 ? null : bytes, starts[i], length, timestamps[i], index, i);
    }
    return n;
  }

  function definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): VersionTable {
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

  const fingerprint = opts.fingerprint ?? fingerprintOf(view);
  return {
    kind: 'view',
    name: view.name,
    source,
    view,
    fingerprint,
    windowed: windowSpec !== null,
    stateWidth: width,
    definition,
    newTaskState: (partition, watermarkMs) => newTaskState(partition, watermarkMs, outOfOrdernessMs),
    process,
    processBatch,
  };
}
