/**
 * The object rules of the JSON Schema compatibility check (see json-schema-compat.ts): properties
 * under open, closed and partially open content models, required, property counts, property names
 * and dependencies. The content model of a schema is its `additionalProperties` (or an
 * `unevaluatedProperties` that means the same, with no applicator beside it): absent or true is
 * open, false is closed, a schema is partially open. A property name a schema does not declare
 * gets its matching `patternProperties`, else that content model.
 */
import type { CompatibilityProblem } from './types.ts';
import type { Comparison } from './json-schema-compat-keywords.ts';
import { isSchemaObject, pointerChild, type SchemaNode, type SchemaObject } from './json-schema-space.ts';
import { checkValue, describeValue, hasApplicators, isTrivial, writerNumber } from './json-schema-values.ts';

type Problems = CompatibilityProblem[];

const DEFAULT_NOTE =
  ' (Confluent accepts this when the property has a default; Kappa does not fill defaults in when it reads, so such a record would be refused)';

type SchemaValueLike = SchemaNode['schema'];

function propertiesOf(schema: SchemaValueLike): Record<string, unknown> {
  return isSchemaObject(schema) && isSchemaObject(schema.properties)
    ? (schema.properties as Record<string, unknown>)
    : {};
}

function patternsOf(schema: SchemaValueLike): Array<[string, unknown]> {
  return isSchemaObject(schema) && isSchemaObject(schema.patternProperties)
    ? Object.entries(schema.patternProperties)
    : [];
}

/** The content model: additionalProperties, or unevaluatedProperties where it means the same; true when open. */
function additionalOf(schema: SchemaValueLike): unknown {
  if (!isSchemaObject(schema)) return schema;
  if (schema.additionalProperties !== undefined) return schema.additionalProperties;
  if (schema.unevaluatedProperties !== undefined && !hasApplicators(schema)) return schema.unevaluatedProperties;
  return true;
}

function matches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return true;
  }
}

/** The schemas a property called `name` must match under `node`: its own, matching patterns, else the content model. */
export function schemasForName(node: SchemaNode, name: string): SchemaNode[] {
  if (typeof node.schema === 'boolean') return [node];
  const own = propertiesOf(node.schema);
  const out: SchemaNode[] = [];
  if (Object.hasOwn(own, name)) out.push(node.space.child(node, own[name]));
  for (const [pattern, schema] of patternsOf(node.schema))
    if (matches(pattern, name)) out.push(node.space.child(node, schema));
  return out.length > 0 ? out : [node.space.child(node, additionalOf(node.schema))];
}

export function objectProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  return [
    ...namedPropertyProblems(cmp, reader, writer, path),
    ...contentModelProblems(cmp, reader, writer, path),
    ...requiredProblems(reader, writer, path),
    ...propertyCountProblems(reader.schema as SchemaObject, writer, path),
    ...propertyNameProblems(cmp, reader, writer, path),
    ...dependencyProblems(cmp, reader, writer, path),
  ];
}

/** Per property name either side declares: the reader's schema for it must include the writer's. */
function namedPropertyProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  const mine = propertiesOf(reader.schema);
  const names = new Set([...Object.keys(mine), ...writer.flatMap((n) => Object.keys(propertiesOf(n.schema)))]);
  const out: Problems = [];
  for (const name of [...names].sort()) {
    const propertyPath = pointerChild(`${path}/properties`, name);
    const theirs = writer.flatMap((n) => schemasForName(n, name));
    const found = schemasForName(reader, name).flatMap((r) => cmp.includes(r, theirs, propertyPath));
    if (found.length === 0) continue;
    const inReader = Object.hasOwn(mine, name);
    const inWriter = writer.some((n) => Object.hasOwn(propertiesOf(n.schema), name));
    if (inReader && inWriter) out.push(...found);
    else if (inReader) out.push({ path: propertyPath, rule: addedRule(name, writer, found[0]) });
    else out.push({ path: propertyPath, rule: removedRule(name, reader, found[0]) });
  }
  return out;
}

function addedRule(name: string, writer: readonly SchemaNode[], first: CompatibilityProblem): string {
  const open = writer.every(
    (n) => additionalOf(n.schema) === true || isTrivial(n.space.child(n, additionalOf(n.schema)).schema),
  );
  if (open) {
    return `property "${name}" added to an open content model: the writer allowed any value under that name (it did not set additionalProperties to false), and the new property's schema refuses some of them (${first.rule})`;
  }
  return `property "${name}" added, but the writer's additionalProperties or patternProperties allowed values under that name which the new property's schema refuses (${first.rule})`;
}

