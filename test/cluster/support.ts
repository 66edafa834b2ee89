/**
 * What the cluster tests share: a Kafka-protocol log (a `kappa start` serving its Kafka listener
 * over its embedded log), a PostgreSQL database, an app config, `kappa start` processes that run
 * the app on that log and database, and a producer that sends sales through the Kafka protocol
 * (kafkajs, idempotent, acks=all) and remembers which were acknowledged.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import pg from 'pg';
import { tempDir } from '../support/cleanup.ts';
import { type KappaWithKafka, startKappaWithKafka } from '../support/kafka-clients.ts';
import { type OwnedChild, type Owner, startKappa, waitFor } from '../support/processes.ts';

export const KAPPA_SRC = new URL('../../src/index.ts', import.meta.url).pathname;
export const REGIONS = ['north', 'south', 'east', 'west', 'centre'];
export const PARTITIONS = 4;
export const HEARTBEAT_MS = 200;
export const SESSION_TIMEOUT_MS = 3000;
const START_TIMEOUT_MS = 60_000;

export interface Sale {
  id: number;
  region: string;
  amount: number;
}

/**
 * The app: `region_totals` (sum and count of amounts by region) and an output (`big_copy`) copying
 * big sales (amount ≥ 90) to `big_sales`. `variant` 2 adds a max: a logic change, so a new version is built.
 */
/**
 * The cluster's app: region_totals (variant 2 adds a column: a logic change) and the output
 * big_copy. With `alerts`, also a threshold alert per big sale (its key is the sale's id, so each
 * big sale is one episode and raises exactly one alert) into the topic `alerts`: an output that
 * rebuilds its state from the start of the log wherever it runs, and re-sends alerts the log drops.
 */
export function appConfig(variant: 1 | 2, partitions = PARTITIONS, alerts = false): string {
  const extra = variant === 2 ? ', top: max((s) => s.amount)' : '';
  const rule = alerts
    ? `, threshold('big_sale', from(sales), { key: (s) => String(s.id), when: (s) => s.amount >= 90, to: alerts })`
    : '';
  return `import { alertsTopic, count, defineApp, from, max, sum, threshold, topic, view } from ${JSON.stringify(KAPPA_SRC)};
interface Sale { id: number; region: string; amount: number }
const sales = topic<Sale>('sales', { partitions: ${partitions} });
const big = topic<Sale>('big_sales', { partitions: 2 });
const alerts = alertsTopic('alerts', { partitions: 2 });
export default defineApp({
  topics: [sales, big${alerts ? ', alerts' : ''}],
  views: [
    view('region_totals', from(sales).groupBy((s) => ({ region: s.region })).aggregate({ total: sum((s) => s.amount), n: count()${extra} })),
  ],
  outputs: [from(sales).filter((s) => s.amount >= 90).to(big, { name: 'big_copy' })${rule}],
});
`;
}

export function writeConfig(t: Owner, variant: 1 | 2, partitions = PARTITIONS, alerts = false): string {
  const dir = tempDir(t, 'kappa-cluster-app-');
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  const path = join(dir, 'kappa.config.ts');
  writeFileSync(path, appConfig(variant, partitions, alerts));
  return path;
}

export interface Member {
  child: OwnedChild;
  url: string;
  name: string;
}

/** One `kappa start` of the cluster (its own data dir, unused but required; no Kafka listener of its own), folding on the main thread or on `workers` threads. */
export async function startMember(
  t: Owner,
  name: string,
  config: string,
  bootstrap: string,
  store: string,
  workers = 0,
  logOptions = '',
): Promise<Member> {
  const child = startKappa(t, [
    '--data-dir',
    tempDir(t, `kappa-cluster-${name}-`),
    '--config',
    config,
    'start',
    '--log',
    `kafka://${bootstrap}${logOptions}`,
    '--store',
    store,
    '--port',
    '0',
    '--workers',
    String(workers),
    '--flush-interval-ms',
    '200',
    '--heartbeat-ms',
    String(HEARTBEAT_MS),
    '--session-timeout-ms',
    String(SESSION_TIMEOUT_MS),
  ]);
  const [, url] = await child.waitForOutput(/HTTP API on (\S+)/, { timeoutMs: START_TIMEOUT_MS });
  return { child, url: url!, name };
}

