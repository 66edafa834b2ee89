/**
 * The row type flows through the pipeline DSL: a view's type names its key columns, its window
 * columns and one column per aggregate, so `InferRow<typeof v>` types query results without a
 * hand-written type. The checks are types: `npm run typecheck` fails when inference breaks (each
 * `const _x: Equal<A, B> = true` compiles only when A and B are the same type). The tests then run
 * the same definitions, so they are real values and not only declarations.
 *
 * It imports from 'kappa', as a config file does (the package's self-reference, see package.json
 * "exports").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type InferRow,
  type TopicDef,
  Type,
  aggregate,
  avg,
  avro,
  jsonSchema,
  protobuf,
  count,
  defineApp,
  first,
  from,
  hopping,
  last,
  max,
  min,
  sum,
  table,
  topic,
  tumbling,
  view,
} from 'kappa';

type Static<S> = S extends { static: infer T } ? T : never;

/** True when X and Y are the same type (not merely assignable one way). */
type Equal<X, Y> = (<G>() => G extends X ? 1 : 2) extends <G>() => G extends Y ? 1 : 2 ? true : false;

const Sale = Type.Object({
  orderId: Type.String(),
  region: Type.String(),
  amount: Type.Number(),
  online: Type.Boolean(),
  ts: Type.Integer(),
});
const sales = topic('sales', { partitions: 2, schema: Sale, key: (s) => s.orderId, time: (s) => s.ts });

const salesByRegion = view(
  'sales_by_region',
  from(sales)
    .groupBy((s) => ({ region: s.region }))
    .aggregate({ total: sum((s) => s.amount), orders: count() }),
);
const _byRegion: Equal<InferRow<typeof salesByRegion>, { region: string; total: number; orders: number }> = true;

const perMinute = view(
  'sales_per_minute',
  from(sales)
    .filter((s) => s.amount > 0)
    .window(tumbling('1m'))
    .groupBy((s) => ({ region: s.region, online: s.online }))
    .aggregate({ avg: avg((s) => s.amount), low: min((s) => s.amount), high: max((s) => s.amount) }),
);
// A boolean group key is stored as 0 or 1.
type PerMinute = {
  region: string;
  online: number;
  window_start: number;
  window_end: number;
  avg: number;
  low: number;
  high: number;
};
const _perMinute: Equal<InferRow<typeof perMinute>, PerMinute> = true;

// map() before window(), a window without group keys, first/last of a string and of a boolean.
const hopped = view(
  'hopped',
  from(sales)
    .map((s) => ({ id: s.orderId, web: s.online }))
    .window(hopping('10m', '5m'))
    .aggregate({ firstId: first((s) => s.id), lastWeb: last((s) => s.web) }),
);
type Hopped = { window_start: number; window_end: number; firstId: string; lastWeb: number };
const _hopped: Equal<InferRow<typeof hopped>, Hopped> = true;

// A custom aggregate's column holds its state's JSON text.
const distinct = view(
  'distinct_regions',
  from(sales)
    .groupBy((s) => ({ day: Math.floor(s.ts / 86_400_000) }))
    .aggregate({
      regions: aggregate<{ region: string }, string[]>({
        init: () => [],
        add: (seen, s) => (seen.includes(s.region) ? seen : [...seen, s.region]),
        merge: (a, b) => [...new Set([...a, ...b])],
      }),
    }),
);
const _distinct: Equal<InferRow<typeof distinct>, { day: number; regions: string | null }> = true;

// InferRow of an aggregation (before view()) is the same row.
const aggregation = from(sales)
  .groupBy((s) => ({ region: s.region }))
  .aggregate({ orders: count() });
const _aggregation: Equal<InferRow<typeof aggregation>, { region: string; orders: number }> = true;

