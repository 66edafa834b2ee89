/**
 * Reads an Avro schema's JSON into a checked tree of nodes (issue 17), with every error naming
 * where it is, and writes the tree's canonical text.
 *
 * Names follow the Avro specification ("Names"): a name with a dot is a full name; one without is
 * qualified by the namespace of the enclosing definition; primitives are never qualified and may
 * not be redefined. Named types are registered before their fields are read, so a record may refer
 * to itself; the tree is then a graph (walkers keep a set of visited names).
 *
 * Canonical text: the specification's Parsing Canonical Form (PCF: full names, no namespace, only
 * name/type/fields/symbols/items/values/size in that order, primitives as plain strings, no
 * whitespace, a named type written out once then referred to by its full name) — with `default`,
 * `aliases` (as full names), enum `default` and `logicalType`/`precision`/`scale` kept, after the PCF
 * keys. Why not pure PCF: it strips exactly what changes how data reads — a default decides the
 * value of a missing field, an alias which writer field or type matches, a logical type what a
 * value decodes to — so two texts with equal PCF can read the same bytes differently. Confluent's
 * registry keeps them apart too (its canonical string is Avro's Schema.toString, defaults and
 * aliases included). `doc`, `order` and other custom attributes are left out: they change nothing
 * a reader sees. `pcf` gives the pure form (for fingerprints and the interop test).
 */
import { KappaError } from '../errors.ts';

export const PRIMITIVES = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'] as const;
export type PrimitiveName = (typeof PRIMITIVES)[number];

/** Logical-type attributes, kept as written (a logical type the reader does not know reads as its base type). */
export interface LogicalInfo {
  logicalType: string;
  precision?: number;
  scale?: number;
}

export interface PrimitiveNode {
  kind: PrimitiveName;
  logical?: LogicalInfo;
}
interface NamedBase {
  name: string;
  aliases: string[];
  /** Defined in a referenced schema (Confluent `references`): canonical text names it, never spells it out. */
  external: boolean;
}
export interface FieldNode {
  name: string;
  aliases: string[];
  type: AvroNode;
  /** Present when the field has a default; `value` is the default as written (Avro's JSON encoding). */
  default?: { value: unknown };
}
export interface RecordNode extends NamedBase {
  kind: 'record';
  fields: FieldNode[];
}
export interface EnumNode extends NamedBase {
  kind: 'enum';
  symbols: string[];
  default?: string;
}
export interface FixedNode extends NamedBase {
  kind: 'fixed';
  size: number;
  logical?: LogicalInfo;
}
export interface ArrayNode {
  kind: 'array';
  items: AvroNode;
}
export interface MapNode {
  kind: 'map';
  values: AvroNode;
}
export interface UnionNode {
  kind: 'union';
  branches: AvroNode[];
}
export type NamedNode = RecordNode | EnumNode | FixedNode;
export type AvroNode = PrimitiveNode | NamedNode | ArrayNode | MapNode | UnionNode;

/** Named types by full name, shared between a schema and the references it uses. */
export type NameTable = Map<string, NamedNode>;

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FIELD_ORDERS = new Set(['ascending', 'descending', 'ignore']);

/** Throws KAPPA_INVALID_SCHEMA for a problem at `path`. */
export function schemaError(path: string, message: string): never {
  throw new KappaError('KAPPA_INVALID_SCHEMA', `Avro schema is invalid at ${path}: ${message}`, { path });
}

function isPrimitive(name: string): name is PrimitiveName {
  return (PRIMITIVES as readonly string[]).includes(name);
}

function checkFullName(full: string, path: string): void {
  for (const part of full.split('.')) {
    if (!NAME.test(part)) {
      schemaError(
        path,
        `"${full}" is not a valid Avro name (each dot-separated part starts with a letter or _ and has only letters, digits and _)`,
      );
    }
  }
}

/** The last part of a full name: paths start from it (`Sale.qty`, not `com.acme.Sale.qty`). */
export function shortName(full: string): string {
  return full.slice(full.lastIndexOf('.') + 1);
}

/** Qualifies `name` by `namespace` the way the specification says. */
export function qualify(name: string, namespace: string): string {
  if (isPrimitive(name) || name.includes('.') || namespace === '') return name;
  return `${namespace}.${name}`;
}

/** Reads one schema (the main one or a reference) into nodes, registering its named types in `names`. */
export function readSchema(json: unknown, names: NameTable, external: boolean): AvroNode {
  return new Reader(names, external).node(json, '', '(root)');
}

class Reader {
  constructor(
    private readonly names: NameTable,
    private readonly external: boolean,
  ) {}

