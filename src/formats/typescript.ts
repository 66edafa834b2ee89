/**
 * TypeScript types of the values Kappa decodes from an Avro or Protobuf schema (issue 17), for a
 * config's `avro<Sale>(…)` / `protobuf<Sale>(…)`: `kappa types sale.avsc` prints them, so the
 * record type a pipeline sees comes from the schema rather than being typed by hand.
 *
 * The types follow the value shapes the decoders produce (avro.ts, avro-types.ts and
 * protobuf-decode.ts document them): Avro long → number, bytes/fixed/decimal → string, an
 * unambiguous union → the union of its branches, an ambiguous one → `{ branch: value }`; Protobuf
 * 64-bit integers → number | string, bytes → string, enums → their names (or a number), messages →
 * object | null, proto3 `optional` and oneof members → T | null.
 */
import type protobuf from 'protobufjs';
import { protobufjs } from './libs.ts';
import { KappaError } from '../errors.ts';
import type { AvroSchema } from './avro.ts';
import type { AvroNode, NamedNode } from './avro-schema.ts';
import type { ProtobufSchema } from './protobuf-schema.ts';

/** `name` as a TypeScript identifier (a dotted full name becomes its last part). */
function typeName(name: string): string {
  const short = name.split('.').at(-1)!;
  const id = short.replace(/[^A-Za-z0-9_$]/g, '_');
  return /^[0-9]/.test(id) ? `_${id}` : id;
}

/** A property key as written in a type literal. */
function key(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

// ---- Avro ----

/** What a value of an Avro type looks like in JavaScript, as avro-types.ts buckets them (a union is ambiguous when two branches share one). */
function bucket(node: AvroNode): string {
  switch (node.kind) {
    case 'int':
    case 'long':
    case 'float':
    case 'double':
      return node.logical?.logicalType === 'decimal' ? 'string' : 'number';
    case 'enum':
    case 'string':
    case 'bytes':
    case 'fixed':
      return 'string';
    case 'map':
    case 'record':
      return 'object';
    default:
      return node.kind;
  }
}

/** The name a wrapped union's branch goes by: a named type's full name, else the type's name. */
function branchKey(node: AvroNode): string {
  return node.kind === 'record' || node.kind === 'enum' || node.kind === 'fixed' ? node.name : node.kind;
}

class AvroTypes {
  readonly declarations: string[] = [];
  private readonly done = new Set<string>();

  type(node: AvroNode): string {
    switch (node.kind) {
      case 'null':
        return 'null';
      case 'boolean':
        return 'boolean';
      case 'int':
      case 'long':
      case 'float':
      case 'double':
        return 'number';
      case 'string':
        return 'string';
      case 'bytes':
      case 'fixed':
        return 'string';
      case 'array':
        return `${this.wrapped(node.items)}[]`;
      case 'map':
        return `Record<string, ${this.type(node.values)}>`;
      case 'union':
        return this.union(node.branches);
      default:
        return this.named(node);
    }
  }

  private wrapped(node: AvroNode): string {
    const t = this.type(node);
    return /[|&]/.test(t) ? `(${t})` : t;
  }

  private union(branches: AvroNode[]): string {
    const buckets = branches.map(bucket);
    if (new Set(buckets).size === buckets.length) return branches.map((b) => this.type(b)).join(' | ');
    return branches.map((b) => (b.kind === 'null' ? 'null' : `{ ${key(branchKey(b))}: ${this.type(b)} }`)).join(' | ');
  }

  private named(node: NamedNode): string {
    const name = typeName(node.name);
    if (this.done.has(node.name)) return name;
    this.done.add(node.name);
    if (node.kind === 'enum') {
      this.declarations.push(`export type ${name} = ${node.symbols.map((s) => JSON.stringify(s)).join(' | ')};`);
    } else if (node.kind === 'record') {
      const fields = node.fields.map((f) => `  ${key(f.name)}: ${this.type(f.type)};`);
      this.declarations.push(`export interface ${name} {\n${fields.join('\n')}\n}`);
    } else {
      return 'string'; // fixed (and decimal on fixed): base64 or decimal text
    }
    return name;
  }
}

/** TypeScript declarations of the values an Avro schema decodes to; the root type is exported as `rootName` when it is not a named record. */
export function avroTypeScript(schema: AvroSchema, rootName = 'Record'): string {
  const types = new AvroTypes();
  const root = types.type(schema.node);
  const out = [...types.declarations];
  if (schema.node.kind !== 'record' && schema.node.kind !== 'enum') out.push(`export type ${rootName} = ${root};`);
  return `${out.join('\n\n')}\n`;
}

// ---- Protobuf ----

const NUMBER_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'float', 'double']);
const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

