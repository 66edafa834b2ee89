/**
 * The compression codecs of Kafka's RecordBatch v2: attributes bits 0-2 name the codec of the bytes
 * after the 61-byte batch header (the records, all of them compressed as one payload). Kappa stores
 * a compressed batch exactly as its producer sent it, as a Kafka broker does, and every reader
 * decompresses it (record-batch.ts `decompressBatch`).
 *
 *   code  codec   payload as Kafka clients write it                      decoder here
 *      0  none    the records                                            -
 *      1  gzip    one gzip stream (RFC 1952; members may be concatenated) node:zlib
 *      2  snappy  raw snappy (librdkafka, kafkajs, @platformatic/kafka),  snappy (napi-rs)
 *                 or xerial-framed snappy (the Java client): magic
 *                 82 'SNAPPY' 00, int32 version, int32 compatible
 *                 version, then blocks of int32 length + raw snappy
 *      3  lz4     one LZ4 frame (magic 04 22 4D 18; Kafka's clients       lz4-napi (lz4_flex)
 *                 write the frame format, not the block format)
 *      4  zstd    one or more Zstandard frames (librdkafka and the Java    @bokuweb/zstd-wasm (zstd's C
 *                 client stream them without a content size)             library as WebAssembly); fzstd
 *                                                                        (pure JavaScript) until it loads
 *    5-7  -       not defined by Kafka: always refused
 *
 * Bounds: a payload never inflates past `bytesMax`. Each decoder is told the limit or, where the
 * library has no such option, the payload's own headers are read first (the snappy preamble, the
 * LZ4 and Zstandard frame and block headers) to prove the output cannot exceed it; a payload that
 * claims more is refused before anything is allocated, so a small batch cannot make a reader
 * allocate gigabytes.
 *
 * Availability: the native codecs (snappy, lz4) ship as prebuilt binaries inside their npm packages;
 * a platform without one cannot load them. Each codec is loaded on first use, and a codec that does
 * not load is "unavailable": `CompressionError` with kind `unsupported`, which the log turns into
 * KAPPA_UNSUPPORTED_COMPRESSION (Kafka's UNSUPPORTED_COMPRESSION_TYPE) so such a batch is refused
 * rather than stored unreadable. Decoding is synchronous: a reader decodes one batch at a time.
 *
 * zstd: the WebAssembly build decodes about ten times faster than fzstd but loads asynchronously,
 * so a thread starts loading it at its first zstd payload (or at `prepareCompression()`) and uses
 * fzstd until it is ready; both decode every frame Kafka's clients write. Writing zstd needs it.
 */
import { createRequire } from 'node:module';
import { gunzipSync, gzipSync } from 'node:zlib';

export const Codec = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const;
export type CodecName = keyof typeof Codec;
export const CODEC_NAMES: readonly CodecName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/** Why a payload could not be decompressed: no decoder for its codec, or bytes that do not decode. */
export class CompressionError extends Error {
  constructor(
    readonly kind: 'unsupported' | 'corrupt' | 'too-large',
    message: string,
  ) {
    super(message);
    this.name = 'CompressionError';
  }
}

/** The codec's name for messages: "gzip", or "codec 5" for a code Kafka does not define. */
export function codecName(code: number): string {
  return CODEC_NAMES[code] ?? `codec ${code}`;
}

interface Snappy {
  compressSync(input: Buffer): Buffer;
  uncompressSync(input: Buffer, opts: { asBuffer: true }): Buffer;
}
interface Lz4 {
  compressFrameSync(input: Buffer, opts: { contentChecksum: boolean }): Buffer;
  decompressFrameSync(input: Buffer): Buffer;
}
interface Zstd {
  decompress(input: Uint8Array): Uint8Array;
}
interface ZstdWasm {
  init(): Promise<void>;
  decompress(input: Uint8Array, opts: { defaultHeapSize: number }): Uint8Array;
  compress(input: Uint8Array, level: number): Uint8Array;
}

const load = createRequire(import.meta.url);
/** Each library once per thread, on first use: `null` when it failed to load (the reason is kept). */
const loaded = new Map<string, { lib: unknown; why: string }>();

