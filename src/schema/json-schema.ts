/**
 * Record schemas written as JSON Schema (by hand or with TypeBox's `Type`), compiled by ajv into
 * validators that report every bad field of a record, not just the first.
 *
 * `validate` is the hot path, called once per record: it runs ajv's generated function and
 * allocates nothing when the record is valid; the issues of a failure are built only when asked
 * for. `check` and `decode` allocate one result object on top. Records are validated as they are:
 * no type coercion, no defaults filled in, no fields removed — the log stores what the producer
 * sent, and a replay must see the same bytes the live run saw.
 *
 * Schemas are treated as immutable once compiled: the compiled validator is cached by the schema
 * object's identity, so mutating that object afterwards is not seen.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { KappaError } from '../errors.ts';
import { schemaFingerprint } from './fingerprint.ts';
import { rewriteConstUnions } from './const-unions.ts';
import { issuesFromAjvErrors, describeIssues, type SchemaIssue } from './issues.ts';

/** A checker for a string `format` (`"email"`, `"date-time"`), for formats ajv has none for. */
export type FormatCheck = RegExp | ((value: string) => boolean);

export interface CompileSchemaOptions {
  /** Names the schema in error messages (usually the topic's name). */
  name?: string;
  /**
   * Checkers for the string formats the schema uses. ajv ships none, and a format nobody checks
   * would let bad values through while looking validated, so compiling a schema that uses a
   * format missing here fails.
   */
  formats?: Readonly<Record<string, FormatCheck>>;
}

export type CheckResult<T> = { ok: true; value: T } | { ok: false; issues: SchemaIssue[] };

/** `malformed` is true when the bytes were not JSON at all, false when JSON broke the schema. */
export type DecodeResult<T> = { ok: true; value: T } | { ok: false; issues: SchemaIssue[]; malformed: boolean };

export interface RecordSchema<T> {
  readonly name: string | undefined;
  /** The JSON Schema this was compiled from. */
  readonly jsonSchema: object;
  /** SHA-256 (hex) of the schema's canonical JSON: the same for the same schema in any key order. */
  readonly fingerprint: string;
  /** True when `value` matches. Allocates nothing on success; on failure see `lastIssues()`. */
  validate(value: unknown): value is T;
  /** What was wrong in the last `validate` call on this object; empty when it passed. */
  lastIssues(): SchemaIssue[];
  /** Validates without throwing, returning the value typed or every issue found. */
  check(value: unknown): CheckResult<T>;
  /** UTF-8 decode, JSON.parse and `check` in one: how a record's bytes from the log become a value. */
  decode(bytes: Uint8Array | string): DecodeResult<T>;
}

interface Compiled {
  readonly validate: ValidateFunction;
  readonly fingerprint: string;
  /** The schema ajv compiled (see const-unions.ts); error schema paths point into it. */
  readonly ajvSchema: object;
}

/**
 * Compiling a schema costs milliseconds, validating with it microseconds, so each schema object is
 * compiled once. The cache is keyed weakly by the caller's own schema object (and the formats
 * object), holds nothing observable, and lets go of an entry when the schema is dropped — a memo,
 * not shared state.
 */
const compiledBySchema = new WeakMap<object, WeakMap<object, Compiled>>();
const NO_FORMATS: Readonly<Record<string, FormatCheck>> = Object.freeze({});

/**
 * Passed to every top-level validation call. ajv's generated function destructures a second
 * argument that defaults to a fresh `{}` — one allocation per record unless V8 happens to inline
 * the call. Undefined fields take ajv's own defaults (`rootData` = the value), so sharing one
 * frozen object is the same as passing nothing.
 */
const TOP_LEVEL_CONTEXT = Object.freeze({
  instancePath: '',
  parentData: undefined,
  parentDataProperty: undefined,
  rootData: undefined,
  dynamicAnchors: undefined,
}) as unknown as Parameters<ValidateFunction>[1];

/** Longest JSON parser message kept in an issue; the parser quotes the input, which may be huge. */
const JSON_REASON_CHARS_MAX = 200;

export function compileSchema<S extends TSchema>(schema: S, opts?: CompileSchemaOptions): RecordSchema<Static<S>>;
export function compileSchema<T>(schema: object, opts?: CompileSchemaOptions): RecordSchema<T>;
export function compileSchema<T>(schema: object, opts: CompileSchemaOptions = {}): RecordSchema<T> {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `${schemaLabel(opts.name)} must be a JSON Schema object, got ${schema === null ? 'null' : typeof schema}.`,
    );
  }
  const compiled = compileCached(schema, opts);
  return new CompiledRecordSchema<T>(schema, compiled, opts.name);
}

/** The error for a record that `check` or `decode` rejected, with its issues in `details`. */
export function invalidRecordError(
  issues: readonly SchemaIssue[],
  opts: { schemaName?: string; recordIndex?: number; malformed?: boolean } = {},
): KappaError {
  const which = opts.recordIndex === undefined ? 'The record' : `Record ${opts.recordIndex}`;
  const against = opts.schemaName === undefined ? 'its schema' : `the schema "${opts.schemaName}"`;
  // A malformed record has one issue, on the record itself: "is not valid JSON: <why>".
  const message = opts.malformed
    ? `${which} ${issues[0]?.message ?? 'is not valid JSON'}.`
    : `${which} does not match ${against}: ${describeIssues(issues)}.`;
  const details = {
    ...(opts.schemaName === undefined ? {} : { schema: opts.schemaName }),
    ...(opts.recordIndex === undefined ? {} : { index: opts.recordIndex }),
    issues,
  };
  return new KappaError(opts.malformed ? 'KAPPA_INVALID_RECORD' : 'KAPPA_SCHEMA_VIOLATION', message, details);
}

