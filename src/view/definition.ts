/**
 * Checks on what crosses the `ViewStore` port, shared by every adapter (no driver imports here):
 * view definitions, the deltas and checkpoints handed to `flush`, and the canonical JSON form of a
 * definition that the catalog stores and compares.
 *
 * Names are SQL identifiers `[a-z_][a-z0-9_]*` (case-insensitive, as SQL compares them), at most 63
 * characters so the same definitions work on PostgreSQL, which truncates longer identifiers. A view
 * name may not start with `kappa_` (the catalog) or `sqlite_` (SQLite's own tables), nor end in
 * `__v<digits>` (it would collide with another view's version table); column names may not start
 * with `kappa_` (the store's own columns).
 *
 * Delta values are checked before anything is written, so a bad delta is refused whole and never
 * half-applied: the right number of key and state values, each a string, a number (not NaN; a key
 * also not infinite), a 64-bit bigint or NULL; a custom-merge column takes any JSON value. For the
 * stream engine this is an invariant, not input validation: it checks every value a record gives
 * before folding it (stream/plan.ts, stream/aggregates.ts) and dead-letters the record otherwise,
 * so a delta it hands over always passes. The check stays, so a broken invariant stops the task
 * with the view and column named instead of writing a bad row. Values are not checked against the
 * declared column type: the stream engine infers key types from a sample row, and SQLite stores
 * a value by its column's type affinity (an INTEGER column keeps 2.5 as REAL; a TEXT column stores
 * the number 7 as '7'). An adapter for a strictly typed database converts or refuses there.
 */
import { KappaError } from '../errors.ts';
import type { Checkpoint, ColumnType, DeltaColumns, Deltas, MergeRule, StateColumn, VersionTable } from './types.ts';

export const IDENTIFIER_CHARS_MAX = 63;
export const FINGERPRINT_CHARS_MAX = 256;
export const OUTPUT_SQL_CHARS_MAX = 4096;
export const COLUMNS_MAX = 200;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/i;
const COLUMN_TYPES: readonly ColumnType[] = ['INTEGER', 'REAL', 'TEXT', 'ANY'];
const MERGE_KINDS: readonly MergeRule['kind'][] = ['add', 'min', 'max', 'earliest', 'latest', 'custom'];

/** The table that holds one version of a view. */
export function versionTableName(name: string, version: number): string {
  return `${name}__v${version}`;
}

/** Refuses anything that is not a plain SQL identifier (so every name can be quoted safely). */
export function checkIdentifier(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > IDENTIFIER_CHARS_MAX) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `${what} ${JSON.stringify(name)} is not a valid name: use 1-${IDENTIFIER_CHARS_MAX} letters, digits and underscores, not starting with a digit.`,
      { [what.replace(/ /g, '_')]: name },
    );
  }
}

/** Checks a view name as the public API receives it (for example in `flush` or `makeLive`). */
export function checkViewName(name: unknown): asserts name is string {
  checkIdentifier('view name', name);
  if (/^(kappa_|sqlite_)/i.test(name) || /__v[0-9]+$/i.test(name)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `View name "${name}" is reserved: names may not start with "kappa_" or "sqlite_" nor end in "__v<number>" (the store uses those for its own tables).`,
      { view: name },
    );
  }
}

export function checkVersion(version: unknown): asserts version is number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `View version ${String(version)} is invalid: versions are whole numbers from 1.`,
      { version },
    );
  }
}

