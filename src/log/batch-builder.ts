/**
 * RecordBatch v2 built record by record as records are made (an output pipeline's records, on the
 * thread that makes them: stream/worker-protocol.ts), so that no object is kept per record and the
 * thread that appends them copies nothing: it only seals each batch (`sealBatch`: the producer's id,
 * epoch and sequence, known where the batch is appended, and the CRC) and appends it as it is.
 * Sealed, a batch is byte for byte what `encodeBatch` makes of the same records (no headers;
 * attributes 0), which src/log/batch-builder.test.ts checks.
 *
 * A record's length, and its key's and value's, precede their bytes, and a string's UTF-8 length is
 * known only once written: each is written where the length's varint is expected to end (the same
 * size as the last record's, or the string's UTF-16 length), and moved in the rare case it was not.
 */
import { crc32c } from '@node-rs/crc32';
import { BATCH_HEADER_BYTES, BatchField, CRC_START, varintSize, writeInt64, writeVarint } from './format/index.ts';
import { writeHeader } from './record-batch.ts';

/** Node's Buffer has this method (what `write` calls for 'utf8'), though its types do not name it. */
interface Utf8Writer {
  utf8Write(s: string, offset: number): number;
}

const BYTES_MIN = 64 * 1024;
const VALUE_ROOM_MIN = 256;
/** Most bytes a record's fixed fields take: length, attributes, timestamp delta, offset delta, two lengths, headers. */
const RECORD_FIXED_MAX = 5 + 1 + 10 + 5 + 5 + 5 + 1;

/** Writes a value's bytes in place (BatchBuilder.pushWritten). */
export interface ValueWriter {
  /**
   * Writes `value` at `buf[pos, end)`; returns where it ends, -1 when it does not write it, -2 when
   * it needs more room. `view` is a DataView of buf's bytes (its byte 0 is buf[0]), for writing
   * several bytes at once.
   */
  writeInto(value: unknown, buf: Buffer, pos: number, end: number, view?: DataView): number;
}

export interface BuiltBatches {
  /** The batches, one after the other, at the start of memory of their own (the builder's buffer, handed over). */
  bytes: Uint8Array;
  /** Where each batch ends in `bytes`. */
  ends: Uint32Array;
  /** Records in all of them. */
  records: number;
}

/**
 * Buffers given back once the batches taken in them are appended, for the builders of one thread to
 * build in again: a buffer handed over at each take and a new one made for the next would each be
 * memory outside the heap that only a full collection frees (V8 runs one for every 64 MiB of it).
 * Keeps at most `countMax` buffers and `bytesMax` bytes; what is given beyond is left to the collector.
 */
export class SpareBuffers {
  private readonly spares: ArrayBuffer[] = [];
  private bytes = 0;

  constructor(
    private readonly countMax = 8,
    private readonly bytesMax = 32 * 1024 * 1024,
  ) {}

  /** Keeps `buffer` (not to be used by the giver again), if there is room for it. */
  give(buffer: ArrayBuffer): void {
    const n = buffer.byteLength;
    // A buffer moved to another thread since has no bytes left.
    if (n === 0 || this.spares.length >= this.countMax || this.bytes + n > this.bytesMax) return;
    this.spares.push(buffer);
    this.bytes += n;
  }

  /** The smallest kept buffer of at least `n` bytes, which is no longer kept, or null. */
  take(n: number): ArrayBuffer | null {
    let best = -1;
    for (let i = 0; i < this.spares.length; i++) {
      const size = this.spares[i].byteLength;
      if (size >= n && (best < 0 || size < this.spares[best].byteLength)) best = i;
    }
    if (best < 0) return null;
    const [buffer] = this.spares.splice(best, 1);
    this.bytes -= buffer.byteLength;
    return buffer;
  }
}

export class BatchBuilder {
  private bytes = Buffer.alloc(0);
  /** A DataView of `bytes`, made for the first value written into them (pushWritten). */
  private view: DataView | null = null;
  /** The size of buffer the last take needed: the next one starts at it. */
  private sizeNext = BYTES_MIN;
  private used = 0;
  private ends: number[] = [];
  /** Where the open batch starts, or -1. */
  private open = -1;
  private inBatch = 0;
  private baseTimestamp = 0;
  private maxTimestamp = 0;
  private records = 0;
  private lengthGuess = 1;
  /** pushWritten's guesses: the size of a value's length varint, and the room it is first given. */
  private valueLengthGuess = 1;
  private valueRoom = VALUE_ROOM_MIN;

