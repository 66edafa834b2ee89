/**
 * Fuzzed Kafka frames against a live `kappa start`: ≥ 2,000 mutations of real client requests
 * (kafka-frames/frames.json: kcat, python3-confluent-kafka, python3-kafka and kafkajs, recorded
 * through a proxy by kafka-frames/record.ts; to re-record, with those installed:
 * `node --import tsx test/fuzz/kafka-frames/record.ts`). Nothing here needs a Debian package: the
 * frames are a committed fixture, so this runs in `npm test`.
 *
 * Each mutation goes out on its own connection, CONCURRENCY at a time: truncated frames (with the
 * size prefix kept, so the server waits for bytes that never come, or made to match, so it parses a
 * short frame), bit flips anywhere or in the request header, lies in the size prefix, lies in inner
 * length fields (int16 string lengths, int32 array counts and record lengths, compact uvarint
 * lengths), api key and version swaps, two frames spliced, a frame repeated with other correlation
 * ids, zero-length and tiny frames, and random garbage. After each round a fresh connection must
 * still get a well-formed ApiVersions and Metadata answer, the process must still run, and its RSS
 * is sampled. Every answer must carry the correlation id of a request the server could have framed.
 *
 * The log must be byte-for-byte unchanged — with one honest exception. The recorded Produce frames
 * name topic `fuzz`, which exists here (so mutated batches do reach the batch checks). A mutation
 * that leaves a Produce request valid (a flip in the client id, the correlation id, acks, the
 * timeout, or in a batch's base offset or leader epoch, which its CRC does not cover; or a frame
 * repeated on purpose) is a valid request, and Kafka appends it. So the check is: topic `guard`,
 * which no recorded frame names, is unchanged file for file and byte for byte; every `.log` segment
 * of `fuzz` still starts with the bytes it had, and anything after them is whole batches each equal,
 * from its magic byte to its end (the CRC-covered part and the CRC), to a batch a real client sent
 * (the broker may set the base offset and leader epoch); other files of `fuzz` may change only in a
 * partition that got such a batch. A second, smaller run (a quarter as many) goes to a `kappa start`
 * with a token no recorded frame knows: no connection gets past SASL, so there the log must be
 * unchanged file for file, byte for byte, and the health check is ApiVersions and SaslHandshake.
 * KAPPA_FUZZ_RUNS (default 2000) and KAPPA_FUZZ_SEED (default 15) change the run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { API_KEYS, API_SPECS, decodeRequest, decodeResponse, encodeRequest } from '../../src/kafka/protocol/index.ts';
import { kafkaTopicsConfig, startKappaWithKafka } from '../support/kafka-clients.ts';
import { type OwnedChild, startKappa } from '../support/processes.ts';
import { tempDataProject } from '../support/project.ts';

const RUNS = Number(process.env.KAPPA_FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.KAPPA_FUZZ_SEED ?? 15);
const CONCURRENCY = 16;
const ROUND = 100;
/** A connection is done once nothing happened on it for this long (or the server closed it). */
const QUIET_MS = 250;
const CONNECTION_MS_MAX = 1_500;
/** For the answers that must come (setup, health checks): an append waits for its fsync. */
const SETUP_WAIT_MS = 5_000;
/** Above the RSS `kappa start` had once set up; a listener holding on to what it was sent would pass it. */
const RSS_GROWTH_MB_MAX = 150;

interface RecordedFrame {
  client: string;
  api: string;
  apiKey: number;
  apiVersion: number;
  base64: string;
}