/** Refuses a definition the store cannot build, naming the part that is wrong. */
export function validateDefinition(def: VersionTable): void {
  if (def === null || typeof def !== 'object') throw invalid('A view definition must be an object.', {});
  checkViewName(def.name);
  checkVersion(def.version);
  const where = `view "${def.name}" v${def.version}`;
  if (versionTableName(def.name, def.version).length > IDENTIFIER_CHARS_MAX) {
    throw invalid(
      `The table name of ${where} would be longer than ${IDENTIFIER_CHARS_MAX} characters; choose a shorter view name.`,
      { view: def.name },
    );
  }
  if (
    typeof def.fingerprint !== 'string' ||
    def.fingerprint.length === 0 ||
    def.fingerprint.length > FINGERPRINT_CHARS_MAX
  ) {
    throw invalid(`The fingerprint of ${where} must be a string of 1-${FINGERPRINT_CHARS_MAX} characters.`, {
      view: def.name,
    });
  }
  for (const list of ['keyColumns', 'stateColumns', 'outputColumns'] as const) {
    if (!Array.isArray(def[list]) || def[list].length > COLUMNS_MAX) {
      throw invalid(`${list} of ${where} must be an array of at most ${COLUMNS_MAX} columns.`, { view: def.name });
    }
  }
  const stored = new Set<string>();
  for (const col of [...def.keyColumns, ...def.stateColumns]) {
    checkIdentifier('column name', col?.name);
    const lower = col.name.toLowerCase();
    if (lower.startsWith('kappa_'))
      throw invalid(`Column "${col.name}" of ${where}: names starting with "kappa_" are reserved for the store.`, {
        view: def.name,
        column: col.name,
      });
    if (stored.has(lower))
      throw invalid(`Column "${col.name}" appears twice in ${where} (names are case-insensitive).`, {
        view: def.name,
        column: col.name,
      });
    stored.add(lower);
    if (!COLUMN_TYPES.includes(col.type)) {
      throw invalid(
        `Column "${col.name}" of ${where} has type ${JSON.stringify(col.type)}; use one of ${COLUMN_TYPES.join(', ')}.`,
        { view: def.name, column: col.name },
      );
    }
  }
  for (const col of def.stateColumns) checkMergeRule(def, col, where);
  checkOutputColumns(def, where);
  if (def.keyColumns.length + def.outputColumns.length === 0) {
    throw invalid(`${where} shows nothing: it needs at least one key column or output column.`, { view: def.name });
  }
}

function checkMergeRule(def: VersionTable, col: StateColumn, where: string): void {
  const rule = col.merge;
  const details = { view: def.name, column: col.name };
  if (rule === null || typeof rule !== 'object' || !MERGE_KINDS.includes(rule.kind)) {
    throw invalid(
      `Column "${col.name}" of ${where} has no valid merge rule; use one of ${MERGE_KINDS.join(', ')}.`,
      details,
    );
  }
  if (rule.kind === 'custom') {
    if (typeof rule.merge !== 'function')
      throw invalid(`Column "${col.name}" of ${where} has a custom merge rule without a merge function.`, details);
    if (col.type !== 'TEXT')
      throw invalid(
        `Column "${col.name}" of ${where} has a custom merge rule, whose state is stored as JSON text, so its type must be TEXT (not ${col.type}).`,
        details,
      );
  }
  if (rule.kind === 'earliest' || rule.kind === 'latest') {
    const wanted = rule.kind === 'earliest' ? 'min' : 'max';
    const by = def.stateColumns.find((c) => c.name === rule.by);
    if (by === undefined || by === col || by.merge?.kind !== wanted) {
      throw invalid(
        `Column "${col.name}" of ${where} merges as "${rule.kind}" by ${JSON.stringify(rule.by)}, which must be another state column of the view merged with "${wanted}".`,
        details,
      );
    }
  }
}

function checkOutputColumns(def: VersionTable, where: string): void {
  const names = new Set(def.keyColumns.map((c) => c.name.toLowerCase()));
  for (const out of def.outputColumns) {
    checkIdentifier('output column name', out?.name);
    const lower = out.name.toLowerCase();
    if (names.has(lower))
      throw invalid(`Output column "${out.name}" of ${where} repeats a key or output column name.`, {
        view: def.name,
        column: out.name,
      });
    names.add(lower);
    if (typeof out.sql !== 'string' || out.sql.trim().length === 0 || out.sql.length > OUTPUT_SQL_CHARS_MAX) {
      throw invalid(
        `Output column "${out.name}" of ${where} needs a SQL expression of 1-${OUTPUT_SQL_CHARS_MAX} characters.`,
        { view: def.name, column: out.name },
      );
    }
  }
}

