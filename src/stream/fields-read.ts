/**
 * Which properties of a source's records a plan's functions read, so the records' decoder makes
 * only those (src/schema/flat-decoder.ts `read`): on a view that groups sales by region and sums
 * their amounts, the order ids and SKUs are checked against the schema but no string is made for
 * them. The answer is found in the functions' source text, and it is only ever a narrowing the
 * text proves: any use of the value other than `value.name` (passed on, spread, indexed, stored,
 * returned, shadowed by another binding of the same name, a destructuring with a rest element...)
 * makes it null, and the records are decoded whole, as without it.
 */
import type { Op } from './dsl.ts';

const IDENT = '[A-Za-z_$][\\w$]*';
const PARAM_LIST = new RegExp(`^(?:async\\s*)?(?:function\\b[^(]*)?\\(\\s*(${IDENT})\\s*(?:,[^)]*)?\\)\\s*(?:=>)?`);
const BARE_PARAM = new RegExp(`^(?:async\\s+)?(${IDENT})\\s*=>`);
const DESTRUCTURED = /^(?:async\s*)?(?:function\b[^(]*)?\(\s*\{([^{}]*)\}\s*(?:,[^)]*)?\)\s*(?:=>)?/;
const ARGUMENTS = /(?<![\w$.])arguments(?![\w$])/;
const NO_PARAMS = /^(?:async\s*)?(?:function\b[^(]*)?\(\s*\)/;
const IDENTITY = new RegExp(`^(?:\\(\\s*(${IDENT})\\s*\\)|(${IDENT}))\\s*=>\\s*\\(?\\s*(${IDENT})\\s*\\)?\\s*;?$`);

/**
 * The names of the properties a function (its source text) reads of its first argument, or null
 * when the text does not prove it.
 */
export function propertiesRead(source: string): Set<string> | null {
  const text = source.trim();
  // `arguments` holds the value whole, whatever the parameters say.
  if (ARGUMENTS.test(text)) return null;
  if (NO_PARAMS.test(text)) return new Set();
  const destructured = DESTRUCTURED.exec(text);
  if (destructured !== null) return destructuredNames(destructured[1]);
  const m = PARAM_LIST.exec(text) ?? BARE_PARAM.exec(text);
  if (m === null) return null;
  const name = m[1];
  const body = text.slice(m[0].length);
  const found = new Set<string>();
  const uses = new RegExp(`(?<![\\w$])${name.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
  // Another parameter's default may take the value whole (`(s, t = s) =>`).
  if ((m[0].match(uses) ?? []).length !== 1) return null;
  uses.lastIndex = 0;
  for (let use = uses.exec(body); use !== null; use = uses.exec(body)) {
    // `other.name` is another object's property, but `...name` spreads the value.
    const before = body.slice(0, use.index).trimEnd();
    if (before.endsWith('...')) return null;
    if (before.endsWith('.')) continue;
    const member = new RegExp(`^\\s*\\??\\.\\s*(${IDENT})`).exec(body.slice(use.index + name.length));
    if (member === null) return null;
    found.add(member[1]);
  }
  return found;
}

/** `{ a, b: c, d = 1 }` → a, b, d; null for anything else (a rest element, nested patterns, computed keys). */
function destructuredNames(list: string): Set<string> | null {
  const names = new Set<string>();
  for (const part of list.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const m = new RegExp(`^(${IDENT})\\s*(?:[:=]|$)`).exec(p);
    if (m === null || (p.includes(':') && !new RegExp(`^${IDENT}\\s*:\\s*${IDENT}\\s*(=.*)?$`).test(p))) return null;
    names.add(m[1]);
  }
  return names;
}

/** Whether `fn` returns its argument as it is (`(e) => e`, also a TypeScript cast's `(e) => e as T`). */
function isIdentity(fn: (...args: never[]) => unknown): boolean {
  const m = IDENTITY.exec(fn.toString().trim());
  return m !== null && (m[1] ?? m[2]) === m[3];
}

/** What a pipeline does with its source's records, for `sourceFieldsRead`. */
export interface SourceUse {
  /** The topic's time extractor (null: the record timestamp). */
  time: ((value: never) => unknown) | null;
  ops: readonly Op[];
  /**
   * The source text of the functions given the value the ops end with (group key, aggregates'
   * extractors, see `extractorText`); null: that value is used whole (written to a topic, stored).
   */
  then: readonly (string | null)[] | null;
}

/**
 * The properties of the source's records that `use` reads, or null when they are not all known
 * (the records are then decoded whole). Reads stop at the first `map` or `flatMap` that makes a
 * new value (or the first join, whose function makes the joined value): what comes after reads
 * that value, not the record.
 */
export function sourceFieldsRead(use: SourceUse): ReadonlySet<string> | null {
  const found = new Set<string>();
  const add = (fn: ((...args: never[]) => unknown) | string | null): boolean => {
    const read = fn === null ? null : propertiesRead(fn.toString());
    if (read === null) return false;
    for (const name of read) found.add(name);
    return true;
  };
  if (use.time !== null && !add(use.time)) return null;
  for (const op of use.ops) {
    if (op.kind === 'filter') {
      if (!add(op.fn)) return null;
    } else if (op.kind === 'map' && isIdentity(op.fn)) {
      continue;
    } else if (op.kind === 'map' || op.kind === 'flatMap') {
      return add(op.fn) ? found : null;
    } else if (op.kind === 'join') {
      // The key, then the joined value made from the event (its first argument) and the table's.
      return add(op.key) && add(op.fn) ? found : null;
    } else {
      return null; // stateful steps: not followed
    }
  }
  if (use.then === null) return null;
  for (const fn of use.then) if (!add(fn)) return null;
  return found;
}

/** Aggregates' signatures (src/stream/aggregates*.ts) whose one function is the extractor, by kind. */
const EXTRACTOR_SIGNATURES: Record<string, RegExp> = {
  count: /^count\((.*)\)$/s,
  min: /^min\((.*)\)$/s,
  max: /^max\((.*)\)$/s,
  sum: /^sum\((.*)\) hi\+lo$/s,
  avg: /^avg\((.*)\) hi\+lo$/s,
  first: /^first\((.*)\) by time,partition,offset$/s,
  last: /^last\((.*)\) by time,partition,offset$/s,
  countDistinct: /^countDistinct\((.*)\) (?:exact limit=\d+|hll p=\d+ murmur3x2 ertl)$/s,
};

/**
 * The source text of a built-in aggregate's extractor, read from its signature ('' for count(),
 * which has none); null for any other aggregate (custom, topN), whose use of the value is not followed.
 */
export function extractorText(agg: { kind: string; signature: string }): string | null {
  const m = Object.hasOwn(EXTRACTOR_SIGNATURES, agg.kind) ? EXTRACTOR_SIGNATURES[agg.kind].exec(agg.signature) : null;
  if (m === null) return null;
  return m[1] === '' ? '() => 0' : m[1];
}
