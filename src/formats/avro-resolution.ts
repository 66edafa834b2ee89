/**
 * Can a reader read what a writer wrote? The Avro specification's "Schema Resolution" rules,
 * checked over two schemas without data (issue 17), returning every problem with its field path.
 *
 * The rules, as the specification states them (one check per line below):
 * - records match by full name, or when the reader lists the writer's name among its aliases;
 *   fields match by name or by a reader field's alias; a writer field the reader lacks is ignored;
 *   a reader field the writer lacks needs a default;
 * - enums match by name (or reader alias); a writer symbol the reader lacks is an error unless the
 *   reader's enum has a default;
 * - fixed match by name (or reader alias) and size;
 * - arrays by their items, maps by their values;
 * - primitives match themselves, and promote: int → long, float, double; long → float, double;
 *   float → double; string → bytes; bytes → string;
 * - a writer union: each of its branches must be readable (by the reader, or by some branch of a
 *   reader union) — any branch may occur in the data;
 * - a reader union (writer not a union): some branch must read the writer's type;
 * - decimals (logical type) match only when precision and scale both agree (spec, "Decimal").
 * Other logical types read as their base type, as the specification says.
 *
 * This is the check avsc's `reader.createResolver(writer)` makes (avro.test.ts holds the two to
 * agreeing on a table of cases); written out here because avsc stops at the first problem and its
 * messages do not name the field.
 */
import type { CompatibilityProblem } from './types.ts';
import {
  describe,
  shortName,
  type AvroNode,
  type FieldNode,
  type NamedNode,
  type PrimitiveNode,
  type RecordNode,
} from './avro-schema.ts';

const PROMOTIONS: Record<string, readonly string[]> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};

/** Every problem that stops `reader` from reading data written with `writer`; empty when it can. */
export function resolutionProblems(reader: AvroNode, writer: AvroNode): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  check(reader, writer, rootPath(reader, writer), problems, new Set());
  return problems;
}

function rootPath(reader: AvroNode, writer: AvroNode): string {
  if ('name' in reader) return shortName(reader.name);
  if ('name' in writer) return shortName(writer.name);
  return '(root)';
}

/** Record pairs being compared higher up the stack: a recursive schema compares each pair once. */
type InProgress = Set<string>;

function check(reader: AvroNode, writer: AvroNode, path: string, out: CompatibilityProblem[], busy: InProgress): void {
  if (writer.kind === 'union') {
    writer.branches.forEach((branch) => {
      if (reader.kind !== 'union') {
        check(reader, branch, path, out, busy);
      } else if (!reader.branches.some((r) => readable(r, branch, busy))) {
        out.push({
          path,
          rule: `the writer's union branch ${describe(branch)} matches no branch of the reader's union ${describe(reader)}: data written in that branch could not be read`,
        });
      }
    });
    return;
  }
  if (reader.kind === 'union') {
    if (!reader.branches.some((r) => readable(r, writer, busy))) {
      out.push({
        path,
        rule: `the writer's ${describe(writer)} matches no branch of the reader's union ${describe(reader)}`,
      });
    }
    return;
  }
  checkSame(reader, writer, path, out, busy);
}

function readable(reader: AvroNode, writer: AvroNode, busy: InProgress): boolean {
  const scratch: CompatibilityProblem[] = [];
  check(reader, writer, '', scratch, busy);
  return scratch.length === 0;
}

