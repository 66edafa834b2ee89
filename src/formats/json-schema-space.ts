/**
 * The documents of one parsed JSON Schema (the root plus the Confluent references it names) and how
 * a `$ref` inside them is followed. The compatibility check (json-schema-compat.ts) walks schemas
 * through `SchemaNode`s: a subschema together with the base URI it sits under, the draft its
 * document is written in, and the space that resolves its references.
 *
 * URIs: a document is found under its reference name (resolved against the root's base URI too,
 * so `"$ref": "address.json"` works whether or not the root has an absolute `$id`), under its
 * `$id`, and under every embedded `$id`, `$anchor` and `$dynamicAnchor`. Relative URIs are resolved
 * with WHATWG URL rules against a placeholder origin that is stripped again, so two relative names
 * compare the way ajv compares them. ajv has already compiled the same documents, so a reference
 * this resolver cannot follow is rare; the compatibility check then reports it rather than guess.
 */

/** A JSON Schema: an object of keywords, or `true` (anything) / `false` (nothing). */
export type SchemaValue = boolean | SchemaObject;
export type SchemaObject = { readonly [keyword: string]: unknown };

/** The drafts Kappa compiles; ajv has a class for each. Draft-04/06 schemas are refused. */
export type Draft = '07' | '2019-09' | '2020-12';

export interface SchemaNode {
  readonly schema: SchemaValue;
  /** The base URI relative references in this node resolve against ('' when none is known). */
  readonly base: string;
  readonly draft: Draft;
  readonly space: SchemaSpace;
  /** Set on the members of an expanded conjunction: their allOf/anyOf/oneOf/$ref were already taken apart. */
  readonly baseOnly?: boolean;
}

/** Deepest nesting walked in a schema document; deeper ones are refused when parsed. */
export const SCHEMA_DEPTH_MAX = 256;

const PLACEHOLDER_ORIGIN = 'https://kappa-schema.invalid/';

/**
 * Keywords ajv does not know in a draft, which therefore validate nothing there (draft-07 has no
 * dependentRequired, 2020-12 no additionalItems…). The comparison must not count them as
 * constraints, so nodes hide them.
 */
const INACTIVE_KEYWORDS: Readonly<Record<Draft, ReadonlySet<string>>> = {
  '07': new Set([
    'dependentRequired',
    'dependentSchemas',
    'minContains',
    'maxContains',
    'unevaluatedProperties',
    'unevaluatedItems',
    'prefixItems',
    '$dynamicRef',
    '$recursiveRef',
  ]),
  '2019-09': new Set(['prefixItems']),
  '2020-12': new Set(['additionalItems']),
};

/** Keywords whose value is one subschema. */
const SINGLE_SCHEMA_KEYWORDS = [
  'additionalProperties',
  'additionalItems',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
  'contentSchema',
  'items',
];
/** Keywords whose value is an array of subschemas. */
const ARRAY_SCHEMA_KEYWORDS = ['allOf', 'anyOf', 'oneOf', 'prefixItems', 'items'];
/** Keywords whose value maps names to subschemas. */
const MAP_SCHEMA_KEYWORDS = [
  'properties',
  'patternProperties',
  '$defs',
  'definitions',
  'dependentSchemas',
  'dependencies',
];

