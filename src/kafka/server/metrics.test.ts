/**
 * The listener's kappa_kafka_* metrics in the registry it is given: requests by API and error,
 * bytes in and out, connections open, opened, refused and closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { API_KEYS } from '../protocol/index.ts';
import { RawClient, openListener } from './test-helpers.ts';

test(
  'requests by API and error code, bytes, and connections are counted in the registry',
  { timeout: 30_000 },
  async (t) => {
    const { listener, registry } = await openListener(t, { limits: { connectionsMax: 1 } });
    const c = await RawClient.connect(t, listener.port);
    await c.request(API_KEYS.ApiVersions, 3, { clientSoftwareName: 'm', clientSoftwareVersion: '1' });
    await c.request(API_KEYS.Metadata, 9, { topics: [{ name: 'missing' }], allowAutoTopicCreation: false });
    const refused = await RawClient.connect(t, listener.port);
    await refused.closed;
    const text = await registry.metrics();
    const value = (line: string): number => {
      const found = text.split('\n').find((l) => l.startsWith(line + ' '));
      assert.ok(found, `${line} in\n${text}`);
      return Number(found.split(' ').pop());
    };
    assert.equal(value('kappa_kafka_requests_total{api="ApiVersions",error="NONE"}'), 1);
    assert.equal(value('kappa_kafka_requests_total{api="Metadata",error="UNKNOWN_TOPIC_OR_PARTITION"}'), 1);
    assert.ok(value('kappa_kafka_bytes_in_total') > 20);
    assert.ok(value('kappa_kafka_bytes_out_total') > 100);
    assert.equal(value('kappa_kafka_connections'), 1);
    assert.equal(value('kappa_kafka_connections_opened_total'), 1);
    assert.equal(value('kappa_kafka_connections_refused_total{reason="too-many"}'), 1);
    c.socket.destroy();
    await c.closed;
    // The listener counts the close once it sees it, which a loaded machine may take a while to do.
    const deadline = Date.now() + 10_000;
    let after = await registry.metrics();
    while (!/kappa_kafka_connections_closed_total\{reason="client"\} 1/.test(after) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await registry.metrics();
    }
    assert.match(after, /kappa_kafka_connections_closed_total\{reason="client"\} 1/);
  },
);
