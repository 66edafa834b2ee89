/**
 * For the listener's tests: a listener on port 0 over a FileLog in a temp dir, closed (and the dir
 * removed) when the test ends, and `RawClient`, a Kafka client of a few lines over a plain socket
 * that sends what a test asks, byte for byte (framing tests, pipelining, exact error codes).
 */
import assert from 'node:assert/strict';
import { type Socket, connect } from 'node:net';
import { Registry } from 'prom-client';
import { defer, tempDir, type Owner } from '../../../test/support/cleanup.ts';
import { type FileLog, type Log, openFileLog } from '../../log/index.ts';
import { GroupCoordinator, MemoryOffsetStore } from '../groups/index.ts';
import { type Body, decodeResponse, encodeRequest } from '../protocol/index.ts';
import { type KafkaListener, type KafkaListenerOptions, startKafkaListener } from './listener.ts';

export const quiet = { info() {}, warn() {} };

export interface TestListener {
  log: FileLog;
  listener: KafkaListener;
  registry: Registry;
  /** Warnings the listener logged. */
  warnings: string[];
}

export async function openListener(
  t: Owner,
  opts: Partial<Omit<KafkaListenerOptions, 'log'>> & { wrapLog?: (log: FileLog) => Log; withGroups?: boolean } = {},
): Promise<TestListener> {
  const dir = tempDir(t, 'kappa-kafka-');
  const fileLog = await openFileLog({ dir, logger: quiet });
  defer(t, () => fileLog.close());
  const { wrapLog, withGroups, ...rest } = opts;
  const log = fileLog;
  if (withGroups) rest.groups = coordinatorOver(t, log);
  const warnings: string[] = [];
  const registry = new Registry();
  const listener = await startKafkaListener({
    log: wrapLog ? wrapLog(fileLog) : fileLog,
    port: 0,
    registry,
    logger: { info() {}, warn: (m) => warnings.push(m) },
    ...rest,
  });
  defer(t, () => listener.close());
  return { log, listener, registry, warnings };
}

/** A group coordinator over `log` with offsets in memory and no initial rebalance delay, closed when `t` ends. */
export function coordinatorOver(t: Owner, log: Log): GroupCoordinator {
  const groups = new GroupCoordinator({
    offsets: new MemoryOffsetStore(),
    initialRebalanceDelayMs: 0,
    partitionCount: async (topic) => {
      try {
        return (await log.topic(topic)).partitions;
      } catch {
        return null;
      }
    },
  });
  defer(t, () => groups.close());
  return groups;
}

/** A connection that sends requests and reads answers in order. */
export class RawClient {
  private buffered = Buffer.alloc(0);
  private readonly frames: Buffer[] = [];
  private waiting: (() => void) | null = null;
  private correlationId = 0;
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 4) {
        const size = this.buffered.readInt32BE(0);
        if (this.buffered.length < 4 + size) break;
        this.frames.push(this.buffered.subarray(4, 4 + size));
        this.buffered = this.buffered.subarray(4 + size);
      }
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async connect(t: Owner, port: number, opts: { read?: boolean } = {}): Promise<RawClient> {
    const socket = connect({ host: '127.0.0.1', port });
    if (opts.read === false) socket.pause();
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    if (opts.read === false) socket.pause();
    defer(t, () => socket.destroy());
    return client;
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  /** The frame bytes of a request (size included), with the next correlation id. */
  frame(apiKey: number, apiVersion: number, body: object, correlationId = ++this.correlationId): Buffer {
    return encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'raw-test' }, body);
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends a request and returns its answer's body (answers must come in order). */
  async request(apiKey: number, apiVersion: number, body: object): Promise<Body> {
    const id = ++this.correlationId;
    this.write(this.frame(apiKey, apiVersion, body, id));
    const answer = await this.response(apiKey, apiVersion);
    assert.equal(answer.correlationId, id, 'answers come in request order');
    return answer.body;
  }

  /** The next answer, decoded as `apiKey` at `apiVersion`. */
  async response(apiKey: number, apiVersion: number): Promise<{ correlationId: number; body: Body }> {
    return decodeResponse(apiKey, apiVersion, await this.nextFrame());
  }

  async nextFrame(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.isClosed) throw new Error('the connection closed before an answer came');
      if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
        setTimeout(resolve, 100);
      });
    }
    return this.frames.shift()!;
  }

  /** Resolves true once the server closed the connection, false if it is still open after `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return result;
  }
}
