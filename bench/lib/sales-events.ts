/**
 * The sales events of the process and rebuild benches (bench/process.ts, bench/rebuild.ts),
 * written in one pass to up to three places:
 *
 *  - the FileLog topic `sales`, 4 partitions (partition = order number mod 4), in batches of 1,000
 *    records through `appendBatch`, fsync `never` (scratch data: setup speed is all that matters);
 *  - optionally, a JSON Lines file holding every record value exactly as it was appended (the same string, so
 *    the same UTF-8 bytes), one per line, in generation order: the batch layer's input;
 *  - the oracle: the region × day totals kept exactly, amounts in integer cents, which both the
 *    Kappa view and DuckDB's answer are checked against.
 *
 * Both benches use this one generator (fixed seed), so at the same count they build `region_day`
 * over byte-identical logs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { EncodableRecord, FileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';

export const TOPIC = 'sales';
export const PARTITIONS = 4;
export const BATCH_RECORDS = 1000;
export const DAY_MS = 86_400_000;
export const REGIONS = ['north', 'south', 'east', 'west', 'centre', 'islands'];
export const DAYS = 7;
export const SKUS = 10_000;
export const ORDERS = 1_000_000;
const T0 = Date.UTC(2026, 0, 5);
const SEED = 7;
/** Lines buffered before one write to the JSON Lines file (about 1 MB). */
const JSONL_CHUNK_LINES = 10_000;
/** Appends in flight at most, so the events are never all in memory. */
const APPENDS_IN_FLIGHT_MAX = 8;

/** One row of the region × day aggregation: sum of amounts and count of events. */
export interface RegionDayRow {
  region: string;
  day: number;
  amount: number;
  orders: number;
}

/** The exact totals: amounts summed in integer cents, so no rounding depends on the order of the sum. */
export interface OracleRow {
  region: string;
  day: number;
  cents: number;
  orders: number;
}

interface Sale {
  key: string;
  value: string;
  orderNum: number;
  region: string;
  ts: number;
  cents: number;
}

/** One sale: about 100 bytes of JSON. Order ids are spread at random, so an order's lines land far apart. */
function sale(i: number, events: number, random: () => number): Sale {
  const orderNum = Math.floor(random() * ORDERS);
  const orderId = `o${String(orderNum).padStart(7, '0')}`;
  const sku = `sku-${String(Math.floor(random() * SKUS)).padStart(5, '0')}`;
  const region = REGIONS[Math.floor(random() * REGIONS.length)];
  const ts = T0 + Math.floor((i / events) * DAYS * DAY_MS) + Math.floor(random() * 60_000);
  const qty = 1 + Math.floor(random() * 5);
  // The same draw as process.ts's `Math.round(random() * 50_000) / 100`, kept as cents for the oracle.
  const cents = Math.round(random() * 50_000);
  const value = JSON.stringify({ orderId, sku, region, qty, amount: cents / 100, ts });
  return { key: orderId, value, orderNum, region, ts, cents };
}

/**
 * Writes `events` sales to `log` (which must not hold the topic yet) and, when given, to
 * `jsonlPath`, and returns the exact region × day totals, sorted by region then day.
 */
export async function writeEvents(log: FileLog, events: number, jsonlPath: string | null = null): Promise<OracleRow[]> {
  await log.createTopic(TOPIC, { partitions: PARTITIONS });
  const random = seededRandom(SEED);
  const oracle = new Map<string, OracleRow>();
  const pending: EncodableRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  const appends: Promise<unknown>[] = [];
  const fd = jsonlPath === null ? null : openSync(jsonlPath, 'w');
  try {
    let lines: string[] = [];
    let written = 0;
    for (let i = 0; i < events; i++) {
      const s = sale(i, events, random);
      const day = Math.floor(s.ts / DAY_MS);
      const key = `${s.region}/${day}`;
      const row = oracle.get(key);
      if (row) {
        row.cents += s.cents;
        row.orders++;
      } else {
        oracle.set(key, { region: s.region, day, cents: s.cents, orders: 1 });
      }
      if (fd !== null) lines.push(s.value);
      if (fd !== null && lines.length === JSONL_CHUNK_LINES) {
        writeSync(fd, lines.join('\n') + '\n');
        lines = [];
      }
      const p = s.orderNum % PARTITIONS;
      pending[p].push({ key: s.key, value: s.value, timestamp: T0 + i });
      if (pending[p].length === BATCH_RECORDS) {
        appends.push(log.appendBatch(TOPIC, p, pending[p]));
        written += BATCH_RECORDS;
        pending[p] = [];
        if (appends.length >= APPENDS_IN_FLIGHT_MAX) await Promise.all(appends.splice(0));
      }
    }
    if (fd !== null && lines.length > 0) writeSync(fd, lines.join('\n') + '\n');
    for (let p = 0; p < PARTITIONS; p++) {
      if (pending[p].length > 0) {
        appends.push(log.appendBatch(TOPIC, p, pending[p]));
        written += pending[p].length;
      }
    }
    await Promise.all(appends);
    if (written !== events) throw new Error(`invariant: wrote ${written} events to the log, meant ${events}`);
  } finally {
    if (fd !== null) closeSync(fd);
  }
  return sortRows([...oracle.values()]);
}

/** Sorts rows by region, then day: the order both sides are compared in. */
export function sortRows<T extends { region: string; day: number }>(rows: T[]): T[] {
  return rows.sort((a, b) => (a.region < b.region ? -1 : a.region > b.region ? 1 : a.day - b.day));
}

/**
 * Differences between computed rows and the oracle, one readable line each (empty when they agree).
 * A sum of doubles depends on the order of its terms, so an amount agrees when it is within half a
 * cent of the exact total: at 10M events the worst-case rounding error of a plain double sum per
 * group is below 0.002.
 */
export function diffRows(rows: RegionDayRow[], oracle: OracleRow[]): string[] {
  const diffs: string[] = [];
  const byKey = new Map(oracle.map((o) => [`${o.region}/${o.day}`, o]));
  const seen = new Set<string>();
  for (const r of rows) {
    const key = `${r.region}/${r.day}`;
    const o = byKey.get(key);
    if (seen.has(key)) diffs.push(`${key}: appears twice`);
    seen.add(key);
    if (!o) diffs.push(`${key}: not among the events written`);
    else if (r.orders !== o.orders || Math.abs(r.amount - o.cents / 100) >= 0.005) {
      diffs.push(
        `${key}: amount ${r.amount} and ${r.orders} orders, expected ${(o.cents / 100).toFixed(2)} and ${o.orders}`,
      );
    }
  }
  for (const o of oracle) if (!seen.has(`${o.region}/${o.day}`)) diffs.push(`${o.region}/${o.day}: missing`);
  return diffs;
}
