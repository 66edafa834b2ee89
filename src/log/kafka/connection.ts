/**
 * One connection to a Kafka broker, as KafkaLog uses it: TCP or TLS (the SASL login, sasl.ts, is
 * the first requests sent on it), then requests pipelined on it. Each request is one frame (int32 size, request header
 * v1: api key, version, correlation id, client id; then the body wire.ts wrote); a broker answers a
 * connection's requests in order, each answer starting with its request's correlation id (response
 * header v0: KafkaLog sends no flexible version).
 *
 * Failure model: any failure of the connection itself (reset, a frame that cannot be one, an answer
 * with a correlation id nobody waits for) ends it: every request under way fails with a
 * KafkaConnectionError of kind 'network', and the owner (cluster.ts) opens another. A request not
 * answered within the request timeout fails with kind 'timeout' and also ends the connection, since
 * its answer may still come and would be taken for the next request's. A SASL login the broker
 * refuses fails with kind 'authentication' (sasl.ts).
 *
 * At most `maxInFlight` requests are on the wire at once; more wait in order.
 */
import { EventEmitter } from 'node:events';
import { type Socket, createConnection } from 'node:net';
import { type ConnectionOptions as TlsOptions, connect as connectTls } from 'node:tls';
import { ByteReader, ByteWriter } from './codec.ts';

export interface BrokerConnectionOptions {
  clientId: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  maxInFlight: number;
  tls?: TlsOptions;
}

export type ConnectionFailure = 'network' | 'timeout' | 'authentication';