function removedRule(name: string, reader: SchemaNode, first: CompatibilityProblem): string {
  const patterned = patternsOf(reader.schema).some(([pattern]) => matches(pattern, name));
  if (!patterned && additionalOf(reader.schema) === false) {
    return `property "${name}" removed from a closed content model: the reader refuses it (additionalProperties is false) but the writer allowed it`;
  }
  const keyword = patterned ? 'patternProperties' : 'additionalProperties';
  return `property "${name}" removed, and the reader's ${keyword} does not accept every value the writer allowed for it (${first.rule})`;
}

/** patternProperties and additionalProperties of the reader, against names neither side declares. */
function contentModelProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  const out: Problems = [];
  const readerPatterns = patternsOf(reader.schema);
  for (const [pattern, schema] of readerPatterns) {
    const mine = cmp.child(reader, schema);
    // Per writer schema, what an undeclared name matching `pattern` may hold: the same pattern's
    // schema if it has one, else any pattern that may overlap it and its content model.
    const covered = writer.some((w) => {
      const same = patternsOf(w.schema).find(([p]) => p === pattern);
      const choices = same
        ? [same[1]]
        : [
            ...patternsOf(w.schema)
              .filter(([p]) => mayOverlap(p, pattern))
              .map(([, s]) => s),
            additionalOf(w.schema),
          ];
      return choices.every((c) => cmp.includes(mine, [cmp.child(w, c)], path).length === 0);
    });
    if (!covered) {
      out.push({
        path: pointerChild(`${path}/patternProperties`, pattern),
        rule: `properties matching ${describeValue(pattern)} must match a schema the writer did not hold them to (its additionalProperties or other patterns allowed values this one refuses)`,
      });
    }
  }
  const additional = cmp.child(reader, additionalOf(reader.schema));
  if (isTrivial(additional.schema)) return out;
  const readerSources = new Set(readerPatterns.map(([p]) => p));
  const covered = writer.some((w) =>
    [
      ...patternsOf(w.schema)
        .filter(([p]) => !readerSources.has(p))
        .map(([, s]) => s),
      additionalOf(w.schema),
    ].every((c) => cmp.includes(additional, [cmp.child(w, c)], path).length === 0),
  );
  if (!covered) {
    const key =
      isSchemaObject(reader.schema) && reader.schema.additionalProperties === undefined
        ? 'unevaluatedProperties'
        : 'additionalProperties';
    out.push({
      path: `${path}/${key}`,
      rule:
        additional.schema === false
          ? `${key} changed to false (the content model was closed): properties the writer allowed beyond the declared ones are refused`
          : `${key} narrowed: the reader's schema for undeclared properties refuses values the writer allowed for them`,
    });
  }
  if (
    isSchemaObject(reader.schema) &&
    reader.schema.unevaluatedProperties !== undefined &&
    hasApplicators(reader.schema)
  ) {
    out.push({
      path: `${path}/unevaluatedProperties`,
      rule: 'unevaluatedProperties next to allOf/anyOf/oneOf/$ref/if is not compared, so it is treated as incompatible',
    });
  }
  return out;
}

/** Two anchored patterns with different literal starts (`^S_`, `^I_`) match no name in common. */
function mayOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const literal = (p: string) => /^\^([^\\^$.|?*+()[\]{}]*)/.exec(p)?.[1];
  const x = literal(a);
  const y = literal(b);
  if (x === undefined || y === undefined) return true;
  return x.startsWith(y) || y.startsWith(x);
}

function requiredNames(schema: SchemaValueLike): string[] {
  return isSchemaObject(schema) && Array.isArray(schema.required) ? schema.required.map(String) : [];
}

function requiredProblems(reader: SchemaNode, writer: readonly SchemaNode[], path: string): Problems {
  const guaranteed = new Set(writer.flatMap((n) => requiredNames(n.schema)));
  const mine = propertiesOf(reader.schema);
  return requiredNames(reader.schema)
    .filter((name) => !guaranteed.has(name))
    .map((name) => {
      const own = mine[name];
      const note = isSchemaObject(own) && own.default !== undefined ? DEFAULT_NOTE : '';
      return {
        path: pointerChild(`${path}/properties`, name),
        rule: `property "${name}" is required by the reader but the writer did not require it: records written without it would be refused${note}`,
      };
    });
}

