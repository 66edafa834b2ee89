/**
 * The formats bench's data (bench/formats.ts): the sales record of bench/lib/sales-events.ts as an
 * Avro schema, a .proto message and the TypeBox schema of today's JSON path, the sale values
 * themselves, and a writer that appends them to a log encoded by any of the formats.
 *
 * `sales(events)` draws exactly what sales-events.ts draws for its JSON values (same seed, same
 * draws in the same order), as plain objects, so a log written by `writeSales(log, n, encode)`
 * holds the same sales, keys, partitions and timestamps as `writeEvents(log, n)`, in another
 * format. The bench checks this: both writers' exact totals must be equal.
 */
import type { EncodableRecord, FileLog } from '../../src/log/index.ts';
import { seededRandom } from '../../src/random.ts';
import {
  BATCH_RECORDS,
  DAY_MS,
  DAYS,
  ORDERS,
  type OracleRow,
  PARTITIONS,
  REGIONS,
  SKUS,
  TOPIC,
  sortRows,
} from './sales-events.ts';

/** sales-events.ts's first event time and seed (not exported there). */
const T0 = Date.UTC(2026, 0, 5);
const SEED = 7;
/** Appends in flight at most, as in sales-events.ts. */
const APPENDS_IN_FLIGHT_MAX = 8;

/** One sale as a pipeline sees it. */
export interface SaleValue {
  orderId: string;
  sku: string;
  region: string;
  qty: number;
  amount: number;
  ts: number;
}

/** The Avro schema of the sale (ts: a long of milliseconds). */
export const SALE_AVSC = JSON.stringify({
  type: 'record',
  name: 'Sale',
  namespace: 'bench',
  fields: [
    { name: 'orderId', type: 'string' },
    { name: 'sku', type: 'string' },
    { name: 'region', type: 'string' },
    { name: 'qty', type: 'int' },
    { name: 'amount', type: 'double' },
    { name: 'ts', type: 'long' },
  ],
});

/** The Protobuf message of the sale; field names as in the JSON so decoded values are the same objects. */
export const SALE_PROTO = `syntax = "proto3";
package bench;

message Sale {
  string orderId = 1;
  string sku = 2;
  string region = 3;
  int32 qty = 4;
  double amount = 5;
  int64 ts = 6;
}
`;

/** The TypeBox schema of bench/rebuild.ts's config, as source text for a config file. */
export const SALE_TYPEBOX_SOURCE =
  'Type.Object({ orderId: Type.String(), sku: Type.String(), region: Type.String(), qty: Type.Integer(), amount: Type.Number(), ts: Type.Integer() })';

/** A sale with what the writer needs besides its value. */
interface Drawn {
  value: SaleValue;
  orderNum: number;
  cents: number;
}

/** The i-th of `events` sales, drawn exactly as sales-events.ts's `sale` draws it. */
function draw(i: number, events: number, random: () => number): Drawn {
  const orderNum = Math.floor(random() * ORDERS);
  const orderId = `o${String(orderNum).padStart(7, '0')}`;
  const sku = `sku-${String(Math.floor(random() * SKUS)).padStart(5, '0')}`;
  const region = REGIONS[Math.floor(random() * REGIONS.length)];
  const ts = T0 + Math.floor((i / events) * DAYS * DAY_MS) + Math.floor(random() * 60_000);
  const qty = 1 + Math.floor(random() * 5);
  const cents = Math.round(random() * 50_000);
  return { value: { orderId, sku, region, qty, amount: cents / 100, ts }, orderNum, cents };
}

/** The first `count` sales of a run of `count`: distinct values (random order ids, SKUs, amounts, times). */
export function sales(count: number): SaleValue[] {
  const random = seededRandom(SEED);
  const out: SaleValue[] = [];
  for (let i = 0; i < count; i++) out.push(draw(i, count, random).value);
  return out;
}

/**
 * Writes `events` sales to `log`'s topic `sales` (which must not exist yet), each value encoded by
 * `encode`, with sales-events.ts's keys, partitions, batches and timestamps; returns the exact
 * region × day totals, sorted as sales-events.ts sorts them.
 */
export async function writeSales(
  log: FileLog,
  events: number,
  encode: (sale: SaleValue) => Buffer | string,
): Promise<OracleRow[]> {
  await log.createTopic(TOPIC, { partitions: PARTITIONS });
  const random = seededRandom(SEED);
  const oracle = new Map<string, OracleRow>();
  const pending: EncodableRecord[][] = Array.from({ length: PARTITIONS }, () => []);
  const appends: Promise<unknown>[] = [];
  let written = 0;
  for (let i = 0; i < events; i++) {
    const { value, orderNum, cents } = draw(i, events, random);
    const day = Math.floor(value.ts / DAY_MS);
    const key = `${value.region}/${day}`;
    const row = oracle.get(key);
    if (row) {
      row.cents += cents;
      row.orders++;
    } else {
      oracle.set(key, { region: value.region, day, cents, orders: 1 });
    }
    const p = orderNum % PARTITIONS;
    pending[p].push({ key: value.orderId, value: encode(value), timestamp: T0 + i });
    if (pending[p].length === BATCH_RECORDS) {
      appends.push(log.appendBatch(TOPIC, p, pending[p]));
      written += BATCH_RECORDS;
      pending[p] = [];
      if (appends.length >= APPENDS_IN_FLIGHT_MAX) await Promise.all(appends.splice(0));
    }
  }
  for (let p = 0; p < PARTITIONS; p++) {
    if (pending[p].length > 0) {
      appends.push(log.appendBatch(TOPIC, p, pending[p]));
      written += pending[p].length;
    }
  }
  await Promise.all(appends);
  if (written !== events) throw new Error(`invariant: wrote ${written} events to the log, meant ${events}`);
  return sortRows([...oracle.values()]);
}