/**
 * The definition as the catalog stores it: fixed field order, only the fields that shape the
 * table and the public view. A custom merge function cannot be stored, so it appears as
 * `{"kind":"custom"}`; the fingerprint is what tells two custom merges apart.
 */
export function definitionJson(def: VersionTable): string {
  return JSON.stringify({
    name: def.name,
    version: def.version,
    fingerprint: def.fingerprint,
    keyColumns: def.keyColumns.map((c) => ({ name: c.name, type: c.type })),
    stateColumns: def.stateColumns.map((c) => ({ name: c.name, type: c.type, merge: mergeJson(c.merge) })),
    outputColumns: def.outputColumns.map((c) => ({ name: c.name, sql: c.sql })),
  });
}

function mergeJson(rule: MergeRule): { kind: MergeRule['kind']; by?: string } {
  return rule.kind === 'earliest' || rule.kind === 'latest' ? { kind: rule.kind, by: rule.by } : { kind: rule.kind };
}

/**
 * Rebuilds a definition from its catalog JSON. Custom merge functions are not stored, so a custom
 * column comes back with a merge that refuses to run: `ensureVersion` must register the real one.
 */
export function parseDefinitionJson(json: string): VersionTable {
  const def = JSON.parse(json) as VersionTable;
  for (const col of def.stateColumns) {
    if (col.merge.kind === 'custom') {
      col.merge = {
        kind: 'custom',
        merge: () => {
          throw new KappaError(
            'KAPPA_INVALID_ARGUMENT',
            `Column "${col.name}" of view "${def.name}" v${def.version} merges with a custom function, which the store does not keep across restarts: call ensureVersion with the definition before flushing.`,
            { view: def.name, version: def.version, column: col.name },
          );
        },
      };
    }
  }
  return def;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * A value SQLite (and the port) can store: string, number (not NaN, which SQLite would turn into
 * NULL), bigint within 64 bits (the driver refuses a wider one mid-write), NULL. A key must also be
 * finite: a sum may overflow to Infinity, but no record's group key is infinite.
 */
function isScalar(value: unknown, key: boolean): boolean {
  switch (typeof value) {
    case 'string':
      return true;
    case 'bigint':
      return value >= INT64_MIN && value <= INT64_MAX;
    case 'number':
      return key ? Number.isFinite(value) : !Number.isNaN(value);
    default:
      return value === null;
  }
}

/** Anything `JSON.stringify` turns into JSON (the custom merge's state); NULL means "no state". */
function isJsonable(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol' && typeof value !== 'bigint';
}

/**
 * Refuses the whole batch if any delta does not fit the definition: wrong number of key or state
 * values, or a value that cannot be stored. Runs before the store writes anything.
 */
export function validateDeltas(def: VersionTable, deltas: Deltas): void {
  if (!Array.isArray(deltas)) return validateColumns(def, deltas);
  const custom = def.stateColumns.map((c) => c.merge.kind === 'custom');
  const nk = def.keyColumns.length;
  const ns = def.stateColumns.length;
  for (let i = 0; i < deltas.length; i++) {
    const d = deltas[i];
    if (
      d === null ||
      typeof d !== 'object' ||
      !Array.isArray(d.key) ||
      !Array.isArray(d.state) ||
      d.key.length !== nk ||
      d.state.length !== ns
    ) {
      throw invalid(
        `Delta ${i} of view "${def.name}" v${def.version} must have ${nk} key value(s) and ${ns} state value(s), aligned with the definition's columns; nothing was written.`,
        { view: def.name, version: def.version, delta: i },
      );
    }
    for (let c = 0; c < nk; c++) {
      if (!isScalar(d.key[c], true))
        throw badValue(def, i, def.keyColumns[c].name, d.key[c], 'a string, a finite number or null');
    }
    for (let c = 0; c < ns; c++) {
      const v = d.state[c];
      if (custom[c] ? !isJsonable(v) : !isScalar(v, false))
        throw badValue(
          def,
          i,
          def.stateColumns[c].name,
          v,
          custom[c] ? 'a JSON value or null' : 'a string, a number or null',
        );
    }
  }
}

/** The same checks as for rows, column by column. */
function validateColumns(def: VersionTable, deltas: DeltaColumns): void {
  const nk = def.keyColumns.length;
  const ns = def.stateColumns.length;
  const { count, keys, states } = (deltas ?? {}) as Partial<DeltaColumns>;
  const sized = (c: unknown): boolean =>
    (Array.isArray(c) || c instanceof Float64Array) && (c as ArrayLike<unknown>).length === count;
  if (
    !Number.isSafeInteger(count) ||
    !Array.isArray(keys) ||
    !Array.isArray(states) ||
    keys.length !== nk ||
    states.length !== ns ||
    !keys.every(sized) ||
    !states.every(sized)
  ) {
    throw invalid(
      `flush of view "${def.name}" v${def.version}: deltas must be an array of rows, or columns (${nk} key and ${ns} state columns of one length); nothing was written.`,
      { view: def.name, version: def.version },
    );
  }
  for (let c = 0; c < nk; c++) {
    const values = keys[c];
    for (let i = 0; i < count!; i++) {
      if (!isScalar(values[i], true))
        throw badValue(def, i, def.keyColumns[c].name, values[i], 'a string, a finite number or null');
    }
  }
  for (let c = 0; c < ns; c++) {
    const custom = def.stateColumns[c].merge.kind === 'custom';
    const values = states[c];
    for (let i = 0; i < count!; i++) {
      const v = values[i];
      if (custom ? !isJsonable(v) : !isScalar(v, false))
        throw badValue(
          def,
          i,
          def.stateColumns[c].name,
          v,
          custom ? 'a JSON value or null' : 'a string, a number or null',
        );
    }
  }
}

function badValue(def: VersionTable, index: number, column: string, value: unknown, wanted: string): KappaError {
  const shown =
    typeof value === 'bigint'
      ? `${value}n`
      : typeof value === 'string'
        ? JSON.stringify(value)
        : typeof value === 'object' && value !== null
          ? 'an object'
          : String(value);
  return invalid(
    `Delta ${index} of view "${def.name}" v${def.version}: column "${column}" needs ${wanted}, got ${shown}; nothing was written.`,
    {
      view: def.name,
      version: def.version,
      delta: index,
      column,
    },
  );
}

/** Refuses malformed checkpoints (the backwards check needs the stored ones and is the adapter's). */
export function validateCheckpoints(view: string, checkpoints: readonly Checkpoint[]): void {
  if (!Array.isArray(checkpoints)) throw invalid(`flush of view "${view}": checkpoints must be an array.`, { view });
  for (let i = 0; i < checkpoints.length; i++) {
    const cp = checkpoints[i];
    const ok =
      cp !== null &&
      typeof cp === 'object' &&
      typeof cp.topic === 'string' &&
      cp.topic.length > 0 &&
      isCount(cp.partition) &&
      isCount(cp.offset) &&
      typeof cp.watermark === 'number' &&
      !Number.isNaN(cp.watermark) &&
      isCount(cp.outputSequence);
    if (!ok) {
      throw invalid(
        `Checkpoint ${i} of view "${view}" is malformed: it needs a topic, and a partition, offset and outputSequence that are whole numbers from 0, and a numeric watermark; nothing was written.`,
        { view, checkpoint: i },
      );
    }
  }
}

function isCount(n: unknown): boolean {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function invalid(message: string, details: Record<string, unknown>): KappaError {
  return new KappaError('KAPPA_INVALID_ARGUMENT', message, details);
}
