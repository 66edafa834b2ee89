/**
 * JSON Schema compatibility: can a reader with schema R read every document valid under the
 * writer's schema W? That is the inclusion W ⊆ R, checked structurally, keyword by keyword, in the
 * spirit of Confluent's JSON Schema rules (io.confluent.kafka.schemaregistry.json.diff.SchemaDiff):
 *
 * - Open and closed content models. An object schema whose `additionalProperties` is false is
 *   closed; absent or true, open; a schema, partially open. A property the reader adds is fine when
 *   the writer was closed or the new property's schema accepts whatever the writer's
 *   additionalProperties (and matching patternProperties) allowed under that name; otherwise it is
 *   "a property added to an open content model". A property the reader drops is fine when the
 *   reader's additionalProperties accepts the writer's schema for it (so always when the reader is
 *   open). These fall out of one rule: per property name, the reader's schema for that name must
 *   include the writer's, where a name a schema does not declare gets its patternProperties or
 *   additionalProperties schema.
 * - Widening is fine (integer → number, a bound relaxed or removed, an enum value added, a branch
 *   added to anyOf/oneOf); narrowing is a problem, reported with a JSON Pointer into the reader
 *   schema (`#/properties/qty/maximum`) and the rule in words.
 * - The writer is first put in disjunctive normal form: its allOf/$ref members become one
 *   conjunction, and each anyOf/oneOf branch a separate conjunction that must be read on its own.
 *   The reader's allOf members must each accept the writer, an anyOf needs one branch that accepts
 *   the writer, a oneOf one that accepts it while the others are provably disjoint from it.
 * - Recursive schemas ($ref cycles) are compared coinductively: a pair of schemas met again while
 *   it is being compared is assumed to be fine, which is sound because documents are finite.
 *
 * JSON Schema inclusion is undecidable in general (patterns, `not`, arbitrary combinations), so
 * this is a conservative approximation: where it cannot show the inclusion it reports a problem
 * rather than miss one. Known places where it refuses a change that is in fact safe: a value set
 * covered only by several reader anyOf branches together; patterns compared as text; formats
 * compared by name; a writer's oneOf read as an anyOf (so the check cannot use the exclusivity of
 * its branches); `if`/`then`/`else` and `not` in the reader accepted only in simple cases;
 * `unevaluatedProperties`/`unevaluatedItems` next to other applicators; `$dynamicRef`.
 * Where it differs from Confluent on purpose: a property the reader newly requires is a problem
 * even when it has a `default` (Confluent accepts that), because Kappa never fills defaults in when
 * it reads a record, so an old record without the property would be refused; and a reader
 * `required` naming a property nobody declares is a problem (Confluent looks only at declared ones).
 * Writer-side keywords it does not model (not, if/then/else, dependencies…) are ignored, which only
 * makes the writer look larger: that can add problems, never hide one.
 */
import type { CompatibilityProblem } from './types.ts';
import { isSchemaObject, pointerChild, refsOf, type SchemaNode, type SchemaObject } from './json-schema-space.ts';
import { OBJECT, conjunctionKinds, deepEqual, finiteValues, isTrivial, isUnsatisfiable } from './json-schema-values.ts';
import { baseProblems, type Comparison } from './json-schema-compat-keywords.ts';
import { schemasForName } from './json-schema-compat-objects.ts';

/** Most comparison steps one check may take; past it the check stops and reports the schemas as too large. */
const STEPS_MAX = 50_000;
/** Most alternatives the writer's anyOf/oneOf may multiply out to; past it they are dropped (the writer looks larger). */
const ALTERNATIVES_MAX = 64;
/** Deepest chain of allOf/anyOf/oneOf/$ref expanded in one go (a $ref cycle without a property in between stops here). */
const EXPANSION_DEPTH_MAX = 32;
/** How deep the disjointness test for oneOf and not looks into properties. */
const DISJOINT_DEPTH_MAX = 4;

/** The problems that keep `reader` from reading every document valid under `writer`. */
export function inclusionProblems(reader: SchemaNode, writer: SchemaNode): CompatibilityProblem[] {
  const check = new InclusionCheck();
  const problems = check.includes(reader, [writer], '#');
  if (check.exhausted) {
    problems.push({
      path: '#',
      rule: `the schemas are too large or too recursive to compare within ${STEPS_MAX} steps, so they are treated as incompatible`,
    });
  }
  return dedupe(problems);
}

class InclusionCheck implements Comparison {
  exhausted = false;
  private steps = 0;
  private readonly active = new Set<string>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;

  includes(reader: SchemaNode, writer: readonly SchemaNode[], path: string): CompatibilityProblem[] {
    if (isTrivial(reader.schema) || writer.some((w) => sameMeaning(reader, w))) return [];
    const out: CompatibilityProblem[] = [];
    for (const conjunction of this.alternatives(writer))
      out.push(...this.includesConjunction(reader, conjunction, path));
    return dedupe(out);
  }

