/**
 * Parsing a .proto file (proto2 or proto3) into a `ProtobufSchema`: the protobufjs reflection tree
 * of the file and its imports, the file's own messages in declaration order (what the Confluent
 * message-index array counts), and the canonical text the registry compares.
 *
 * Imports: Confluent `references` name other registered .proto files by their import path
 * (`ref.name`); `resolve(ref)` gives their text. An import of the same file name made inside a
 * referenced file is looked up in the same list (the registry hands Kappa the references flattened).
 * The well-known `google/protobuf/*.proto` files (any, duration, empty, field_mask, struct,
 * timestamp, wrappers, descriptor, type, api, source_context) need no reference, as in Confluent's
 * registry: protobufjs ships them.
 *
 * Canonical form (what `ParsedSchema.canonical` holds): the JSON of the file's own definitions as
 * protobufjs describes them (`Root.toJSON()`, no comments), with every object's keys sorted except
 * `nested`, which keeps declaration order because the message-index array counts messages in that
 * order; prefixed by the syntax (or edition) and the sorted list of imports. Two texts that differ
 * only in whitespace, comments, the order of options, fields or imports give the same canonical
 * text; reordering messages, renaming anything or changing a type or number gives another.
 */
import { createRequire } from 'node:module';
import type protobuf from 'protobufjs';
import { protobufjs } from './libs.ts';
import { KappaError } from '../errors.ts';
import type { ParsedSchema, SchemaReference } from './types.ts';

const requireJson = createRequire(import.meta.url);

/** The field numbers Protobuf allows: 1 to 2^29 - 1, except 19000-19999 (reserved for the implementation). */
const FIELD_NUMBER_MAX = 536_870_911;
const IMPLEMENTATION_RESERVED = [19_000, 19_999] as const;
/** A bound on how deep imports may nest, so that a reference cycle or a runaway chain ends with an error. */
const IMPORT_DEPTH_MAX = 32;

const PARSE_OPTIONS = { keepCase: true, alternateCommentMode: false } as const;

/** Well-known files protobufjs ships as JSON besides the ones in `protobuf.common`. */
const BUNDLED_JSON: Record<string, string> = {
  'google/protobuf/descriptor.proto': 'protobufjs/google/protobuf/descriptor.json',
  'google/protobuf/type.proto': 'protobufjs/google/protobuf/type.json',
  'google/protobuf/api.proto': 'protobufjs/google/protobuf/api.json',
  'google/protobuf/source_context.proto': 'protobufjs/google/protobuf/source_context.json',
};

/** A parsed .proto file. */
export class ProtobufSchema implements ParsedSchema {
  readonly type = 'PROTOBUF' as const;
  constructor(
    readonly text: string,
    readonly canonical: string,
    /** The reflection tree of this file and everything it imports, resolved. */
    readonly root: protobuf.Root,
    /** The file's package ('' when none). */
    readonly packageName: string,
    /** The file's top-level messages in declaration order: message index [i] is messages[i]. */
    readonly messages: readonly protobuf.Type[],
  ) {}

  /** A message of this file or its imports by full name ('shop.Sale', '.shop.Sale') or by name inside the package ('Sale'). */
  findMessage(name: string): protobuf.Type | null {
    const bare = name.startsWith('.') ? name.slice(1) : name;
    const candidates = this.packageName === '' || name.startsWith('.') ? [bare] : [`${this.packageName}.${bare}`, bare];
    for (const candidate of candidates) {
      const found = this.root.lookup(`.${candidate}`);
      if (found instanceof protobufjs().Type) return found;
    }
    return null;
  }

  /** The message-index path of a message of this file ([0] the first top-level message), or null when it is not one. */
  indexesOf(type: protobuf.Type): number[] | null {
    const path: number[] = [];
    let current: protobuf.Type = type;
    while (current.parent instanceof protobufjs().Type) {
      const index = nestedMessages(current.parent).indexOf(current);
      if (index < 0) return null;
      path.unshift(index);
      current = current.parent;
    }
    const top = this.messages.indexOf(current);
    if (top < 0) return null;
    path.unshift(top);
    return path;
  }

