/**
 * Finds where an Avro binary payload goes wrong (issue 17). Runs only after the fast decoder has
 * failed, to turn avsc's bare "truncated buffer" into a field path and a reason a user can act on.
 *
 * It walks the writer's schema over the bytes exactly as the binary encoding lays them out
 * (specification, "Binary Encoding"): zigzag varints for int/long/lengths/counts/indexes, 4- and
 * 8-byte little-endian floats, length-prefixed bytes/strings, array/map blocks ended by a zero
 * count (a negative count is followed by the block's byte size), a union's branch index before
 * its value, an enum's symbol index.
 */
import { describe, type AvroNode } from './avro-schema.ts';

export interface PayloadProblem {
  path: string;
  reason: string;
}

/** avsc's bound for a long read into a number exactly: 2^53 − 2 (its varint arithmetic needs the last step). */
const LONG_SAFE_MAX = 2 ** 53 - 2;
/** How deep a recursive schema may nest before the payload is called garbage. */
const DEPTH_MAX = 1000;

class Stop extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** The first problem in `buf` from `start` read as `writer`, or null when it reads cleanly to the end. */
export function diagnosePayload(
  writer: AvroNode,
  buf: Uint8Array,
  start: number,
  rootName: string,
): PayloadProblem | null {
  const walker = new Walker(buf, start);
  try {
    walker.value(writer, rootName, 0);
  } catch (err) {
    if (err instanceof Stop) return { path: err.path, reason: err.reason };
    throw err;
  }
  if (walker.pos < buf.length) {
    return {
      path: rootName,
      reason: `${buf.length - walker.pos} byte(s) are left over after the value ends: the payload was written with a different schema, or is not Avro`,
    };
  }
  return null;
}

class Walker {
  constructor(
    private readonly buf: Uint8Array,
    public pos: number,
  ) {}

  private need(n: number, path: string, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new Stop(path, `the payload ends in the middle of ${what} (it is ${this.buf.length} bytes; truncated?)`);
    }
  }

  /** A zigzag varint as a number; throws when it is not exact in a JavaScript number. */
  private varint(path: string, what: string): number {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      this.need(1, path, what);
      const byte = this.buf[this.pos++];
      result |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if ((byte & 0x80) === 0) break;
      if (shift >= 70n) throw new Stop(path, `${what} is a varint longer than 10 bytes: the payload is not Avro`);
    }
    const value = (result >> 1n) ^ -(result & 1n);
    if (value > BigInt(LONG_SAFE_MAX) || value < -BigInt(LONG_SAFE_MAX)) {
      throw new Stop(
        path,
        `${what} is ${value}, beyond ±(2^53 − 2), avsc's exact range for JavaScript numbers cannot hold it exactly, so Kappa refuses it rather than round it`,
      );
    }
    return Number(value);
  }

  private skip(n: number): void {
    this.pos += n;
  }

  private length(path: string, what: string): number {
    const n = this.varint(path, `the length of ${what}`);
    if (n < 0) throw new Stop(path, `the length of ${what} is negative (${n}): the payload is not Avro`);
    this.need(n, path, what);
    return n;
  }

  value(node: AvroNode, path: string, depth: number): void {
    if (depth > DEPTH_MAX) throw new Stop(path, `the value nests more than ${DEPTH_MAX} levels deep`);
    switch (node.kind) {
      case 'null':
        return;
      case 'boolean': {
        this.need(1, path, 'a boolean');
        const b = this.buf[this.pos++];
        if (b > 1) throw new Stop(path, `a boolean byte is ${b}, not 0 or 1`);
        return;
      }
      case 'int': {
        const n = this.varint(path, 'an int');
        if (n < -(2 ** 31) || n >= 2 ** 31) throw new Stop(path, `an int is ${n}, outside 32 bits`);
        return;
      }
      case 'long':
        this.varint(path, 'a long');
        return;
      case 'float':
        this.need(4, path, 'a float');
        this.pos += 4;
        return;
      case 'double':
        this.need(8, path, 'a double');
        this.pos += 8;
        return;
      case 'bytes':
      case 'string':
        this.skip(this.length(path, `a ${node.kind}`));
        return;
      case 'fixed':
        this.need(node.size, path, `fixed ${node.name} (${node.size} bytes)`);
        this.pos += node.size;
        return;
      case 'enum': {
        const index = this.varint(path, `the symbol index of enum ${node.name}`);
        if (index < 0 || index >= node.symbols.length) {
          throw new Stop(
            path,
            `enum ${node.name} has ${node.symbols.length} symbols, and the payload names symbol number ${index}`,
          );
        }
        return;
      }
      case 'union': {
        const index = this.varint(path, 'a union branch index');
        const branch = node.branches[index];
        if (branch === undefined) {
          throw new Stop(
            path,
            `the union ${describe(node)} has ${node.branches.length} branches, and the payload names branch number ${index}`,
          );
        }
        return this.value(branch, path, depth + 1);
      }
      case 'array':
        return this.blocks(path, 'array', () => this.value(node.items, `${path}[]`, depth + 1));
      case 'map':
        return this.blocks(path, 'map', () => {
          this.skip(this.length(`${path}{}`, 'a map key'));
          this.value(node.values, `${path}{}`, depth + 1);
        });
      case 'record':
        for (const field of node.fields) this.value(field.type, `${path}.${field.name}`, depth + 1);
        return;
    }
  }

  private blocks(path: string, what: string, item: () => void): void {
    for (;;) {
      let count = this.varint(path, `an ${what} block's item count`);
      if (count === 0) return;
      if (count < 0) {
        count = -count;
        this.varint(path, `an ${what} block's byte size`);
      }
      const left = this.buf.length - this.pos;
      if (count > left && count > 1 << 20) {
        throw new Stop(path, `an ${what} block announces ${count} items but only ${left} bytes are left`);
      }
      for (let i = 0; i < count; i++) item();
    }
  }
}