/** Sends sales continuously until stopped; `acked` holds every sale the log acknowledged. */
export function startProducer(bootstrap: string): { acked: Sale[]; stop(): Promise<void>; errors: string[] } {
  const kafka = new Kafka({ clientId: 'cluster-test', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  const acked: Sale[] = [];
  const errors: string[] = [];
  let running = true;
  let nextId = 1;
  const loop = (async () => {
    await producer.connect();
    while (running) {
      const batch: Sale[] = [];
      for (let i = 0; i < 50; i++) {
        const id = nextId++;
        batch.push({ id, region: REGIONS[id % REGIONS.length], amount: (id * 37) % 100 });
      }
      try {
        await producer.send({
          topic: 'sales',
          acks: -1,
          messages: batch.map((s) => ({ key: String(s.id), value: JSON.stringify(s) })),
        });
        acked.push(...batch);
      } catch (err) {
        errors.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await producer.disconnect();
  })();
  return {
    acked,
    errors,
    async stop() {
      running = false;
      await loop;
    },
  };
}

/** The fold the view must equal: per region, the sum, count and max of the acknowledged sales. */
export function expectedTotals(sales: Sale[]): Map<string, { total: number; n: number; top: number }> {
  const out = new Map<string, { total: number; n: number; top: number }>();
  for (const s of sales) {
    const r = out.get(s.region) ?? { total: 0, n: 0, top: -Infinity };
    r.total += s.amount;
    r.n += 1;
    r.top = Math.max(r.top, s.amount);
    out.set(s.region, r);
  }
  return out;
}

/** A reader of the public view straight from PostgreSQL, as psql or Grafana reads it. */
export function pgClient(url: string): pg.Client {
  const client = new pg.Client({ connectionString: url });
  // A server that stops (the outage test) ends the connection; the next query says so.
  client.on('error', () => {});
  return client;
}

export async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  try {
    await waitFor(what, async () => ((await fn()) ? true : null), { timeoutMs, intervalMs: 200 });
  } catch (err) {
    const seen = lastViewSeen === '' ? '' : ` (${lastViewSeen})`;
    throw new Error(`${(err as Error).message}${seen}`, { cause: err });
  }
}

export async function stopMember(m: Member): Promise<void> {
  const exit = await m.child.stop({ signal: 'SIGTERM', timeoutMs: 30_000 });
  assert.equal(exit.code, 0, `${m.name} stopped cleanly:\n${m.child.stderr.slice(-3000)}`);
}

/**
 * Whether the public view `region_totals` holds exactly `expected` (with `top` when the view has it);
 * false while the view does not exist yet (its first flush makes it).
 */
export async function viewEquals(db: pg.Client, expected: ReturnType<typeof expectedTotals>): Promise<boolean> {
  let rows: Record<string, unknown>[];
  try {
    rows = (await db.query('SELECT * FROM region_totals ORDER BY region')).rows;
  } catch (err) {
    if ((err as { code?: string }).code !== '42P01') throw err; // undefined_table
    lastViewSeen = 'region_totals does not exist yet';
    return false;
  }
  const got = new Map(rows.map((r) => [r.region as string, r as Record<string, unknown>]));
  const equal =
    got.size === expected.size &&
    [...expected].every(([region, e]) => {
      const g = got.get(region);
      if (g === undefined || Number(g.total) !== e.total || Number(g.n) !== e.n) return false;
      return !('top' in g) || Number(g.top) === e.top;
    });
  lastViewSeen = equal ? '' : `region_totals had ${JSON.stringify(rows)}; the fold is ${JSON.stringify([...expected])}`;
  return equal;
}

/** What the last `viewEquals` that found a difference saw (for a failure message). */
export let lastViewSeen = '';

/**
 * The ids of the sales in big_sales (or, with `topic` 'alerts', of the sales the alerts name), every
 * partition from the start, through the log's HTTP API at `url`.
 */
export async function readIds(url: string, topic: 'big_sales' | 'alerts' = 'big_sales'): Promise<number[]> {
  const ids: number[] = [];
  for (let p = 0; p < 2; p++) {
    let from = 0;
    for (;;) {
      const res = await fetch(`${url}/v1/topics/${topic}/records?partition=${p}&from=${from}&limit=1000`);
      if (res.status === 404) break; // not made yet
      const body = (await res.json()) as { records: { offset: number; value: unknown }[] };
      if (body.records.length === 0) break;
      for (const r of body.records) {
        const value = (typeof r.value === 'string' ? JSON.parse(r.value) : r.value) as { id?: number; key?: string };
        ids.push(topic === 'alerts' ? Number(value.key) : value.id!);
      }
      from = body.records.at(-1)!.offset + 1;
    }
  }
  return ids;
}

/** Lease owners and how many tasks each holds (leases not run out), straight from PostgreSQL. */
export async function leaseOwners(db: pg.Client): Promise<Map<string, number>> {
  const { rows } = await db.query<{ owner: string; n: string }>(
    'SELECT owner, count(*) AS n FROM kappa_task_leases WHERE owner IS NOT NULL AND expires_at > now() GROUP BY owner',
  );
  return new Map(rows.map((r) => [r.owner, Number(r.n)]));
}

/** Tasks held by the process `pid` (member ids are host/pid/suffix). */
export async function ownedByPid(db: pg.Client, pid: number): Promise<number> {
  let n = 0;
  for (const [owner, count] of await leaseOwners(db)) if (owner.includes(`/${pid}/`)) n += count;
  return n;
}

/**
 * A cluster under test: the log (a `kappa start` serving the topics `sales` and `big_sales` on its
 * Kafka listener), a client of the PostgreSQL database `storeUrl`, and the `kappa start`
 * processes started through `member`. Unless `passed()` was called, what every process printed is
 * shown when the test ends.
 */
export class ClusterFixture {
  readonly members: Member[] = [];
  private ok = false;

  private constructor(
    private readonly t: Owner & { diagnostic(message: string): void },
    readonly broker: KappaWithKafka,
    readonly storeUrl: string,
    readonly db: pg.Client,
  ) {}

  static async start(
    t: Owner & { diagnostic(message: string): void },
    storeUrl: string,
    partitions = PARTITIONS,
  ): Promise<ClusterFixture> {
    const broker = await startKappaWithKafka(t, {
      topics: [
        { name: 'sales', partitions },
        { name: 'big_sales', partitions: 2 },
      ],
    });
    const db = pgClient(storeUrl);
    await db.connect();
    const fixture = new ClusterFixture(t, broker, storeUrl, db);
    t.after(async () => {
      if (!fixture.ok)
        for (const m of fixture.members)
          t.diagnostic(`--- ${m.name} (pid ${m.child.pid})\n${m.child.stderr.slice(-4000)}`);
      await db.end().catch(() => {}); // a test that stopped the server broke this connection
    });
    return fixture;
  }

  /** `logOptions`: appended to the member's kafka:// URL (`?request-timeout-ms=1000`). */
  async member(name: string, config: string, workers = 0, logOptions = ''): Promise<Member> {
    const m = await startMember(this.t, name, config, this.broker.bootstrap, this.storeUrl, workers, logOptions);
    this.members.push(m);
    return m;
  }

  /** The live version of region_totals, or null. */
  async liveVersion(): Promise<number | null> {
    const { rows } = await this.db.query(
      "SELECT version FROM kappa_views WHERE name = 'region_totals' AND state = 'live'",
    );
    return rows.length === 1 ? Number(rows[0].version) : null;
  }

  passed(): void {
    this.ok = true;
  }
}