  constructor(
    private readonly batchRecords: number,
    private readonly spares: SpareBuffers | null = null,
  ) {}

  get length(): number {
    return this.records;
  }

  /** Adds a record; a value in bytes is `value[valueStart, valueEnd)` (all of it by default). */
  push(
    key: string | Buffer | null,
    value: string | Buffer,
    timestamp: number,
    valueStart = 0,
    valueEnd = value.length,
  ): void {
    if (this.open < 0 || this.inBatch === this.batchRecords) this.startBatch(timestamp);
    const most =
      RECORD_FIXED_MAX + bytesAtMost(key) + (typeof value === 'string' ? value.length * 3 : valueEnd - valueStart);
    if (this.used + most > this.bytes.length) this.grow(this.used + most);
    const start = this.used;
    let pos = this.writeFields(start + this.lengthGuess, key, timestamp - this.baseTimestamp, this.inBatch);
    pos = this.writeBytes(pos, value, valueStart, valueEnd);
    this.finishRecord(start, pos, timestamp);
  }

  /**
   * Adds a record whose value `writer` writes in place (no copy): `writeInto(value, buf, pos, end)`
   * writes its bytes from pos, before end, and returns where they end; -1 when it does not write
   * this value (nothing is added: false), -2 when it needs more room (the builder asks again with
   * twice as much).
   */
  pushWritten(key: string | null, timestamp: number, writer: ValueWriter, value: unknown): boolean {
    // A record that opens a batch goes after that batch's header; the batch is opened once the value is written.
    const opens = this.open < 0 || this.inBatch === this.batchRecords;
    for (let room = this.valueRoom; ; room *= 2) {
      const most = BATCH_HEADER_BYTES + RECORD_FIXED_MAX + bytesAtMost(key) + room;
      if (this.used + most > this.bytes.length) this.grow(this.used + most);
      const start = opens ? this.used + BATCH_HEADER_BYTES : this.used;
      const pos = this.writeFields(
        start + this.lengthGuess,
        key,
        opens ? 0 : timestamp - this.baseTimestamp,
        opens ? 0 : this.inBatch,
      );
      const at = pos + this.valueLengthGuess;
      this.view ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
      const end = writer.writeInto(value, this.bytes, at, at + room, this.view);
      if (end === -1) return false;
      if (end === -2) continue;
      // The value's length goes before it: moved when its varint is not the size guessed.
      const n = end - at;
      const lengthBytes = varintSize(n);
      if (lengthBytes !== this.valueLengthGuess) {
        this.bytes.copyWithin(pos + lengthBytes, at, end);
        this.valueLengthGuess = lengthBytes;
      }
      writeVarint(this.bytes, pos, n);
      this.valueRoom = Math.max(VALUE_ROOM_MIN, n * 2);
      if (opens) this.startBatch(timestamp); // closes the last batch (its bytes end before `start`), opens one at `start`
      this.finishRecord(start, pos + lengthBytes + n, timestamp);
      return true;
    }
  }

  /** Writes a record's attributes, timestamp and offset deltas and key at `pos`; returns the position after them. */
  private writeFields(pos: number, key: string | Buffer | null, timestampDelta: number, offsetDelta: number): number {
    const buf = this.bytes;
    buf[pos++] = 0; // attributes
    pos = writeVarint(buf, pos, timestampDelta);
    pos = writeVarint(buf, pos, offsetDelta);
    return key === null ? writeVarint(buf, pos, -1) : this.writeBytes(pos, key, 0, key.length);
  }