  /** True only when no value can match both lists (each a conjunction of schemas). */
  disjoint(a: readonly SchemaNode[], b: readonly SchemaNode[], depth = 0): boolean {
    if (depth > DISJOINT_DEPTH_MAX) return false;
    const bs = this.alternatives(b);
    return this.alternatives(a).every((x) => bs.every((y) => this.disjointConjunctions(x, y, depth)));
  }

  child(parent: SchemaNode, schema: unknown): SchemaNode {
    return parent.space.child(parent, schema);
  }

  private includesConjunction(reader: SchemaNode, writer: readonly SchemaNode[], path: string): CompatibilityProblem[] {
    // A writer member equal to the reader: every written document matched that member in full.
    if (isTrivial(reader.schema) || writer.some((w) => sameMeaning(reader, w))) return [];
    if (++this.steps > STEPS_MAX) {
      this.exhausted = true;
      return [];
    }
    if (reader.schema === false) {
      return [{ path, rule: 'the reader accepts no value here (its schema is false), but the writer allowed some' }];
    }
    const key = `${this.id(reader.schema)}|${writer.map((n) => this.id(n.schema)).join(',')}`;
    if (this.active.has(key)) return [];
    this.active.add(key);
    try {
      return this.compare(reader, reader.schema as SchemaObject, writer, path);
    } finally {
      this.active.delete(key);
    }
  }

  private compare(
    reader: SchemaNode,
    r: SchemaObject,
    writer: readonly SchemaNode[],
    path: string,
  ): CompatibilityProblem[] {
    const out = reader.baseOnly ? [] : this.applicatorProblems(reader, r, writer, path);
    out.push(...baseProblems(this, reader, writer, path));
    return out;
  }

  private applicatorProblems(
    reader: SchemaNode,
    r: SchemaObject,
    writer: readonly SchemaNode[],
    path: string,
  ): CompatibilityProblem[] {
    const out: CompatibilityProblem[] = [];
    if (typeof r.$ref === 'string') {
      const target = reader.space.resolve(reader, r.$ref);
      if (target === undefined)
        out.push({ path: `${path}/$ref`, rule: `the reference ${r.$ref} could not be followed` });
      else out.push(...this.includesConjunction(target, writer, path));
    }
    for (const keyword of ['$dynamicRef', '$recursiveRef']) {
      if (r[keyword] !== undefined) {
        out.push({
          path: pointerChild(path, keyword),
          rule: `${keyword} is not compared, so the change is treated as incompatible`,
        });
      }
    }
    if (Array.isArray(r.allOf)) {
      r.allOf.forEach((s, i) =>
        out.push(...this.includesConjunction(this.child(reader, s), writer, `${path}/allOf/${i}`)),
      );
    }
    if (Array.isArray(r.anyOf)) out.push(...this.branchProblems(reader, r.anyOf, 'anyOf', writer, path));
    if (Array.isArray(r.oneOf)) out.push(...this.branchProblems(reader, r.oneOf, 'oneOf', writer, path));
    if (r.not !== undefined) out.push(...this.notProblems(reader, r.not, writer, path));
    if (r.if !== undefined) out.push(...this.conditionalProblems(reader, r, writer, path));
    return out;
  }

  /** anyOf: one branch must accept the writer. oneOf: one branch, and every other one disjoint from it. */
  private branchProblems(
    reader: SchemaNode,
    branches: readonly unknown[],
    keyword: 'anyOf' | 'oneOf',
    writer: readonly SchemaNode[],
    path: string,
  ): CompatibilityProblem[] {
    const nodes = branches.map((s) => this.child(reader, s));
    const results = nodes.map((node, i) => this.includesConjunction(node, writer, `${path}/${keyword}/${i}`));
    const accepting = results.findIndex((problems) => problems.length === 0);
    if (accepting < 0) {
      let closest = 0;
      results.forEach((problems, i) => {
        if (problems.length < results[closest].length) closest = i;
      });
      const first = results[closest][0];
      const why = first === undefined ? '' : `; the closest, branch ${closest}, fails at ${first.path}: ${first.rule}`;
      return [
        {
          path: `${path}/${keyword}`,
          rule: `no branch of ${keyword} accepts every value the writer allowed here${why}`,
        },
      ];
    }
    if (keyword === 'anyOf') return [];
    const overlapping = nodes.findIndex((node, j) => j !== accepting && !this.disjoint(writer, [node]));
    if (overlapping < 0) return [];
    return [
      {
        path: `${path}/oneOf`,
        rule:
          `a value the writer allowed may match both branch ${accepting} and branch ${overlapping} of oneOf, ` +
          'which refuses a value matching more than one branch (the branches could not be shown to exclude each other)',
      },
    ];
  }