const FIXTURE = JSON.parse(
  readFileSync(fileURLToPath(new URL('./kafka-frames/frames.json', import.meta.url)), 'utf8'),
) as { topic: string; partitions: number; frames: RecordedFrame[] };
const FRAMES = FIXTURE.frames.map((f) => ({ ...f, bytes: Buffer.from(f.base64, 'base64') }));

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Dice {
  constructor(readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** A frame with its size prefix set to its body's length. */
function framed(body: Buffer): Buffer {
  const out = Buffer.alloc(4 + body.length);
  out.writeInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

function flipBits(frame: Buffer, d: Dice, from: number, to: number): Buffer {
  const out = Buffer.from(frame);
  const flips = 1 + d.int(8);
  for (let i = 0; i < flips && to > from; i++) out[from + d.int(to - from)]! ^= 1 << d.int(8);
  return out;
}

/** Places that look like a length or a count: an int16 before printable text, a small int32, a compact length byte. */
function lengthSpots(body: Buffer): { at: number; width: 1 | 2 | 4; value: number }[] {
  const spots: { at: number; width: 1 | 2 | 4; value: number }[] = [];
  const printable = (from: number, n: number): boolean => {
    if (from + n > body.length) return false;
    for (let i = from; i < from + n; i++) if (body[i]! < 0x20 || body[i]! > 0x7e) return false;
    return true;
  };
  for (let i = 0; i + 2 <= body.length; i++) {
    const s = body.readInt16BE(i);
    if (s >= 1 && s <= 255 && printable(i + 2, s)) spots.push({ at: i, width: 2, value: s });
    if (i + 4 <= body.length) {
      const n = body.readInt32BE(i);
      if (n >= 1 && n <= 1_000_000 && n <= body.length) spots.push({ at: i, width: 4, value: n });
    }
    const c = body[i]!;
    if (c >= 2 && c <= 128 && printable(i + 1, c - 1)) spots.push({ at: i, width: 1, value: c });
  }
  return spots;
}

const LIES = {
  1: [0x00, 0x01, 0x7f, 0x80, 0xff],
  2: [-1, -2, 0, 0x7fff, -0x8000],
  4: [-1, -2, 0, 0x7fffffff, -0x80000000, 0x10000000],
} as const;

function innerLie(frame: Buffer, d: Dice): Buffer {
  const body = Buffer.from(frame.subarray(4));
  const spots = lengthSpots(body);
  if (spots.length === 0) return flipBits(frame, d, 4, frame.length);
  const spot = d.pick(spots);
  const relative = d.int(2) === 0;
  if (spot.width === 1) body[spot.at] = relative ? (spot.value + d.pick([1, -1, 50])) & 0xff : d.pick(LIES[1]);
  else if (spot.width === 2)
    body.writeInt16BE(relative ? (spot.value + d.pick([1, -1, 300])) | 0 : d.pick(LIES[2]), spot.at);
  else body.writeInt32BE(relative ? spot.value + d.pick([1, -1, 1000, -1000]) : d.pick(LIES[4]), spot.at);
  return framed(body);
}

function sizeLie(frame: Buffer, d: Dice): Buffer[] {
  const out = Buffer.from(frame);
  const size = frame.length - 4;
  const lie = d.pick([0, -1, -0x80000000, 0x7fffffff, size - 1, size + 1, size * 2, 1 + d.int(200 * 1024 * 1024)]);
  out.writeInt32BE(lie | 0, 0);
  return [out];
}

type Mutation = (d: Dice) => Buffer[];

/** Each kind of damage, by name, as the counts print them. */
const MUTATIONS: Record<string, Mutation> = {
  'truncate (size kept)': (d) => {
    const f = d.pick(FRAMES).bytes;
    return [f.subarray(0, 1 + d.int(f.length - 1))];
  },
  'truncate (size matched)': (d) => {
    const f = d.pick(FRAMES).bytes;
    return [framed(f.subarray(4, 4 + d.int(f.length - 4)))];
  },
  'bit flips': (d) => {
    const f = d.pick(FRAMES).bytes;
    return [flipBits(f, d, 4, f.length)];
  },
  'bit flips in the header': (d) => {
    const f = d.pick(FRAMES).bytes;
    return [flipBits(f, d, 4, Math.min(f.length, 4 + 10 + 16))];
  },
  'size prefix lie': (d) => sizeLie(d.pick(FRAMES).bytes, d),
  'inner length lie': (d) => [innerLie(d.pick(FRAMES).bytes, d)],
  'api key or version swap': (d) => {
    const f = Buffer.from(d.pick(FRAMES).bytes);
    if (d.int(2) === 0) f.writeInt16BE(d.pick([...API_SPECS.keys(), -1, 999, 0x7fff]), 4);
    else f.writeInt16BE(d.pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 100, -1]), 6);
    return [f];
  },
  'two frames spliced': (d) => {
    const a = d.pick(FRAMES).bytes;
    const b = d.pick(FRAMES).bytes;
    return [framed(Buffer.concat([a.subarray(4, 4 + d.int(a.length - 4)), b.subarray(4 + d.int(b.length - 4))]))];
  },
  'repeated, other correlation ids': (d) => {
    const f = d.pick(FRAMES).bytes;
    const n = 2 + d.int(4);
    return Array.from({ length: n }, () => {
      const c = Buffer.from(f);
      c.writeInt32BE(d.pick([0, -1, 0x7fffffff, -0x80000000, d.int(1 << 30)]), 8);
      return c;
    });
  },
  'zero-length and tiny frames': (d) => {
    const n = d.int(8);
    const tiny = d.pick(FRAMES).bytes.subarray(4, 4 + n);
    return [framed(tiny), ...(d.int(2) === 0 ? [d.pick(FRAMES).bytes] : [])];
  },
  garbage: (d) => {
    const junk = d.bytes(1 + d.int(4096));
    return [d.int(2) === 0 ? junk : framed(junk)];
  },
};

interface Exchange {
  answers: Buffer[];
  closedByServer: boolean;
}

/** Writes `chunks` on a fresh connection; returns the answer frames once the server closed it or went quiet. */
function exchange(
  port: number,
  chunks: Buffer[],
  opts: { quietMs?: number; answers?: number } = {},
): Promise<Exchange> {
  const quietMs = opts.quietMs ?? QUIET_MS;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const answers: Buffer[] = [];
    let buffered = Buffer.alloc(0);
    let quiet: NodeJS.Timeout | undefined;
    let closedByServer = false;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(cap);
      socket.destroy();
      resolve({ answers, closedByServer });
    };
    const cap = setTimeout(finish, Math.max(CONNECTION_MS_MAX, quietMs));
    const rearm = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(finish, quietMs);
    };
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
      rearm();
    });
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 4 && buffered.length >= 4 + buffered.readInt32BE(0)) {
        answers.push(buffered.subarray(4, 4 + buffered.readInt32BE(0)));
        buffered = buffered.subarray(4 + buffered.readInt32BE(0));
      }
      if (opts.answers !== undefined && answers.length >= opts.answers) finish();
      else rearm();
    });
    socket.on('error', () => {
      closedByServer = true;
      finish();
    });
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
  });
}

