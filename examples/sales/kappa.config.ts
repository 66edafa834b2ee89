/**
 * The sales example: the AGGREGATED SALES view (totals by region and year since the first event)
 * and per-minute windows. Run it with `kappa start --config examples/sales/kappa.config.ts`.
 */
import { Type } from '@sinclair/typebox';
import { avg, count, defineApp, from, sum, topic, tumbling, view } from '../../src/index.ts';

const Sale = Type.Object({
  orderId: Type.String(),
  storeId: Type.String(),
  region: Type.String(),
  sku: Type.String(),
  amount: Type.Number(),
  ts: Type.Integer(),
});

export const sales = topic('sales', { partitions: 4, schema: Sale, key: (s) => s.storeId, time: (s) => s.ts });

export default defineApp({
  topics: [sales],
  views: [
    view(
      'aggregated_sales',
      from(sales)
        .filter((s) => s.amount > 0)
        .groupBy((s) => ({ region: s.region, year: new Date(s.ts).getUTCFullYear() }))
        .aggregate({ total: sum((s) => s.amount), orders: count() }),
    ),
    view(
      'sales_per_minute',
      from(sales)
        .window(tumbling('1m', { outOfOrderness: '5s', allowedLateness: '1m' }))
        .groupBy((s) => ({ region: s.region }))
        .aggregate({ total: sum((s) => s.amount), avg: avg((s) => s.amount) }),
    ),
  ],
});
