/**
 * One multiplexed event stream per page: `GET /v1/events` carries the overview ticks, the row
 * changes of any number of views and the records of any number of topics over ONE connection, so
 * a browser (six HTTP/1.1 connections per host) never runs out of connections however many views
 * and alert partitions an app has. Subscriptions change without a new connection:
 *
 *   GET    /v1/events?overview=1&views=a,b&topics=alerts&recent=20   opens the stream
 *   POST   /v1/events/:stream/subscriptions?views=c&topics=t          adds subscriptions
 *   DELETE /v1/events/:stream/subscriptions?views=a&overview=1        removes them
 *
 * Scopes are those of the routes the stream stands for: a view or the overview needs `query`, a
 * topic `consume:<topic>`. The route's declared scope is `query` when the request names a view or
 * the overview, else `consume:<first topic>`; the handler checks every other topic against the
 * token before anything changes. A subscription request for an unknown view or topic, or one the
 * token may not read, changes nothing. Only the principal that opened a stream may change it.
 *
 * Events (text/event-stream; `id` numbers the events of this stream):
 *   hello     `{ stream, overview, views, topics }`: first, once; the id to change subscriptions with
 *   overview  what GET /v1/overview answers, every OVERVIEW_INTERVAL_MS while subscribed
 *   row       `{ view, version, row }`, reset `{ view, version?, reason }` (changes.ts)
 *   record    `{ topic, partition, offset, timestamp, key, value, headers }` (record-json.ts: a topic with a
 *             format shows its values decoded, or `valueError` and `valueBase64` for one that does not decode)
 *   dropped   `{ topic, reason }`: a topic tail failed (the topic was deleted, say) and was unsubscribed
 * A client that reconnects gets a new stream (a new hello): it reads its views again and asks for
 * `recent` records per partition, since the events of the old stream are not replayed.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KappaError } from '../errors.ts';
import { hasScope } from './auth.ts';
import type { Kappa } from './context.ts';
import { OVERVIEW_INTERVAL_MS, overview } from './dashboard.ts';
import { wholeNumber } from './request.ts';
import type { EventStream } from './sse.ts';
import { recordShower } from './record-json.ts';

/** Views and topics one stream may follow: a page of the dashboard follows every view and alert topic. */
const VIEWS_PER_STREAM_MAX = 1000;
const TOPICS_PER_STREAM_MAX = 100;
/** Multiplexed streams open at once; past it a new one gets 429 (each holds timers and tails). */
const STREAMS_MAX = 1000;
/** Records per partition a topic subscription may start before the end with (`recent`). */
const RECENT_MAX = 1000;

/** What a request asks to follow (or to stop following). */
interface Wanted {
  overview: boolean;
  views: string[];
  topics: string[];
  recent: number;
}

/** One open multiplexed stream and what it follows. */
interface Mux {
  id: string;
  /** The token that opened it (null without tokens): only it may change the subscriptions. */
  owner: string | null;
  sse: EventStream;
  seq: number;
  overview: NodeJS.Timeout | null;
  /** Bumped by each start and stop of the overview, so a tick of an earlier subscription stops itself. */
  overviewRun: number;
  views: Map<string, () => void>;
  topics: Map<string, AbortController>;
}

/** `views=a,b&views=c` → ['a', 'b', 'c'], without duplicates or empty names. */
function names(raw: unknown): string[] {
  const all = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).flatMap((v) => String(v).split(','));
  return [...new Set(all.map((s) => s.trim()).filter((s) => s !== ''))];
}

function wanted(req: FastifyRequest): Wanted {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const flag = String(q.overview ?? '');
  const recent = q.recent === undefined ? 0 : wholeNumber(String(q.recent), 'recent', 0);
  return {
    overview: flag === '1' || flag === 'true',
    views: names(q.views),
    topics: names(q.topics),
    recent: Math.min(recent, RECENT_MAX),
  };
}

/**
 * The scope the onRequest hook checks: `query` for views and the overview (and for a request that
 * names nothing), else reading the first topic. The handler checks the other topics (checkScopes).
 */
