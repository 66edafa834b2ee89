/**
 * `kappa start`'s Kafka listener as a user meets it: on by default (port 9092), moved with
 * `--kafka-port`, off with `--no-kafka` or `server.kafka: false`; a default port another broker
 * holds only warns (the pipelines and the HTTP API still run), a port asked for and taken is an
 * error; records produced over Kafka reach the views; a bad `server.kafka` is refused at load.
 */
import assert from 'node:assert/strict';
import { type Server, createServer } from 'node:net';
import { test } from 'node:test';
import { defer } from '../support/cleanup.ts';
import { runKappa, startKappa, waitFor } from '../support/processes.ts';
import { tempDataProject, totalsConfig } from '../support/project.ts';

const RUNNING = /kappa: HTTP API on (http:\/\/\S+) /;
const KAFKA = /kappa: Kafka API on (\S+):(\d+) /;

/** Holds `port` as soon as it is free (polling with a timer that keeps this process alive meanwhile). */
async function holdWhenFree(port: number, timeoutMs: number): Promise<Server> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const server = await hold(port);
    if (server !== null) return server;
    if (Date.now() > deadline) throw new Error(`port ${port} stayed taken for ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `kappa start` over `dir` with `config`, HTTP on a free port, the pipelines on the main thread. */
const start = (dir: string, config: string, ...more: string[]): string[] => [
  '--data-dir',
  dir,
  'start',
  '--config',
  config,
  '--port',
  '0',
  '--workers',
  '0',
  ...more,
];

/** Listens on `port` (0: a free one); null if it is taken. */
function hold(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(null));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

test(
  'a Kafka client produces into a view; --no-kafka and server.kafka: false turn the listener off',
  { timeout: 120_000 },
  async (t) => {
    const project = tempDataProject(t, 'kappa-kafka-start-', totalsConfig());
    const kappa = startKappa(t, start(project.dir, project.config, '--kafka-port', '0'));
    const [, url] = await kappa.waitForOutput(RUNNING, { timeoutMs: 60_000 });
    const [, host, port] = await kappa.waitForOutput(KAFKA, { timeoutMs: 10_000 });
    assert.equal(host, '127.0.0.1', 'no tokens: loopback only');

    // kafkajs, an independent client, produces keyed JSON records; the view counts them.
    const { Kafka, logLevel } = await import('kafkajs');
    const producer = new Kafka({ brokers: [`${host}:${port}`], logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    defer(t, () => producer.disconnect());
    await producer.send({
      topic: 'sales',
      messages: [
        { key: 'eu', value: JSON.stringify({ region: 'eu', cents: 250 }) },
        { key: 'us', value: JSON.stringify({ region: 'us', cents: 100 }) },
        { key: 'eu', value: JSON.stringify({ region: 'eu', cents: 50 }) },
      ],
    });
    const rows = await waitFor(
      'the records produced over Kafka in the view',
      async () => {
        const body = (await (await fetch(`${url}/v1/views/totals?order=region`)).json()) as { rows: unknown[] };
        return body.rows.length === 2 ? body.rows : null;
      },
      { timeoutMs: 30_000, intervalMs: 200, child: kappa },
    );
    assert.deepEqual(rows, [
      { region: 'eu', cents: 300, n: 2 },
      { region: 'us', cents: 100, n: 1 },
    ]);
    await producer.disconnect();
    await kappa.stop();

    const off = startKappa(t, start(project.dir, project.config, '--no-kafka'));
    await off.waitForOutput(RUNNING, { timeoutMs: 60_000 });
    await off.stop();
    assert.doesNotMatch(off.stderr, /Kafka API/);

    const offByConfig = project.writeConfig(
      totalsConfig().replace('views: [', 'server: { kafka: false },\n  views: ['),
      'no-kafka',
    );
    const configured = startKappa(t, start(project.dir, offByConfig));
    await configured.waitForOutput(RUNNING, { timeoutMs: 60_000 });
    await configured.stop();
    assert.doesNotMatch(configured.stderr, /Kafka API/);
  },
);

test(
  'a taken default port warns and runs on; a taken --kafka-port is an error that says what to do',
  { timeout: 200_000 },
  async (t) => {
    const project = tempDataProject(t, 'kappa-kafka-port-', totalsConfig());
    // This test holds 9092 itself (another test's kappa start may have it for a few seconds: wait
    // for it), so nobody can release it while the test runs.
    const held = await holdWhenFree(9092, 90_000);
    defer(t, () => new Promise<void>((r) => held.close(() => r())));
    const kappa = startKappa(t, start(project.dir, project.config));
    const [, url] = await kappa.waitForOutput(RUNNING, { timeoutMs: 60_000 });
    await kappa.waitForOutput(/the Kafka listener did not start: port 9092 on 127\.0\.0\.1 is in use/, {
      timeoutMs: 10_000,
    });
    assert.equal((await fetch(`${url}/v1/views`)).status, 200, 'the HTTP API runs');
    await kappa.stop();

    const other = await hold(0);
    assert.ok(other !== null);
    defer(t, () => new Promise<void>((r) => other.close(() => r())));
    const port = (other.address() as { port: number }).port;
    const refused = await runKappa(start(project.dir, project.config, '--kafka-port', String(port)), {
      timeoutMs: 60_000,
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `Port ${port} on 127\\.0\\.0\\.1 is in use.*--kafka-port 0 for any free one, or turn it off with --no-kafka`,
      ),
    );
  },
);

test('a bad server.kafka is refused when the config loads, naming the setting', { timeout: 60_000 }, async (t) => {
  const project = tempDataProject(
    t,
    'kappa-kafka-config-',
    totalsConfig().replace('views: [', "server: { kafka: { port: 70000, tls: { cert: 'c.pem' } } },\n  views: ["),
  );
  const res = await runKappa(['--data-dir', project.dir, 'check', '--config', project.config], { timeoutMs: 50_000 });
  assert.notEqual(res.code, 0);
  assert.match(res.stderr, /server\.kafka\.port is 70000; use a port number from 0 to 65535/);
  assert.match(
    res.stderr,
    /server\.kafka\.tls must be \{ cert: "<path of a PEM file>", key: "<path of a PEM file>" \}/,
  );
});