  /** `not: N` accepts the writer when the writer is disjoint from N, or the writer's own `not` covers N. */
  private notProblems(reader: SchemaNode, not: unknown, writer: readonly SchemaNode[], path: string) {
    const negated = this.child(reader, not);
    if (this.disjoint(writer, [negated])) return [];
    const covered = writer.some(
      (node) =>
        isSchemaObject(node.schema) &&
        node.schema.not !== undefined &&
        this.includes(this.child(node, node.schema.not), [negated], `${path}/not`).length === 0,
    );
    if (covered) return [];
    return [{ path: `${path}/not`, rule: 'the reader\'s "not" may refuse values the writer allowed' }];
  }

  /** if/then/else: fine when both outcomes accept the writer, or the writer decides the condition one way. */
  private conditionalProblems(reader: SchemaNode, r: SchemaObject, writer: readonly SchemaNode[], path: string) {
    const outcome = (keyword: 'then' | 'else') =>
      r[keyword] === undefined ||
      this.includesConjunction(this.child(reader, r[keyword]), writer, `${path}/${keyword}`).length === 0;
    const thenOk = outcome('then');
    const elseOk = outcome('else');
    if (thenOk && elseOk) return [];
    const condition = this.child(reader, r.if);
    if (elseOk && this.disjoint(writer, [condition])) return [];
    if (thenOk && this.includesConjunction(condition, writer, `${path}/if`).length === 0) return [];
    return [{ path: `${path}/if`, rule: "the reader's if/then/else may refuse values the writer allowed" }];
  }

  /** The writer's alternatives: conjunctions of schemas whose allOf/anyOf/oneOf/$ref are taken apart. */
  private alternatives(conjunction: readonly SchemaNode[]): SchemaNode[][] {
    let out: SchemaNode[][] = [[]];
    for (const node of conjunction) out = product(out, this.expand(node, 0));
    // Too many: every member keeps only its own keywords, which only makes the writer look larger.
    if (out.length > ALTERNATIVES_MAX)
      out = [conjunction.map((node) => (node.baseOnly ? node : { ...node, baseOnly: true }))];
    return out.filter((alternative) => !isUnsatisfiable(alternative));
  }

  private expand(node: SchemaNode, depth: number): SchemaNode[][] {
    const s = node.schema;
    if (s === true) return [[]];
    if (s === false) return [[node]];
    const base: SchemaNode = node.baseOnly ? node : { ...node, baseOnly: true };
    // Too deep: the writer's combinators are dropped, which only makes it look larger.
    if (node.baseOnly || depth > EXPANSION_DEPTH_MAX) return [[base]];
    let out: SchemaNode[][] = [[base]];
    if (typeof s.$ref === 'string') {
      const target = node.space.resolve(node, s.$ref);
      if (target !== undefined) out = product(out, this.expand(target, depth + 1));
    }
    if (Array.isArray(s.allOf))
      for (const m of s.allOf) out = product(out, this.expand(this.child(node, m), depth + 1));
    for (const keyword of ['anyOf', 'oneOf']) {
      const branches = s[keyword];
      if (!Array.isArray(branches)) continue;
      out = product(
        out,
        branches.flatMap((b) => this.expand(this.child(node, b), depth + 1)),
      );
    }
    return out.length > ALTERNATIVES_MAX ? [[base]] : out;
  }

  private disjointConjunctions(a: readonly SchemaNode[], b: readonly SchemaNode[], depth: number): boolean {
    const both = [...a, ...b];
    if (isUnsatisfiable(both)) return true;
    if ((conjunctionKinds(both) & ~OBJECT) !== 0) return false;
    // Only objects on both sides: a property one side requires, whose values the two sides keep apart.
    const required = new Set<string>();
    for (const { schema } of both) {
      if (isSchemaObject(schema) && Array.isArray(schema.required))
        for (const name of schema.required) required.add(String(name));
    }
    for (const name of required) {
      const x = a.flatMap((node) => schemasForName(node, name));
      const y = b.flatMap((node) => schemasForName(node, name));
      if (this.disjoint(x, y, depth + 1)) return true;
    }
    return finiteValues(both)?.length === 0;
  }

  private id(schema: unknown): number {
    if (typeof schema !== 'object' || schema === null) return 0;
    let id = this.ids.get(schema);
    if (id === undefined) this.ids.set(schema, (id = this.nextId++));
    return id;
  }
}

/** The same schema text in the same place: it accepts the same documents (its $refs, if any, resolve alike). */
function sameMeaning(a: SchemaNode, b: SchemaNode): boolean {
  if (a.schema === b.schema && a.space === b.space) return true;
  if (a.base !== b.base || a.draft !== b.draft || !deepEqual(a.schema, b.schema)) return false;
  return a.space.identity === b.space.identity || refsOf(a.schema).length === 0;
}

function product(left: SchemaNode[][], right: SchemaNode[][]): SchemaNode[][] {
  const out: SchemaNode[][] = [];
  for (const l of left) for (const r of right) out.push([...l, ...r]);
  return out;
}

function dedupe(problems: CompatibilityProblem[]): CompatibilityProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\u0000${p.rule}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