function library<T>(name: string): T | null {
  let entry = loaded.get(name);
  if (!entry) {
    try {
      entry = { lib: load(name), why: '' };
    } catch (err) {
      entry = { lib: null, why: (err as Error).message.split('\n')[0] };
    }
    loaded.set(name, entry);
  }
  return entry.lib as T | null;
}

const LIBRARY: Record<number, string> = { [Codec.snappy]: 'snappy', [Codec.lz4]: 'lz4-napi', [Codec.zstd]: 'fzstd' };

/** Null when Kappa can decompress `code` here; otherwise why not, in words for the user. */
export function codecUnavailable(code: number): string | null {
  if (code === Codec.none || code === Codec.gzip) return null;
  const name = LIBRARY[code];
  if (name === undefined)
    return `compression ${codecName(code)} is not one Kafka defines (1 gzip, 2 snappy, 3 lz4, 4 zstd)`;
  if (library(name) !== null) return null;
  return `${codecName(code)} is not available in this Kappa installation (its package ${name} did not load: ${loaded.get(name)!.why})`;
}

const ZSTD_WASM = '@bokuweb/zstd-wasm';
/** Zstandard's default compression level, as Kafka's clients use it. */
const ZSTD_LEVEL = 3;
/** This thread's zstd WebAssembly module: loading (ready null) or loaded (null when it failed to). */
let zstdWasmLoad: { ready: Promise<void>; lib: ZstdWasm | null } | null = null;

/** Starts loading the zstd WebAssembly module; resolves once it is ready (or has failed, quietly: fzstd stays). */
export function prepareCompression(): Promise<void> {
  if (zstdWasmLoad) return zstdWasmLoad.ready;
  const lib = library<ZstdWasm>(ZSTD_WASM);
  const state: { ready: Promise<void>; lib: ZstdWasm | null } = { ready: Promise.resolve(), lib: null };
  if (lib)
    state.ready = lib.init().then(
      () => void (state.lib = lib),
      () => {},
    );
  zstdWasmLoad = state;
  return state.ready;
}

/** The zstd WebAssembly module when it has loaded; otherwise null, and it starts loading. */
function zstdWasm(): ZstdWasm | null {
  if (!zstdWasmLoad) void prepareCompression();
  return zstdWasmLoad!.lib;
}

function need<T>(code: number): T {
  const why = codecUnavailable(code);
  if (why) throw new CompressionError('unsupported', why);
  return library<T>(LIBRARY[code])!;
}

/**
 * Decompresses a batch's records payload compressed with `code`. Throws `CompressionError`:
 * `unsupported` (no decoder here), `too-large` (it would inflate past `bytesMax`), `corrupt`.
 */
export function decompress(code: number, payload: Buffer, bytesMax: number): Buffer {
  if (code === Codec.none) return payload;
  const out = inflate(code, payload, bytesMax);
  // The header walks bound the output to within one block of the limit; this makes it exact.
  if (out.length > bytesMax)
    throw new CompressionError('too-large', `its ${codecName(code)} payload inflates past ${bytesMax} bytes`);
  return out;
}

function inflate(code: number, payload: Buffer, bytesMax: number): Buffer {
  try {
    switch (code) {
      case Codec.gzip:
        return gunzipSync(payload, { maxOutputLength: Math.max(bytesMax, 1) });
      case Codec.snappy:
        return unsnappy(need<Snappy>(code), payload, bytesMax);
      case Codec.lz4:
        lz4FrameBound(payload, bytesMax);
        return need<Lz4>(code).decompressFrameSync(payload);
      case Codec.zstd:
        return unzstd(need<Zstd>(code), payload, bytesMax);
    }
    throw new CompressionError('unsupported', codecUnavailable(code)!);
  } catch (err) {
    if (err instanceof CompressionError) throw err;
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE')
      throw new CompressionError('too-large', `its ${codecName(code)} payload inflates past ${bytesMax} bytes`);
    throw new CompressionError('corrupt', `its ${codecName(code)} payload does not decompress (${e.message})`);
  }
}

/**
 * Compresses a records payload as Kafka's clients do (gzip; raw snappy as librdkafka sends it; one
 * LZ4 frame; one Zstandard frame at level 3). zstd is `unsupported` until `prepareCompression()`
 * has loaded its encoder in this thread.
 */