  node(json: unknown, namespace: string, path: string): AvroNode {
    if (typeof json === 'string') return this.reference(json, namespace, path);
    if (Array.isArray(json)) return this.union(json, namespace, path);
    if (json === null || typeof json !== 'object') {
      schemaError(path, `a schema is a type name, an object or an array (a union), not ${JSON.stringify(json)}`);
    }
    const obj = json as Record<string, unknown>;
    const type = obj.type;
    if (typeof type !== 'string') {
      schemaError(path, `"type" must be a type name such as "record" or "string", not ${JSON.stringify(type)}`);
    }
    if (isPrimitive(type)) return withLogical({ kind: type }, obj, path);
    switch (type) {
      case 'record':
      case 'error':
        return this.record(obj, namespace, path);
      case 'enum':
        return this.enumType(obj, namespace, path);
      case 'fixed':
        return this.fixed(obj, namespace, path);
      case 'array':
        if (obj.items === undefined) schemaError(path, 'an array needs "items"');
        return { kind: 'array', items: this.node(obj.items, namespace, `${path}[]`) };
      case 'map':
        if (obj.values === undefined) schemaError(path, 'a map needs "values"');
        return { kind: 'map', values: this.node(obj.values, namespace, `${path}{}`) };
      default:
        return schemaError(
          path,
          this.names.has(qualify(type, namespace))
            ? `"type": "${type}" — to use the named type ${type}, write its name as the whole schema ("${type}"), not as the "type" of an object`
            : `unknown type "${type}" (the types are null, boolean, int, long, float, double, bytes, string, record, enum, array, map, fixed, or the name of a type defined earlier)`,
        );
    }
  }

  private reference(name: string, namespace: string, path: string): AvroNode {
    if (isPrimitive(name)) return { kind: name };
    const full = qualify(name, namespace);
    const found = this.names.get(full);
    if (found === undefined) {
      schemaError(
        path,
        `unknown type "${name}"${full !== name ? ` (looked for ${full})` : ''}: it is not a primitive (null, boolean, int, long, float, double, bytes, string) nor a named type defined earlier in this schema or in its references`,
      );
    }
    return found;
  }

  private union(branches: unknown[], namespace: string, path: string): UnionNode {
    if (branches.length === 0) schemaError(path, 'a union needs at least one branch');
    const nodes: AvroNode[] = [];
    const seen = new Set<string>();
    branches.forEach((branch, i) => {
      const where = `${path}<branch ${i}>`;
      const node = this.node(branch, namespace, where);
      if (node.kind === 'union') schemaError(where, 'a union may not contain another union directly');
      const key = 'name' in node ? node.name : node.kind;
      if (seen.has(key)) schemaError(where, `the union already has a ${key} branch (each type may appear once)`);
      seen.add(key);
      nodes.push(node);
    });
    return { kind: 'union', branches: nodes };
  }

  private define(
    obj: Record<string, unknown>,
    namespace: string,
    path: string,
  ): { name: string; namespace: string; aliases: string[] } {
    if (typeof obj.name !== 'string') schemaError(path, `a ${String(obj.type)} needs a "name"`);
    if (obj.namespace !== undefined && typeof obj.namespace !== 'string')
      schemaError(path, '"namespace" must be a string');
    const ns = obj.name.includes('.')
      ? obj.name.slice(0, obj.name.lastIndexOf('.'))
      : ((obj.namespace as string | undefined) ?? namespace);
    const name = qualify(obj.name, ns);
    checkFullName(name, path);
    if (ns !== '') checkFullName(ns, path);
    if (isPrimitive(obj.name)) schemaError(path, `"${obj.name}" is a primitive type and cannot be redefined`);
    if (this.names.has(name)) schemaError(path, `the type ${name} is defined twice`);
    const aliases = readAliases(obj.aliases, path).map((alias) => qualify(alias, ns));
    aliases.forEach((alias) => checkFullName(alias, path));
    return { name, namespace: ns, aliases };
  }

  private record(obj: Record<string, unknown>, namespace: string, outer: string): RecordNode {
    const { name, namespace: ns, aliases } = this.define(obj, namespace, outer);
    const path = outer === '(root)' ? shortName(name) : outer;
    if (!Array.isArray(obj.fields)) schemaError(path, 'a record needs "fields", an array');
    const node: RecordNode = { kind: 'record', name, aliases, external: this.external, fields: [] };
    this.names.set(name, node);
    for (const raw of obj.fields as unknown[]) node.fields.push(this.field(raw, ns, path, node));
    return node;
  }

