/**
 * The dashboard: its page and files (`GET /`, `GET /assets/:file`: src/dashboard and uPlot's,
 * read from disk once, open to anyone who can reach the server: they hold no data), and the data
 * it shows, `GET /v1/overview` (topics, tasks, views, builds and consumer groups in one answer) and
 * `GET /v1/overview/stream` (the same every OVERVIEW_INTERVAL_MS as Server-Sent Events), which
 * need `query`. The dashboard itself follows one multiplexed stream, GET /v1/events (events.ts).
 */
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { KappaError } from '../errors.ts';
import type { Kappa } from './context.ts';
import { deadLetterTopics } from './metrics.ts';

export const OVERVIEW_INTERVAL_MS = 1000;

/** The dashboard's files: its own (src/dashboard) and uPlot's. */
const DASHBOARD_ASSETS: Record<string, { file: string; type: string }> = {
  'dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  'views.js': { file: 'views.js', type: 'text/javascript; charset=utf-8' },
  'groups.js': { file: 'groups.js', type: 'text/javascript; charset=utf-8' },
  'charts.js': { file: 'charts.js', type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  'uplot.js': { file: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uplot.css': { file: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export async function dashboardRoutes(fastify: FastifyInstance): Promise<void> {
  const { kappa } = fastify;
  /** Files read once, on first use. */
  const files = new Map<string, Buffer>();
  const file = (name: string): Buffer => {
    let f = files.get(name);
    if (f === undefined) files.set(name, (f = readDashboardFile(name)));
    return f;
  };
  fastify.get('/', { config: { scope: null } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(file('index.html')),
  );
  fastify.get('/assets/:file', { config: { scope: null } }, async (req, reply) => {
    const asset = DASHBOARD_ASSETS[(req.params as { file: string }).file];
    if (asset === undefined) throw new KappaError('KAPPA_NOT_FOUND', 'No such dashboard file.', {});
    return reply.type(asset.type).header('cache-control', 'no-cache').send(file(asset.file));
  });

  fastify.get('/v1/overview', { config: { scope: 'query' } }, async () => overview(kappa));
  fastify.get('/v1/overview/stream', { config: { scope: 'query', eventStream: true } }, async (req, reply) => {
    let seq = 0;
    let timer: NodeJS.Timeout | undefined;
    const stream = kappa.streams.start(req, reply, () => clearTimeout(timer));
    // One overview at a time: the next is scheduled once this one is sent.
    const tick = async (): Promise<void> => {
      try {
        stream.send({ id: String(++seq), event: 'overview', data: JSON.stringify(await overview(kappa)) });
      } catch (err) {
        kappa.logError(err);
        stream.end();
      }
      if (!stream.ended()) timer = setTimeout(() => void tick(), OVERVIEW_INTERVAL_MS);
    };
    await tick();
  });
}

function readDashboardFile(name: string): Buffer {
  const path = name.startsWith('uplot/')
    ? createRequire(import.meta.url).resolve(name)
    : fileURLToPath(new URL(`../dashboard/${name}`, import.meta.url));
  return readFileSync(path);
}

/** Topics, tasks, views, builds and Kafka consumer groups in one answer: what the dashboard's overview shows. */
export async function overview(kappa: Kappa): Promise<object> {
  const { log, store, control, engine, app } = kappa;
  const topics = [];
  for (const t of await log.topics()) {
    let records = 0;
    let bytes = 0;
    const ends: number[] = [];
    for (let p = 0; p < t.partitions; p++) {
      const o = await log.offsets(t.name, p);
      records += o.end - o.start;
      ends.push(o.end);
      bytes += await log.sizeBytes(t.name, p);
    }
    topics.push({ name: t.name, partitions: t.partitions, records, ends, bytes });
  }
  const now = Date.now();
  const tasks = [];
  for (const t of engine?.status() ?? []) {
    const { end } = await log.offsets(t.topic, t.partition);
    tasks.push({
      view: t.view,
      version: t.version,
      kind: t.kind,
      topic: t.topic,
      partition: t.partition,
      offset: t.committedOffset,
      lag: Math.max(0, end - t.committedOffset),
      eventsProcessed: t.eventsProcessed,
      watermarkMs: t.watermarkMs,
      checkpointAgeSeconds: t.lastFlushAtMs > 0 ? (now - t.lastFlushAtMs) / 1000 : null,
      building: t.building,
    });
  }
  const alertTopics = [...new Set(app.outputs.filter((o) => o.fromStart).map((o) => o.target.name))];
  return {
    atMs: now,
    topics,
    tasks,
    alertTopics,
    // The views the running config declares: a view in the store but not here is an orphan of an older config.
    configViews: app.views.map((v) => v.name),
    versions: await store.versions(),
    builds: await control.builds(),
    // Records that could not be taken (a schema violation, a view's function that threw): the page shows a badge.
    deadLetters: await deadLetterTopics(log),
    // Kafka consumers' committed offsets and lag (GET /v1/pipelines' consumerGroups): the page lists them when there are any.
    consumerGroups: await kappa.consumerGroups(),
  };
}