  /** The message a message-index path names, or null when it names none. */
  messageAt(indexes: readonly number[]): protobuf.Type | null {
    let type: protobuf.Type | undefined = this.messages[indexes[0]];
    for (let i = 1; i < indexes.length && type !== undefined; i++) type = nestedMessages(type)[indexes[i]];
    return type ?? null;
  }
}

/** The messages declared inside a message, in declaration order (map entries are not messages in protobufjs, as in Confluent's count). */
export function nestedMessages(type: protobuf.Type): protobuf.Type[] {
  return type.nestedArray.filter((n): n is protobuf.Type => n instanceof protobufjs().Type);
}

export function parseProtobuf(
  text: string,
  references: readonly SchemaReference[] = [],
  resolve?: (ref: SchemaReference) => string,
): ProtobufSchema {
  const root = new (protobufjs().Root)();
  const main = parseInto(text, root, 'the schema');
  const packageName = main.package ?? '';
  const namespace = packageName === '' ? root : root.lookup(`.${packageName}`);
  const messages = namespace instanceof protobufjs().Namespace ? namespace.nestedArray.filter(isType) : [];
  const loaded = new Set<string>();
  for (const path of importsOf(main)) loadImport(path, root, references, resolve, loaded, 1);
  resolveAll(root, text);
  for (const message of messages) checkMessage(message, text);
  return new ProtobufSchema(text, canonicalOf(text, main), root, packageName, messages);
}

function isType(n: protobuf.ReflectionObject): n is protobuf.Type {
  return n instanceof protobufjs().Type;
}

function importsOf(parsed: protobuf.IParserResult): string[] {
  return [...(parsed.imports ?? []), ...(parsed.weakImports ?? [])];
}

function parseInto(text: string, root: protobuf.Root, what: string): protobuf.IParserResult {
  try {
    return protobufjs().parse(text, root, PARSE_OPTIONS);
  } catch (err) {
    throw invalid(text, `${what} does not parse as a .proto file`, err);
  }
}

function loadImport(
  path: string,
  root: protobuf.Root,
  references: readonly SchemaReference[],
  resolve: ((ref: SchemaReference) => string) | undefined,
  loaded: Set<string>,
  depth: number,
): void {
  if (loaded.has(path)) return;
  loaded.add(path);
  if (depth > IMPORT_DEPTH_MAX) {
    throw new KappaError('KAPPA_INVALID_SCHEMA', `Imports nest deeper than ${IMPORT_DEPTH_MAX} files (at "${path}").`, {
      import: path,
    });
  }
  const ref = references.find((r) => r.name === path);
  if (ref !== undefined && resolve !== undefined) {
    const text = resolve(ref);
    const parsed = parseInto(text, root, `the imported file "${path}" (subject ${ref.subject} version ${ref.version})`);
    for (const next of importsOf(parsed)) loadImport(next, root, references, resolve, loaded, depth + 1);
    return;
  }
  const common = (protobufjs().common as unknown as Record<string, protobuf.INamespace | undefined>)[path];
  if (common !== undefined) {
    root.addJSON(common.nested ?? {});
    return;
  }
  if (BUNDLED_JSON[path] !== undefined) {
    root.addJSON((requireJson(BUNDLED_JSON[path]) as protobuf.INamespace).nested ?? {});
    return;
  }
  throw new KappaError(
    'KAPPA_INVALID_SCHEMA',
    `The schema imports "${path}", which is neither among its references nor a well-known google/protobuf file. Register that file and list it in "references" with name "${path}".`,
    { import: path },
  );
}

function resolveAll(root: protobuf.Root, text: string): void {
  try {
    root.resolveAll();
  } catch (err) {
    throw invalid(text, 'the schema names a type it does not define or import', err);
  }
}

