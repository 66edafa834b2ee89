/**
 * One client connection: bytes in, frames (frames.ts), requests dispatched in arrival order
 * (dispatch.ts), answers written strictly in that same order however their handlers interleave
 * (a Fetch waiting for data holds back the answers pipelined after it, as Kafka clients expect).
 *
 * Bounds, so that no client can make the process hold unbounded memory or crash it:
 * - frames over `frameBytesMax` or with a negative size close the connection;
 * - at most `inFlightMax` requests of a connection are being handled at once: beyond it the
 *   connection stops reading, and TCP pushes back on the client;
 * - a client that does not read its answers: once `writeBufferBytesMax` bytes wait in the socket,
 *   the connection stops reading requests until the socket drains;
 * - frame bytes of all connections together are bounded by the listener's MemoryPool, and a frame
 *   must arrive whole within `frameMs` of its size (so announced frames cannot hold the pool);
 * - a connection with nothing in flight for `idleMs` is closed (Kafka's connections.max.idle.ms).
 */
import type { Socket } from 'node:net';
import { type Dispatcher, type Outcome } from './dispatch.ts';
import { FrameReader, type MemoryPool } from './frames.ts';
import type { Session } from './context.ts';
import type { KafkaMetrics } from './metrics.ts';

export interface ConnectionLimits {
  frameBytesMax: number;
  /**
   * Longest a frame may take to arrive once its size is read. Its bytes are reserved in the shared
   * pool meanwhile, so a client that announces big frames and sends nothing must not hold them.
   */
  frameMs: number;
  inFlightMax: number;
  writeBufferBytesMax: number;
  idleMs: number;
}

export type CloseReason = 'client' | 'idle' | 'protocol' | 'auth' | 'shutdown';

/** One request in flight: its place in the answer order, and its answer once ready. */
interface Slot {
  done: boolean;
  outcome: Outcome | null;
}

export class KafkaConnection {
  private readonly reader: FrameReader;
  private readonly slots: Slot[] = [];
  private readonly abort = new AbortController();
  private inFlight = 0;
  private closed = false;
  private waitingForMemory = false;
  private shuttingDown = false;
  private frameTimer: NodeJS.Timeout | null = null;
  private readonly retryAfterRelease = (): void => {
    this.waitingForMemory = false;
    this.guarded(() => this.pump());
  };

