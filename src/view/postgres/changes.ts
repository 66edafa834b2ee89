/**
 * What one process's flushes and swaps committed, told to the others (the store's `watchChanges`):
 * PostgreSQL's LISTEN/NOTIFY. A flush with rows and a swap each send one NOTIFY on the channel
 * `kappa_changes` inside their own transaction, so it is delivered if and only if they commit,
 * in commit order. The payload (JSON, under PostgreSQL's 8000-byte limit) names the store instance
 * that sent it, so a process skips its own, the view and version, and the rows' keys — or, when
 * there are too many to name, asks for a reset (read the view again).
 *
 * Each process that watches keeps one connection of its own LISTENing (not one of the pools'); when
 * it is lost (a restart), it reconnects every second, and tells its listener to reset every view it
 * heard of, since changes committed meanwhile were not heard.
 */
import pg from 'pg';
import type { StoreChange } from '../types.ts';

export const CHANGES_CHANNEL = 'kappa_changes';
/** PostgreSQL refuses a NOTIFY payload of 8000 bytes or more. */
const PAYLOAD_BYTES_MAX = 7900;
/** Past this many keys a flush does not name them (the JSON would only be thrown away). */
const KEYS_MAX = 400;
const RECONNECT_MS = 1000;

interface Payload {
  /** The store instance that committed it. */
  s: string;
  c: StoreChange;
}

/** The NOTIFY payload of `change` from store instance `source`; a `reset` when the keys would not fit. */
export function changePayload(source: string, change: StoreChange): string {
  if (change.kind === 'rows' && change.keys.length <= KEYS_MAX) {
    const text = JSON.stringify({ s: source, c: change } satisfies Payload);
    if (Buffer.byteLength(text) < PAYLOAD_BYTES_MAX) return text;
  }
  const c: StoreChange =
    change.kind === 'live' ? change : { kind: 'reset', view: change.view, version: change.version };
  return JSON.stringify({ s: source, c } satisfies Payload);
}

/** The statement a transaction sends to tell the others (see above). */
export function notifyQuery(source: string, change: StoreChange): pg.QueryConfig {
  return { text: 'SELECT pg_notify($1, $2)', values: [CHANGES_CHANNEL, changePayload(source, change)] };
}

/** LISTENs on its own connection until stopped; see the top of this file. */
export function watchChanges(
  connectionString: string,
  source: string,
  listener: (change: StoreChange) => void,
): () => Promise<void> {
  let client: pg.Client | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const heard = new Map<string, number>();
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString });
    c.on('error', () => lost(c));
    c.on('end', () => lost(c));
    c.on('notification', (n) => {
      if (n.channel !== CHANGES_CHANNEL || n.payload === undefined) return;
      const p = JSON.parse(n.payload) as Payload;
      heard.set(p.c.view, p.c.version);
      if (p.s !== source) listener(p.c);
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${CHANGES_CHANNEL}`);
      if (stopped) return void (await c.end().catch(() => {}));
      client = c;
    } catch {
      lost(c);
    }
  };
  const lost = (c: pg.Client): void => {
    if (stopped || timer !== null) return;
    if (client === c) {
      client = null;
      // What committed while this was not listening was not heard: every view heard of is read again.
      for (const [view, version] of heard) listener({ kind: 'reset', view, version });
    }
    void c.end().catch(() => {});
    timer = setTimeout(() => {
      timer = null;
      void connect();
    }, RECONNECT_MS);
    timer.unref();
  };
  void connect();
  return async () => {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
    await client?.end().catch(() => {});
    client = null;
  };
}
