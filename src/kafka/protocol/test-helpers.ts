/**
 * Test helpers for the codec: bodies generated from the tables (every field of a version filled
 * with a value of its type), and the projection of a decoded body onto the fields of a version.
 */
import { seededRandom } from '../../random.ts';
import type { FieldSpec } from './types.ts';
import { inVersions } from './versions.ts';

export type Rand = () => number;
export { seededRandom };

type Struct = Record<string, unknown>;

const int = (rand: Rand, min: number, max: number): number => min + Math.floor(rand() * (max - min + 1));

function randomBytes(rand: Rand, max: number): Buffer {
  const out = Buffer.alloc(int(rand, 0, max));
  for (let i = 0; i < out.length; i++) out[i] = int(rand, 0, 255);
  return out;
}

const WORDS = ['orders', 'sales', 'ünïcødé-主题', '', 'a.b_c-d', 'x'.repeat(300)];

function randomScalar(type: string, rand: Rand): unknown {
  switch (type) {
    case 'bool':
      return rand() < 0.5;
    case 'int8':
      return int(rand, -128, 127);
    case 'int16':
      return int(rand, -32768, 32767);
    case 'uint16':
      return int(rand, 0, 65535);
    case 'int32':
      return int(rand, -(2 ** 31), 2 ** 31 - 1);
    case 'uint32':
      return int(rand, 0, 2 ** 32 - 1);
    case 'int64':
      return int(rand, -(2 ** 53), 2 ** 53);
    case 'float64':
      return (rand() - 0.5) * 1e6;
    case 'uuid':
      return uuid(rand);
    case 'string':
      return WORDS[int(rand, 0, WORDS.length - 1)] + String(int(rand, 0, 99));
    case 'bytes':
    case 'records':
      return randomBytes(rand, 40);
    default:
      throw new Error(`no generator for ${type}`);
  }
}

function uuid(rand: Rand): string {
  const hex = Array.from({ length: 32 }, () => int(rand, 0, 15).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A body with every field of `version` set: nullable ones sometimes null, arrays of 0–3 elements. */
export function generateBody(fields: readonly FieldSpec[], version: number, rand: Rand, depth = 0): Struct {
  const out: Struct = {};
  for (const f of fields) {
    if (!inVersions(version, f.versions)) continue;
    if (inVersions(version, f.nullableVersions) && rand() < 0.2) {
      out[f.name] = null;
    } else if (f.type === 'struct') {
      out[f.name] = generateBody(f.fields!, version, rand, depth + 1);
    } else if (f.type.startsWith('[]')) {
      const n = int(rand, 0, depth > 2 ? 1 : 3);
      const elem = f.type.slice(2);
      out[f.name] = Array.from({ length: n }, () =>
        elem === 'struct' ? generateBody(f.fields!, version, rand, depth + 1) : randomScalar(elem, rand),
      );
    } else {
      out[f.name] = randomScalar(f.type, rand);
    }
  }
  return out;
}

/** `body` with only the fields that exist in `version` (decoding fills the others with defaults). */
export function presentFields(body: Struct, fields: readonly FieldSpec[], version: number): Struct {
  const out: Struct = {};
  for (const f of fields) {
    if (!inVersions(version, f.versions)) continue;
    const v = body[f.name];
    if (v !== null && f.type === 'struct') out[f.name] = presentFields(v as Struct, f.fields!, version);
    else if (v !== null && f.type === '[]struct') {
      out[f.name] = (v as Struct[]).map((e) => presentFields(e, f.fields!, version));
    } else out[f.name] = v;
  }
  return out;
}