export function compress(code: number, records: Buffer): Buffer {
  switch (code) {
    case Codec.none:
      return records;
    case Codec.gzip:
      return gzipSync(records);
    case Codec.snappy:
      return need<Snappy>(code).compressSync(records);
    case Codec.lz4:
      // With the frame's content checksum, as the lz4 tool writes it: LZ4 itself detects no damage.
      return need<Lz4>(code).compressFrameSync(records, { contentChecksum: true });
    case Codec.zstd: {
      const wasm = zstdWasm();
      if (wasm) return asBuffer(wasm.compress(records, ZSTD_LEVEL));
      throw new CompressionError('unsupported', 'the zstd encoder is not loaded in this thread yet');
    }
  }
  throw new CompressionError('unsupported', codecUnavailable(code)!);
}

// ---------------------------------------------------------------------------------------------
// snappy

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
/** Magic (8) + version (4) + compatible version (4). */
const XERIAL_HEADER_BYTES = 16;

function unsnappy(snappy: Snappy, payload: Buffer, bytesMax: number): Buffer {
  if (payload.length < XERIAL_HEADER_BYTES || !payload.subarray(0, 8).equals(XERIAL_MAGIC))
    return snappyBlock(snappy, payload, bytesMax);
  // The Java client's framing: blocks of raw snappy, each with its big-endian int32 length.
  const blocks: Buffer[] = [];
  let total = 0;
  let pos = XERIAL_HEADER_BYTES;
  while (pos < payload.length) {
    if (pos + 4 > payload.length) throw new CompressionError('corrupt', 'its xerial snappy frame is cut short');
    const length = payload.readInt32BE(pos);
    if (length < 0 || pos + 4 + length > payload.length)
      throw new CompressionError('corrupt', `its xerial snappy block at byte ${pos} claims ${length} bytes`);
    const block = snappyBlock(snappy, payload.subarray(pos + 4, pos + 4 + length), bytesMax - total);
    total += block.length;
    blocks.push(block);
    pos += 4 + length;
  }
  return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks, total);
}

/** One raw snappy block: its preamble (an unsigned LEB128 varint) says how long it inflates. */
function snappyBlock(snappy: Snappy, block: Buffer, bytesMax: number): Buffer {
  let length = 0;
  let i = 0;
  for (let shift = 1; ; shift *= 128, i++) {
    if (i >= block.length || i >= 5) throw new CompressionError('corrupt', 'its snappy preamble is damaged');
    length += (block[i] & 0x7f) * shift;
    if (block[i] < 0x80) break;
  }
  if (length > bytesMax)
    throw new CompressionError('too-large', `its snappy payload claims ${length} bytes, over the ${bytesMax} allowed`);
  return snappy.uncompressSync(block, { asBuffer: true });
}

// ---------------------------------------------------------------------------------------------
// lz4: the frame format (lz4_Frame_format.md)

const LZ4_MAGIC = 0x184d2204;
/** Block maximum sizes by the BD byte's block-size id (4 to 7). */
const LZ4_BLOCK_BYTES = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

/**
 * Walks the block headers of one LZ4 frame: it must be well formed, end exactly at the end of the
 * payload, and inflate to at most `bytesMax` (each block inflates to at most the frame's block size).
 */
function lz4FrameBound(p: Buffer, bytesMax: number): void {
  const bad = (why: string): CompressionError => new CompressionError('corrupt', `its LZ4 frame ${why}`);
  if (p.length < 7 || p.readUInt32LE(0) !== LZ4_MAGIC) throw bad('does not start with the LZ4 frame magic');
  const flg = p[4];
  if (flg >> 6 !== 1) throw bad(`has version ${flg >> 6}, expected 1`);
  const blockChecksum = (flg & 0x10) !== 0;
  const contentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const blockBytes = LZ4_BLOCK_BYTES[(p[5] >> 4) & 7];
  if (!blockBytes) throw bad(`has block size id ${(p[5] >> 4) & 7}`);
  let pos = 6 + (contentSize ? 8 : 0) + (flg & 0x01 ? 4 : 0) + 1; // descriptor, then its checksum byte
  if (contentSize && p.length >= 14 && p.readUInt32LE(6) + p.readUInt32LE(10) * 2 ** 32 > bytesMax)
    throw new CompressionError('too-large', `its LZ4 frame declares more than the ${bytesMax} bytes allowed`);
  let bound = 0;
  for (;;) {
    if (pos + 4 > p.length) throw bad('is cut short');
    const word = p.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break;
    const size = word & 0x7fffffff;
    if (size > blockBytes) throw bad(`has a block of ${size} bytes in a frame of ${blockBytes}-byte blocks`);
    pos += size + (blockChecksum ? 4 : 0);
    bound += blockBytes;
    if (bound > bytesMax + blockBytes)
      throw new CompressionError('too-large', `its LZ4 frame may inflate past the ${bytesMax} bytes allowed`);
  }
  if (pos + (contentChecksum ? 4 : 0) !== p.length) throw bad('does not end where the payload ends');
}