  private field(raw: unknown, ns: string, path: string, record: RecordNode): FieldNode {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      schemaError(path, `each field is an object with "name" and "type", not ${JSON.stringify(raw)}`);
    }
    const f = raw as Record<string, unknown>;
    if (typeof f.name !== 'string' || !NAME.test(f.name)) {
      schemaError(path, `field name ${JSON.stringify(f.name)} is not a valid Avro name`);
    }
    const where = `${path}.${f.name}`;
    if (record.fields.some((other) => other.name === f.name))
      schemaError(where, `the field ${f.name} is declared twice`);
    if (f.type === undefined) schemaError(where, 'a field needs a "type"');
    if (f.order !== undefined && !FIELD_ORDERS.has(f.order as string)) {
      schemaError(where, `"order" must be ascending, descending or ignore, not ${JSON.stringify(f.order)}`);
    }
    const type = this.node(f.type, ns, where);
    const node: FieldNode = { name: f.name, aliases: readAliases(f.aliases, where), type };
    node.aliases.forEach((alias) => checkFullName(alias, where));
    if ('default' in f) {
      const reason = defaultProblem(type, f.default, new Set());
      if (reason !== null)
        schemaError(where, `the default ${JSON.stringify(f.default)} does not match the field's type: ${reason}`);
      node.default = { value: f.default };
    }
    return node;
  }

  private enumType(obj: Record<string, unknown>, namespace: string, path: string): EnumNode {
    const { name, aliases } = this.define(obj, namespace, path);
    const where = path === '(root)' ? shortName(name) : path;
    const symbols = obj.symbols;
    if (!Array.isArray(symbols) || symbols.length === 0)
      schemaError(where, 'an enum needs "symbols", a non-empty array of names');
    symbols.forEach((symbol, i) => {
      if (typeof symbol !== 'string' || !NAME.test(symbol))
        schemaError(where, `enum symbol ${JSON.stringify(symbol)} is not a valid Avro name`);
      if (symbols.indexOf(symbol) !== i) schemaError(where, `enum symbol ${symbol} appears twice`);
    });
    if (obj.default !== undefined && !symbols.includes(obj.default)) {
      schemaError(where, `the enum's default ${JSON.stringify(obj.default)} is not one of its symbols`);
    }
    const node: EnumNode = { kind: 'enum', name, aliases, external: this.external, symbols: symbols as string[] };
    if (obj.default !== undefined) node.default = obj.default as string;
    this.names.set(name, node);
    return node;
  }

  private fixed(obj: Record<string, unknown>, namespace: string, path: string): FixedNode {
    const { name, aliases } = this.define(obj, namespace, path);
    const size = obj.size;
    if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
      schemaError(
        path === '(root)' ? shortName(name) : path,
        `a fixed needs "size", a whole number of bytes ≥ 0, not ${JSON.stringify(size)}`,
      );
    }
    const node = withLogical<FixedNode>({ kind: 'fixed', name, aliases, external: this.external, size }, obj, path);
    this.names.set(name, node);
    return node;
  }
}

function readAliases(raw: unknown, path: string): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.some((a) => typeof a !== 'string'))
    schemaError(path, '"aliases" must be an array of names');
  return raw as string[];
}

function withLogical<T extends PrimitiveNode | FixedNode>(node: T, obj: Record<string, unknown>, path: string): T {
  if (obj.logicalType === undefined) return node;
  if (typeof obj.logicalType !== 'string') schemaError(path, '"logicalType" must be a string');
  const logical: LogicalInfo = { logicalType: obj.logicalType };
  if (typeof obj.precision === 'number') logical.precision = obj.precision;
  if (typeof obj.scale === 'number') logical.scale = obj.scale;
  node.logical = logical;
  return node;
}

/** Why `value` (Avro's JSON encoding) is not a value of `node`, or null when it is. */
export function defaultProblem(node: AvroNode, value: unknown, seen: Set<unknown>): string | null {
  const expect = (ok: boolean, what: string): string | null =>
    ok ? null : `expected ${what}, got ${JSON.stringify(value)}`;
  switch (node.kind) {
    case 'null':
      return expect(value === null, 'null');
    case 'boolean':
      return expect(typeof value === 'boolean', 'true or false');
    case 'int':
      return expect(
        Number.isInteger(value) && (value as number) >= -(2 ** 31) && (value as number) < 2 ** 31,
        'a 32-bit integer',
      );
    case 'long':
      return expect(Number.isInteger(value), 'an integer');
    case 'float':
    case 'double':
      return expect(typeof value === 'number', 'a number');
    case 'string':
      return expect(typeof value === 'string', 'a string');
    case 'bytes':
      return expect(isByteString(value), 'a string of characters \\u0000-\\u00ff (one per byte)');
    case 'fixed':
      return expect(
        isByteString(value) && value.length === node.size,
        `a string of exactly ${node.size} characters \\u0000-\\u00ff`,
      );
    case 'enum':
      return expect(typeof value === 'string' && node.symbols.includes(value), `one of ${node.symbols.join(', ')}`);
    case 'array':
      if (!Array.isArray(value)) return expect(false, 'an array');
      return firstProblem(value.map((item) => defaultProblem(node.items, item, seen)));
    case 'map':
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return expect(false, 'an object');
      return firstProblem(Object.values(value).map((item) => defaultProblem(node.values, item, seen)));
    case 'union':
      // Avro ≤ 1.11 (and avsc): a union field's default is a value of the union's first branch.
      return defaultProblem(node.branches[0], value, seen) === null
        ? null
        : `a union's default must be a value of its first branch (${describe(node.branches[0])})`;
    case 'record':
      return recordDefaultProblem(node, value, seen);
  }
}

