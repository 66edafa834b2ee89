/**
 * Rewrites unions of constants — `anyOf: [{ const: 'north' }, { const: 'south' }]`, which is what
 * TypeBox's `Union([Literal(...), ...])` and `Enum` compile to — into the equivalent
 * `enum: ['north', 'south']` before ajv compiles the schema.
 *
 * Why: ajv validates an `anyOf` by trying alternatives in order, and every alternative that fails
 * allocates an error object even when a later one matches. A valid `'south'` would cost one garbage
 * object per record on the hot path; an `enum` is a chain of `===` comparisons and allocates
 * nothing. The rewrite is exact: each alternative may carry only `const`, a `type` its constant
 * satisfies, and annotations, so the set of accepted values is unchanged; the error for a bad value
 * reads the same (`must be one of: north, south`).
 *
 * The input is never mutated; unchanged subtrees are shared with it.
 */

/** Keywords whose values are data, not schemas: never looked into. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples']);
/** Keywords an alternative may carry and still be rewritten. */
const CONST_BRANCH_KEYWORDS = new Set(['const', 'type', 'title', 'description', '$comment']);
/** Deepest nesting walked; deeper subtrees are left as they are (the rewrite is only an optimisation). */
const DEPTH_MAX = 256;

export function rewriteConstUnions<S>(schema: S): S {
  return rewrite(schema, 0) as S;
}

function rewrite(node: unknown, depth: number): unknown {
  if (node === null || typeof node !== 'object' || depth > DEPTH_MAX) return node;
  if (Array.isArray(node)) {
    let copy: unknown[] | undefined;
    node.forEach((item, i) => {
      const next = rewrite(item, depth + 1);
      if (next !== item) (copy ??= [...node])[i] = next;
    });
    return copy ?? node;
  }
  const record = node as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key of Object.keys(record)) {
    if (DATA_KEYWORDS.has(key)) continue;
    const next = rewrite(record[key], depth + 1);
    if (next !== record[key]) (copy ??= { ...record })[key] = next;
  }
  const result = copy ?? record;
  const values = constUnionValues(result.anyOf);
  if (values === undefined || Object.hasOwn(result, 'enum')) return result;
  const { anyOf: _anyOf, ...rest } = result;
  return { ...rest, enum: values };
}

/** The constants of an `anyOf` made only of constants, or undefined. */
function constUnionValues(anyOf: unknown): unknown[] | undefined {
  if (!Array.isArray(anyOf) || anyOf.length === 0) return undefined;
  const values: unknown[] = [];
  for (const branch of anyOf) {
    if (branch === null || typeof branch !== 'object' || Array.isArray(branch)) return undefined;
    const b = branch as Record<string, unknown>;
    if (!Object.hasOwn(b, 'const') || !Object.keys(b).every((k) => CONST_BRANCH_KEYWORDS.has(k))) return undefined;
    if (b.type !== undefined && !satisfiesType(b.const, b.type)) return undefined;
    values.push(b.const);
  }
  return values;
}

function satisfiesType(value: unknown, type: unknown): boolean {
  const types = Array.isArray(type) ? type : [type];
  return types.some((t) => {
    switch (t) {
      case 'string':
        return typeof value === 'string';
      case 'number':
        return typeof value === 'number' && Number.isFinite(value);
      case 'integer':
        return Number.isInteger(value);
      case 'boolean':
        return typeof value === 'boolean';
      case 'null':
        return value === null;
      case 'object':
        return value !== null && typeof value === 'object' && !Array.isArray(value);
      case 'array':
        return Array.isArray(value);
      default:
        return false;
    }
  });
}