// Topics with a format: the record type is inferred from a TypeBox schema (jsonSchema), declared
// for Avro and Protobuf (their schemas are text, which the type checker cannot read).
type AvroSale = { orderId: string; region: string; amount: number };
const avroSales = topic('avro_sales', { format: avro<AvroSale>('{"type":"record","name":"Sale","fields":[]}') });
const protoSales = topic('proto_sales', { format: protobuf<AvroSale>('syntax = "proto3";', 'shop.Sale') });
const jsonSales = topic('json_sales', { format: jsonSchema(Sale), time: (s) => s.ts });
const _byRegionOf = <T extends { region: string; amount: number }>(t: Parameters<typeof from<T>>[0]) =>
  from(t)
    .groupBy((s) => ({ region: s.region }))
    .aggregate({ total: sum((s) => s.amount) });
const _avroRow: Equal<InferRow<ReturnType<typeof _byRegionOf<AvroSale>>>, { region: string; total: number }> = true;
const _avroTopic: Equal<typeof avroSales, TopicDef<AvroSale>> = true;
const _protoTopic: Equal<typeof protoSales, TopicDef<AvroSale>> = true;
const _jsonRecord: Equal<NonNullable<(typeof jsonSales)['__type']>, Static<typeof Sale>> = true;
const _online: Equal<InferRow<ReturnType<typeof _onlineOf>>, { online: number; n: number }> = true;
function _onlineOf() {
  return from(jsonSales)
    .groupBy((s) => ({ online: s.online }))
    .aggregate({ n: count() });
}

// A join's function gets the table's value type (possibly undefined for a left join), and the
// joined value flows on into the row type.
const stores = topic('stores', {
  schema: Type.Object({ region: Type.String(), manager: Type.String(), target: Type.Number() }),
});
const byStore = table(stores, { key: (s) => s.region });
function _joinedOf() {
  return from(jsonSales)
    .join(
      byStore,
      (s) => s.region,
      (s, st) => ({ manager: st.manager, over: s.amount > st.target }),
    )
    .leftJoin(
      byStore,
      (s) => s.manager,
      (s, st) => ({ ...s, known: st?.target !== undefined }),
    )
    .groupBy((s) => ({ manager: s.manager, known: s.known }))
    .aggregate({ over: sum((s) => (s.over ? 1 : 0)) });
}
function _windowJoinedOf() {
  return from(jsonSales)
    .leftJoin(stores, { within: '1m', key: (s) => s.region }, (s, st) => ({ region: s.region, manager: st?.manager }))
    .groupBy((s) => ({ region: s.region }))
    .aggregate({ n: count() });
}
const _windowJoined: Equal<InferRow<ReturnType<typeof _windowJoinedOf>>, { region: string; n: number }> = true;
const _joined: Equal<InferRow<ReturnType<typeof _joinedOf>>, { manager: string; known: number; over: number }> = true;

// A typed view is still a ViewDef: defineApp takes it as before.
const app = defineApp({ topics: [sales], views: [salesByRegion, perMinute, hopped, distinct] });

test('typed views are the same definitions at run time: their phantom row types set nothing', () => {
  assert.deepEqual(
    app.views.map((v) => v.name),
    ['sales_by_region', 'sales_per_minute', 'hopped', 'distinct_regions'],
  );
  for (const v of app.views) assert.equal('__row' in v, false);
  for (const a of Object.values(salesByRegion.aggregation.aggregates)) assert.equal('__column' in a, false);
  assert.deepEqual(Object.keys(perMinute.aggregation.aggregates), ['avg', 'low', 'high']);
  assert.equal(perMinute.aggregation.stream.windowSpec?.sizeMs, 60_000);
  assert.equal(aggregation.kind, 'aggregation');
});

test('the type checks above hold (each is true only when its types are equal)', () => {
  assert.deepEqual([_byRegion, _perMinute, _hopped, _distinct, _aggregation], [true, true, true, true, true]);
  assert.deepEqual(
    [_avroRow, _avroTopic, _protoTopic, _jsonRecord, _online, _joined, _windowJoined],
    [true, true, true, true, true, true, true],
  );
  assert.deepEqual(
    [avroSales.format?.type, protoSales.format?.message, jsonSales.format?.type],
    ['AVRO', 'shop.Sale', 'JSON'],
  );
});
