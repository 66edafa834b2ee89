/**
 * The keyword rules of the JSON Schema compatibility check (see json-schema-compat.ts for the
 * model): given one reader schema and one writer conjunction (the schemas every written document
 * matches at this place), the problems with the reader's own keywords — type, enum/const, number
 * and string bounds, array items and bounds, object properties, required, content model. Each rule
 * asks "does the writer guarantee what the reader demands?", so a keyword only the reader has is a
 * narrowing, and a keyword only the writer has costs nothing.
 */
import type { CompatibilityProblem } from './types.ts';
import { objectProblems } from './json-schema-compat-objects.ts';
import { isSchemaObject, type SchemaNode, type SchemaObject } from './json-schema-space.ts';
import {
  ALL_KINDS,
  ARRAY,
  FRACTION,
  INTEGER,
  NUMBER,
  OBJECT,
  STRING,
  checkValue,
  conjunctionKinds,
  deepEqual,
  describeKinds,
  describeValue,
  finiteValues,
  hasApplicators,
  isTrivial,
  kindsOf,
  writerNumber,
} from './json-schema-values.ts';

/** What the keyword rules need from the check that drives them. */
export interface Comparison {
  includes(reader: SchemaNode, writer: readonly SchemaNode[], path: string): CompatibilityProblem[];
  disjoint(a: readonly SchemaNode[], b: readonly SchemaNode[]): boolean;
  child(parent: SchemaNode, schema: unknown): SchemaNode;
}

type Problems = CompatibilityProblem[];

export function baseProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  const r = reader.schema as SchemaObject;
  const values = finiteValues(writer);
  if (values !== undefined) {
    const decided = valueProblems(r, values, path);
    if (decided !== undefined) return decided;
  }
  const out: Problems = [];
  const writerKinds = conjunctionKinds(writer);
  const readerKinds = kindsOf(r);
  const missing = writerKinds & ~readerKinds;
  if (missing !== 0) out.push({ path, rule: typeRule(writerKinds, readerKinds, missing) });
  const kinds = writerKinds & readerKinds;
  out.push(...enumProblems(r, values, kinds, path));
  if (kinds & NUMBER) out.push(...numberProblems(r, writer, (kinds & NUMBER) === INTEGER, path));
  if (kinds & STRING) out.push(...stringProblems(r, writer, path));
  if (kinds & ARRAY) out.push(...arrayProblems(cmp, reader, writer, path));
  if (kinds & OBJECT) out.push(...objectProblems(cmp, reader, writer, path));
  return out;
}

/** When the writer admits finitely many values: each checked against the reader; undefined if one cannot be. */
function valueProblems(r: SchemaObject, values: readonly unknown[], path: string): Problems | undefined {
  const out: Problems = [];
  for (const value of values) {
    const check = checkValue(r, value);
    if (check.result === 'unknown') return undefined;
    if (check.result === 'ok') continue;
    const listed = check.keyword === 'enum' || check.keyword === 'const';
    out.push({
      path: listed ? `${path}/${check.keyword}` : path,
      rule: listed
        ? `enum value ${describeValue(value)} removed: the writer allowed it, the reader refuses it`
        : `the value ${describeValue(value)}, which the writer allowed, breaks the reader's "${check.keyword}"`,
    });
  }
  return out;
}

function typeRule(writerKinds: number, readerKinds: number, missing: number): string {
  if (missing === FRACTION && readerKinds & INTEGER) {
    return 'type narrowed from number to integer: numbers with a fraction, which the writer allowed, are refused';
  }
  const refused = `values of type ${describeKinds(missing)}, which the writer allowed, are refused`;
  if (writerKinds === ALL_KINDS)
    return `the writer allowed any type here, the reader only ${describeKinds(readerKinds)}: ${refused}`;
  const change = (writerKinds & readerKinds) === 0 ? 'changed' : 'narrowed';
  return `type ${change} from ${describeKinds(writerKinds)} to ${describeKinds(readerKinds)}: ${refused}`;
}