  constructor(
    private readonly socket: Socket,
    private readonly session: Session,
    private readonly dispatcher: Dispatcher,
    private readonly pool: MemoryPool,
    private readonly metrics: KafkaMetrics,
    private readonly limits: ConnectionLimits,
    private readonly onClosed: (conn: KafkaConnection, reason: CloseReason) => void,
    private readonly onError: (err: unknown) => void,
  ) {
    this.reader = new FrameReader(limits.frameBytesMax, pool);
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleMs);
    socket.on('timeout', () => {
      if (this.inFlight === 0) this.close('idle');
    });
    socket.on('data', (chunk: Buffer) => {
      this.metrics.bytesIn.inc(chunk.length);
      this.reader.push(chunk);
      this.guarded(() => this.pump());
    });
    socket.on('drain', () => this.guarded(() => this.pump()));
    socket.on('end', () => this.close('client'));
    socket.on('error', () => this.close('client'));
    socket.on('close', () => this.close('client'));
  }

  /** Stops reading, lets the requests in flight finish (long polls end early), then closes. */
  shutdown(): Promise<void> {
    this.shuttingDown = true;
    this.abort.abort();
    this.socket.pause();
    if (this.inFlight === 0) this.closeAfterWrite('shutdown');
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  /** Closes at once: answers not yet written are dropped. */
  destroy(): void {
    this.close('shutdown');
  }

  /**
   * Runs `fn` from a socket event: a throw there would be an uncaught exception and end the process,
   * so whatever a client sent, the worst it gets is its own connection closed.
   */
  private guarded(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onError(err);
      this.close('protocol');
    }
  }

  /** Reads frames while the bounds allow, dispatching each; pauses the socket when they do not. */
  private pump(): void {
    while (!this.closed && !this.shuttingDown && !this.waitingForMemory) {
      if (this.inFlight >= this.limits.inFlightMax) break;
      if (this.socket.writableLength > this.limits.writeBufferBytesMax) break;
      const next = this.reader.next();
      if (next.kind === 'need-more') {
        this.watchFrame();
        break;
      }
      if (next.kind === 'bad-size') {
        this.metrics.requests.inc({ api: 'unreadable', error: 'CLOSED' });
        this.close('protocol');
        return;
      }
      if (next.kind === 'no-memory') {
        this.waitingForMemory = true;
        this.pool.onRelease(this.retryAfterRelease);
        break;
      }
      this.stopWatchingFrame();
      this.start(next.frame);
    }
    if (this.closed) return;
    const blocked =
      this.shuttingDown ||
      this.waitingForMemory ||
      this.inFlight >= this.limits.inFlightMax ||
      this.socket.writableLength > this.limits.writeBufferBytesMax;
    if (blocked) this.socket.pause();
    else this.socket.resume();
  }

  /** Closes the connection if the frame being read has not arrived whole within frameMs. */
  private watchFrame(): void {
    if (!this.reader.midFrame || this.frameTimer !== null) return;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = null;
      if (this.reader.midFrame) this.close('idle');
    }, this.limits.frameMs);
    this.frameTimer.unref();
  }

  private stopWatchingFrame(): void {
    if (this.frameTimer === null) return;
    clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  private start(frame: Buffer): void {
    const slot: Slot = { done: false, outcome: null };
    this.slots.push(slot);
    this.inFlight++;
    // Runs from a promise callback too: guarded, so nothing thrown there goes unhandled.
    const finish = (outcome: Outcome): void => {
      // Handed back before the release wakes the connections waiting for memory, which may reuse it.
      if (outcome.frameFree === true) this.reader.recycle(frame);
      this.pool.release(frame.length);
      this.inFlight--;
      slot.done = true;
      slot.outcome = outcome;
      this.guarded(() => {
        this.flush();
        if (this.shuttingDown && this.inFlight === 0) this.closeAfterWrite('shutdown');
        else this.pump();
      });
    };
    let result: Promise<Outcome> | Outcome;
    try {
      result = this.dispatcher.dispatch(frame, this.session, this.abort.signal);
    } catch {
      // The dispatcher answers every failure it expects; anything else means this connection's
      // state can no longer be trusted.
      finish({ chunks: null, close: 'protocol' });
      return;
    }
    if (result instanceof Promise) result.then(finish, () => finish({ chunks: null, close: 'protocol' }));
    else finish(result);
  }

  /** Writes the answers that are ready, in request order, stopping at the first still in flight. */
  private flush(): void {
    if (this.closed) return;
    let corked = false;
    while (this.slots.length > 0 && this.slots[0].done) {
      const { outcome } = this.slots.shift()!;
      if (outcome!.chunks !== null) {
        if (!corked) {
          this.socket.cork();
          corked = true;
        }
        for (const chunk of outcome!.chunks) {
          this.metrics.bytesOut.inc(chunk.length);
          this.socket.write(chunk);
        }
      }
      if (outcome!.close !== null) {
        if (corked) this.socket.uncork();
        this.closeAfterWrite(outcome!.close);
        return;
      }
    }
    if (corked) this.socket.uncork();
  }

  private closeAfterWrite(reason: CloseReason): void {
    this.socket.end();
    this.close(reason, false);
  }

  private close(reason: CloseReason, destroy = true): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchingFrame();
    this.abort.abort();
    this.reader.discard();
    if (this.waitingForMemory) this.pool.forget(this.retryAfterRelease);
    if (destroy) this.socket.destroy();
    else setTimeout(() => this.socket.destroy(), 1000).unref();
    this.onClosed(this, reason);
  }
}