function recordDefaultProblem(node: RecordNode, value: unknown, seen: Set<unknown>): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `expected an object for ${node.name}`;
  if (seen.has(value)) return null;
  seen.add(value);
  const obj = value as Record<string, unknown>;
  for (const field of node.fields) {
    if (!(field.name in obj)) {
      if (field.default === undefined) return `field ${field.name} of ${node.name} is missing and has no default`;
      continue;
    }
    const inner = defaultProblem(field.type, obj[field.name], seen);
    if (inner !== null) return `field ${field.name}: ${inner}`;
  }
  return null;
}

function firstProblem(problems: (string | null)[]): string | null {
  return problems.find((p) => p !== null) ?? null;
}

function isByteString(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return false;
  return true;
}

/** A type as a reader of messages sees it: `int`, `long (timestamp-millis)`, `record com.acme.Sale`, `[null, string]`. */
export function describe(node: AvroNode): string {
  switch (node.kind) {
    case 'record':
    case 'enum':
      return `${node.kind} ${node.name}`;
    case 'fixed':
      return `fixed ${node.name} (${node.size} bytes)`;
    case 'array':
      return `array of ${describe(node.items)}`;
    case 'map':
      return `map of ${describe(node.values)}`;
    case 'union':
      return `[${node.branches.map(describe).join(', ')}]`;
    default:
      return node.logical ? `${node.kind} (${node.logical.logicalType})` : node.kind;
  }
}

/**
 * The canonical text (see the header): `extended` keeps defaults, aliases and logical-type
 * attributes; without it this is the specification's Parsing Canonical Form.
 */
export function canonicalText(root: AvroNode, extended: boolean): string {
  const written = new Set<string>();
  const write = (node: AvroNode): string => {
    if (node.kind === 'union') return `[${node.branches.map(write).join(',')}]`;
    if (node.kind === 'array') return `{"type":"array","items":${write(node.items)}}`;
    if (node.kind === 'map') return `{"type":"map","values":${write(node.values)}}`;
    if (!('name' in node)) {
      return extended && node.logical ? `{"type":"${node.kind}"${logicalText(node.logical)}}` : `"${node.kind}"`;
    }
    if (node.external || written.has(node.name)) return JSON.stringify(node.name);
    written.add(node.name);
    let body = `{"name":${JSON.stringify(node.name)},"type":"${node.kind}"`;
    if (node.kind === 'record')
      body += `,"fields":[${node.fields.map((f) => fieldText(f, write, extended)).join(',')}]`;
    if (node.kind === 'enum') body += `,"symbols":${JSON.stringify(node.symbols)}`;
    if (node.kind === 'fixed') body += `,"size":${node.size}`;
    if (extended) {
      if (node.kind === 'enum' && node.default !== undefined) body += `,"default":${JSON.stringify(node.default)}`;
      body += aliasesText(node.aliases);
      if (node.kind === 'fixed' && node.logical) body += logicalText(node.logical);
    }
    return `${body}}`;
  };
  return write(root);
}

function fieldText(field: FieldNode, write: (node: AvroNode) => string, extended: boolean): string {
  let text = `{"name":${JSON.stringify(field.name)},"type":${write(field.type)}`;
  if (extended) {
    if (field.default !== undefined) text += `,"default":${sortedJson(field.default.value)}`;
    text += aliasesText(field.aliases);
  }
  return `${text}}`;
}

function aliasesText(aliases: string[]): string {
  return aliases.length === 0 ? '' : `,"aliases":${JSON.stringify([...aliases].sort())}`;
}

function logicalText(logical: LogicalInfo): string {
  let text = `,"logicalType":${JSON.stringify(logical.logicalType)}`;
  if (logical.precision !== undefined) text += `,"precision":${logical.precision}`;
  if (logical.scale !== undefined) text += `,"scale":${logical.scale}`;
  return text;
}

/** JSON with object keys sorted, so a default's key order does not change a schema's identity. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${sortedJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