function enumProblems(r: SchemaObject, values: readonly unknown[] | undefined, kinds: number, path: string): Problems {
  const keyword = Object.hasOwn(r, 'const') ? 'const' : Array.isArray(r.enum) ? 'enum' : undefined;
  if (keyword === undefined || kinds === 0) return [];
  const allowed = keyword === 'const' ? [r.const] : (r.enum as unknown[]);
  if (values !== undefined) {
    return values
      .filter((v) => !allowed.some((a) => deepEqual(a, v)))
      .map((v) => ({
        path: `${path}/${keyword}`,
        rule: `enum value ${describeValue(v)} removed: the writer allowed it, the reader refuses it`,
      }));
  }
  return [
    {
      path: `${path}/${keyword}`,
      rule: `the reader accepts only the values its ${keyword} lists, but the writer allowed any ${describeKinds(kinds)}`,
    },
  ];
}

interface Bound {
  value: number;
  exclusive: boolean;
}

/** The writer's tightest bound on one side, from minimum/exclusiveMinimum (or the maximum pair). */
function writerBound(writer: readonly SchemaNode[], side: 'min' | 'max', integerOnly: boolean): Bound | undefined {
  const [inclusiveKey, exclusiveKey] =
    side === 'min' ? ['minimum', 'exclusiveMinimum'] : ['maximum', 'exclusiveMaximum'];
  const tighter = (a: Bound, b: Bound) =>
    a.value === b.value ? a.exclusive || !b.exclusive : side === 'min' ? a.value > b.value : a.value < b.value;
  let best: Bound | undefined;
  for (const { schema } of writer) {
    if (!isSchemaObject(schema)) continue;
    for (const [key, exclusive] of [
      [inclusiveKey, false],
      [exclusiveKey, true],
    ] as const) {
      const value = schema[key];
      if (typeof value !== 'number') continue;
      const bound = { value, exclusive };
      if (best === undefined || tighter(bound, best)) best = bound;
    }
  }
  if (best === undefined || !integerOnly) return best;
  // Integers only: `> 4.5` is `≥ 5`, `< 10` is `≤ 9`.
  if (side === 'min')
    return { value: best.exclusive ? Math.floor(best.value) + 1 : Math.ceil(best.value), exclusive: false };
  return { value: best.exclusive ? Math.ceil(best.value) - 1 : Math.floor(best.value), exclusive: false };
}

function numberProblems(r: SchemaObject, writer: readonly SchemaNode[], integerOnly: boolean, path: string): Problems {
  const out: Problems = [];
  for (const [keyword, side, exclusive] of [
    ['minimum', 'min', false],
    ['exclusiveMinimum', 'min', true],
    ['maximum', 'max', false],
    ['exclusiveMaximum', 'max', true],
  ] as const) {
    const limit = r[keyword];
    if (typeof limit !== 'number') continue;
    const bound = writerBound(writer, side, integerOnly);
    const beyond = side === 'min' ? (v: number) => v > limit : (v: number) => v < limit;
    const ok =
      bound !== undefined && (beyond(bound.value) || (bound.value === limit && (!exclusive || bound.exclusive)));
    if (ok) continue;
    const sign = side === 'min' ? (exclusive ? '>' : '≥') : exclusive ? '<' : '≤';
    const had =
      bound === undefined ? `any value (no ${side === 'min' ? 'lower' : 'upper'} bound)` : boundText(bound, side);
    out.push({
      path: `${path}/${keyword}`,
      rule: `${keyword} narrowed: the reader requires values ${sign} ${limit}, the writer allowed ${had}`,
    });
  }
  const step = r.multipleOf;
  if (typeof step === 'number') {
    const ok =
      (integerOnly && Number.isInteger(1 / step)) ||
      writer.some(
        ({ schema }) =>
          isSchemaObject(schema) && typeof schema.multipleOf === 'number' && Number.isInteger(schema.multipleOf / step),
      );
    if (!ok) {
      const had = writer
        .map(({ schema }) => (isSchemaObject(schema) ? schema.multipleOf : undefined))
        .find((m) => m !== undefined);
      out.push({
        path: `${path}/multipleOf`,
        rule: `multipleOf narrowed: the reader requires multiples of ${step}, the writer allowed ${had === undefined ? 'any number' : `multiples of ${String(had)}`}`,
      });
    }
  }
  return out;
}

