/**
 * Compiles a view definition into what a task runs (a `ViewPlan`, the TaskPlan of task-plan.ts for
 * a view): the physical table definition, the fingerprint (view-fingerprint.ts), and
 * `processBatch`, one synchronous function over a whole RecordBatch that folds its records into the
 * task's dirty rows (`process` does the same for records already decoded). No Promise, closure or
 * object of ours per event: records are read in place (batch-positions.ts), values decoded on their
 * bytes (value-decoder.ts), rows are found by their key values (dirty-rows.ts), and a full record
 * is built only for a side output. What is left per event is the decoded value and what the
 * user's functions return. On the process bench this folds at about 0.85 of a bare UTF-8 decode +
 * JSON.parse loop.
 *
 * Event time and determinism: an event's time is the topic's time extractor or the record
 * timestamp; the watermark is the newest event time seen by the task minus the allowed
 * out-of-orderness, and it only moves forward. Nothing here reads the wall clock, so a replay of
 * the same records from the same checkpoint makes the same rows, the same late records and the
 * same dead letters.
 */
import type { LogRecord } from '../log/index.ts';
import {
  type KeyColumn,
  type OutputColumn,
  type StateColumn,
  type VersionTable,
  validateDefinition,
} from '../view/index.ts';
import { type Aggregate, AggInputs, describeValue, scalarProblem } from './aggregates.ts';
import { BatchPositions } from './batch-positions.ts';
import type { DirtyRow } from './dirty-rows.ts';
import type { KeyValue, Op, ViewDef } from './dsl.ts';
import { runOps } from './ops.ts';
import {
  FoldPause,
  type RecordSource,
  type TaskPlan,
  type TaskState,
  boundedReason,
  newTaskState,
  reasonOf,
} from './task-plan.ts';
import { extractorText, sourceFieldsRead } from './fields-read.ts';
import { valueDecoder } from './value-decoder.ts';
import { TableWaitNeeded, joinLate, joinedTables } from './tables.ts';
import { fingerprintOf } from './view-fingerprint.ts';
import { eventTimeProblem, windowProblem, windowStarts } from './windows.ts';

export type { DirtyRow } from './dirty-rows.ts';
export type { TaskState } from './task-plan.ts';

export interface ViewPlan extends TaskPlan {
  kind: 'view';
  view: ViewDef;
  windowed: boolean;
  stateWidth: number;
  /**
   * Whether a row's state can grow with its events (countDistinct, topN, custom aggregates merge
   * whole values): a task catching up gathers no more of such rows than 4 × dirtyRowsMax (task-loop.ts).
   */
  rowsGrow: boolean;
  /** The table definition; key column types are inferred from a sample row, or taken as given (the stored ones). */
  definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): VersionTable;
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

/** An aggregate of a view and where its state starts in a row's state array. */
interface AggSlot {
  name: string;
  agg: Aggregate<unknown>;
  slot: number;
}

/** The view's aggregates side by side in one state array per row, and that array's width. */
function aggregateSlots(aggregates: Record<string, Aggregate<unknown>>): { aggs: AggSlot[]; width: number } {
  const aggs: AggSlot[] = [];
  let width = 0;
  for (const [name, a] of Object.entries(aggregates)) {
    aggs.push({ name, agg: a, slot: width });
    width += a.stateColumns(name).length;
  }
  return { aggs, width };
}

/** The view's table (see ViewPlan.definition). */
function tableDefinition(
  view: ViewDef,
  aggs: AggSlot[],
  fingerprint: string,
  version: number,
  sample: DirtyRow | KeyColumn[],
  keyNames: string[],
): VersionTable {
  // Key column types come from a sample row when the table is first created, or from the
  // stored definition when it already exists (so a restart re-registers the same table).
  const keyColumns: KeyColumn[] = Array.isArray(sample)
    ? sample.slice()
    : keyNames.map((name, i) => ({ name, type: sqlType(sample.key[i]) }));
  if (view.aggregation.stream.windowSpec && !Array.isArray(sample))
    keyColumns.push({ name: 'window_start', type: 'INTEGER' }, { name: 'window_end', type: 'INTEGER' });
  const stateColumns: StateColumn[] = [];
  const outputColumns: OutputColumn[] = [];
  for (const a of aggs) {
    stateColumns.push(...a.agg.stateColumns(a.name));
    outputColumns.push(a.agg.outputColumn(a.name));
  }
  const session = view.aggregation.stream.windowSpec?.kind === 'session' ? { session: true as const } : {};
  return { name: view.name, version, fingerprint, keyColumns, stateColumns, outputColumns, ...session };
}

