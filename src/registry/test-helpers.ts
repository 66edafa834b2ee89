/**
 * For the registry's tests: a small record codec that stands in for a real format where the test is
 * about the registry, not the format. Its schemas are JSON `{"type":"record","name":…,"fields":
 * [{"name","type","default"?}]}` with primitive field types; its rules are Avro's two simplest
 * resolution rules: a reader field missing from the writer needs a default, and a field present in
 * both keeps its type (int → long is allowed).
 */
import { KappaError } from '../errors.ts';
import type { CompatibilityProblem, FormatCodec, ParsedSchema, SchemaType } from '../formats/index.ts';

interface ToyField {
  name: string;
  type: string;
  default?: unknown;
}

interface ToySchema extends ParsedSchema {
  name: string;
  fields: ToyField[];
}

export function toyCodec(type: SchemaType = 'AVRO'): FormatCodec {
  return {
    type,
    parse(text: string): ParsedSchema {
      let raw: { type?: unknown; name?: unknown; fields?: unknown };
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw new KappaError('KAPPA_INVALID_SCHEMA', `not JSON: ${(err as Error).message}`, {}, err);
      }
      if (raw?.type !== 'record' || typeof raw.name !== 'string' || !Array.isArray(raw.fields))
        throw new KappaError('KAPPA_INVALID_SCHEMA', 'a schema is a record with a name and fields', {});
      const fields = (raw.fields as ToyField[]).map((f) => {
        if (typeof f?.name !== 'string' || typeof f.type !== 'string')
          throw new KappaError('KAPPA_INVALID_SCHEMA', 'every field has a name and a type', {});
        return { name: f.name, type: f.type, ...('default' in f ? { default: f.default } : {}) };
      });
      const canonical = JSON.stringify({ name: raw.name, fields });
      const schema: ToySchema = { type, canonical, text, name: raw.name, fields };
      return schema;
    },
    problems(reader: ParsedSchema, writer: ParsedSchema): CompatibilityProblem[] {
      const r = reader as ToySchema;
      const w = writer as ToySchema;
      const out: CompatibilityProblem[] = [];
      for (const f of r.fields) {
        const old = w.fields.find((g) => g.name === f.name);
        if (old === undefined && !('default' in f))
          out.push({
            path: `${r.name}.${f.name}`,
            rule: `reader field ${f.name} is missing from the writer and has no default`,
          });
        else if (old !== undefined && old.type !== f.type && !(old.type === 'int' && f.type === 'long'))
          out.push({ path: `${r.name}.${f.name}`, rule: `field ${f.name} changed type from ${old.type} to ${f.type}` });
      }
      return out;
    },
  };
}

/** A toy schema text: a record `name` with the fields given as `name:type` or `name:type=default`. */
export function toySchema(name: string, ...fields: string[]): string {
  return JSON.stringify({
    type: 'record',
    name,
    fields: fields.map((f) => {
      const [decl, def] = f.split('=');
      const [fieldName, type] = decl.split(':');
      return { name: fieldName, type, ...(def === undefined ? {} : { default: JSON.parse(def) }) };
    }),
  });
}