/** Rules protobufjs leaves to protoc: field numbers in range and outside the implementation's block. */
function checkMessage(type: protobuf.Type, text: string): void {
  for (const field of type.fieldsArray) {
    const id = field.id;
    if (id < 1 || id > FIELD_NUMBER_MAX || (id >= IMPLEMENTATION_RESERVED[0] && id <= IMPLEMENTATION_RESERVED[1])) {
      const line = lineOf(text, new RegExp(`\\b${field.name}\\s*=\\s*${id}\\b`));
      throw new KappaError(
        'KAPPA_INVALID_SCHEMA',
        `Field ${type.fullName.slice(1)}.${field.name} has number ${id}${line ? ` (line ${line})` : ''}: field numbers run from 1 to ${FIELD_NUMBER_MAX}, except 19000-19999 which Protobuf reserves.`,
        { message: type.fullName.slice(1), field: field.name, number: id, line },
      );
    }
  }
  for (const nested of nestedMessages(type)) checkMessage(nested, text);
}

/** The error for a protobufjs parse or resolve failure, with the line and field found in its message or in the text. */
function invalid(text: string, what: string, err: unknown): KappaError {
  const reason = err instanceof Error ? err.message : String(err);
  const details: Record<string, unknown> = { reason };
  let line: number | null = Number(/\(line (\d+)\)/.exec(reason)?.[1] ?? NaN) || null;
  const duplicate = /duplicate (?:id|name) '?([\w]+)'? in (?:Type|Enum) \.?([\w.]+)/.exec(reason);
  if (duplicate !== null) {
    details.message = duplicate[2];
    details.field = duplicate[1];
    line ??= lineOfDuplicate(text, duplicate[2].split('.').pop() as string, duplicate[1]);
  }
  const missing = /no such Type or Enum '([\w.]+)' in Type \.?([\w.]+)/.exec(reason);
  if (missing !== null) {
    details.message = missing[2];
    details.type = missing[1];
    line ??= lineOf(text, new RegExp(`(^|[\\s(<,])\\.?${missing[1].replace(/\./g, '\\.')}[\\s>,]`));
  }
  if (line !== null) details.line = line;
  const where = line !== null ? ` at line ${line}` : '';
  return new KappaError('KAPPA_INVALID_SCHEMA', `Invalid Protobuf schema: ${what}${where}: ${reason}.`, details, err);
}

/** The 1-based line of the first match of `pattern` in `text`, or null. */
function lineOf(text: string, pattern: RegExp): number | null {
  const lines = text.split('\n');
  const index = lines.findIndex((l) => pattern.test(l));
  return index < 0 ? null : index + 1;
}

/** The line of the second `= number` (or second `name`) after `message X`, where protobufjs saw the duplicate. */
function lineOfDuplicate(text: string, message: string, idOrName: string): number | null {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => new RegExp(`\\b(message|enum)\\s+${message}\\b`).test(l));
  const pattern = /^\d+$/.test(idOrName) ? new RegExp(`=\\s*${idOrName}\\b`) : new RegExp(`\\b${idOrName}\\s*=`);
  let seen = 0;
  for (let i = Math.max(start, 0); i < lines.length; i++) {
    if (pattern.test(lines[i]) && ++seen === 2) return i + 1;
  }
  return null;
}

function canonicalOf(text: string, main: protobuf.IParserResult): string {
  // Parsed again on its own so that the imports' definitions stay out of this file's canonical form.
  const own = protobufjs().parse(text, new (protobufjs().Root)(), PARSE_OPTIONS);
  const body = own.root.toJSON({ keepComments: false });
  const syntax = /^\s*(?:syntax|edition)\s*=\s*["']([^"']+)["']/m.exec(stripComments(text))?.[1] ?? 'proto2';
  return JSON.stringify(sortKeys({ syntax, imports: importsOf(main).sort(), definitions: body }));
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
}

/** A copy with object keys sorted, except under `nested`, whose order is the declaration order. */
function sortKeys(value: unknown, keepOrder = false): unknown {
  if (Array.isArray(value)) return value.map((v) => sortKeys(v));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (!keepOrder) keys.sort();
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const child = (value as Record<string, unknown>)[key];
    // A oneof's member list is a set: its order in the text means nothing.
    out[key] = key === 'oneof' && Array.isArray(child) ? [...child].sort() : sortKeys(child, key === 'nested');
  }
  return out;
}