function eventsScope(req: FastifyRequest): string {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const topics = q.views === undefined && q.overview === undefined ? names(q.topics) : [];
  return topics.length > 0 ? `consume:${topics[0]}` : 'query';
}

export async function eventRoutes(fastify: FastifyInstance): Promise<void> {
  const { kappa } = fastify;
  /** The open streams by id; a stream leaves when it ends. */
  const open = new Map<string, Mux>();

  fastify.get('/v1/events', { config: { scope: eventsScope, eventStream: true } }, async (req, reply) => {
    const want = wanted(req);
    await check(kappa, req, want);
    if (open.size >= STREAMS_MAX)
      throw new KappaError(
        'KAPPA_OVERLOADED',
        `The server already has ${STREAMS_MAX} event streams open; close some pages, or try again later.`,
        {},
      );
    const mux: Mux = {
      id: randomBytes(12).toString('base64url'),
      owner: req.principal?.name ?? null,
      sse: null as unknown as EventStream,
      seq: 0,
      overview: null,
      overviewRun: 0,
      views: new Map(),
      topics: new Map(),
    };
    mux.sse = kappa.streams.start(req, reply, () => {
      open.delete(mux.id);
      unsubscribe(mux, { overview: true, views: [...mux.views.keys()], topics: [...mux.topics.keys()], recent: 0 });
    });
    if (mux.sse.ended()) return;
    open.set(mux.id, mux);
    send(mux, 'hello', { stream: mux.id, ...following(want) });
    await subscribe(kappa, mux, want);
  });

  const existing = (req: FastifyRequest): Mux => {
    const mux = open.get((req.params as { stream: string }).stream);
    // A stream of another token is "not found" too: its id is not a secret to share.
    if (mux === undefined || mux.sse.ended() || mux.owner !== (req.principal?.name ?? null))
      throw new KappaError(
        'KAPPA_NOT_FOUND',
        'There is no such event stream (it ended, or another token opened it). Open a new one with GET /v1/events.',
        {},
      );
    return mux;
  };
  const subscriptions = '/v1/events/:stream/subscriptions';
  fastify.post(subscriptions, { config: { scope: eventsScope } }, async (req) => {
    const mux = existing(req);
    const want = wanted(req);
    await check(kappa, req, want);
    if (mux.views.size + want.views.length > VIEWS_PER_STREAM_MAX) throw tooMany('views', VIEWS_PER_STREAM_MAX);
    if (mux.topics.size + want.topics.length > TOPICS_PER_STREAM_MAX) throw tooMany('topics', TOPICS_PER_STREAM_MAX);
    await subscribe(kappa, mux, want);
    return current(mux);
  });
  fastify.delete(subscriptions, { config: { scope: eventsScope } }, async (req) => {
    const mux = existing(req);
    unsubscribe(mux, wanted(req));
    return current(mux);
  });
}

function following(w: Wanted): object {
  return { overview: w.overview, views: w.views, topics: w.topics };
}

function current(mux: Mux): object {
  return {
    stream: mux.id,
    overview: mux.overview !== null,
    views: [...mux.views.keys()],
    topics: [...mux.topics.keys()],
  };
}

function tooMany(what: string, max: number): KappaError {
  return new KappaError('KAPPA_INVALID_ARGUMENT', `One event stream follows at most ${max} ${what}.`, { max });
}

/** Refuses (and so changes nothing) unknown views and topics, too many names, and topics the token may not read. */
async function check(kappa: Kappa, req: FastifyRequest, want: Wanted): Promise<void> {
  if (want.views.length > VIEWS_PER_STREAM_MAX) throw tooMany('views', VIEWS_PER_STREAM_MAX);
  if (want.topics.length > TOPICS_PER_STREAM_MAX) throw tooMany('topics', TOPICS_PER_STREAM_MAX);
  if (want.views.length > 0 && kappa.hub === null)
    throw new KappaError('KAPPA_NOT_READY', 'No pipelines run in this server, so views do not change.', {});
  const known = new Set((await kappa.store.versions()).map((v) => v.name));
  for (const view of want.views)
    if (!known.has(view))
      throw new KappaError(
        'KAPPA_UNKNOWN_VIEW',
        `There is no view "${view.slice(0, 100)}". GET /v1/views lists the views.`,
        { view: view.slice(0, 100) },
      );
  const principal = req.principal;
  for (const topic of want.topics) {
    await kappa.log.topic(topic); // KAPPA_UNKNOWN_TOPIC
    if (principal !== null && !hasScope(principal, `consume:${topic}`))
      throw new KappaError(
        'KAPPA_FORBIDDEN',
        `Token "${principal.name}" does not have the scope "consume:${topic}" that following topic "${topic}" needs.`,
        { scope: `consume:${topic}`, token: principal.name },
      );
  }
  if ((want.views.length > 0 || want.overview) && principal !== null && !hasScope(principal, 'query'))
    throw new KappaError(
      'KAPPA_FORBIDDEN',
      `Token "${principal.name}" does not have the scope "query" that following views and the overview needs.`,
      { scope: 'query', token: principal.name },
    );
}

