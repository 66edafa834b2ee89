/**
 * Can a reader with one .proto file read every record written with another? Protobuf's rules for
 * updating a message type (protobuf.dev, "Updating A Message Type") as Confluent's registry applies
 * them (io.confluent.kafka.schemaregistry.protobuf.diff):
 *
 * - The record's message is the writer file's first message; the reader must have a message of
 *   that full name (package included). Messages are matched by full name, fields by number.
 *   Renaming a field, adding or removing an optional field, and reordering messages are fine (the
 *   message-index array of each record refers to its writer's own file).
 * - A field number kept in both must keep a wire-compatible type: int32/uint32/int64/uint64/bool/enum,
 *   sint32/sint64, fixed32/sfixed32, fixed64/sfixed64 and string/bytes are the groups; float and
 *   double are each alone; a message-typed field must keep the same message (by full name), which is
 *   then compared field by field; a map stays a map with compatible key and value types.
 * - A numeric field may not change between repeated and singular (packed data is unreadable as one
 *   value; Confluent: FIELD_NUMERIC_LABEL_CHANGED). string, bytes and message fields may.
 * - proto2 `required` is forever: a required field added, removed, or made required is a problem.
 * - oneofs: a field moved into a oneof is a problem unless it is the only existing field of a new
 *   oneof; a field moved out of a oneof is a problem (protobuf.dev: "you may lose some of your
 *   information"; Confluent's current checker accepts this one); two oneofs merged are a problem.
 *
 * Enum values added, removed or renamed are not problems (Confluent: ENUM_CONST_* are compatible;
 * proto3 enums are open and a proto2 reader keeps an unknown value as an unknown field).
 */
import type protobuf from 'protobufjs';
import { protobufjs } from './libs.ts';
import { describeField as describe, keyTypeOf, kindOf, wireGroupOf } from './protobuf-decode.ts';
import { nestedMessages, type ProtobufSchema } from './protobuf-schema.ts';
import type { CompatibilityProblem } from './types.ts';

const NUMERIC_GROUPS = new Set(['varint', 'zigzag', 'fixed32', 'fixed64', 'float', 'double']);
const WIRE_GROUPS =
  'the wire-compatible groups are int32/uint32/int64/uint64/bool/enum, sint32/sint64, fixed32/sfixed32, fixed64/sfixed64 and string/bytes';

export function protobufProblems(reader: ProtobufSchema, writer: ProtobufSchema): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  const record = writer.messages[0];
  if (record === undefined) return problems;
  if (lookupType(reader.root, record.fullName) === null) {
    const name = record.fullName.slice(1);
    problems.push({
      path: name,
      rule: `message ${name} was removed (or renamed, or moved to another package): records written as ${name} have no message to be read as`,
    });
  }
  const compared = new Set<string>();
  for (const message of allMessages(writer.messages)) {
    const match = lookupType(reader.root, message.fullName);
    if (match !== null) compareMessages(message, match, problems, compared);
  }
  return problems;
}

function allMessages(messages: readonly protobuf.Type[]): protobuf.Type[] {
  return messages.flatMap((m) => [m, ...allMessages(nestedMessages(m))]);
}

function lookupType(root: protobuf.Root, fullName: string): protobuf.Type | null {
  const found = root.lookup(fullName);
  return found instanceof protobufjs().Type ? found : null;
}

function compareMessages(
  writer: protobuf.Type,
  reader: protobuf.Type,
  problems: CompatibilityProblem[],
  compared: Set<string>,
): void {
  const key = `${writer.fullName}>${reader.fullName}`;
  if (compared.has(key)) return;
  compared.add(key);
  const name = reader.fullName.slice(1);
  for (const field of reader.fieldsArray) {
    const source = writer.fieldsById[field.id];
    const path = `${name}.${field.name} (field ${field.id})`;
    if (source === undefined) {
      if (field.required) {
        problems.push({
          path,
          rule: 'a required field was added: records written without it cannot be read (proto2: required is forever)',
        });
      }
      continue;
    }
    compareField(source, field, path, problems, compared);
    compareOneofs(writer, source, field, path, problems);
  }
  for (const source of writer.fieldsArray) {
    if (source.required && reader.fieldsById[source.id] === undefined) {
      problems.push({
        path: `${name}.${source.name} (field ${source.id})`,
        rule: 'a required field was removed: readers that still require it refuse the new records (proto2: required is forever)',
      });
    }
  }
}