  /** Ends the record that starts at `start` (its length to come) and whose value ends at `pos`: no headers, then its length. */
  private finishRecord(start: number, pos: number, timestamp: number): void {
    const buf = this.bytes;
    const guess = this.lengthGuess;
    buf[pos++] = 0; // no headers
    const size = pos - start - guess;
    const sizeBytes = varintSize(size);
    if (sizeBytes !== guess) {
      buf.copyWithin(start + sizeBytes, start + guess, pos);
      pos += sizeBytes - guess;
      this.lengthGuess = sizeBytes;
    }
    writeVarint(buf, start, size);
    this.used = pos;
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    this.inBatch++;
    this.records++;
  }

  /**
   * The batches built since the last take (unsealed), in the builder's buffer, which is handed over
   * (to be moved to another thread, or given back to the builder's SpareBuffers once appended); the
   * builder starts over in a spare or a new buffer at its first push.
   */
  take(): BuiltBatches {
    this.closeBatch();
    const built = {
      bytes: this.used === 0 ? new Uint8Array(0) : new Uint8Array(this.bytes.buffer, this.bytes.byteOffset, this.used),
      ends: Uint32Array.from(this.ends),
      records: this.records,
    };
    let size = BYTES_MIN;
    while (size < this.used) size *= 2;
    this.sizeNext = size;
    this.bytes = Buffer.alloc(0);
    this.view = null;
    this.used = 0;
    this.ends = [];
    this.records = 0;
    return built;
  }

  /**
   * Writes `s` (as UTF-8 when a string; when bytes, `s[start, end)`) with its length before it;
   * returns the position after it.
   */
  private writeBytes(pos: number, s: string | Buffer, start: number, end: number): number {
    const buf = this.bytes;
    if (typeof s !== 'string') {
      const n = end - start;
      pos = writeVarint(buf, pos, n);
      s.copy(buf, pos, start, end);
      return pos + n;
    }
    const guess = varintSize(s.length);
    const written = (buf as unknown as Utf8Writer).utf8Write(s, pos + guess);
    const actual = varintSize(written);
    if (actual !== guess) buf.copyWithin(pos + actual, pos + guess, pos + guess + written);
    writeVarint(buf, pos, written);
    return pos + actual + written;
  }

  private startBatch(timestamp: number): void {
    this.closeBatch();
    if (this.used + BATCH_HEADER_BYTES > this.bytes.length) this.grow(this.used + BATCH_HEADER_BYTES);
    this.open = this.used;
    this.used += BATCH_HEADER_BYTES;
    this.inBatch = 0;
    this.baseTimestamp = timestamp;
    this.maxTimestamp = timestamp;
  }

  private closeBatch(): void {
    if (this.open < 0) return;
    const batch = this.bytes.subarray(this.open, this.used);
    writeHeader(batch, { baseOffset: 0 }, this.inBatch, this.baseTimestamp, this.maxTimestamp);
    this.ends.push(this.used);
    this.open = -1;
  }

  private grow(atLeast: number): void {
    if (this.bytes.length === 0) {
      // The first push since a take: a spare, or a buffer of the size the last take needed.
      const n = Math.max(this.sizeNext, atLeast);
      const spare = this.spares?.take(n) ?? null;
      this.bytes = spare === null ? Buffer.allocUnsafeSlow(n) : Buffer.from(spare);
      this.view = null;
      return;
    }
    const bigger = Buffer.allocUnsafeSlow(Math.max(BYTES_MIN, this.bytes.length * 2, atLeast));
    this.bytes.copy(bigger, 0, 0, this.used);
    this.bytes = bigger;
    this.view = null;
  }
}

/** Most bytes `s` and its length take. */
function bytesAtMost(s: string | Buffer | null): number {
  if (s === null) return 0;
  // At most 3 UTF-8 bytes per UTF-16 code unit.
  return typeof s === 'string' ? s.length * 3 : s.length;
}

/** Sets a built batch's producer id, epoch and base sequence, then its CRC: it is then ready to append. */
export function sealBatch(batch: Buffer, producerId: number, producerEpoch: number, baseSequence: number): void {
  writeInt64(batch, BatchField.producerId, producerId);
  batch.writeInt16BE(producerEpoch, BatchField.producerEpoch);
  batch.writeInt32BE(baseSequence, BatchField.baseSequence);
  batch.writeUInt32BE(crc32c(batch.subarray(CRC_START)), BatchField.crc);
}
