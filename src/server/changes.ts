/**
 * Row changes of views, for `GET /v1/views/:view/changes` (Server-Sent Events). The engine says
 * which keys of a live version a flush changed, after the flush committed; the hub reads those
 * rows back from the public view (so an event always carries a committed row, as a query would see
 * it), numbers them per view, keeps the last `historyMax` events, and hands them to subscribers.
 * A client that reconnects with `Last-Event-ID` gets every event after it that is still kept;
 * if that id is older than the history (or from before a restart), it gets a `reset` event and
 * should read the view again. A version going live is a `reset` too: the view now reads another
 * table.
 */
import type { Engine, ViewChange } from '../stream/index.ts';
import type { ViewStore } from '../view/index.ts';

export interface ChangeEvent {
  /** `<boot>-<sequence>`: unique across restarts of the server, increasing within one. */
  id: string;
  event: 'row' | 'delete' | 'reset' | 'record' | 'overview';
  /** JSON: `{ view, version, row }` for a row, `{ view, version, key }` for a row deleted, `{ view, version, reason }` for a reset. */
  data: string;
}

type Listener = (e: ChangeEvent) => void;

interface ViewChannel {
  seq: number;
  history: ChangeEvent[];
  listeners: Set<Listener>;
  /** Changes are read back and delivered one at a time, in commit order. */
  chain: Promise<void>;
}

/**
 * Keys read back before the hub yields to the event loop. Each key is one primary-key lookup
 * (a few µs), so a flush of 10,000 changed rows never holds the event loop for more than a
 * millisecond or two at a time.
 */
const KEYS_PER_STEP = 500;

export class ChangeHub {
  private readonly channels = new Map<string, ViewChannel>();
  private readonly boot = Date.now().toString(36);
  private readonly unsubscribe: () => void;

  constructor(
    engine: Engine,
    private readonly store: ViewStore,
    private readonly onError: (err: Error) => void,
    private readonly historyMax = 10_000,
  ) {
    this.unsubscribe = engine.onChange((c) => this.changed(c));
  }

  close(): void {
    this.unsubscribe();
  }

  private channel(view: string): ViewChannel {
    let c = this.channels.get(view);
    if (c === undefined)
      this.channels.set(view, (c = { seq: 0, history: [], listeners: new Set(), chain: Promise.resolve() }));
    return c;
  }

  private changed(change: ViewChange): void {
    const ch = this.channel(change.view);
    if (change.kind === 'rows' && ch.listeners.size === 0) {
      // Nobody listens: reading the rows back would cost a lookup per changed key for nothing (a
      // backfill changes every row it writes). The change is numbered but not kept, so a client
      // reconnecting with an older Last-Event-ID gets a `reset` and reads the view again.
      ch.seq++;
      ch.history.length = 0;
      return;
    }
    ch.chain = ch.chain
      .then(async () => {
        if (change.kind === 'live') {
          this.publish(ch, 'reset', {
            view: change.view,
            version: change.version,
            reason: `version ${change.version} is live now; read the view again`,
          });
          return;
        }
        let keyNames: string[] | null = null;
        for (let i = 0; i < change.keys.length; i += KEYS_PER_STEP) {
          if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
          const keys = change.keys.slice(i, i + KEYS_PER_STEP);
          const rows = await this.rows(change.view, change.version, keys);
          if (rows === null) return; // the version was dropped: the `live` change that follows resets the subscribers
          for (let k = 0; k < keys.length; k++) {
            const row = rows[k];
            if (row !== null) {
              this.publish(ch, 'row', { view: change.view, version: change.version, row });
              continue;
            }
            keyNames ??= await this.keyNames(change.view, change.version);
            if (keyNames === null) return;
            const key = Object.fromEntries(keyNames.map((name, c) => [name, keys[k][c] ?? null]));
            this.publish(ch, 'delete', { view: change.view, version: change.version, key });
          }
        }
      })
      .catch((err: Error) => this.onError(err));
  }

  /**
   * The committed rows of the version with these keys, by primary key, one per key (null: the key
   * has no row any more). Null for a version dropped since the flush (a quick replay and swap).
   */
  private async rows(
    view: string,
    version: number,
    keys: (string | number | null)[][],
  ): Promise<(Record<string, unknown> | null)[] | null> {
    try {
      return await this.store.rowsByKey(view, version, keys);
    } catch (err) {
      if ((await this.store.definition(view, version)) === null) return null;
      throw err;
    }
  }

  /** The names of the version's key columns (null: the version was dropped). */
  private async keyNames(view: string, version: number): Promise<string[] | null> {
    return (await this.store.definition(view, version))?.keyColumns.map((c) => c.name) ?? null;
  }

  private publish(ch: ViewChannel, event: ChangeEvent['event'], data: object): void {
    const e: ChangeEvent = { id: `${this.boot}-${++ch.seq}`, event, data: JSON.stringify(data) };
    ch.history.push(e);
    if (ch.history.length > this.historyMax) ch.history.splice(0, ch.history.length - this.historyMax);
    for (const l of ch.listeners) l(e);
  }

  /**
   * Subscribes to a view's changes. With `lastEventId`, first the kept events after it (or one
   * `reset` when they are not kept any more). Returns the unsubscribe function.
   */
  subscribe(view: string, lastEventId: string | null, listener: Listener): () => void {
    const ch = this.channel(view);
    if (lastEventId !== null) {
      const [boot, seqText] = lastEventId.split('-');
      const seq = Number(seqText);
      const first = ch.history[0];
      const firstSeq = first === undefined ? ch.seq + 1 : Number(first.id.split('-')[1]);
      if (boot !== this.boot || !Number.isSafeInteger(seq) || seq < firstSeq - 1 || seq > ch.seq) {
        listener({
          id: `${this.boot}-${ch.seq}`,
          event: 'reset',
          data: JSON.stringify({
            view,
            reason: 'the events after Last-Event-ID are no longer kept; read the view again',
          }),
        });
      } else {
        for (const e of ch.history) if (Number(e.id.split('-')[1]) > seq) listener(e);
      }
    }
    ch.listeners.add(listener);
    return () => ch.listeners.delete(listener);
  }
}