export class KafkaConnectionError extends Error {
  constructor(
    readonly kind: ConnectionFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The largest answer accepted: a Fetch answer is at most its max bytes (KafkaLog asks for a few MiB). */
const FRAME_BYTES_MAX = 256 * 1024 * 1024;

interface Request {
  /** The request's frame, in chunks: its size and header, then the body's chunks. */
  frame: Buffer[];
  correlationId: number;
  read: (r: ByteReader) => unknown;
  resolve: (v: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | null;
}

export class BrokerConnection extends EventEmitter<{ close: []; error: [Error] }> {
  socket: Socket | null = null;
  private nextCorrelationId = 1;
  private readonly waiting: Request[] = [];
  /** Sent, in order: the broker answers them in this order. */
  private readonly inFlight = new Map<number, Request>();
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private ended: KafkaConnectionError | null = null;

  constructor(private readonly opts: BrokerConnectionOptions) {
    super();
  }

  /** Connects; rejects with a KafkaConnectionError. (The SASL login, if any, is the caller's: sasl.ts.) */
  async connect(host: string, port: number): Promise<void> {
    const socket = await this.open(host, port);
    const where = `${host}:${port}`;
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (err) =>
      this.end(new KafkaConnectionError('network', `connection to ${where} failed: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.end(new KafkaConnectionError('network', `connection to ${where} closed`)));
  }

  private open(host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const tls = this.opts.tls;
      const socket: Socket =
        tls === undefined
          ? createConnection({ host, port, noDelay: true })
          : connectTls({ host, port, servername: isIp(host) ? undefined : host, ...tls });
      this.socket = socket;
      const timer = setTimeout(
        () => fail(new Error(`no connection within ${this.opts.connectTimeoutMs} ms`)),
        this.opts.connectTimeoutMs,
      );
      const fail = (err: Error): void => {
        clearTimeout(timer);
        const failure = new KafkaConnectionError('network', `cannot connect to ${host}:${port}: ${err.message}`, {
          cause: err,
        });
        this.end(failure);
        reject(failure);
      };
      socket.once('error', fail);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.removeListener('error', fail);
        socket.setNoDelay(true);
        resolve(socket);
      });
    });
  }

  /** Sends one request (`body`: its chunks, as wire.ts wrote them) and resolves with its answer as `read` reads it. */
  send<T>(apiKey: number, version: number, body: readonly Buffer[], read: (r: ByteReader) => T): Promise<T> {
    if (this.ended !== null) return Promise.reject(this.ended);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = (this.nextCorrelationId % 0x7fffffff) + 1;
    const w = new ByteWriter().appendInt32(0).appendInt16(apiKey).appendInt16(version).appendInt32(correlationId);
    const [head] = w.appendString(this.opts.clientId).chunks();
    let size = head.length - 4;
    for (const b of body) size += b.length;
    head.writeInt32BE(size, 0);
    const frame = [head, ...body];
    return new Promise<T>((resolve, reject) => {
      const request: Request = {
        frame,
        correlationId,
        read,
        resolve: resolve as (v: unknown) => void,
        reject,
        timer: null,
      };
      this.waiting.push(request);
      this.sendWaiting();
    });
  }

  private sendWaiting(): void {
    while (this.waiting.length > 0 && this.inFlight.size < this.opts.maxInFlight && this.ended === null) {
      const request = this.waiting.shift()!;
      this.inFlight.set(request.correlationId, request);
      request.timer = setTimeout(() => this.timedOut(request), this.opts.requestTimeoutMs);
      const socket = this.socket!;
      socket.cork();
      for (const b of request.frame) socket.write(b);
      socket.uncork();
    }
  }

  private timedOut(request: Request): void {
    request.timer = null;
    this.end(new KafkaConnectionError('timeout', `the broker did not answer within ${this.opts.requestTimeoutMs} ms`));
  }

  /** Cuts the bytes received into frames and answers their requests. */
  private received(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4 && this.ended === null) {
      if (this.chunks[0].length < 4) this.join(4);
      const size = this.chunks[0].readInt32BE(0);
      if (size < 4 || size > FRAME_BYTES_MAX) return this.broken(`an answer of ${size} bytes`);
      if (this.buffered < 4 + size) return;
      if (this.chunks[0].length < 4 + size) this.join(4 + size);
      const head = this.chunks[0];
      const frame = head.subarray(4, 4 + size);
      if (head.length === 4 + size) this.chunks.shift();
      else this.chunks[0] = head.subarray(4 + size);
      this.buffered -= 4 + size;
      this.answer(frame);
    }
  }

  /** Joins the first chunks so that the first one holds at least `bytes` bytes. */
  private join(bytes: number): void {
    let n = 0;
    let count = 0;
    while (n < bytes) n += this.chunks[count++].length;
    this.chunks.splice(0, count, Buffer.concat(this.chunks.slice(0, count), n));
  }

  private answer(frame: Buffer): void {
    const correlationId = frame.readInt32BE(0);
    const request = this.inFlight.get(correlationId);
    if (request === undefined) return this.broken(`an answer to request ${correlationId}, which is not under way`);
    this.inFlight.delete(correlationId);
    if (request.timer !== null) clearTimeout(request.timer);
    try {
      request.resolve(request.read(new ByteReader(frame.subarray(4))));
    } catch (err) {
      request.reject(err as Error);
    }
    this.sendWaiting();
  }

  private broken(what: string): void {
    this.end(new KafkaConnectionError('network', `the broker sent ${what}; the connection is closed`));
  }

  /** Ends the connection: every request under way or waiting fails with `reason`. */
  private end(reason: KafkaConnectionError): void {
    if (this.ended !== null) return;
    this.ended = reason;
    this.socket?.destroy();
    const failed = [...this.inFlight.values(), ...this.waiting.splice(0)];
    this.inFlight.clear();
    for (const r of failed) {
      if (r.timer !== null) clearTimeout(r.timer);
      r.reject(reason);
    }
    if (failed.length > 0) this.emit('error', reason);
    this.emit('close');
  }

  /** Closes it: requests under way fail (kind 'network'). Idempotent. */
  async close(): Promise<void> {
    this.destroy();
  }

  destroy(): void {
    this.end(new KafkaConnectionError('network', 'the connection was closed'));
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