/** The correlation ids of the frames the server could cut out of this byte stream. */
function framedCorrelationIds(chunks: Buffer[]): Set<number> {
  const stream = Buffer.concat(chunks);
  const ids = new Set<number>();
  for (let at = 0; at + 4 <= stream.length;) {
    const size = stream.readInt32BE(at);
    if (size >= 8 && at + 12 <= stream.length) ids.add(stream.readInt32BE(at + 8));
    if (size < 0) break;
    at += 4 + size;
  }
  return ids;
}

/** A fresh connection gets a well-formed ApiVersions v0 and Metadata v1 answer naming both topics. */
async function assertHealthy(port: number, when: string): Promise<void> {
  const header = (apiKey: number, apiVersion: number, correlationId: number) => ({
    apiKey,
    apiVersion,
    correlationId,
    clientId: 'fuzz-health',
  });
  const { answers } = await exchange(
    port,
    [
      encodeRequest(header(API_KEYS.ApiVersions, 0, 1), {}),
      encodeRequest(header(API_KEYS.Metadata, 1, 2), { topics: null }),
    ],
    { quietMs: SETUP_WAIT_MS, answers: 2 },
  );
  assert.equal(answers.length, 2, `${when}: a fresh connection got ${answers.length} of 2 answers`);
  const versions = decodeResponse(API_KEYS.ApiVersions, 0, answers[0]!);
  assert.equal(versions.body.errorCode, 0, `${when}: ApiVersions answered error ${String(versions.body.errorCode)}`);
  const metadata = decodeResponse(API_KEYS.Metadata, 1, answers[1]!);
  const names = (metadata.body.topics as { name: string }[]).map((x) => x.name).sort();
  assert.deepEqual(names, ['fuzz', 'guard'], `${when}: Metadata lists ${names.join(', ')}`);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Every file under `dir`, by path relative to it. */
function filesOf(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

/** Whole RecordBatch v2 batches in a Produce request's records; empty if it is not a Produce. */
function batchesOf(frame: Buffer): Buffer[] {
  const { header, body } = decodeRequest(frame.subarray(4));
  if (header.apiKey !== API_KEYS.Produce) return [];
  const out: Buffer[] = [];
  for (const topic of body.topicData as { partitionData: { records: Buffer | null }[] }[])
    for (const p of topic.partitionData) {
      const records = p.records;
      for (let at = 0; records && at + 12 <= records.length;) {
        const size = 12 + records.readInt32BE(at + 8);
        out.push(records.subarray(at, at + size));
        at += size;
      }
    }
  return out;
}

/** From the magic byte on: what the CRC covers and the CRC, which a broker never rewrites. */
const batchKey = (batch: Buffer): string => batch.subarray(16).toString('base64');

interface LogCheck {
  problems: string[];
  appendedBatches: number;
}

/** See the file comment: guard unchanged, fuzz's segments only grown by batches real clients sent. */
function checkLog(before: Map<string, Buffer>, after: Map<string, Buffer>, valid: Set<string>): LogCheck {
  const problems: string[] = [];
  let appendedBatches = 0;
  const grownPartitions = new Set<string>();
  for (const [path, old] of before) {
    const now = after.get(path);
    if (now === undefined) problems.push(`${path} is gone`);
    else if (path.endsWith('.log') && path.startsWith(`${FIXTURE.topic}/`)) {
      if (!now.subarray(0, old.length).equals(old)) problems.push(`${path}: its first ${old.length} bytes changed`);
      for (let at = old.length; at < now.length;) {
        const size = at + 12 <= now.length ? 12 + now.readInt32BE(at + 8) : now.length - at;
        const batch = now.subarray(at, at + size);
        if (!valid.has(batchKey(batch)))
          problems.push(`${path}: ${size} bytes at ${at} are not a batch any client sent`);
        else appendedBatches++;
        grownPartitions.add(join(path, '..'));
        at += size;
      }
    }
  }
  for (const [path, old] of before) {
    const now = after.get(path);
    if (now === undefined || path.endsWith('.log') || now.equals(old)) continue;
    if (!grownPartitions.has(join(path, '..'))) problems.push(`${path} changed`);
  }
  for (const path of after.keys())
    if (!before.has(path) && !grownPartitions.has(join(path, '..'))) problems.push(`${path} is new`);
  return { problems, appendedBatches };
}

/** What the recording must hold (record.ts's clients send them all). */
const RECORDED_APIS = [
  'ApiVersions',
  'Metadata',
  'Produce',
  'Fetch',
  'ListOffsets',
  'FindCoordinator',
  'JoinGroup',
  'SyncGroup',
  'Heartbeat',
  'OffsetCommit',
  'OffsetFetch',
  'LeaveGroup',
  'InitProducerId',
  'SaslHandshake',
  'SaslAuthenticate',
];

interface FuzzResult {
  /** Per mutation kind, how many met each outcome. */
  counts: Map<string, Record<string, number>>;
  badAnswers: string[];
  rssPeakMb: number;
}

/** Sends `runs` seeded mutations, CONCURRENCY connections at a time; after each ROUND, `healthy` and an RSS sample. */
async function fuzz(
  child: OwnedChild,
  port: number,
  runs: number,
  seed: number,
  healthy: (port: number, when: string) => Promise<void>,
): Promise<FuzzResult> {
  const d = new Dice(random(seed));
  const kinds = Object.keys(MUTATIONS);
  const counts = new Map<string, Record<string, number>>();
  const badAnswers: string[] = [];
  let rssPeakMb = 0;
  for (let done = 0; done < runs;) {
    const round = Math.min(ROUND, runs - done);
    const queue = Array.from({ length: round }, () => {
      const kind = d.pick(kinds);
      return { kind, chunks: MUTATIONS[kind]!(d) };
    });
    const worker = async (): Promise<void> => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        const { answers, closedByServer } = await exchange(port, job.chunks);
        const outcome =
          answers.length > 0
            ? closedByServer
              ? 'answered, then closed'
              : 'answered'
            : closedByServer
              ? 'closed'
              : 'no answer (left open)';
        const tally = counts.get(job.kind) ?? {};
        tally[outcome] = (tally[outcome] ?? 0) + 1;
        counts.set(job.kind, tally);
        const ids = framedCorrelationIds(job.chunks);
        for (const a of answers)
          if (a.length < 4 || !ids.has(a.readInt32BE(0)))
            badAnswers.push(`${job.kind}: an answer with correlation id ${a.length < 4 ? '(none)' : a.readInt32BE(0)}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    done += round;
    assert.ok(child.running, `kappa start ended after ${done} mutations:\n${child.stderr.slice(-4_000)}`);
    await healthy(port, `after ${done} mutations`);
    rssPeakMb = Math.max(rssPeakMb, rssMb(child.pid));
  }

  return { counts, badAnswers, rssPeakMb };
}

/** The first Produce frame without an idempotent producer, its topic renamed `guard`. */
function guardProduce(): Buffer {
  for (const f of FRAMES) {
    if (f.apiKey !== API_KEYS.Produce) continue;
    const { header, body } = decodeRequest(f.bytes.subarray(4));
    const batches = batchesOf(f.bytes);
    // The producer id sits at byte 43 of a batch; -1: no idempotent producer.
    if (batches.length === 0 || batches.some((b) => b.readBigInt64BE(43) !== -1n)) continue;
    (body.topicData as { name: string }[])[0]!.name = 'guard';
    return encodeRequest({ ...header, apiVersion: header.apiVersion }, body);
  }
  throw new Error('the fixture has no plain Produce frame');
}

test(
  `${RUNS} mutated Kafka frames from real clients: the listener stays healthy, memory bounded, the log unchanged`,
  { timeout: 180_000 },
  async (t) => {
    assert.ok(FRAMES.length >= 50, 'the fixture holds the recorded frames');
    const apis = new Set(FRAMES.map((f) => f.api));
    for (const api of RECORDED_APIS) assert.ok(apis.has(api), `the fixture has ${api} requests`);
    const codecs = new Set(FRAMES.flatMap((f) => batchesOf(f.bytes).map((b) => b.readInt16BE(21) & 7)));
    assert.deepEqual([...codecs].sort(), [0, 1, 2, 3, 4], 'produced batches: plain, gzip, snappy, lz4, zstd');
    const kappa = await startKappaWithKafka(t, {
      topics: [
        { name: FIXTURE.topic, partitions: FIXTURE.partitions },
        { name: 'guard', partitions: FIXTURE.partitions },
      ],
    });
    const port = Number(kappa.bootstrap.split(':')[1]);
    const topicsDir = join(kappa.dir, 'topics');
    assert.ok(existsSync(topicsDir), `the log is under ${topicsDir}`);

    // Setup: every recorded Produce once, whole (they are valid: nothing is rejected), and records in guard.
    const valid = new Set<string>();
    const produces = FRAMES.filter((f) => f.apiKey === API_KEYS.Produce);
    for (const f of produces) {
      for (const b of batchesOf(f.bytes)) valid.add(batchKey(b));
      const acks = decodeRequest(f.bytes.subarray(4)).body.acks;
      const { answers } = await exchange(port, [f.bytes], { quietMs: SETUP_WAIT_MS, answers: 1 });
      assert.equal(answers.length, acks === 0 ? 0 : 1, `the recorded ${f.client} Produce v${f.apiVersion} is answered`);
    }
    assert.equal((await exchange(port, [guardProduce()], { quietMs: SETUP_WAIT_MS, answers: 1 })).answers.length, 1);
    await assertHealthy(port, 'after setup');
    const before = filesOf(topicsDir);
    const rssStartMb = rssMb(kappa.child.pid);
    const stderrStart = kappa.child.stderr.length;

    const { counts, badAnswers, rssPeakMb } = await fuzz(kappa.child, port, RUNS, SEED, assertHealthy);

    const total = [...counts.values()].reduce((n, tally) => n + Object.values(tally).reduce((a, b) => a + b, 0), 0);
    const lines = [...counts].sort().map(([kind, tally]) => `  ${kind}: ${JSON.stringify(tally)}`);
    const after = filesOf(topicsDir);
    const log = checkLog(before, after, valid);
    t.diagnostic(
      `seed ${SEED}, ${total} mutated frames over ${FRAMES.length} recorded ones; per kind, how the server met them:`,
    );
    for (const line of lines) t.diagnostic(line);
    t.diagnostic(
      `RSS ${rssStartMb.toFixed(0)} MB after setup, ${Math.max(rssPeakMb, rssStartMb).toFixed(0)} MB at most; ${log.appendedBatches} batches appended, each one a client sent`,
    );
    const printed = kappa.child.stderr.slice(stderrStart);
    assert.equal(total, RUNS);
    assert.deepEqual(badAnswers.slice(0, 20), [], 'every answer carries the correlation id of a request sent');
    assert.deepEqual(log.problems.slice(0, 20), [], 'the log holds only what valid requests appended');
    assert.ok(
      Math.max(rssPeakMb, rssStartMb) - rssStartMb < RSS_GROWTH_MB_MAX,
      `RSS grew from ${rssStartMb.toFixed(0)} to ${rssPeakMb.toFixed(0)} MB`,
    );
    assert.doesNotMatch(printed, /UNKNOWN_SERVER_ERROR|unexpected|TypeError|RangeError/i, printed.slice(-4_000));
  },
);

test('the log check refuses a changed byte, a batch no client sent, and a new file', () => {
  const batch = batchesOf(FRAMES.find((f) => f.apiKey === API_KEYS.Produce)!.bytes)[0]!;
  const valid = new Set([batchKey(batch)]);
  const seg = join(FIXTURE.topic, '0', '00000000000000000000.log');
  const before = new Map([[seg, Buffer.from(batch)]]);
  const resent = Buffer.from(batch);
  resent.writeBigInt64BE(7n, 0); // a broker sets the base offset: still the batch a client sent
  assert.deepEqual(checkLog(before, new Map([[seg, Buffer.concat([batch, resent])]]), valid).problems, []);
  const flipped = Buffer.from(batch);
  flipped[flipped.length - 1]! ^= 1;
  assert.equal(checkLog(before, new Map([[seg, Buffer.concat([batch, flipped])]]), valid).problems.length, 1);
  assert.equal(checkLog(before, new Map([[seg, flipped]]), valid).problems.length, 1);
  const guard = join('guard', '0', 'x.index');
  assert.equal(
    checkLog(
      before,
      new Map([
        [seg, batch],
        [guard, Buffer.alloc(1)],
      ]),
      valid,
    ).problems.length,
    1,
  );
});

/** Before SASL only ApiVersions and the SASL requests are served: a fresh connection gets both answered. */
async function assertSaslHealthy(port: number, when: string): Promise<void> {
  const header = (apiKey: number, correlationId: number) => ({ apiKey, apiVersion: 0, correlationId, clientId: 'h' });
  const { answers } = await exchange(
    port,
    [
      encodeRequest(header(API_KEYS.ApiVersions, 1), {}),
      encodeRequest({ ...header(API_KEYS.SaslHandshake, 2), apiVersion: 1 }, { mechanism: 'PLAIN' }),
    ],
    { quietMs: SETUP_WAIT_MS, answers: 2 },
  );
  assert.equal(answers.length, 2, `${when}: a fresh connection got ${answers.length} of 2 answers`);
  assert.equal(decodeResponse(API_KEYS.ApiVersions, 0, answers[0]!).body.errorCode, 0, when);
  assert.equal(decodeResponse(API_KEYS.SaslHandshake, 1, answers[1]!).body.errorCode, 0, when);
}

const SASL_RUNS = Math.ceil(RUNS / 4);

test(
  `${SASL_RUNS} mutated frames at a listener with tokens, none authenticated: healthy, and the log byte for byte unchanged`,
  { timeout: 120_000 },
  async (t) => {
    // Another token than the recording's: the recorded SaslAuthenticate frames fail, so no connection
    // here gets past SASL, and nothing may reach the log at all.
    const sha256 = createHash('sha256').update('not-the-recorded-token').digest('hex');
    const config = kafkaTopicsConfig([{ name: FIXTURE.topic, partitions: FIXTURE.partitions }]).replace(
      'topics: [',
      `server: { tokens: [{ name: 'fuzzer', sha256: '${sha256}', scopes: ['admin'] }] }, topics: [`,
    );
    const project = tempDataProject(t, 'kappa-kafka-fuzz-sasl-', config);
    const kappa = startKappa(t, [
      ...['--data-dir', project.dir, '--config', project.config, 'start'],
      ...['--port', '0', '--kafka-port', '0', '--workers', '0'],
    ]);
    const [, port] = await kappa.waitForOutput(/Kafka API on \S+:(\d+)/, { timeoutMs: 60_000 });
    await assertSaslHealthy(Number(port), 'at start');
    const topicsDir = join(project.dir, 'topics');
    const before = filesOf(topicsDir);
    const rssStartMb = rssMb(kappa.pid);
    const result = await fuzz(kappa, Number(port), SASL_RUNS, SEED + 1, assertSaslHealthy);
    const after = filesOf(topicsDir);
    for (const [kind, tally] of [...result.counts].sort()) t.diagnostic(`  ${kind}: ${JSON.stringify(tally)}`);
    t.diagnostic(`RSS ${rssStartMb.toFixed(0)} MB at start, ${result.rssPeakMb.toFixed(0)} MB at most`);
    assert.deepEqual(result.badAnswers.slice(0, 20), []);
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no file came or went');
    for (const [path, bytes] of before) assert.ok(after.get(path)!.equals(bytes), `${path} is unchanged`);
    assert.ok(result.rssPeakMb - rssStartMb < RSS_GROWTH_MB_MAX, `RSS grew to ${result.rssPeakMb.toFixed(0)} MB`);
    assert.doesNotMatch(
      kappa.stderr,
      /UNKNOWN_SERVER_ERROR|unexpected|TypeError|RangeError/i,
      kappa.stderr.slice(-4_000),
    );
  },
);