function boundText(bound: Bound, side: 'min' | 'max'): string {
  const sign = side === 'min' ? (bound.exclusive ? '>' : '≥') : bound.exclusive ? '<' : '≤';
  return `values ${sign} ${bound.value}`;
}

function hasKeywordValue(writer: readonly SchemaNode[], keyword: string, value: unknown): boolean {
  return writer.some(({ schema }) => isSchemaObject(schema) && deepEqual(schema[keyword], value));
}

function stringProblems(r: SchemaObject, writer: readonly SchemaNode[], path: string): Problems {
  const out: Problems = [];
  if (typeof r.minLength === 'number') {
    const had = writerNumber(writer, 'minLength', 'max', 0);
    if (had < r.minLength) {
      out.push({
        path: `${path}/minLength`,
        rule: `minLength raised from ${had} to ${r.minLength}: shorter strings the writer allowed are refused`,
      });
    }
  }
  if (typeof r.maxLength === 'number') {
    const had = writerNumber(writer, 'maxLength', 'min', Infinity);
    if (had > r.maxLength) {
      const before = had === Infinity ? 'no limit' : String(had);
      out.push({
        path: `${path}/maxLength`,
        rule: `maxLength lowered from ${before} to ${r.maxLength}: longer strings the writer allowed are refused`,
      });
    }
  }
  if (r.pattern !== undefined && !hasKeywordValue(writer, 'pattern', r.pattern)) {
    out.push({
      path: `${path}/pattern`,
      rule: `pattern added or changed: the reader requires strings matching ${describeValue(r.pattern)}, which the writer did not (patterns are compared as text)`,
    });
  }
  if (r.format !== undefined && !hasKeywordValue(writer, 'format', r.format)) {
    out.push({
      path: `${path}/format`,
      rule: `format added or changed: the reader requires the format ${describeValue(r.format)}, the writer did not`,
    });
  }
  return out;
}

/** A schema's tuple part (prefixItems, or draft-07's items array) and the schema for the items after it. */
function itemsOf(node: SchemaNode): { prefix: unknown[]; rest: unknown; prefixKey: string; restKey: string } {
  const s = node.schema as SchemaObject;
  const unevaluated = !hasApplicators(s) && s.unevaluatedItems !== undefined ? s.unevaluatedItems : true;
  if (node.draft === '2020-12') {
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    return {
      prefix,
      rest: s.items ?? unevaluated,
      prefixKey: 'prefixItems',
      restKey: s.items === undefined ? 'unevaluatedItems' : 'items',
    };
  }
  if (Array.isArray(s.items)) {
    return { prefix: s.items, rest: s.additionalItems ?? unevaluated, prefixKey: 'items', restKey: 'additionalItems' };
  }
  return {
    prefix: [],
    rest: s.items ?? unevaluated,
    prefixKey: 'items',
    restKey: s.items === undefined ? 'unevaluatedItems' : 'items',
  };
}