class CompiledRecordSchema<T> implements RecordSchema<T> {
  readonly name: string | undefined;
  readonly jsonSchema: object;
  readonly fingerprint: string;
  private readonly validateFn: ValidateFunction;
  private readonly ajvSchema: object;
  // ajv allocates a fresh errors array per failing call, so keeping the reference is safe even
  // when another RecordSchema shares the compiled function.
  private lastErrors: ErrorObject[] | null = null;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(jsonSchema: object, compiled: Compiled, name: string | undefined) {
    this.name = name;
    this.jsonSchema = jsonSchema;
    this.fingerprint = compiled.fingerprint;
    this.validateFn = compiled.validate;
    this.ajvSchema = compiled.ajvSchema;
  }

  validate(value: unknown): value is T {
    if (this.validateFn(value, TOP_LEVEL_CONTEXT)) {
      this.lastErrors = null;
      return true;
    }
    this.lastErrors = this.validateFn.errors ?? [];
    return false;
  }

  lastIssues(): SchemaIssue[] {
    if (this.lastErrors === null) return [];
    const issues = issuesFromAjvErrors(this.lastErrors, this.ajvSchema);
    // A failure always names at least one thing; never hand back "invalid, but nothing wrong".
    return issues.length > 0 ? issues : [{ path: '', message: 'does not match the schema' }];
  }

  check(value: unknown): CheckResult<T> {
    return this.validate(value) ? { ok: true, value } : { ok: false, issues: this.lastIssues() };
  }

  decode(bytes: Uint8Array | string): DecodeResult<T> {
    let text: string;
    if (typeof bytes === 'string') {
      text = bytes;
    } else {
      try {
        text = this.utf8.decode(bytes);
      } catch {
        return notJson('its bytes are not valid UTF-8 text');
      }
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return notJson(jsonReason(err));
    }
    if (this.validate(value)) return { ok: true, value };
    return { ok: false, issues: this.lastIssues(), malformed: false };
  }
}

function notJson(reason: string): DecodeResult<never> {
  return { ok: false, issues: [{ path: '', message: `is not valid JSON: ${reason}` }], malformed: true };
}

/**
 * V8's reason, bounded, and without its own `… is not valid JSON` tail (the issue already says so):
 * `Unexpected token '}', "{"a":}" is not valid JSON` → `Unexpected token '}' in "{"a":}"`, and
 * `"NaN" is not valid JSON` → `unexpected text "NaN"`.
 */
function jsonReason(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  const quoted = /^(?:(.*), )?(".*") is not valid JSON$/s.exec(raw);
  const message =
    quoted === null ? raw : quoted[1] === undefined ? `unexpected text ${quoted[2]}` : `${quoted[1]} in ${quoted[2]}`;
  return message.length > JSON_REASON_CHARS_MAX ? `${message.slice(0, JSON_REASON_CHARS_MAX)}…` : message;
}

function schemaLabel(name: string | undefined): string {
  return name === undefined ? 'The schema' : `The schema "${name}"`;
}

function compileCached(schema: object, opts: CompileSchemaOptions): Compiled {
  const formats = opts.formats ?? NO_FORMATS;
  let byFormats = compiledBySchema.get(schema);
  if (byFormats === undefined) {
    byFormats = new WeakMap();
    compiledBySchema.set(schema, byFormats);
  }
  let compiled = byFormats.get(formats);
  if (compiled === undefined) {
    const ajvSchema = rewriteConstUnions(schema);
    compiled = {
      validate: compileWithAjv(ajvSchema, formats, opts.name),
      fingerprint: schemaFingerprint(schema),
      ajvSchema,
    };
    byFormats.set(formats, compiled);
  }
  return compiled;
}

/**
 * One ajv instance per schema, so two schemas with the same `$id` never collide. `strict: false`
 * lets TypeBox's and users' extra keywords through; ajv then only warns about a format it cannot
 * check, and those warnings are turned into an error here (see `CompileSchemaOptions.formats`).
 */
function compileWithAjv(
  schema: object,
  formats: Readonly<Record<string, FormatCheck>>,
  name: string | undefined,
): ValidateFunction {
  const warnings: string[] = [];
  const ignore = (): void => {};
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    coerceTypes: false,
    useDefaults: false,
    removeAdditional: false,
    logger: { log: ignore, warn: (...args: unknown[]) => warnings.push(args.map(String).join(' ')), error: ignore },
  });
  for (const [format, check] of Object.entries(formats)) ajv.addFormat(format, check);
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `${schemaLabel(name)} is not a valid JSON Schema: ${(err as Error).message}`,
      { schema: name },
      err,
    );
  }
  const unknownFormat = warnings.map((w) => /unknown format "([^"]*)"/.exec(w)).find((m) => m !== null);
  if (unknownFormat) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `${schemaLabel(name)} uses the string format "${unknownFormat[1]}", which Kappa has no checker for, so values would not be checked. ` +
        `Pass one in the formats option (for example { formats: { "${unknownFormat[1]}": /^...$/ } }), or use a pattern instead.`,
      { schema: name, format: unknownFormat[1] },
    );
  }
  return validate;
}