function compareField(
  source: protobuf.Field,
  target: protobuf.Field,
  path: string,
  problems: CompatibilityProblem[],
  compared: Set<string>,
): void {
  if (source.map !== target.map) {
    problems.push({
      path,
      rule: `changed from ${describe(source)} to ${describe(target)}: a map field must stay a map`,
    });
    return;
  }
  if (source.map) {
    const from = keyTypeOf(source);
    const to = keyTypeOf(target);
    if (wireGroupOf(from) !== wireGroupOf(to)) {
      problems.push({ path, rule: `map key changed from ${from} to ${to}: not wire-compatible (${WIRE_GROUPS})` });
    }
  }
  if (!compareElements(source, target, path, problems, compared)) return;
  const group = wireGroupOf(kindOf(source));
  if (!source.map && source.repeated !== target.repeated && NUMERIC_GROUPS.has(group)) {
    problems.push({
      path,
      rule: `changed from ${describe(source)} to ${describe(target)}: a numeric field cannot change between repeated and singular (packed repeated data cannot be read as one value)`,
    });
  }
  if (target.required && !source.required) {
    problems.push({
      path,
      rule: 'the field became required: records written without it cannot be read (proto2: required is forever)',
    });
  }
}

/** Compares the element types (a map's values); false when a problem was reported. */
function compareElements(
  source: protobuf.Field,
  target: protobuf.Field,
  path: string,
  problems: CompatibilityProblem[],
  compared: Set<string>,
): boolean {
  const from = kindOf(source);
  const to = kindOf(target);
  if (from === 'message' && to === 'message') {
    const writerType = source.resolvedType as protobuf.Type;
    const readerType = target.resolvedType as protobuf.Type;
    if (writerType.fullName !== readerType.fullName) {
      problems.push({
        path,
        rule: `changed from message ${writerType.fullName.slice(1)} to message ${readerType.fullName.slice(1)}: a message-typed field must keep its message type`,
      });
      return false;
    }
    compareMessages(writerType, readerType, problems, compared);
    return true;
  }
  if (from === 'message' || to === 'message' || wireGroupOf(from) !== wireGroupOf(to)) {
    problems.push({
      path,
      rule: `changed type from ${describe(source)} to ${describe(target)}: a ${describe(target)} reader cannot read ${describe(source)} data (${WIRE_GROUPS}; a message stays the same message)`,
    });
    return false;
  }
  return true;
}

/** The oneof a field belongs to, not counting proto3 `optional`'s synthetic one. */
function oneofOf(field: protobuf.Field): protobuf.OneOf | null {
  if (field.partOf === null || field.options?.proto3_optional === true) return null;
  return field.partOf;
}

function compareOneofs(
  writer: protobuf.Type,
  source: protobuf.Field,
  target: protobuf.Field,
  path: string,
  problems: CompatibilityProblem[],
): void {
  const from = oneofOf(source);
  const to = oneofOf(target);
  if (from === null && to !== null) {
    const members = to.fieldsArray.map((m) => writer.fieldsById[m.id]).filter((m) => m !== undefined);
    const existing = members.some((m) => oneofOf(m) !== null);
    if (members.length > 1 || existing) {
      problems.push({
        path,
        rule: `moved into oneof ${to.name} together with other existing fields: a writer could set them all, a reader keeps only one (only a single field may move into a new oneof)`,
      });
    }
  } else if (from !== null && to === null) {
    problems.push({
      path,
      rule: `moved out of oneof ${from.name}: moving fields into or out of a oneof can lose data (protobuf.dev, "Updating A Message Type")`,
    });
  } else if (from !== null && to !== null) {
    const others = to.fieldsArray
      .map((m) => writer.fieldsById[m.id])
      .filter((m) => m !== undefined && m.id !== source.id);
    const foreign = others.find((m) => oneofOf(m) !== null && oneofOf(m) !== from);
    if (foreign !== undefined) {
      problems.push({
        path,
        rule: `oneof ${to.name} joins fields the writer kept in different oneofs (${from.name} and ${oneofOf(foreign)?.name}): a writer could set one of each, a reader keeps only one`,
      });
    }
  }
}