/** Throws the dead-letter reason when the group-key field `names` cannot be columns of the view's table. */
function checkKeyNames(view: ViewDef, aggs: AggSlot[], fingerprint: string, names: string[]): void {
  for (const n of names) {
    if (!KEY_NAME.test(n) || n === 'window_start' || n === 'window_end')
      throw new TypeError(`group key field "${n}" is not usable as a column name`);
  }
  // What the store checks when the table is made, checked here on the names alone (under a
  // stand-in view name), so a key object whose names the table cannot have is this record's
  // dead letter instead of a task stopped at its first flush.
  const keyColumns: KeyColumn[] = names.map((name) => ({ name, type: 'TEXT' }));
  if (view.aggregation.stream.windowSpec !== null)
    keyColumns.push({ name: 'window_start', type: 'INTEGER' }, { name: 'window_end', type: 'INTEGER' });
  try {
    validateDefinition({ ...tableDefinition(view, aggs, fingerprint, 1, keyColumns, names), name: 'v' });
  } catch (err) {
    throw new TypeError(
      `the group key fields (${names.join(', ') || 'none'}) cannot be columns of the view: ${reasonOf(err)}`,
      { cause: err },
    );
  }
}

/**
 * `fingerprint` overrides the computed one: for a version whose logic is loaded from its stored
 * (bundled) code, whose function text differs from the source the fingerprint was computed from.
 *
 * Why this function is long: it is the compiled plan. Its inner functions are each short, and they
 * share the plan's constants (operators, aggregates and their slots, the scratch arrays reused by
 * every fold) as closure variables, which the per-record path reads as cheaply as locals. Split
 * into a class or into top-level functions, each of those reads becomes a property load or an
 * argument on every record. What runs once per view or per key shape (aggregate slots, the table
 * definition, the key-name check) lives outside it.
 */
