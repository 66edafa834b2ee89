/**
 * Turns ajv's validation errors into `SchemaIssue`s: one per bad field, each naming the field's
 * path and saying in plain English what is wrong with it.
 *
 * Paths are RFC 6901 JSON Pointers into the record: `""` is the record itself, `/amount` a
 * top-level field, `/items/2/price` a field of the third array element (`~1` stands for `/` and
 * `~0` for `~` inside a key). Pointers are unambiguous for any key, so machines get them;
 * `formatPath` renders one for people as `items[2].price`.
 *
 * ajv reports some errors on a different path than a person expects, and this file fixes them up:
 * a missing required field and a field the schema does not allow are reported on the parent
 * object with the name in `params`, so the issue's path gets that name appended. A value matching
 * none of a union's alternatives (`anyOf`/`oneOf`, which is what TypeBox's `Union` and `Literal`s
 * compile to) makes ajv report every alternative's failure plus one "must match a schema in anyOf";
 * that becomes a single issue (`must be one of: north, south`) or the errors of the alternative the
 * value most nearly matches.
 */
import type { ErrorObject } from 'ajv';

/** One thing wrong with a record. */
export interface SchemaIssue {
  /** JSON Pointer to the bad field: `""` for the whole record, `/items/2/price` for a nested one. */
  readonly path: string;
  /** What is wrong, in plain English, without the field name: `must be a number`, `is required`. */
  readonly message: string;
}

/** Allowed values listed in one message before the rest are summarised as "and N more". */
const ALLOWED_VALUES_SHOWN_MAX = 10;
/** Longest rendering of one value inside a message; longer ones are cut. */
const VALUE_CHARS_MAX = 60;
/** How much heavier a failed `const`/`enum` weighs than another error when picking the union
 * alternative a value was meant to match: a wrong discriminator says "not this one" more than a
 * missing field does. */
const DISCRIMINATOR_MISMATCH_WEIGHT = 3;

/** Converts ajv's errors for one failed validation (with `allErrors: true`) into issues. */
export function issuesFromAjvErrors(errors: readonly ErrorObject[], rootSchema: unknown): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  collectIssues(errors, rootSchema, out);
  return dedupe(out);
}

/** Renders a JSON Pointer for people: `/items/2/price` → `items[2].price`, `""` → `""`. */
export function formatPath(pointer: string): string {
  if (pointer === '') return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^(0|[1-9]\d*)$/.test(segment)) out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * One line for people: `price must be a number; customer.id is required (and 3 more)`.
 * Issues on the record itself are named `rootLabel` (`the record must be an object`).
 */
export function describeIssues(issues: readonly SchemaIssue[], max = 5, rootLabel = 'the record'): string {
  const shown = issues.slice(0, Math.max(1, max));
  let line = shown
    .map((issue) => `${issue.path === '' ? rootLabel : formatPath(issue.path)} ${issue.message}`)
    .join('; ');
  if (issues.length > shown.length) line += ` (and ${issues.length - shown.length} more)`;
  return line;
}