export function isSchemaObject(value: unknown): value is SchemaObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The draft a document declares in `$schema` (draft-07 when it declares none, as Confluent assumes). */
export function draftOf(schema: SchemaValue): Draft | undefined {
  const declared = isSchemaObject(schema) ? schema.$schema : undefined;
  if (declared === undefined) return '07';
  if (typeof declared !== 'string') return undefined;
  const uri = declared.replace(/#$/, '');
  if (uri === 'http://json-schema.org/draft-07/schema' || uri === 'https://json-schema.org/draft-07/schema')
    return '07';
  if (uri === 'https://json-schema.org/draft/2019-09/schema') return '2019-09';
  if (uri === 'https://json-schema.org/draft/2020-12/schema') return '2020-12';
  return undefined;
}

/** `ref` resolved against `base`; relative results stay relative. An empty fragment is dropped. */
export function resolveUri(base: string, ref: string): string {
  let href: string;
  try {
    href = new URL(ref, new URL(base, PLACEHOLDER_ORIGIN)).href;
  } catch {
    return ref;
  }
  if (href.startsWith(PLACEHOLDER_ORIGIN)) href = href.slice(PLACEHOLDER_ORIGIN.length);
  return href.endsWith('#') ? href.slice(0, -1) : href;
}

/** Appends one key to a JSON Pointer, escaping it as RFC 6901 says. */
export function pointerChild(pointer: string, key: string | number): string {
  return `${pointer}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

interface Entry {
  readonly schema: SchemaValue;
  readonly base: string;
  readonly draft: Draft;
}

export class SchemaSpace {
  readonly root: SchemaNode;
  /** The documents as JSON text: two spaces with the same identity resolve every $ref alike. */
  readonly identity: string;
  private readonly entries = new Map<string, Entry>();
  /** Each schema object as the comparison sees it (inactive keywords left out); kept so identities stay stable. */
  private readonly views = new WeakMap<object, SchemaValue>();

  /** `documents`: the root first, then each reference by its name. */
  constructor(root: SchemaValue, references: ReadonlyArray<{ name: string; schema: SchemaValue }>) {
    this.identity = JSON.stringify([root, references]);
    const rootDraft = draftOf(root) ?? '07';
    const rootBase = isSchemaObject(root) && typeof root.$id === 'string' ? resolveUri('', root.$id) : '';
    this.root = { schema: this.view(root, rootDraft), base: rootBase, draft: rootDraft, space: this };
    for (const ref of references) {
      const draft = draftOf(ref.schema) ?? rootDraft;
      for (const uri of new Set([resolveUri('', ref.name), resolveUri(rootBase, ref.name)])) {
        this.index(ref.schema, uri, draft, 0);
      }
    }
    // The root last, so its own URIs win over a reference that happens to claim the same one.
    this.index(root, rootBase, rootDraft, 0);
  }

  /** The node a `$ref` (or `$dynamicRef`, resolved statically) in `from` points at, or undefined. */
  resolve(from: SchemaNode, ref: string): SchemaNode | undefined {
    const uri = resolveUri(from.base, ref);
    const hash = uri.indexOf('#');
    const documentUri = hash < 0 ? uri : uri.slice(0, hash);
    const fragment = hash < 0 ? '' : decodeURIComponent(uri.slice(hash + 1));
    const document = this.entries.get(documentUri);
    if (fragment === '') return document && this.node(document);
    if (!fragment.startsWith('/')) {
      const anchored = this.entries.get(`${documentUri}#${fragment}`);
      return anchored && this.node(anchored);
    }
    if (document === undefined) return undefined;
    let at: Entry = document;
    for (const raw of fragment.slice(1).split('/')) {
      const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      const parent = at.schema as unknown;
      const next = Array.isArray(parent) ? parent[Number(key)] : isSchemaObject(parent) ? parent[key] : undefined;
      if (next === undefined) return undefined;
      at = { schema: next as SchemaValue, base: baseOf(next, at.base), draft: at.draft };
    }
    return typeof at.schema === 'boolean' || isSchemaObject(at.schema) ? this.node(at) : undefined;
  }

  /** A subschema of `parent`, with the base URI its own `$id` gives it. */
  child(parent: SchemaNode, schema: unknown): SchemaNode {
    const value: SchemaValue = typeof schema === 'boolean' || isSchemaObject(schema) ? schema : true;
    return {
      schema: this.view(value, parent.draft),
      base: baseOf(value, parent.base),
      draft: parent.draft,
      space: this,
    };
  }

  private node(entry: Entry): SchemaNode {
    return { schema: this.view(entry.schema, entry.draft), base: entry.base, draft: entry.draft, space: this };
  }

  private view(schema: SchemaValue, draft: Draft): SchemaValue {
    if (typeof schema === 'boolean') return schema;
    let view = this.views.get(schema);
    if (view === undefined) {
      const inactive = INACTIVE_KEYWORDS[draft];
      const keys = Object.keys(schema);
      view = keys.some((k) => inactive.has(k))
        ? Object.fromEntries(keys.filter((k) => !inactive.has(k)).map((k) => [k, schema[k]]))
        : schema;
      this.views.set(schema, view);
    }
    return view;
  }

  private index(schema: unknown, base: string, draft: Draft, depth: number): void {
    if (!isSchemaObject(schema) || depth > SCHEMA_DEPTH_MAX) {
      if (depth === 0) this.entries.set(base, { schema: schema as SchemaValue, base, draft });
      return;
    }
    const own = baseOf(schema, base);
    const hash = own.indexOf('#');
    const documentUri = hash < 0 ? own : own.slice(0, hash);
    // Draft-07 writes anchors as `"$id": "#name"`; later drafts as `$anchor`.
    if (hash >= 0) this.entries.set(own, { schema, base: documentUri, draft });
    else if (depth === 0 || typeof schema.$id === 'string') this.entries.set(own, { schema, base: own, draft });
    for (const anchor of [schema.$anchor, schema.$dynamicAnchor]) {
      if (typeof anchor === 'string')
        this.entries.set(`${documentUri}#${anchor}`, { schema, base: documentUri, draft });
    }
    for (const sub of subschemas(schema)) this.index(sub, documentUri, draft, depth + 1);
  }
}

/** Applicators whose subschemas apply to the same value, not to a property or item of it. */
const SAME_VALUE_SINGLE = ['not', 'if', 'then', 'else'];
const SAME_VALUE_ARRAYS = ['allOf', 'anyOf', 'oneOf'];
const SAME_VALUE_MAPS = ['dependentSchemas', 'dependencies'];
const REF_KEYWORDS = ['$ref', '$dynamicRef', '$recursiveRef'];

/**
 * The place (JSON Pointer) of a `$ref` that leads back to a schema being applied to the same value
 * without going through a property or an item first (`{"$ref": "#"}`). Validating with such a schema
 * would recurse forever, so it is refused. Undefined when there is none.
 */