class ProtobufTypes {
  readonly declarations: string[] = [];
  private readonly done = new Set<protobuf.ReflectionObject>();

  message(type: protobuf.Type): string {
    const name = this.nameOf(type);
    if (this.done.has(type)) return name;
    this.done.add(type);
    const fields = type.fieldsArray.map((f) => {
      const optional = f.partOf !== null || (f as unknown as { proto3Optional?: boolean }).proto3Optional === true;
      return `  ${key(f.name)}: ${this.field(f)}${optional && !f.repeated && !f.map ? ' | null' : ''};`;
    });
    this.declarations.push(`export interface ${name} {\n${fields.join('\n')}\n}`);
    return name;
  }

  private field(f: protobuf.Field): string {
    f.resolve();
    const value = this.scalar(f);
    if (f.map) return `Record<string, ${value}>`;
    if (f.repeated) return /[|&]/.test(value) ? `(${value})[]` : `${value}[]`;
    return f.resolvedType instanceof protobufjs().Type ? `${value} | null` : value;
  }

  private scalar(f: protobuf.Field): string {
    if (f.resolvedType instanceof protobufjs().Type) return this.message(f.resolvedType);
    if (f.resolvedType instanceof protobufjs().Enum) return this.enumOf(f.resolvedType);
    if (NUMBER_TYPES.has(f.type)) return 'number';
    if (LONG_TYPES.has(f.type)) return 'number | string';
    if (f.type === 'bool') return 'boolean';
    return 'string'; // string, bytes (base64)
  }

  private enumOf(e: protobuf.Enum): string {
    const name = this.nameOf(e);
    if (!this.done.has(e)) {
      this.done.add(e);
      const names = Object.keys(e.values).map((v) => JSON.stringify(v));
      // proto3 enums are open: a number the enum does not define stays a number.
      this.declarations.push(`export type ${name} = ${[...names, 'number'].join(' | ')};`);
    }
    return name;
  }

  /** Nested types keep their parents' names (`Order_Line`), so two `Line`s in different messages do not clash. */
  private nameOf(t: protobuf.ReflectionObject): string {
    const parts: string[] = [];
    for (
      let o: protobuf.ReflectionObject | null = t;
      o instanceof protobufjs().Type || o instanceof protobufjs().Enum;
      o = o.parent
    )
      parts.unshift(typeName(o.name));
    return parts.join('_');
  }
}

/** TypeScript declarations of the values messages of a .proto decode to: one message (and what it uses), or every top-level one. */
export function protobufTypeScript(schema: ProtobufSchema, message?: string): string {
  const types = new ProtobufTypes();
  if (message !== undefined) {
    const type = schema.findMessage(message);
    if (type === null)
      throw new KappaError(
        'KAPPA_INVALID_SCHEMA',
        `The .proto file declares no message "${message}" (its top-level messages: ${schema.messages.map((m) => m.name).join(', ') || 'none'}).`,
      );
    types.message(type);
  } else {
    for (const m of schema.messages) types.message(m);
  }
  return `${types.declarations.join('\n\n')}\n`;
}
