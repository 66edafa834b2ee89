/**
 * Tasks that start, or fold, while their Kafka log is out of reach (issue 16). A proxy in front of
 * Kappa's own Kafka listener stalls the broker: either wholly, as SIGSTOP does (connections are
 * still accepted, nothing is answered), or only its Metadata answers, so a task's own reads go
 * through while a look-up of the cluster's metadata fails after KafkaLog's retries. Each task must
 * wait, say so once, and fold each record exactly once when the log is back.
 *
 * - A worker thread whose first look at the cluster (opening the log) falls in an outage: a full
 *   CI run saw its task fail ("did not complete reading the cluster metadata after 6 tries").
 * - A task whose fold paused for a joined table, whose first read of the table looks the topic up
 *   in the metadata: on the engine's thread (that read waits) and on a worker thread (the task
 *   reads its batch again from the record it paused at).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type Server, type Socket, createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startKafkaListener } from '../kafka/index.ts';
import { type FileLog, type KafkaLogDescriptor, openFileLog, openLog } from '../log/index.ts';
import { type Deltas, type RowDelta, deltaRows } from '../view/index.ts';
import { loadApp } from './config.ts';
import type { Flusher } from './flush.ts';
import { compileView } from './plan.ts';
import { TaskLoop, type Task } from './task-loop.ts';
import { NO_WATERMARK } from './task-plan.ts';
import { WorkerPool } from './worker-pool.ts';

const SRC = fileURLToPath(new URL('../index.ts', import.meta.url));
const CONFIG = `
import { Type, count, defineApp, from, table, topic, view } from ${JSON.stringify(SRC)};
const E = Type.Object({ k: Type.String() });
const events = topic('events', { partitions: 1, schema: E });
const Payment = Type.Object({ card: Type.String(), ts: Type.Integer() });
const Card = Type.Object({ card: Type.String(), limit: Type.Number(), ts: Type.Integer() });
const payments = topic('payments', { partitions: 1, schema: Payment, time: (p) => p.ts });
const cards = topic('cards', { partitions: 1, schema: Card, key: (c) => c.card, time: (c) => c.ts });
export default defineApp({
  topics: [events, payments, cards],
  views: [
    view('by_k', from(events).groupBy((e) => ({ k: e.k })).aggregate({ n: count() })),
    view('by_limit', from(payments)
      .join(table(cards), (p) => p.card, (p, c) => ({ card: p.card, limit: c.limit }))
      .groupBy((p) => ({ card: p.card, limit: p.limit }))
      .aggregate({ n: count() })),
  ],
});
`;
/** KafkaLog's request timeout here: its 6 tries give up after about 4 s (the pauses between them add 3 s). */
const REQUEST_TIMEOUT_MS = 200;
const quiet = { info(): void {}, warn(): void {} };

/** The Kafka API key of Metadata requests. */
const METADATA = 3;

/**
 * A TCP proxy in front of a Kafka listener that can stall: `stall` holds everything either side
 * sends, as a broker stopped with SIGSTOP does (connections are still accepted); `stallMetadata`
 * leaves Metadata requests unanswered and passes everything else. `resume` lets go of what was held,
 * in order (unanswered Metadata requests stay so), and forwards again.
 */
interface StallProxy {
  address: string;
  stall(): void;
  stallMetadata(): void;
  resume(): void;
  close(): Promise<void>;
}

