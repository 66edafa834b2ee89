/**
 * Projection: which fields of a source record a view's functions read, so decoding can skip the
 * others (making their strings is a large share of a fold, see docs/performance.md).
 *
 * The analysis reads a function's source text. It names a field only when every use of the
 * function's parameter is a property read with a plain name (`s.region`, `s?.ts`); anything else
 * (`s` passed on, `s[k]`, `...s`, `s.x(...)`, destructuring we do not follow, `arguments`, `this`,
 * `eval`) gives up, and the caller decodes every field. Giving up is always safe; a field wrongly
 * left out is not, so every doubt gives up. Inner functions that reuse the parameter's name only
 * add names (a superset is safe).
 */
import type { Aggregate } from './aggregates.ts';
import type { ViewDef } from './dsl.ts';

const IDENT = /^[A-Za-z_$][\w$]*$/;

/** The plain-named fields `fn` reads from its first parameter; null when that cannot be told. */
export function fieldsRead(fn: unknown): Set<string> | null {
  if (typeof fn !== 'function') return null;
  const text = Function.prototype.toString.call(fn);
  const head = /^\s*(?:async\s+)?(?:function\b[^(]*)?\(\s*([^)]*?)\s*\)\s*(?:=>)?\s*|^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>\s*/.exec(text);
  if (head === null) return null;
  const params = (head[1] ?? head[2] ?? '').trim();
  const body = text.slice(head[0].length);
  if (/\b(arguments|eval|this|with)\b/.test(body)) return null;
  if (params === '') return new Set();
  const first = params.split(',')[0].trim();
  // ({ a, b }) => … : the fields are the destructured names (no defaults, renames, nesting or rest).
  if (first.startsWith('{')) {
    const inner = params.slice(1, params.indexOf('}'));
    const names = inner.split(',').map((n) => n.trim()).filter((n) => n !== '');
    return names.every((n) => IDENT.test(n)) ? new Set(names) : null;
  }
  if (!IDENT.test(first)) return null;
  const fields = new Set<string>();
  const re = new RegExp(`(?<![\\w$])${first.replace(/\$/g, '\\$')}(?![\\w$])`, 'g');
  for (let m = re.exec(body); m !== null; m = re.exec(body)) {
    const before = body.slice(0, m.index);
    if (/\.\.\.\s*$/.test(before)) return null; // spread: every field escapes
    if (/\.\s*$/.test(before)) continue; // `x.s`: a property of something else
    const after = body.slice(m.index + m[0].length);
    const access = /^\s*(\?\.|\.)\s*([A-Za-z_$][\w$]*)/.exec(after);
    if (access === null) return null; // a bare use: the whole value escapes
    if (/^\s*\(/.test(after.slice(access[0].length))) return null; // a method called on it
    fields.add(access[2]);
  }
  return fields;
}

/** The extractor functions an aggregate calls on each event; null for one whose reads cannot be told (custom). */
function readersOf(agg: Aggregate<unknown>): readonly unknown[] | null {
  return agg.readers ?? null;
}

/**
 * Every source field a view's functions read, or null (decode everything). Steps up to the first
 * map or flatMap see the source record; after one, the rest see what it made, so only the steps
 * before it (and it) count.
 */
export function viewFields(view: ViewDef): Set<string> | null {
  const agg = view.aggregation;
  const fns: unknown[] = [];
  if (agg.stream.source.time !== null) fns.push(agg.stream.source.time);
  let reshaped = false;
  for (const op of agg.stream.ops) {
    fns.push(op.fn);
    if (op.kind === 'map' || op.kind === 'flatMap' || op.kind === 'stateful') {
      reshaped = true;
      break;
    }
  }
  if (!reshaped) {
    fns.push(agg.keyFn);
    for (const a of Object.values(agg.aggregates)) {
      const readers = readersOf(a);
      if (readers === null) return null;
      fns.push(...readers);
    }
  }
  const all = new Set<string>();
  for (const fn of fns) {
    const f = fieldsRead(fn);
    if (f === null) return null;
    for (const name of f) all.add(name);
  }
  return all;
}
