/**
 * Calling a Kappa server over real HTTP:
 *
 *   call(url, method, path, opts?)   fetch, with the body parsed as JSON when it is JSON
 *   postJson(url, path, value, token?)
 *   openSse(url, headers?)           collects Server-Sent Events until close()
 *   rawRequest(url, request)         bytes as they are on a fresh connection (what fetch refuses to send)
 */
import { connect } from 'node:net';

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

export async function call(
  url: string,
  method: string,
  path: string,
  opts: { body?: string | Buffer; type?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.type !== undefined) headers['content-type'] = opts.type;
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  const payload = typeof opts.body === 'string' || opts.body === undefined ? opts.body : new Uint8Array(opts.body);
  const res = await fetch(url + path, { method, headers, body: payload });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (metrics, for example)
  }
  return { status: res.status, headers: res.headers, body, text };
}

export const postJson = (url: string, path: string, value: unknown, token?: string): Promise<Reply> =>
  call(url, 'POST', path, { body: JSON.stringify(value), type: 'application/json', token });

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Opens an SSE stream and collects its events until `close()`. */
export async function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ events: SseEvent[]; until(n: number, ms?: number): Promise<void>; close(): void; status: number }> {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  let waiters: (() => void)[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const e: SseEvent = { id: null, event: 'message', data: '' };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const colon = line.indexOf(':');
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            if (field === 'id') e.id = value;
            else if (field === 'event') e.event = value;
            else if (field === 'data') e.data += value;
            isEvent = true;
          }
          if (isEvent) {
            events.push(e);
            for (const w of waiters) w();
            waiters = [];
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    status: res.status,
    async until(n, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (events.length < n) {
        if (Date.now() > deadline)
          throw new Error(`only ${events.length} of ${n} events arrived: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
    close: () => abort.abort(),
  };
}

export interface RawReply {
  status: number;
  /** The body parsed as JSON, or its text (UTF-8) when it is not JSON. */
  body: unknown;
  /** The start of the answer as received (status line, headers, body), for messages. */
  text: string;
}

/**
 * Sends `request` as it is, bytes and all, on a fresh connection and reads the answer; null if the
 * connection closed without one. For what fetch will not send: bad Host headers, broken framing.
 */
export function rawRequest(url: string, request: string | Buffer): Promise<RawReply | null> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      const bytes = Buffer.concat(chunks);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(bytes.toString('latin1'));
      if (m === null) return resolve(null);
      const text = bytes.toString('utf8');
      const bodyText = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4).toString('utf8');
      let body: unknown = bodyText;
      try {
        body = JSON.parse(bodyText);
      } catch {
        // not JSON
      }
      resolve({ status: Number(m[1]), body, text: text.slice(0, 500) });
    });
  });
}
