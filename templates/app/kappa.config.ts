/**
 * The app: one topic of orders and two views over it, kept up to date as orders arrive and served
 * as SQL tables. `npx kappa check` checks this file; `npx kappa start` runs it (and the HTTP API and
 * the dashboard on http://127.0.0.1:8080/).
 *
 * Change a view (say, count only orders over 10) and run `npx kappa start` again: Kappa builds the
 * new version by replaying the log beside the old one, which keeps answering queries until the new
 * one has caught up.
 */
import { count, defineApp, from, sum, topic, tumbling, view } from 'kappa';
import { Order } from './schema.ts';

/** Orders, spread over 2 partitions by customer (one customer's orders stay in order), timed by `ts`. */
export const orders = topic('orders', { partitions: 2, schema: Order, key: (o) => o.customer, time: (o) => o.ts });

/** Revenue and order count per country, since the first order. */
export const revenueByCountry = view(
  'revenue_by_country',
  from(orders)
    .groupBy((o) => ({ country: o.country }))
    .aggregate({ revenue: sum((o) => o.amount), orders: count() }),
);

/** Orders and revenue per product and minute (event time; orders up to 5 s out of order are expected). */
export const ordersPerMinute = view(
  'orders_per_minute',
  from(orders)
    .window(tumbling('1m', { outOfOrderness: '5s' }))
    .groupBy((o) => ({ product: o.product }))
    .aggregate({ orders: count(), revenue: sum((o) => o.amount) }),
);

export default defineApp({
  topics: [orders],
  views: [revenueByCountry, ordersPerMinute],
});