function checkSame(
  reader: AvroNode,
  writer: AvroNode,
  path: string,
  out: CompatibilityProblem[],
  busy: InProgress,
): void {
  if (reader.kind !== writer.kind) {
    if (PROMOTIONS[writer.kind]?.includes(reader.kind)) return;
    out.push({
      path,
      rule: `the type changed from ${describe(writer)} to ${describe(reader)}: a ${describe(reader)} reader cannot read a ${describe(writer)}`,
    });
    return;
  }
  switch (reader.kind) {
    case 'record':
      return checkRecord(reader, writer as RecordNode, path, out, busy);
    case 'enum': {
      if (!namesMatch(reader, writer as NamedNode, path, out)) return;
      const missing = (writer as typeof reader).symbols.filter((s) => !reader.symbols.includes(s));
      if (missing.length > 0 && reader.default === undefined) {
        out.push({
          path,
          rule: `the writer's enum ${reader.name} has symbol(s) ${missing.join(', ')} that the reader's lacks, and the reader's enum has no default to read them as`,
        });
      }
      return;
    }
    case 'fixed': {
      if (!namesMatch(reader, writer as NamedNode, path, out)) return;
      const size = (writer as typeof reader).size;
      if (size !== reader.size)
        out.push({ path, rule: `fixed ${reader.name} changed size from ${size} to ${reader.size} bytes` });
      return checkDecimal(reader, writer as typeof reader, path, out);
    }
    case 'array':
      return check(reader.items, (writer as typeof reader).items, `${path}[]`, out, busy);
    case 'map':
      return check(reader.values, (writer as typeof reader).values, `${path}{}`, out, busy);
    default:
      return checkDecimal(reader as PrimitiveNode, writer as PrimitiveNode, path, out);
  }
}

function checkDecimal(
  reader: { logical?: { logicalType: string; precision?: number; scale?: number } },
  writer: { logical?: { logicalType: string; precision?: number; scale?: number } },
  path: string,
  out: CompatibilityProblem[],
): void {
  const r = reader.logical;
  const w = writer.logical;
  if (r?.logicalType !== 'decimal' || w?.logicalType !== 'decimal') return;
  if (!isValidDecimal(r) || !isValidDecimal(w)) return;
  if (r.precision !== w.precision || (r.scale ?? 0) !== (w.scale ?? 0)) {
    out.push({
      path,
      rule: `decimal changed from precision ${w.precision}, scale ${w.scale ?? 0} to precision ${r.precision}, scale ${r.scale ?? 0}: decimals resolve only when both agree, or the numbers would change meaning`,
    });
  }
}

function isValidDecimal(l: { precision?: number; scale?: number }): boolean {
  const scale = l.scale ?? 0;
  return (
    Number.isInteger(l.precision) && (l.precision as number) >= 1 && scale >= 0 && scale <= (l.precision as number)
  );
}

function namesMatch(reader: NamedNode, writer: NamedNode, path: string, out: CompatibilityProblem[]): boolean {
  if (reader.name === writer.name || reader.aliases.includes(writer.name)) return true;
  out.push({
    path,
    rule: `the writer's ${writer.kind} is named ${writer.name} and the reader's ${reader.name}, which does not list ${writer.name} among its aliases`,
  });
  return false;
}

function checkRecord(
  reader: RecordNode,
  writer: RecordNode,
  path: string,
  out: CompatibilityProblem[],
  busy: InProgress,
): void {
  if (!namesMatch(reader, writer, path, out)) return;
  const key = `${reader.name}\u0000${writer.name}`;
  if (busy.has(key)) return;
  busy.add(key);
  for (const field of reader.fields) {
    const matches = writer.fields.filter((w) => w.name === field.name || field.aliases.includes(w.name));
    const where = `${path}.${field.name}`;
    if (matches.length > 1) {
      out.push({
        path: where,
        rule: `the reader's field ${field.name} matches several writer fields (${matches.map((m) => m.name).join(', ')}) by name or alias`,
      });
    } else if (matches.length === 0) {
      if (field.default === undefined) out.push({ path: where, rule: missingFieldRule(field, writer) });
    } else {
      check(field.type, matches[0].type, where, out, busy);
    }
  }
  busy.delete(key);
}

function missingFieldRule(field: FieldNode, writer: RecordNode): string {
  return `the reader's field ${field.name} has no default and the writer's record ${writer.name} has no field ${field.name}: give it a default, or keep it in the writer`;
}
