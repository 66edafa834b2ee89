import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { FastCounter, FastHistogram } from './fast-metrics.ts';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** Values on, between, below and above the bounds. */
function observations(): number[] {
  const out = [0, 0.001, 0.0011, 0.0025, 0.003, 0.01, 0.5, 0.75, 10, 11, 1e6];
  for (let i = 0; i < 200; i++) out.push(((i * 7919) % 1000) / 97);
  return out;
}

test('a FastHistogram and a FastCounter read exactly as prom-client’s own, in both exposition formats', async () => {
  for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
    // (prom-client's types tie a registry's metrics to the default content type.)
    const as = contentType as typeof Registry.PROMETHEUS_CONTENT_TYPE;
    const ours = new Registry();
    const theirs = new Registry();
    ours.setContentType(as);
    theirs.setContentType(as);
    const common = { name: 'x_seconds', help: 'Time to do x.', labelNames: ['route', 'method'] as const };
    const fast = new FastHistogram({ ...common, buckets: BUCKETS, registers: [ours] });
    const real = new Histogram({
      ...common,
      labelNames: [...common.labelNames],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const counted = { name: 'x_total', help: 'Things done.', labelNames: ['status'] as const };
    const fastCount = new FastCounter({ ...counted, registers: [ours] });
    const realCount = new Counter({ ...counted, labelNames: [...counted.labelNames], registers: [theirs] });
    for (const [i, v] of observations().entries()) {
      const labels = { route: i % 3 === 0 ? '/a' : '/b "quoted"\n', method: i % 2 === 0 ? 'GET' : 'POST' };
      fast.labels(labels).observe(v);
      real.labels(labels).observe(v);
      const status = String(200 + (i % 4));
      fastCount.labels({ status }).value += i;
      realCount.labels({ status }).inc(i);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // As JSON too, but for prom-client's empty exemplar fields.
    const json = async (r: Registry) =>
      JSON.parse(JSON.stringify(await r.getMetricsAsJSON(), (k, v) => (k === 'exemplar' ? undefined : v)));
    assert.deepEqual(await json(ours), await json(theirs));
    ours.resetMetrics();
    theirs.resetMetrics();
    assert.equal(await ours.metrics(), await theirs.metrics());
  }
});

test('a series found once keeps counting without another lookup', async () => {
  const registry = new Registry();
  const h = new FastHistogram({
    name: 'y_seconds',
    help: 'y',
    labelNames: ['topic'],
    buckets: [1],
    registers: [registry],
  });
  const series = h.labels({ topic: 't' });
  for (let i = 0; i < 5; i++) series.observe(i);
  assert.equal(h.labels({ topic: 't' }), series);
  const text = await registry.metrics();
  assert.match(text, /^y_seconds_bucket\{le="1",topic="t"\} 2$/m);
  assert.match(text, /^y_seconds_bucket\{le="\+Inf",topic="t"\} 5$/m);
  assert.match(text, /^y_seconds_sum\{topic="t"\} 10$/m);
  assert.match(text, /^y_seconds_count\{topic="t"\} 5$/m);
});