function send(mux: Mux, event: string, data: object | string): boolean {
  return mux.sse.send({
    id: String(++mux.seq),
    event,
    data: typeof data === 'string' ? data : JSON.stringify(data),
  });
}

async function subscribe(kappa: Kappa, mux: Mux, want: Wanted): Promise<void> {
  if (want.overview && mux.overview === null) startOverview(kappa, mux);
  for (const view of want.views) {
    if (mux.views.has(view) || kappa.hub === null) continue;
    // The hub's events carry the view's name; their ids are the hub's, so each is renumbered here.
    mux.views.set(
      view,
      kappa.hub.subscribe(view, null, (e) => void send(mux, e.event, e.data)),
    );
  }
  for (const topic of want.topics) {
    if (mux.topics.has(topic)) continue;
    const abort = new AbortController();
    mux.topics.set(topic, abort);
    const { partitions } = await kappa.log.topic(topic);
    for (let p = 0; p < partitions; p++)
      void tail(kappa, mux, topic, p, want.recent, abort.signal).catch((err: Error) => {
        if (abort.signal.aborted || mux.sse.ended()) return;
        abort.abort();
        mux.topics.delete(topic);
        send(mux, 'dropped', { topic, reason: err.message });
      });
  }
}

function unsubscribe(mux: Mux, want: Wanted): void {
  if (want.overview && mux.overview !== null) {
    clearTimeout(mux.overview);
    mux.overview = null;
    mux.overviewRun++;
  }
  for (const view of want.views) {
    mux.views.get(view)?.();
    mux.views.delete(view);
  }
  for (const topic of want.topics) {
    mux.topics.get(topic)?.abort();
    mux.topics.delete(topic);
  }
}

/** The overview now, then every OVERVIEW_INTERVAL_MS: one at a time, the next scheduled once this one is sent. */
function startOverview(kappa: Kappa, mux: Mux): void {
  const run = ++mux.overviewRun;
  const stopped = (): boolean => run !== mux.overviewRun || mux.sse.ended();
  const tick = async (): Promise<void> => {
    try {
      const o = await overview(kappa);
      if (stopped()) return;
      send(mux, 'overview', o);
    } catch (err) {
      kappa.logError(err);
      mux.sse.end();
      return;
    }
    if (!stopped()) mux.overview = setTimeout(() => void tick(), OVERVIEW_INTERVAL_MS);
  };
  mux.overview = setTimeout(() => void tick(), 0);
}

/** Records of one partition from `recent` before its end on, as they are appended, until unsubscribed. */
async function tail(
  kappa: Kappa,
  mux: Mux,
  topic: string,
  partition: number,
  recent: number,
  signal: AbortSignal,
): Promise<void> {
  const { start, end } = await kappa.log.offsets(topic, partition);
  const from = Math.max(start, end - recent);
  const show = recordShower(kappa.values, topic);
  try {
    for await (const batch of kappa.log.read(topic, partition, from, { follow: true, signal })) {
      let keepingUp = true;
      for (const r of batch.records(from)) keepingUp = send(mux, 'record', await show(partition, r)) && keepingUp;
      if (!keepingUp) await mux.sse.drained(); // read on only as fast as the client takes it
      if (mux.sse.ended() || signal.aborted) break;
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
