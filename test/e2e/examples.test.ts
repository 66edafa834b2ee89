/**
 * The IoT and fraud examples as a user runs them: the example's config under the engine and the
 * HTTP server, its generator (a child process POSTing for two seconds), then planted events that
 * must raise the example's alerts, and its views answering.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { call } from './server-harness.ts';
import { tempDir } from '../support/cleanup.ts';
import { openKappa } from '../support/kappa.ts';
import { type Owner, runCommand } from '../support/processes.ts';

const example = (name: string, file: string): string =>
  fileURLToPath(new URL(`../../examples/${name}/${file}`, import.meta.url));

async function withExample(t: Owner, name: string, fn: (url: string) => Promise<void>): Promise<void> {
  const kappa = await openKappa({
    dir: tempDir(t, `kappa-example-${name}-`),
    configPath: example(name, 'kappa.config.ts'),
    flushIntervalMs: 50,
    server: {},
  });
  try {
    // Its generator runs against the server.
    const gen = await runCommand(
      process.execPath,
      ['--import', 'tsx', example(name, 'generate.ts'), '--url', kappa.url, '--rate', '500', '--seconds', '2'],
      { t, timeoutMs: 60_000 },
    );
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(gen.stderr, /sent \d+/);
    await fn(kappa.url);
  } finally {
    await kappa.close();
  }
}

async function until<T>(what: string, fn: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const rowsOf = async (url: string, path: string): Promise<Record<string, unknown>[] | null> => {
  const r = await call(url, 'GET', path);
  return r.status === 200 ? (r.body as { rows: Record<string, unknown>[] }).rows : null;
};

test('examples/iot: windows per device, site status, and an overheat alert', { timeout: 120_000 }, async (t) => {
  await withExample(t, 'iot', async (url) => {
    assert.ok(
      (await until(
        'device minutes',
        async () => ((await rowsOf(url, '/v1/views/device_minutes?limit=5')) ?? []).length > 0 || null,
      )) === true,
    );
    // Another view, with its own tasks and flushes: its rows may come after device_minutes's.
    await until('site status', async () => ((await rowsOf(url, '/v1/views/site_status')) ?? []).length > 0 || null);
    const t0 = Date.now() - 600_000;
    const hot =
      Array.from({ length: 8 }, (_, i) =>
        JSON.stringify({ device: 'planted-1', site: 'lab', temperature: 95, humidity: 30, ts: t0 + i * 15_000 }),
      ).join('\n') + '\n';
    assert.equal(
      (await call(url, 'POST', '/v1/topics/readings/records', { body: hot, type: 'application/x-ndjson' })).status,
      200,
    );
    const rows = await until('the overheat alert counted', async () => {
      const r = await rowsOf(url, '/v1/views/alert_counts?device=planted-1&rule=overheat');
      return r !== null && r.length === 1 ? r : null;
    });
    assert.equal(rows[0].alerts, 1);
    assert.equal(rows[0].last_value, 95);
  });
});

test(
  'examples/fraud: spend per card and country, and a stolen card flagged as suspicious',
  { timeout: 120_000 },
  async (t) => {
    await withExample(t, 'fraud', async (url) => {
      await until(
        'card spend',
        async () => ((await rowsOf(url, '/v1/views/card_spend?limit=1')) ?? []).length > 0 || null,
      );
      const now = Date.now();
      const post = async (topic: string, values: object[]) =>
        assert.equal(
          (
            await call(url, 'POST', `/v1/topics/${topic}/records`, {
              body: values.map((v) => JSON.stringify(v)).join('\n') + '\n',
              type: 'application/x-ndjson',
            })
          ).status,
          200,
        );
      const tx = (txId: string, amount: number, ts: number, country = 'DE') => ({
        txId,
        card: 'card-planted',
        merchant: 'electronics',
        country,
        amount,
        ts,
      });
      const profile = (limit: number, ts: number) => ({
        card: 'card-planted',
        holder: 'Ada',
        homeCountry: 'DE',
        limit,
        ts,
      });
      await post('cards', [profile(500, now - 1)]);
      // 30 usual transactions, a stolen card's one abroad (1800, over the limit of 500), a usual one.
      const usual = Array.from({ length: 30 }, (_, i) => ({ ...tx(`p${i}`, 20 + (i % 5), now + i), merchant: 'cafe' }));
      await post('transactions', [...usual, tx('p-stolen', 1800, now + 100, 'US'), tx('p-usual', 20, now + 120)]);
      // The limit is raised to 5000 at now + 200; a purchase made at now + 150 arrives after that and is
      // still over the limit it was made under, one made at now + 300 is not.
      await post('cards', [profile(5000, now + 200)]);
      await post('transactions', [
        tx('p-before', 1900, now + 150),
        tx('p-usual2', 20, now + 160),
        tx('p-after', 1900, now + 300),
      ]);
      const overLimit = await until('the over-limit purchases flagged', async () => {
        const r = await rowsOf(url, '/v1/views/suspicious_by_card?card=card-planted&rule=over_limit');
        return r !== null && r.length === 1 && r[0].flagged === 2 ? r : null;
      });
      assert.equal(overLimit[0].largest, 1900);
      const abroad = await until('the purchase abroad', async () => {
        const r = await rowsOf(url, '/v1/views/spend_abroad?card=card-planted');
        return r !== null && r.length === 1 ? r : null;
      });
      assert.deepEqual([abroad[0].home, abroad[0].spent, abroad[0].transactions], ['DE', 1800, 1]);
      const flagged = await until('the stolen card flagged', async () => {
        const r = await rowsOf(url, '/v1/views/suspicious_by_card?card=card-planted&rule=unusual_amount');
        return r !== null && r.length === 1 ? r : null;
      });
      assert.equal(flagged[0].largest, 1800);
      const suspicious = await call(url, 'GET', '/v1/topics/suspicious/records?partition=0&limit=1000');
      const more = await call(url, 'GET', '/v1/topics/suspicious/records?partition=1&limit=1000');
      const all = [
        ...(suspicious.body as { records: { value: { key: string; message: string } }[] }).records,
        ...(more.body as { records: { value: { key: string; message: string } }[] }).records,
      ];
      assert.ok(
        all.some((r) => r.value.key === 'card-planted' && /1800\.00 at electronics \(US\)/.test(r.value.message)),
        JSON.stringify(all.slice(0, 3)),
      );
    });
  },
);