// eslint-disable-next-line max-lines-per-function -- the compiled plan's closure (see the comment above)
export function compileView(view: ViewDef, opts: { fingerprint?: string } = {}): ViewPlan {
  const agg = view.aggregation;
  const source = agg.stream.source;
  const ops: readonly Op[] = agg.stream.ops;
  if (ops.some((op) => op.kind === 'stateful'))
    throw new TypeError(
      `view "${view.name}": alert and detector steps write to a topic (outputs), they cannot feed a view; make the view read the alerts topic instead`,
    );
  const windowSpec = agg.stream.windowSpec;
  const keyFn = agg.keyFn;
  const timeFn = source.time;
  const { aggs, width } = aggregateSlots(agg.aggregates);
  // Only the properties the pipeline reads are made (src/stream/fields-read.ts; null: all of them).
  const then = [keyFn.toString(), ...aggs.map((a) => extractorText(a.agg))];
  const decodeValue = valueDecoder(source, sourceFieldsRead({ time: timeFn, ops, then }));
  const outOfOrdernessMs = view.outOfOrdernessMs;
  const allowedLatenessMs = view.allowedLatenessMs;

  const windowSizeMs = windowSpec?.sizeMs ?? 0;
  // The common shape (no flatMap; no window or a tumbling one) has one output and at most one
  // window per event, so it folds each event straight into its row with no per-event arrays.
  const tables = joinedTables(ops);
  const simple =
    !ops.some((op) => op.kind === 'flatMap' || op.kind === 'join') &&
    (windowSpec === null || windowSpec.kind === 'tumbling');
  const hasCustom = aggs.some((a) => a.agg.kind === 'custom');
  const rowsGrow = aggs.some((a) => a.agg.stateColumns(a.name).some((c) => c.merge.kind === 'custom'));
  // Reused by every fold of this plan: folding is synchronous, so one batch uses them at a time.
  const index = new BatchPositions();
  const keyScratch: KeyValue[] = [];
  const inputs = new AggInputs(aggs.length);
  // The aggregates and their slots as flat arrays, read once per event each.
  const aggList = aggs.map((a) => a.agg);
  const aggSlots = aggs.map((a) => a.slot);
  const { prepareAll, applyAll } = unrolledAggregates(aggList, aggSlots, (a, err) => {
    throw new TypeError(`aggregate ${aggs[a].name}: ${reasonOf(err)}`, { cause: err });
  });
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
    checkKeyNames(view, aggs, fingerprint, names);
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

  /** Record `i` is late: its window(s) closed before the watermark. */
  function late(state: TaskState, source: RecordSource, i: number, timeMs: number): void {
    state.late.push({
      record: source.record(i),
      partition: state.partition,
      eventTimeMs: timeMs,
      watermarkMs: state.watermarkMs,
    });
  }

  /**
   * Writes the row key of `value` into `keyScratch` (group-key fields, then the window start) and
   * returns how many values it has. Throws the dead-letter reason for a key that cannot be a row
   * key: each field must be a string, a finite number, a boolean (stored as 0/1) or null.
   */
  function keyValuesOf(state: TaskState, value: unknown, windowStart: number): number {
    const keyObj = keyFn(value);
    if (keyObj === null || typeof keyObj !== 'object')
      throw new TypeError(`groupBy() must return an object of key fields, got ${describeValue(keyObj)}`);
    const names = keyNamesOf(state, keyObj);
    const n = names.length;
    for (let i = 0; i < n; i++) {
      const v = keyObj[names[i]];
      if (typeof v === 'string' || v === null || (typeof v === 'number' && Number.isFinite(v))) keyScratch[i] = v;
      else if (typeof v === 'boolean') keyScratch[i] = v ? 1 : 0;
      else
        throw new TypeError(
          `group key ${names[i]} ${scalarProblem(v)}; group keys must be strings, finite numbers, booleans or null`,
        );
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
  const prepare = prepareAll;

  /** Folds one event's prepared inputs into a row; (timeMs, partition, offset) is its place for first() and last(). */
  const apply = applyAll;

  /**
   * Folds one record: `buf[start, start + length)` is its value (`buf` null for a null value), at `offset`.
   * `source.record(i)` builds the full record, needed only when it goes to a side output.
   *
   * All or nothing: every user function (time extractor, operators, group key, the aggregates'
   * extractors) runs and every value it returns is checked before any row, the key names or the
   * watermark change. A record that fails any of it goes to the dead-letter list with the reason
   * and changes nothing, so no single record can leave a row the store would refuse at flush.
   */
  function foldRecord(
    state: TaskState,
    buf: Buffer | null,
    start: number,
    length: number,
    timestamp: number,
    offset: number,
    source: RecordSource,
    i: number,
  ): void {
    let value: unknown;
    let timeMs: number;
    try {
      value = decodeValue(buf, start, length, state.catalog);
      timeMs = timeFn ? timeFn(value) : timestamp;
    } catch (err) {
      if (err instanceof FoldPause) {
        err.offset = offset; // the task reads what it waits for, then folds again from this record
        throw err;
      }
      return deadLetter(state, source, i, reasonOf(err));
    }
    const timeProblem = eventTimeProblem(timeMs);
    if (timeProblem !== null)
      return deadLetter(
        state,
        source,
        i,
        `${timeFn ? "the time extractor's event time" : 'the record timestamp'} ${timeProblem}`,
      );
    if (state.tables !== null) {
      if (!state.tables.ready(timeMs)) {
        const wait = new TableWaitNeeded(timeMs); // the task reads the joined tables on, then folds again from here
        wait.offset = offset;
        throw wait;
      }
      if (state.tables.late(timeMs)) return joinLate(state, source.record(i), timeMs);
    }
    if (!simple) return foldAny(state, value, timeMs, offset, source, i);
    let windowStart = 0;
    if (windowSpec !== null) {
      windowStart = Math.floor(timeMs / windowSizeMs) * windowSizeMs;
      const problem = windowProblem(windowStart, windowSizeMs);
      if (problem !== null) return deadLetter(state, source, i, `event time ${timeMs}: ${problem}`);
      if (!(windowStart + windowSizeMs + allowedLatenessMs > state.watermarkMs)) return late(state, source, i, timeMs);
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
    apply(row.state, inputs, timeMs, state.partition, offset);
    folded(state, timeMs);
  }

  /**
   * Session views: the newest dirty session of each group (by its key values as JSON), per set of
   * dirty rows (a drain starts a new set). An event inside it joins its row, which grows to the
   * event's time plus the gap; any other event starts a row of its own, and the store merges rows
   * that touch when it writes them (VersionTable.session).
   */
  const sessions = windowSpec?.kind === 'session' ? new WeakMap<object, Map<string, DirtyRow>>() : null;

  /** `key` (group keys, then the event's time as its session's start), or the key of the dirty session the event falls in. */
  function sessionKey(state: TaskState, key: KeyValue[]): KeyValue[] {
    const n = key.length;
    const open = sessions!.get(state.dirty)?.get(JSON.stringify(key.slice(0, n - 1)));
    const t = key[n - 1] as number;
    if (open === undefined || t < (open.key[n - 1] as number) || t > (open.key[n] as number)) return key;
    return [...key.slice(0, n - 1), open.key[n - 1]];
  }

  /** The session row `row` took an event at `t`: its end moves to t + gap; it becomes its group's newest. */
  function extendSession(state: TaskState, row: DirtyRow, t: number): void {
    const n = row.key.length;
    row.key[n - 1] = Math.max(row.key[n - 1] as number, t + windowSizeMs);
    let open = sessions!.get(state.dirty);
    if (open === undefined) sessions!.set(state.dirty, (open = new Map()));
    const group = JSON.stringify(row.key.slice(0, n - 2));
    const newest = open.get(group);
    if (newest === undefined || (newest.key[n - 2] as number) <= (row.key[n - 2] as number)) open.set(group, row);
  }

  /** Any pipeline: flatMap (any number of outputs) and hopping windows (several windows per event). */
  function foldAny(
    state: TaskState,
    value: unknown,
    timeMs: number,
    offset: number,
    source: RecordSource,
    i: number,
  ): void {
    let windows: number[] | null = null;
    if (windowSpec) {
      windows = [];
      for (const s of windowStarts(windowSpec, timeMs)) {
        const problem = windowProblem(s, windowSpec.sizeMs);
        if (problem !== null) return deadLetter(state, source, i, `event time ${timeMs}: ${problem}`);
        if (s + windowSpec.sizeMs + allowedLatenessMs > state.watermarkMs) windows.push(s);
      }
      if (windows.length === 0) return late(state, source, i, timeMs);
    }
    // Every user function (operators, group keys, aggregates) runs for every (output, window) pair
    // before any row is touched. A custom aggregate reads its row, so a pair whose key an earlier
    // pair of this record shares is prepared against that pair's result (`after`), not the row.
    const keys: KeyValue[][] = [];
    const prepared: AggInputs[] = [];
    const after: unknown[][] = [];
    try {
      const outs: unknown[] = [];
      runOps(ops, value, 0, outs, null, timeMs, state.tables);
      for (const v of outs) {
        for (const w of windows ?? [0]) {
          let key = keyScratch.slice(0, keyValuesOf(state, v, w));
          if (sessions !== null) key = sessionKey(state, key);
          let base: unknown[] | null = state.dirty.get(key, key.length)?.state ?? null;
          if (hasCustom) {
            const earlier = keys.findIndex((k) => sameKey(k, key));
            if (earlier !== -1) base = after[earlier];
          }
          const into = new AggInputs(aggs.length);
          prepare(base, v, into);
          if (hasCustom) {
            const next = base === null ? newState() : base.slice();
            apply(next, into, timeMs, state.partition, offset);
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
      apply(row.state, prepared[k], timeMs, state.partition, offset);
      if (sessions !== null) extendSession(state, row, timeMs);
    }
    folded(state, timeMs);
  }

  function process(records: readonly LogRecord[], state: TaskState): void {
    const source: RecordSource = { record: (i) => records[i] };
    for (let r = 0; r < records.length; r++) {
      const v = records[r].value;
      foldRecord(state, v, 0, v === null ? -1 : v.length, records[r].timestamp, records[r].offset, source, r);
    }
  }

  function processBatch(bytes: Buffer, fromOffset: number, state: TaskState): number {
    const n = index.load(bytes, fromOffset);
    // The positions are in the batch's decoded form: `bytes` itself, or its records decompressed.
    const decoded = index.bytes;
    const starts = index.valueStart;
    const lengths = index.valueLength;
    const timestamps = index.timestamps;
    const offsets = index.offsets;
    for (let i = 0; i < n; i++) {
      const length = lengths[i];
      foldRecord(state, length < 0 ? null : decoded, starts[i], length, timestamps[i], offsets[i], index, i);
    }
    return n;
  }

  function definition(version: number, sample: DirtyRow | KeyColumn[], keyNames: string[]): VersionTable {
    return tableDefinition(view, aggs, fingerprint, version, sample, keyNames);
  }

  const fingerprint = opts.fingerprint ?? fingerprintOf(view);
  return {
    kind: 'view',
    name: view.name,
    source,
    tables,
    view,
    fingerprint,
    windowed: windowSpec !== null,
    stateWidth: width,
    rowsGrow,
    definition,
    newTaskState: (partition, watermarkMs) => newTaskState(partition, watermarkMs, outOfOrdernessMs),
    process,
    processBatch,
  };
}

/** Aggregate functions made so far (see unrolledAggregates). */
let madeAggregates = 0;

/**
 * A view's aggregates' prepare and apply, made for the view with one call site per aggregate, so
 * each site sees one function, which V8 inlines, rather than a loop whose one site sees them all
 * (and, as the fold's code is shared, every view's aggregates). `prepareAll` runs every
 * aggregate's function on an event into `into`, changing no row; when one throws, `failed` is
 * called with its index. `applyAll` folds the prepared inputs into a row; (timeMs, partition,
 * offset) is the event's place for first() and last().
 */
function unrolledAggregates(
  aggList: readonly Aggregate<unknown>[],
  aggSlots: readonly number[],
  failed: (a: number, err: unknown) => never,
): {
  prepareAll: (rowState: readonly unknown[] | null, value: unknown, into: AggInputs) => void;
  applyAll: (rowState: unknown[], from: AggInputs, timeMs: number, partition: number, offset: number) => void;
} {
  const each = (line: (a: number) => string): string => aggList.map((_, a) => line(a)).join('\n');
  const code = `${each((a) => `const p${a} = aggs[${a}].prepare, a${a} = aggs[${a}].apply, s${a} = slots[${a}];`)}
return {
  prepareAll: function prepareAll(rowState, value, into) {
    let a = 0;
    try {
${each((a) => `      a = ${a}; p${a}(rowState, s${a}, value, into, ${a});`)}
    } catch (err) {
      failed(a, err);
    }
  },
  applyAll: function applyAll(rowState, from, timeMs, partition, offset) {
${each((a) => `    a${a}(rowState, s${a}, from, ${a}, timeMs, partition, offset);`)}
  },
};`;
  // A first line of its own: V8 caches a `new Function` by its text, feedback included, so views
  // whose code reads the same would share their call sites again (three views of two aggregates
  // folded in one thread: one of them 462-508 ns an event, 521-585 with the text shared).
  return new Function('aggs', 'slots', 'failed', `// ${++madeAggregates}\n${code}`)(aggList, aggSlots, failed);
}