function propertyCountProblems(r: SchemaObject, writer: readonly SchemaNode[], path: string): Problems {
  const out: Problems = [];
  if (typeof r.minProperties === 'number') {
    const required = new Set(writer.flatMap((n) => requiredNames(n.schema))).size;
    const had = Math.max(writerNumber(writer, 'minProperties', 'max', 0), required);
    if (had < r.minProperties) {
      out.push({
        path: `${path}/minProperties`,
        rule: `minProperties raised to ${r.minProperties}: objects with fewer properties, which the writer allowed, are refused`,
      });
    }
  }
  if (typeof r.maxProperties === 'number') {
    const closed = writer
      .filter((n) => additionalOf(n.schema) === false && patternsOf(n.schema).length === 0)
      .map((n) => Object.keys(propertiesOf(n.schema)).length);
    const had = Math.min(writerNumber(writer, 'maxProperties', 'min', Infinity), ...closed);
    if (had > r.maxProperties) {
      out.push({
        path: `${path}/maxProperties`,
        rule: `maxProperties lowered to ${r.maxProperties}: objects with more properties, which the writer allowed, are refused`,
      });
    }
  }
  return out;
}

function propertyNameProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  const r = reader.schema as SchemaObject;
  if (r.propertyNames === undefined) return [];
  const names = cmp.child(reader, r.propertyNames);
  if (isTrivial(names.schema)) return [];
  const ok = writer.some((w) => {
    const s = w.schema;
    if (!isSchemaObject(s)) return false;
    if (s.propertyNames !== undefined && cmp.includes(names, [cmp.child(w, s.propertyNames)], path).length === 0)
      return true;
    const closed = additionalOf(s) === false && patternsOf(s).length === 0;
    return closed && Object.keys(propertiesOf(s)).every((name) => checkValue(names.schema, name).result === 'ok');
  });
  return ok
    ? []
    : [
        {
          path: `${path}/propertyNames`,
          rule: 'propertyNames added or narrowed: property names the writer allowed may be refused',
        },
      ];
}

/** dependencies / dependentRequired / dependentSchemas of the reader: what it demands when a property is present. */
function dependencyProblems(
  cmp: Comparison,
  reader: SchemaNode,
  writer: readonly SchemaNode[],
  path: string,
): Problems {
  const out: Problems = [];
  const guaranteed = new Set(writer.flatMap((n) => requiredNames(n.schema)));
  for (const { keyword, name, value } of dependenciesOf(reader.schema)) {
    // A property the writer never writes triggers nothing.
    if (writer.some((n) => schemasForName(n, name).some((s) => s.schema === false))) continue;
    const depPath = pointerChild(`${path}/${keyword}`, name);
    const writerArrays = writer.flatMap((n) =>
      dependenciesOf(n.schema)
        .filter((d) => d.name === name && Array.isArray(d.value))
        .map((d) => ({ node: n, names: (d.value as unknown[]).map(String) })),
    );
    if (Array.isArray(value)) {
      for (const needed of value.map(String)) {
        if (guaranteed.has(needed) || writerArrays.some((d) => d.names.includes(needed))) continue;
        out.push({
          path: depPath,
          rule: `when "${name}" is present the reader also requires "${needed}", which the writer did not`,
        });
      }
      continue;
    }
    const extra = writer.flatMap((n) =>
      dependenciesOf(n.schema)
        .filter((d) => d.name === name && !Array.isArray(d.value))
        .map((d) => cmp.child(n, d.value)),
    );
    const implied = writerArrays.map((d) => cmp.child(d.node, { required: d.names }));
    const found = cmp.includes(cmp.child(reader, value), [...writer, ...extra, ...implied], depPath);
    if (found.length > 0) {
      out.push({
        path: depPath,
        rule: `when "${name}" is present the reader applies a schema the writer's documents may break (${found[0].rule})`,
      });
    }
  }
  return out;
}

function dependenciesOf(schema: SchemaValueLike): Array<{ keyword: string; name: string; value: unknown }> {
  if (!isSchemaObject(schema)) return [];
  const out: Array<{ keyword: string; name: string; value: unknown }> = [];
  for (const keyword of ['dependencies', 'dependentRequired', 'dependentSchemas']) {
    const map = schema[keyword];
    if (isSchemaObject(map)) for (const [name, value] of Object.entries(map)) out.push({ keyword, name, value });
  }
  return out;
}