/** Appends one key to a JSON Pointer, escaping it as RFC 6901 says. */
export function childPath(pointer: string, key: string): string {
  return `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function collectIssues(errors: readonly ErrorObject[], rootSchema: unknown, out: SchemaIssue[]): void {
  const unions = outermostUnions(errors);
  for (const error of errors) {
    if (unions.includes(error)) {
      resolveUnion(
        error,
        errors.filter((e) => isBranchError(e, error)),
        rootSchema,
        out,
      );
    } else if (!unions.some((union) => isBranchError(error, union))) {
      const issue = plainIssue(error);
      if (issue !== null) out.push(issue);
    }
  }
}

/** An `anyOf`, or a `oneOf` that nothing matched (a `oneOf` matched twice is a plain error). */
function isFailedUnion(error: ErrorObject): boolean {
  return error.keyword === 'anyOf' || (error.keyword === 'oneOf' && error.params.passingSchemas == null);
}

/** Unions not nested in another union's alternatives; the nested ones are resolved recursively. */
function outermostUnions(errors: readonly ErrorObject[]): ErrorObject[] {
  const unions = errors.filter(isFailedUnion);
  return unions.filter((union) => !unions.some((outer) => isBranchError(union, outer)));
}

/** Whether `error` was raised inside one of `union`'s alternatives, for the same value. */
function isBranchError(error: ErrorObject, union: ErrorObject): boolean {
  return (
    error !== union &&
    error.schemaPath.startsWith(`${union.schemaPath}/`) &&
    isWithin(error.instancePath, union.instancePath)
  );
}

function isWithin(pointer: string, ancestor: string): boolean {
  return pointer === ancestor || pointer.startsWith(`${ancestor}/`);
}

function resolveUnion(union: ErrorObject, branchErrors: ErrorObject[], rootSchema: unknown, out: SchemaIssue[]): void {
  const branches = groupByBranch(union, branchErrors);
  const alternatives = alternativesCount(union, rootSchema);
  // Errors inside a `$ref`'d alternative carry the referenced schema's path, so they cannot be
  // told apart from other errors; when an alternative's errors are missing, say only what is sure.
  if (branches.length === 0 || (alternatives !== undefined && branches.length < alternatives)) {
    out.push({ path: union.instancePath, message: 'does not match any of the allowed alternatives' });
    return;
  }
  const shapeMatched = branches.filter((branch) => rootShapeErrors(branch, union.instancePath).length === 0);
  if (shapeMatched.length === 0) {
    out.push({
      path: union.instancePath,
      message: expectedShapes(branches.map((b) => rootShapeErrors(b, union.instancePath))),
    });
    return;
  }
  const discriminator = commonDiscriminator(shapeMatched);
  if (discriminator !== undefined) {
    out.push({
      path: discriminator,
      message: expectedShapes(
        shapeMatched.map((b) => b.filter((e) => e.instancePath === discriminator && isValueMismatch(e))),
      ),
    });
    return;
  }
  let best = shapeMatched[0];
  for (const branch of shapeMatched) if (mismatchScore(branch) < mismatchScore(best)) best = branch;
  collectIssues(best, rootSchema, out);
}

function groupByBranch(union: ErrorObject, branchErrors: ErrorObject[]): ErrorObject[][] {
  const prefixLength = union.schemaPath.length + 1;
  const byIndex = new Map<number, ErrorObject[]>();
  for (const error of branchErrors) {
    const index = Number.parseInt(error.schemaPath.slice(prefixLength), 10);
    const group = byIndex.get(index);
    if (group === undefined) byIndex.set(index, [error]);
    else group.push(error);
  }
  return [...byIndex.values()];
}

/** How many alternatives the union's schema lists, or undefined when its path cannot be followed. */
function alternativesCount(union: ErrorObject, rootSchema: unknown): number | undefined {
  if (!union.schemaPath.startsWith('#')) return undefined;
  let node = rootSchema;
  for (const raw of union.schemaPath.slice(2).split('/')) {
    let key: string;
    try {
      key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return undefined;
    }
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return Array.isArray(node) ? node.length : undefined;
}

/** A `type`, `const` or `enum` error: the value is not even the kind of thing asked for. */
function isShapeError(error: ErrorObject): boolean {
  return error.keyword === 'type' || isValueMismatch(error);
}

function isValueMismatch(error: ErrorObject): boolean {
  return error.keyword === 'const' || error.keyword === 'enum';
}

function rootShapeErrors(branch: ErrorObject[], path: string): ErrorObject[] {
  return branch.filter((error) => error.instancePath === path && isShapeError(error));
}

/**
 * A field whose value every remaining alternative rejects by `const`/`enum` — the discriminator of
 * a tagged union (`kind: 'a' | 'b'`). Reporting it beats guessing which alternative was meant.
 */
function commonDiscriminator(branches: ErrorObject[][]): string | undefined {
  if (branches.length < 2) return undefined;
  const candidates = branches[0].filter(isValueMismatch).map((error) => error.instancePath);
  return candidates.find((path) =>
    branches.every((branch) => branch.some((e) => e.instancePath === path && isValueMismatch(e))),
  );
}

function mismatchScore(branch: ErrorObject[]): number {
  let score = 0;
  for (const error of branch) score += isValueMismatch(error) ? DISCRIMINATOR_MISMATCH_WEIGHT : 1;
  return score;
}

/** `must be one of: north, south`, `must be a string or null`, from each alternative's shape errors. */
function expectedShapes(perBranch: ErrorObject[][]): string {
  const values: unknown[] = [];
  const types: string[] = [];
  for (const errors of perBranch) {
    // TypeBox's Literal is `{ type, const }`: the const says more than the type does.
    const constError = errors.find((e) => e.keyword === 'const');
    const enumError = errors.find((e) => e.keyword === 'enum');
    if (constError !== undefined) values.push(constError.params.allowedValue);
    else if (enumError !== undefined) values.push(...(enumError.params.allowedValues as unknown[]));
    else for (const e of errors) if (e.keyword === 'type') types.push(...typeNames(e.params.type));
  }
  const uniqueTypes = [...new Set(types)];
  if (values.length === 0) return `must be ${uniqueTypes.join(' or ')}`;
  const oneOf =
    values.length === 1 && uniqueTypes.length === 0
      ? `must be ${formatValue(values[0])}`
      : `must be one of: ${formatValues(values)}`;
  return uniqueTypes.length === 0 ? oneOf : `${oneOf}, or ${uniqueTypes.join(' or ')}`;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

function typeNames(type: unknown): string[] {
  const list = Array.isArray(type) ? type : String(type).split(',');
  return list.map((t: unknown) => TYPE_NAMES[String(t)] ?? String(t));
}

/** Strings that read unambiguously without quotes are shown bare (`north`); others as JSON. */
function formatValue(value: unknown): string {
  const text =
    typeof value === 'string' && /^[A-Za-z_][\w.-]*$/.test(value) ? value : (JSON.stringify(value) ?? String(value));
  return text.length > VALUE_CHARS_MAX ? `${text.slice(0, VALUE_CHARS_MAX)}…` : text;
}

function formatValues(values: readonly unknown[]): string {
  const unique = [...new Set(values)];
  const shown = unique.slice(0, ALLOWED_VALUES_SHOWN_MAX).map(formatValue).join(', ');
  return unique.length > ALLOWED_VALUES_SHOWN_MAX
    ? `${shown} (and ${unique.length - ALLOWED_VALUES_SHOWN_MAX} more)`
    : shown;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

const COMPARISONS: Record<string, string> = {
  '>=': 'at least',
  '>': 'greater than',
  '<=': 'at most',
  '<': 'less than',
};

/** The issue for one error outside any union, or null for errors that only summarise others. */
// eslint-disable-next-line max-lines-per-function -- one case per JSON Schema keyword: the table of messages reads best whole
function plainIssue(error: ErrorObject): SchemaIssue | null {
  const path = error.instancePath;
  const params = error.params as Record<string, unknown>;
  // An error about a key's *name* (`propertyNames`) is raised on the parent object; point at the key.
  if (error.propertyName !== undefined) {
    if (error.keyword === 'propertyNames') return null;
    const reason = plainIssue({ ...error, propertyName: undefined });
    return {
      path: childPath(path, error.propertyName),
      message: `is not an allowed field name${reason === null ? '' : `: the name ${reason.message}`}`,
    };
  }
  switch (error.keyword) {
    case 'required':
      return { path: childPath(path, String(params.missingProperty)), message: 'is required' };
    case 'dependentRequired':
    case 'dependencies':
      return {
        path: childPath(path, String(params.missingProperty)),
        message: `is required when ${String(params.property)} is present`,
      };
    case 'additionalProperties':
      return { path: childPath(path, String(params.additionalProperty)), message: 'is not an allowed field' };
    case 'unevaluatedProperties':
      return { path: childPath(path, String(params.unevaluatedProperty)), message: 'is not an allowed field' };
    case 'propertyNames':
      return { path: childPath(path, String(params.propertyName)), message: 'is not an allowed field name' };
    case 'type':
      return { path, message: `must be ${typeNames(params.type).join(' or ')}` };
    case 'const':
      return { path, message: `must be ${formatValue(params.allowedValue)}` };
    case 'enum':
      return { path, message: `must be one of: ${formatValues(params.allowedValues as unknown[])}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return {
        path,
        message: `must be ${COMPARISONS[String(params.comparison)] ?? String(params.comparison)} ${String(params.limit)}`,
      };
    case 'multipleOf':
      return { path, message: `must be a multiple of ${String(params.multipleOf)}` };
    case 'minLength':
      return {
        path,
        message:
          params.limit === 1
            ? 'must not be empty'
            : `must be at least ${plural(Number(params.limit), 'character')} long`,
      };
    case 'maxLength':
      return { path, message: `must be at most ${plural(Number(params.limit), 'character')} long` };
    case 'minItems':
      return {
        path,
        message:
          params.limit === 1 ? 'must not be empty' : `must have at least ${plural(Number(params.limit), 'item')}`,
      };
    case 'maxItems':
    case 'items':
    case 'additionalItems':
    case 'unevaluatedItems':
      return { path, message: `must have at most ${plural(Number(params.limit), 'item')}` };
    case 'minProperties':
      return { path, message: `must have at least ${plural(Number(params.limit), 'field')}` };
    case 'maxProperties':
      return { path, message: `must have at most ${plural(Number(params.limit), 'field')}` };
    case 'uniqueItems':
      return {
        path,
        message: `must not contain duplicates (items ${Math.min(Number(params.i), Number(params.j))} and ${Math.max(Number(params.i), Number(params.j))} are equal)`,
      };
    case 'pattern':
      return { path, message: `must match the pattern ${String(params.pattern)}` };
    case 'format':
      return { path, message: `must be a valid ${String(params.format)}` };
    case 'contains':
      return { path, message: `must contain at least ${plural(Number(params.minContains ?? 1), 'matching item')}` };
    case 'oneOf':
      return { path, message: 'matches more than one of the allowed alternatives; it must match exactly one' };
    case 'not':
    case 'false schema':
      return { path, message: 'is not allowed here' };
    case 'if':
      // The failed `then`/`else` branch reported its own errors just before this summary.
      return null;
    default:
      return { path, message: error.message ?? 'is invalid' };
  }
}

function dedupe(issues: SchemaIssue[]): SchemaIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