// ---------------------------------------------------------------------------------------------
// zstd (RFC 8878)

const ZSTD_MAGIC = 0xfd2fb528;
/** Zstandard's own default limit for a decoder's window (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27). */
const ZSTD_WINDOW_BYTES_MAX = 1 << 27;
const ZSTD_BLOCK_BYTES_MAX = 128 << 10;

function unzstd(zstd: Zstd, payload: Buffer, bytesMax: number): Buffer {
  const { bound, frames } = zstdBound(payload, bytesMax);
  // The WebAssembly decoder sizes its output from the first frame's content size, or else from the
  // bound given here, so it takes single frames; fzstd takes any number.
  const wasm = frames === 1 ? zstdWasm() : null;
  return asBuffer(wasm ? wasm.decompress(payload, { defaultHeapSize: Math.max(bound, 1) }) : zstd.decompress(payload));
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Walks the frames and block headers of a Zstandard payload: every frame well formed, the payload
 * ending with the last frame, a window the decoder may allocate, and an output of at most `bytesMax`
 * (give or take one block). Returns the most it can inflate to and how many frames it holds.
 */
function zstdBound(p: Buffer, bytesMax: number): { bound: number; frames: number } {
  const bad = (why: string): CompressionError => new CompressionError('corrupt', `its zstd payload ${why}`);
  let pos = 0;
  let bound = 0;
  let frames = 0;
  while (pos < p.length) {
    frames++;
    if (pos + 6 > p.length || p.readUInt32LE(pos) !== ZSTD_MAGIC) throw bad(`has no Zstandard frame at byte ${pos}`);
    const fhd = p[pos + 4];
    const singleSegment = (fhd & 0x20) !== 0;
    const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fhd >> 6];
    let at = pos + 5;
    let window = 0;
    if (!singleSegment) {
      const wd = p[at++];
      const base = 2 ** (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    at += [0, 1, 2, 4][fhd & 3];
    if (at + fcsBytes > p.length) throw bad('is cut short');
    const fcs =
      fcsBytes === 0
        ? -1
        : fcsBytes === 1
          ? p[at]
          : fcsBytes === 2
            ? p.readUInt16LE(at) + 256
            : fcsBytes === 4
              ? p.readUInt32LE(at)
              : p.readUInt32LE(at) + p.readUInt32LE(at + 4) * 2 ** 32;
    at += fcsBytes;
    if (singleSegment) window = fcs;
    // The decoder allocates the content size when the frame declares it, and the window otherwise.
    if (fcs > bytesMax - bound || window > ZSTD_WINDOW_BYTES_MAX)
      throw new CompressionError('too-large', `its zstd frame needs more than the ${bytesMax} bytes allowed`);
    const blockMax = Math.min(window, ZSTD_BLOCK_BYTES_MAX);
    for (let last = false; !last;) {
      if (at + 3 > p.length) throw bad('is cut short');
      const header = p[at] | (p[at + 1] << 8) | (p[at + 2] << 16);
      at += 3;
      last = (header & 1) === 1;
      const type = (header >> 1) & 3;
      const size = header >>> 3;
      if (type === 3) throw bad('has a block of the reserved type');
      bound += type === 2 ? blockMax : size;
      at += type === 1 ? 1 : size;
      if (bound > bytesMax + blockMax)
        throw new CompressionError('too-large', `its zstd payload may inflate past the ${bytesMax} bytes allowed`);
    }
    pos = at + ((fhd & 0x04) !== 0 ? 4 : 0);
  }
  if (pos !== p.length) throw bad('does not end where its last frame ends');
  return { bound, frames };
}
