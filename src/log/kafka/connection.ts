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
/** The scratch buffer reads go to when they do not go straight into an answer. */
const SCRATCH_BYTES = 64 * 1024;
/** An answer with at least this much still to come is read straight into its own buffer. */
const DIRECT_READ_MIN = 16 * 1024;

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
  /** The answer being read (its bytes after the size), and how much of it has arrived. */
  private frame: Buffer | null = null;
  private filled = 0;
  /** The size of the next answer, as far as it has arrived. */
  private readonly sizeBytes = Buffer.alloc(4);
  private sizeHave = 0;
  /** Reads that do not go straight into an answer land here (plain TCP only; see `readBuffer`). */
  private scratch: Buffer | null = null;
  private ended: KafkaConnectionError | null = null;

  constructor(private readonly opts: BrokerConnectionOptions) {
    super();
  }

  /** Connects; rejects with a KafkaConnectionError. (The SASL login, if any, is the caller's: sasl.ts.) */
  async connect(host: string, port: number): Promise<void> {
    const socket = await this.open(host, port);
    const where = `${host}:${port}`;
    // TLS sockets take no `onread`: their chunks are cut into frames the same way.
    if (this.scratch === null) socket.on('data', (chunk: Buffer) => this.consume(chunk, 0, chunk.length));
    socket.on('error', (err) =>
      this.end(new KafkaConnectionError('network', `connection to ${where} failed: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.end(new KafkaConnectionError('network', `connection to ${where} closed`)));
  }

  /** The plain TCP socket's reads: into buffers of this connection's choosing (`readBuffer`). */
  private onread(): { buffer: () => Buffer; callback: (nread: number, buf: Buffer) => boolean } {
    this.scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
    return { buffer: () => this.readBuffer(), callback: (nread, buf) => this.onRead(nread, buf) };
  }

  private open(host: string, port: number): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const tls = this.opts.tls;
      const socket: Socket =
        tls === undefined
          ? createConnection({ host, port, noDelay: true, onread: this.onread() })
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

  /**
   * Takes `bytes[start, end)` as they arrive: the answer's size, then its bytes, copied into a
   * buffer of its own (allocated once, at its size). Answers each frame as it completes.
   */
  private consume(bytes: Buffer, start: number, end: number): void {
    let pos = start;
    while (pos < end && this.ended === null) {
      if (this.frame === null) {
        const n = Math.min(4 - this.sizeHave, end - pos);
        bytes.copy(this.sizeBytes, this.sizeHave, pos, pos + n);
        this.sizeHave += n;
        pos += n;
        if (this.sizeHave < 4) return;
        this.sizeHave = 0;
        const size = this.sizeBytes.readInt32BE(0);
        if (size < 4 || size > FRAME_BYTES_MAX) return this.broken(`an answer of ${size} bytes`);
        this.frame = Buffer.allocUnsafe(size);
        this.filled = 0;
      }
      const n = Math.min(this.frame.length - this.filled, end - pos);
      bytes.copy(this.frame, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
      if (this.filled === this.frame.length) this.completed();
    }
  }

  /** The frame is whole: answers its request. */
  private completed(): void {
    const frame = this.frame!;
    this.frame = null;
    this.answer(frame);
  }

  /**
   * Where the socket reads next (`onread`): straight into the answer under way when much of it is
   * still to come (no copy, no chunk allocated per read: a 256 KiB Fetch answer took four 64 KiB
   * chunks and a join, which set the collector of a worker thread reading at full speed going),
   * else into the scratch buffer, cut into frames by `consume`.
   */
  private readBuffer(): Buffer {
    const frame = this.frame;
    if (frame !== null && frame.length - this.filled >= DIRECT_READ_MIN) return frame.subarray(this.filled);
    return this.scratch!;
  }

  /** `nread` bytes were read into `buf` (what `readBuffer` gave). */
  private onRead(nread: number, buf: Buffer): boolean {
    if (this.ended !== null) return false;
    if (buf === this.scratch) this.consume(buf, 0, nread);
    else {
      this.filled += nread;
      if (this.filled === this.frame!.length) this.completed();
    }
    return this.ended === null;
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