export function findEndlessRef(space: SchemaSpace): string | undefined {
  const state = new WeakMap<object, 'active' | 'done'>();
  const visit = (node: SchemaNode, pointer: string, depth: number): string | undefined => {
    const s = node.schema;
    if (typeof s === 'boolean' || state.get(s) === 'done' || depth > SCHEMA_DEPTH_MAX) return undefined;
    if (state.get(s) === 'active') return pointer;
    state.set(s, 'active');
    const next: Array<[unknown, string]> = [];
    for (const k of SAME_VALUE_SINGLE) if (s[k] !== undefined) next.push([s[k], pointerChild(pointer, k)]);
    for (const k of SAME_VALUE_ARRAYS) {
      const list = s[k];
      if (Array.isArray(list)) list.forEach((v, i) => next.push([v, pointerChild(pointerChild(pointer, k), i)]));
    }
    for (const k of SAME_VALUE_MAPS) {
      const map = s[k];
      if (isSchemaObject(map))
        for (const [name, v] of Object.entries(map))
          if (!Array.isArray(v)) next.push([v, pointerChild(pointerChild(pointer, k), name)]);
    }
    let found: string | undefined;
    for (const [sub, at] of next) found ??= visit(space.child(node, sub), at, depth + 1);
    for (const k of REF_KEYWORDS) {
      const target = typeof s[k] === 'string' ? space.resolve(node, s[k] as string) : undefined;
      if (target !== undefined) found ??= visit(target, pointerChild(pointer, k), depth + 1);
    }
    state.set(s, 'done');
    return found;
  };
  // Every subschema is a starting point, so a cycle under a property is found too.
  const walk = (node: SchemaNode, pointer: string, depth: number): string | undefined => {
    if (typeof node.schema === 'boolean' || depth > SCHEMA_DEPTH_MAX) return undefined;
    const found = visit(node, pointer, 0);
    if (found !== undefined) return found;
    for (const { schema, at } of childrenWithPointers(node.schema, pointer)) {
      const inner = walk(space.child(node, schema), at, depth + 1);
      if (inner !== undefined) return inner;
    }
    return undefined;
  };
  return walk(space.root, '#', 0);
}

function childrenWithPointers(schema: SchemaObject, pointer: string): Array<{ schema: unknown; at: string }> {
  const out: Array<{ schema: unknown; at: string }> = [];
  for (const keyword of SINGLE_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (typeof value === 'boolean' || isSchemaObject(value))
      out.push({ schema: value, at: pointerChild(pointer, keyword) });
  }
  for (const keyword of ARRAY_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (Array.isArray(value))
      value.forEach((v, i) => out.push({ schema: v, at: pointerChild(pointerChild(pointer, keyword), i) }));
  }
  for (const keyword of MAP_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (!isSchemaObject(value)) continue;
    for (const [name, v] of Object.entries(value)) {
      if (!Array.isArray(v)) out.push({ schema: v, at: pointerChild(pointerChild(pointer, keyword), name) });
    }
  }
  return out;
}

function baseOf(schema: unknown, parentBase: string): string {
  return isSchemaObject(schema) && typeof schema.$id === 'string' ? resolveUri(parentBase, schema.$id) : parentBase;
}

/** Every direct subschema of `schema` (not the values of data keywords such as `const`). */
export function subschemas(schema: SchemaObject): unknown[] {
  const out: unknown[] = [];
  for (const keyword of SINGLE_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (typeof value === 'boolean' || isSchemaObject(value)) out.push(value);
  }
  for (const keyword of ARRAY_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (Array.isArray(value)) out.push(...value);
  }
  for (const keyword of MAP_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (isSchemaObject(value)) out.push(...Object.values(value).filter((v) => !Array.isArray(v)));
  }
  return out;
}

/** JSON Pointers (`#/properties/a`) of every `$ref` in a document, with the reference text. */
export function refsOf(schema: unknown, pointer = '#', depth = 0, out: Array<{ pointer: string; ref: string }> = []) {
  if (!isSchemaObject(schema) || depth > SCHEMA_DEPTH_MAX) return out;
  for (const keyword of ['$ref', '$dynamicRef', '$recursiveRef']) {
    const ref = schema[keyword];
    if (typeof ref === 'string') out.push({ pointer: pointerChild(pointer, keyword), ref });
  }
  for (const keyword of SINGLE_SCHEMA_KEYWORDS) refsOf(schema[keyword], pointerChild(pointer, keyword), depth + 1, out);
  for (const keyword of ARRAY_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (Array.isArray(value)) {
      value.forEach((v, i) => refsOf(v, pointerChild(pointerChild(pointer, keyword), i), depth + 1, out));
    }
  }
  for (const keyword of MAP_SCHEMA_KEYWORDS) {
    const value = schema[keyword];
    if (!isSchemaObject(value)) continue;
    for (const [name, v] of Object.entries(value)) {
      refsOf(v, pointerChild(pointerChild(pointer, keyword), name), depth + 1, out);
    }
  }
  return out;
}
