/**
 * Small facts about JSON Schemas the compatibility check (json-schema-compat.ts) reasons with: the
 * JSON types a schema admits (as a bit set, with integers and other numbers apart so integer →
 * number is a widening), whether a schema constrains anything, the finite set of values a
 * conjunction of schemas admits when it has one (`enum`, `const`, booleans, null), and whether one
 * value passes a schema's plain keywords. A "conjunction" is a list of schema nodes a value must
 * match all of; only each node's own keywords count (its allOf/anyOf/oneOf/$ref were expanded by
 * the caller).
 */
import { isSchemaObject, type SchemaNode, type SchemaObject, type SchemaValue } from './json-schema-space.ts';

export const NULL = 1;
export const BOOLEAN = 2;
export const OBJECT = 4;
export const ARRAY = 8;
export const STRING = 16;
export const INTEGER = 32;
/** Numbers that are not integers. `type: "number"` is INTEGER | FRACTION. */
export const FRACTION = 64;
export const NUMBER = INTEGER | FRACTION;
export const ALL_KINDS = 127;

const KIND_BY_TYPE: Readonly<Record<string, number>> = {
  null: NULL,
  boolean: BOOLEAN,
  object: OBJECT,
  array: ARRAY,
  string: STRING,
  integer: INTEGER,
  number: NUMBER,
};

/** Every keyword that constrains values; an object schema with none of them accepts everything. */
const ASSERTION_KEYWORDS = new Set([
  'type',
  'enum',
  'const',
  'multipleOf',
  'maximum',
  'exclusiveMaximum',
  'minimum',
  'exclusiveMinimum',
  'maxLength',
  'minLength',
  'pattern',
  'format',
  'items',
  'prefixItems',
  'additionalItems',
  'unevaluatedItems',
  'contains',
  'maxItems',
  'minItems',
  'uniqueItems',
  'maxContains',
  'minContains',
  'maxProperties',
  'minProperties',
  'required',
  'properties',
  'patternProperties',
  'additionalProperties',
  'unevaluatedProperties',
  'dependencies',
  'dependentRequired',
  'dependentSchemas',
  'propertyNames',
  'if',
  'then',
  'else',
  'allOf',
  'anyOf',
  'oneOf',
  'not',
  '$ref',
  '$dynamicRef',
  '$recursiveRef',
]);
const ARRAY_KEYWORDS = [
  'items',
  'prefixItems',
  'additionalItems',
  'unevaluatedItems',
  'contains',
  'maxItems',
  'minItems',
  'uniqueItems',
];
const OBJECT_KEYWORDS = [
  'properties',
  'patternProperties',
  'additionalProperties',
  'unevaluatedProperties',
  'required',
  'maxProperties',
  'minProperties',
  'propertyNames',
  'dependencies',
  'dependentRequired',
  'dependentSchemas',
];
/** Keywords that make `unevaluated*` differ from `additional*`/`items`. */
const APPLICATOR_KEYWORDS = [
  'allOf',
  'anyOf',
  'oneOf',
  '$ref',
  '$dynamicRef',
  '$recursiveRef',
  'if',
  'dependentSchemas',
];
const VALUE_CHARS_MAX = 60;

/** True when the schema accepts every value: `true`, `{}`, or only annotations. */
export function isTrivial(schema: SchemaValue): boolean {
  if (typeof schema === 'boolean') return schema;
  for (const keyword of Object.keys(schema)) if (ASSERTION_KEYWORDS.has(keyword)) return false;
  return true;
}

/** The kinds `type` admits (all of them when there is no `type`). */
export function kindsOf(schema: SchemaValue): number {
  if (typeof schema === 'boolean') return schema ? ALL_KINDS : 0;
  const type = schema.type;
  if (type === undefined) return ALL_KINDS;
  let kinds = 0;
  for (const name of Array.isArray(type) ? type : [type]) kinds |= KIND_BY_TYPE[String(name)] ?? 0;
  return kinds;
}

export function conjunctionKinds(conjunction: readonly SchemaNode[]): number {
  let kinds = ALL_KINDS;
  for (const node of conjunction) kinds &= kindsOf(node.schema);
  return kinds;
}

export function kindOfValue(value: unknown): number {
  if (value === null) return NULL;
  if (typeof value === 'boolean') return BOOLEAN;
  if (typeof value === 'string') return STRING;
  if (typeof value === 'number') return Number.isInteger(value) ? INTEGER : FRACTION;
  return Array.isArray(value) ? ARRAY : OBJECT;
}

/** `string, integer` for a kind set; `any type` for all of them. */
export function describeKinds(kinds: number): string {
  if (kinds === ALL_KINDS) return 'any type';
  const names: string[] = [];
  for (const [name, bit] of [
    ['null', NULL],
    ['boolean', BOOLEAN],
    ['object', OBJECT],
    ['array', ARRAY],
    ['string', STRING],
  ] as const) {
    if (kinds & bit) names.push(name);
  }
  if ((kinds & NUMBER) === NUMBER) names.push('number');
  else if (kinds & INTEGER) names.push('integer');
  else if (kinds & FRACTION) names.push('non-integer number');
  return names.length === 0 ? 'no value' : names.join(', ');
}

/** Whether `schema` has unevaluatedProperties/unevaluatedItems whose meaning depends on other subschemas. */
export function hasApplicators(schema: SchemaObject): boolean {
  return APPLICATOR_KEYWORDS.some((keyword) => schema[keyword] !== undefined);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const other = b as unknown[];
    return a.length === other.length && a.every((item, i) => deepEqual(item, other[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  const ob = b as Record<string, unknown>;
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(ob, k) && deepEqual((a as Record<string, unknown>)[k], ob[k]))
  );
}

export function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > VALUE_CHARS_MAX ? `${text.slice(0, VALUE_CHARS_MAX)}…` : text;
}