function arrayProblems(cmp: Comparison, reader: SchemaNode, writer: readonly SchemaNode[], path: string): Problems {
  const r = reader.schema as SchemaObject;
  const out: Problems = [];
  const mine = itemsOf(reader);
  const theirs = writer.map((node) => ({ node, items: itemsOf(node) }));
  const at = (node: SchemaNode, items: ReturnType<typeof itemsOf>, i: number) =>
    cmp.child(node, i < items.prefix.length ? items.prefix[i] : items.rest);
  const maxItems = writerNumber(writer, 'maxItems', 'min', Infinity);
  const minItems = writerNumber(writer, 'minItems', 'max', 0);
  const positions = Math.max(mine.prefix.length, ...theirs.map((t) => t.items.prefix.length));
  for (let i = 0; i < positions && i < maxItems; i++) {
    const itemPath = i < mine.prefix.length ? `${path}/${mine.prefixKey}/${i}` : `${path}/${mine.restKey}`;
    out.push(
      ...cmp.includes(
        at(reader, mine, i),
        theirs.map((t) => at(t.node, t.items, i)),
        itemPath,
      ),
    );
  }
  if (maxItems > positions) {
    const rest = theirs.map((t) => cmp.child(t.node, t.items.rest));
    out.push(...cmp.includes(cmp.child(reader, mine.rest), rest, `${path}/${mine.restKey}`));
  }
  if (typeof r.minItems === 'number' && minItems < r.minItems) {
    out.push({
      path: `${path}/minItems`,
      rule: `minItems raised from ${minItems} to ${r.minItems}: shorter arrays the writer allowed are refused`,
    });
  }
  if (typeof r.maxItems === 'number' && maxItems > r.maxItems) {
    const before = maxItems === Infinity ? 'no limit' : String(maxItems);
    out.push({
      path: `${path}/maxItems`,
      rule: `maxItems lowered from ${before} to ${r.maxItems}: longer arrays the writer allowed are refused`,
    });
  }
  if (r.uniqueItems === true && maxItems > 1 && !hasKeywordValue(writer, 'uniqueItems', true)) {
    out.push({
      path: `${path}/uniqueItems`,
      rule: 'uniqueItems added: arrays with repeated items, which the writer allowed, are refused',
    });
  }
  out.push(...containsProblems(cmp, reader, writer, minItems, maxItems, path));
  if (
    r.unevaluatedItems !== undefined &&
    hasApplicators(r) &&
    !isTrivial(cmp.child(reader, r.unevaluatedItems).schema)
  ) {
    out.push({
      path: `${path}/unevaluatedItems`,
      rule: 'unevaluatedItems next to allOf/anyOf/oneOf/$ref/if is not compared, so it is treated as incompatible',
    });
  }
  return out;
}

function containsProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  minItems: number,
  maxItems: number,
  path: string,
): Problems {
  const r = reader.schema as SchemaObject;
  if (r.contains === undefined) return [];
  const out: Problems = [];
  const wanted = cmp.child(reader, r.contains);
  const least = typeof r.minContains === 'number' ? r.minContains : 1;
  const guaranteed =
    least === 0 ||
    writer.some((node) => {
      const schema = node.schema;
      if (!isSchemaObject(schema) || schema.contains === undefined) return false;
      const theirs = typeof schema.minContains === 'number' ? schema.minContains : 1;
      return theirs >= least && cmp.includes(wanted, [cmp.child(node, schema.contains)], path).length === 0;
    }) ||
    (minItems >= least &&
      writer.every((node) => itemsOf(node).prefix.length === 0) &&
      cmp.includes(
        wanted,
        writer.map((node) => cmp.child(node, itemsOf(node).rest)),
        path,
      ).length === 0);
  if (!guaranteed) {
    out.push({
      path: `${path}/contains`,
      rule: 'contains added or narrowed: arrays the writer allowed may lack the items the reader requires',
    });
  }
  if (typeof r.maxContains === 'number') {
    const limited =
      maxItems <= r.maxContains ||
      writer.some(
        ({ schema }) =>
          isSchemaObject(schema) &&
          deepEqual(schema.contains, r.contains) &&
          typeof schema.maxContains === 'number' &&
          schema.maxContains <= (r.maxContains as number),
      );
    if (!limited)
      out.push({
        path: `${path}/maxContains`,
        rule: 'maxContains added or lowered: arrays the writer allowed may hold more matching items',
      });
  }
  return out;
}
