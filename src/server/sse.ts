/**
 * Server-Sent Events, for every streaming route (a topic's tail, a view's changes, the dashboard's
 * overview): the response is taken from Fastify (hijacked), opened with a comment, kept alive by a
 * heartbeat comment every SSE_HEARTBEAT_MS, and ended when the client goes, when the route ends
 * it, or when the server closes (EventStreams.endAll, so close() does not wait for live streams).
 *
 * Wire format (text/event-stream): each event is `id: <id>\nevent: <name>\ndata: <json>\n\n`;
 * lines starting with ':' are comments a client ignores.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

const SSE_HEARTBEAT_MS = 15_000;
/** Bytes queued for a slow SSE client before its stream of pushed events is cut (it reconnects with Last-Event-ID). */
const SSE_BUFFER_MAX = 8 * 1024 * 1024;

/**
 * An open event stream. `send` returns false once the client is not keeping up (the socket's
 * buffer is full): a producer that can wait (a topic tail) awaits `drained()`; pushed events (view
 * changes) are instead dropped with the connection once SSE_BUFFER_MAX is queued, and the client
 * reconnects with Last-Event-ID.
 */
/** One event: `id` (the client's Last-Event-ID after it), the event's name, and its data as one line of JSON. */
export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

export interface EventStream {
  send(e: SseEvent): boolean;
  drained(): Promise<void>;
  end(): void;
  ended(): boolean;
}

/** The server's open event streams. */
export class EventStreams {
  private readonly open = new Set<() => void>();

  /** Answers the request with an event stream; `onEnd` runs once, however the stream ends. */
  start(req: FastifyRequest, reply: FastifyReply, onEnd: () => void): EventStream {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': kappa\n\n');
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      this.open.delete(end);
      onEnd();
      res.end();
      res.emit('drain'); // wakes a producer waiting in drained()
    };
    this.open.add(end);
    req.raw.on('close', end);
    if (req.raw.destroyed || res.destroyed) end(); // the client left while the route was getting ready
    return {
      send(e) {
        if (ended) return false;
        const ok = res.write(`id: ${e.id}\nevent: ${e.event}\ndata: ${e.data}\n\n`);
        if (!ok && res.writableLength > SSE_BUFFER_MAX) end();
        return ok;
      },
      drained: () => (ended ? Promise.resolve() : new Promise<void>((resolve) => res.once('drain', () => resolve()))),
      end,
      ended: () => ended,
    };
  }

  /** Ends every open stream (the server is closing). */
  endAll(): void {
    for (const end of this.open) end();
  }
}