export type ValueCheck = { result: 'ok' } | { result: 'fail' | 'unknown'; keyword: string };

const OK: ValueCheck = { result: 'ok' };

/**
 * Whether `value` passes the schema's own plain keywords (type, enum, const, number and string
 * bounds, pattern). `unknown` when a keyword it does not evaluate here (format, array and object
 * structure) applies to the value. allOf/anyOf/oneOf/not/$ref/if are not looked at.
 */
export function checkValue(schema: SchemaValue, value: unknown): ValueCheck {
  if (typeof schema === 'boolean') return schema ? OK : { result: 'fail', keyword: 'false' };
  if ((kindsOf(schema) & kindOfValue(value)) === 0) return { result: 'fail', keyword: 'type' };
  if (Object.hasOwn(schema, 'const') && !deepEqual(schema.const, value)) return { result: 'fail', keyword: 'const' };
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => deepEqual(v, value))) {
    return { result: 'fail', keyword: 'enum' };
  }
  if (typeof value === 'number') return checkNumber(schema, value);
  if (typeof value === 'string') return checkString(schema, value);
  const keywords = Array.isArray(value) ? ARRAY_KEYWORDS : isSchemaObject(value) ? OBJECT_KEYWORDS : [];
  const structural = keywords.find((k) => schema[k] !== undefined);
  return structural === undefined ? OK : { result: 'unknown', keyword: structural };
}

function checkNumber(schema: SchemaObject, value: number): ValueCheck {
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum, multipleOf } = schema;
  if (typeof minimum === 'number' && value < minimum) return { result: 'fail', keyword: 'minimum' };
  if (typeof maximum === 'number' && value > maximum) return { result: 'fail', keyword: 'maximum' };
  if (typeof exclusiveMinimum === 'number' && value <= exclusiveMinimum) {
    return { result: 'fail', keyword: 'exclusiveMinimum' };
  }
  if (typeof exclusiveMaximum === 'number' && value >= exclusiveMaximum) {
    return { result: 'fail', keyword: 'exclusiveMaximum' };
  }
  // ajv's own test, without a precision option: value / multipleOf must be an integer.
  if (typeof multipleOf === 'number' && !Number.isInteger(value / multipleOf)) {
    return { result: 'fail', keyword: 'multipleOf' };
  }
  return OK;
}

function checkString(schema: SchemaObject, value: string): ValueCheck {
  // ajv counts code points, as the specification says, not UTF-16 units.
  const length = [...value].length;
  if (typeof schema.minLength === 'number' && length < schema.minLength)
    return { result: 'fail', keyword: 'minLength' };
  if (typeof schema.maxLength === 'number' && length > schema.maxLength)
    return { result: 'fail', keyword: 'maxLength' };
  if (typeof schema.pattern === 'string') {
    try {
      if (!new RegExp(schema.pattern, 'u').test(value)) return { result: 'fail', keyword: 'pattern' };
    } catch {
      return { result: 'unknown', keyword: 'pattern' };
    }
  }
  return schema.format === undefined ? OK : { result: 'unknown', keyword: 'format' };
}

/**
 * The values a conjunction admits when they are finitely many (an `enum` or `const` in one of its
 * schemas, or a type of only null and booleans), else undefined. An empty list: no value at all.
 */
export function finiteValues(conjunction: readonly SchemaNode[]): unknown[] | undefined {
  let candidates: unknown[] | undefined;
  for (const { schema } of conjunction) {
    if (!isSchemaObject(schema)) continue;
    const listed = Object.hasOwn(schema, 'const')
      ? [schema.const]
      : Array.isArray(schema.enum)
        ? schema.enum
        : undefined;
    if (listed === undefined) continue;
    candidates = candidates === undefined ? [...listed] : candidates.filter((v) => listed.some((w) => deepEqual(v, w)));
  }
  if (candidates === undefined) {
    const kinds = conjunctionKinds(conjunction);
    if ((kinds & ~(NULL | BOOLEAN)) !== 0) return undefined;
    candidates = [...(kinds & NULL ? [null] : []), ...(kinds & BOOLEAN ? [true, false] : [])];
  }
  // A value stays unless a schema surely refuses it: keeping one too many only makes the writer larger.
  return candidates.filter((value) => conjunction.every((node) => checkValue(node.schema, value).result !== 'fail'));
}

/** True when no value can match every schema of the conjunction (as far as these checks see). */
export function isUnsatisfiable(conjunction: readonly SchemaNode[]): boolean {
  if (conjunction.some((node) => node.schema === false)) return true;
  if (conjunctionKinds(conjunction) === 0) return true;
  return finiteValues(conjunction)?.length === 0;
}

/** The writer's largest (`max`) or smallest (`min`) value of a numeric keyword; `fallback` when none has it. */
export function writerNumber(
  writer: readonly SchemaNode[],
  keyword: string,
  pick: 'max' | 'min',
  fallback: number,
): number {
  let out = fallback;
  let seen = false;
  for (const { schema } of writer) {
    const value = isSchemaObject(schema) ? schema[keyword] : undefined;
    if (typeof value !== 'number') continue;
    out = !seen ? value : pick === 'max' ? Math.max(out, value) : Math.min(out, value);
    seen = true;
  }
  return out;
}