/** `target()`: the listener's address, asked at each connection (the listener advertises the proxy, so it starts after it). */
async function stallProxy(target: () => string): Promise<StallProxy> {
  let mode: 'none' | 'all' | 'metadata' = 'none';
  let held: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const deliver = (to: Socket, bytes: Buffer): void => {
    const send = (): void => void (to.destroyed || to.write(bytes));
    if (mode === 'all') held.push(send);
    else send();
  };
  const server: Server = createServer((client) => {
    const address = target();
    const at = address.lastIndexOf(':');
    const upstream = connect(Number(address.slice(at + 1)), address.slice(0, at));
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    // Requests are cut into frames (a 4-byte size, then the API key), so Metadata ones can be left out.
    let pending = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
        const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
        pending = pending.subarray(frame.length);
        if (mode === 'metadata' && frame.readInt16BE(4) === METADATA) continue;
        deliver(upstream, frame);
      }
    });
    upstream.on('data', (chunk: Buffer) => deliver(client, chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${own}`,
    stall: () => void (mode = 'all'),
    stallMetadata: () => void (mode = 'metadata'),
    resume() {
      const go = held;
      held = [];
      mode = 'none';
      for (const send of go) send();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Setup {
  configPath: string;
  fileLog: FileLog;
  proxy: StallProxy;
  /** The Kafka log on the proxy, as a process opens it. */
  descriptor: KafkaLogDescriptor;
  /** Closed when the test ends, last first, before its files are removed. */
  closing: (() => Promise<unknown>)[];
}

/** The config, a FileLog with the topics and records, Kappa's Kafka listener on it, and a proxy in front. */
async function setUp(t: { after(fn: () => unknown): void }): Promise<Setup> {
  const root = mkdtempSync(join(tmpdir(), 'kappa-log-outage-start-'));
  const closing: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const close of closing.reverse()) await close().catch(() => {});
    rmSync(root, { recursive: true, force: true });
  });
  writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
  const configPath = join(root, 'kappa.config.ts');
  writeFileSync(configPath, CONFIG);
  const fileLog = await openFileLog({ dir: join(root, 'data'), logger: quiet });
  closing.push(() => fileLog.close());
  for (const topic of ['events', 'payments', 'cards']) await fileLog.createTopic(topic, { partitions: 1 });
  await fileLog.append('events', [{ value: '{"k":"a"}' }, { value: '{"k":"b"}' }, { value: '{"k":"a"}' }]);
  await fileLog.append('cards', [{ value: '{"card":"c1","limit":100,"ts":1000}' }]);
  const payments = [2000, 2001, 2002].map((ts) => ({ value: JSON.stringify({ card: 'c1', ts }) }));
  await fileLog.append('payments', payments);
  let listening = '';
  const proxy = await stallProxy(() => listening);
  closing.push(() => proxy.close());
  // Metadata names the proxy as the broker, so every connection a client makes goes through it.
  const [advertisedHost, advertisedPort] = proxy.address.split(':');
  const listener = await startKafkaListener({
    log: fileLog,
    port: 0,
    logger: quiet,
    advertisedHost,
    advertisedPort: Number(advertisedPort),
  });
  closing.push(() => listener.close());
  listening = listener.address;
  const descriptor: KafkaLogDescriptor = {
    kind: 'kafka',
    brokers: [proxy.address],
    clientId: 'kappa-log-outage-start',
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    connectTimeoutMs: REQUEST_TIMEOUT_MS,
  };
  return { configPath, fileLog, proxy, descriptor, closing };
}

/** The counts of `rows` (count deltas, summed over drains) by the key's columns. */
function counts(rows: RowDelta[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[r.key.join('/')] = (out[r.key.join('/')] ?? 0) + Number(r.state[0]);
  return out;
}

/** Resolves once `check` holds, polling; throws after `timeoutMs` saying what was waited for. */
async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(
  'a worker thread that starts while the Kafka log is out of reach waits for it and folds each record once',
  { timeout: 60_000 },
  async (t) => {
    const { configPath, proxy, descriptor, closing } = await setUp(t);
    // The broker stops answering before the thread opens the log.
    proxy.stall();
    const warnings: string[] = [];
    const failures: Error[] = [];
    const pool = await WorkerPool.start({
      configPath,
      workers: 1,
      log: descriptor,
      readBytesMax: 1 << 16,
      pendingMax: 1000,
      onFailure: (err) => failures.push(err),
      onWarning: (m) => warnings.push(m),
    });
    closing.push(() => pool.close());
    const plan = compileView((await loadApp(configPath)).views[0]);
    pool.open({ id: 0, plan, partition: 0, watermarkMs: NO_WATERMARK, keyNames: null, fromOffset: 0 });
    pool.setHighWatermark(0, 3);

    await until('the task to wait or fail', () => warnings.length > 0 || failures.length > 0, 30_000);
    const failed = (): string[] => failures.map((e) => e.message);
    assert.deepEqual(failed(), [], 'the task waits for the log instead of failing');
    assert.match(warnings[0], /^by_k\/events\/0: the task waits: the log cannot be reached \(.*cluster metadata/);
    // Opened again in the outage, the log fails again (a few seconds): waited out without another word.
    await new Promise((r) => setTimeout(r, 6000));
    assert.deepEqual(failed(), []);
    assert.equal(warnings.length, 1, `said once: ${warnings.join(' | ')}`);

    proxy.resume();
    await until('the task to fold the three records', () => pool.progress(0).offset === 3, 30_000);
    const drained = await pool.drain(0);
    assert.equal(drained.offset, 3);
    assert.deepEqual(counts(deltaRows(drained.rows as Deltas)), { a: 2, b: 1 }, 'each record folded once');
    assert.deepEqual(failed(), []);
    assert.match(warnings.at(-1)!, /^by_k\/events\/0: the task reads again after \d+\.\d s without the log$/);
  },
);

test(
  "a task on the engine's thread whose fold waits for a joined table while the log is out of reach waits, then folds each record once",
  { timeout: 60_000 },
  async (t) => {
    const { configPath, proxy, descriptor, closing } = await setUp(t);
    const log = await openLog(descriptor);
    closing.push(() => log.close());
    // The task's reads go through; the table's first read looks its topic up in the metadata, which fails.
    proxy.stallMetadata();
    const said: string[] = [];
    const failures: Error[] = [];
    const rows: RowDelta[] = [];
    const flusher = {
      async flush(task: Task): Promise<void> {
        const drained = await task.runner.drain(task.id);
        rows.push(...deltaRows(drained.rows as Deltas));
        task.committedOffset = task.offset;
        task.lastFlushAtMs = Date.now();
      },
    } as unknown as Flusher;
    const stop = new AbortController();
    const loop = new TaskLoop({
      log,
      logger: { info: (m) => said.push(m), warn: (m) => said.push(m) },
      flushIntervalMs: 100,
      dirtyRowsMax: 1000,
      readBytesMax: 1 << 16,
      signal: stop.signal,
      flusher,
      caughtUp: async () => {},
      fail: (err) => failures.push(err),
    });
    closing.push(async () => {
      stop.abort();
      await loop.settle();
    });
    const plan = compileView((await loadApp(configPath)).views[1]);
    const task = loop.add({
      plan,
      group: null,
      producer: null,
      partition: 0,
      offset: 0,
      watermarkMs: NO_WATERMARK,
      keyNames: null,
      pooled: false,
    });
    loop.start(task);

    await until('the task to wait or fail', () => said.length > 0 || failures.length > 0, 30_000);
    const failed = (): string[] => failures.map((e) => e.message);
    assert.deepEqual(failed(), [], 'the task waits for the log instead of failing');
    assert.match(
      said[0],
      /^a task's read of a joined table or of the schema registry waits: the log cannot be reached \(.*cluster metadata/,
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(failed(), []);
    assert.equal(said.length, 1, `said once: ${said.join(' | ')}`);

    proxy.resume();
    await until('the task to fold the three payments', () => counts(rows)['c1/100'] >= 3, 30_000);
    await new Promise((r) => setTimeout(r, 300)); // a payment folded twice would show by now
    assert.deepEqual(counts(rows), { 'c1/100': 3 }, 'each payment joined and folded once');
    assert.deepEqual(failed(), []);
    assert.match(
      said.at(-1)!,
      /^a task's read of a joined table or of the schema registry reads again after \d+\.\d s without the log$/,
    );
  },
);

test(
  'a task on a worker thread whose fold waits for a joined table while the log is out of reach reads its batch again from there, folding each record once',
  { timeout: 60_000 },
  async (t) => {
    const { configPath, proxy, descriptor, closing } = await setUp(t);
    const warnings: string[] = [];
    const failures: Error[] = [];
    const pool = await WorkerPool.start({
      configPath,
      workers: 1,
      log: descriptor,
      readBytesMax: 1 << 16,
      pendingMax: 1000,
      onFailure: (err) => failures.push(err),
      onWarning: (m) => warnings.push(m),
    });
    closing.push(() => pool.close());
    // Opening the log is let through; the table's first read looks its topic up in the metadata, which fails.
    await new Promise((r) => setTimeout(r, 500));
    proxy.stallMetadata();
    const plan = compileView((await loadApp(configPath)).views[1]);
    pool.open({ id: 0, plan, partition: 0, watermarkMs: NO_WATERMARK, keyNames: null, fromOffset: 0 });
    pool.setHighWatermark(0, 3);

    await until('the task to wait or fail', () => warnings.length > 0 || failures.length > 0, 30_000);
    const failed = (): string[] => failures.map((e) => e.message);
    assert.deepEqual(failed(), [], 'the task waits for the log instead of failing');
    assert.match(warnings[0], /^by_limit\/payments\/0: the task waits: the log cannot be reached \(.*cluster metadata/);
    assert.equal(pool.progress(0).offset, 0, 'the fold paused at the first payment');

    proxy.resume();
    await until('the task to fold the three payments', () => pool.progress(0).offset === 3, 30_000);
    const drained = await pool.drain(0);
    assert.deepEqual(counts(deltaRows(drained.rows as Deltas)), { 'c1/100': 3 }, 'each payment joined and folded once');
    assert.deepEqual(failed(), []);
  },
);
