/**
 * Each view version keeps the bundled config it was built from (kappa_view_code). The config's
 * secrets must not be kept with it (issue 12, item 7): after the engine and server ran with server
 * tokens and a webhook with a secret header and URL, no row of any kappa_* table holds the token
 * hashes, the tokens, the header's value or the URL's secret, while the kept code still loads and
 * still defines the view. A secret that also appears in a view's logic cannot be taken out without
 * changing it: then the version keeps no code, and the reason names the environment instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { hashToken } from '../../src/server/index.ts';
import { bundleConfig, loadBundledApp } from '../../src/stream/worker-bundle.ts';
import { type Harness, SRC, postJson, salesConfig, startHarness } from './server-harness.ts';

const TOKENS = { admin: 'tok-secret-admin-4f1c9b', query: 'tok-secret-query-77ad02' };
const HEADER_SECRET = 'hdr-s3cret-9c1e7a55d0b2';
const URL_SECRET = 'url-s3cret-51f0aa93c7';
const SHORT_SECRET = 'k9Zx'; // too short to look for anywhere but as a whole string literal

const SERVER = JSON.stringify({
  tokens: [
    { name: 'admin', sha256: hashToken(TOKENS.admin), scopes: ['admin'] },
    { name: 'query', sha256: hashToken(TOKENS.query), scopes: ['query'] },
  ],
});
// The header is built from a constant, as configs often do; the URL carries a secret in its query.
const CONFIG = salesConfig(SERVER)
  .replace('const sales =', `const PAGER_KEY = ${JSON.stringify(HEADER_SECRET)};\nconst sales =`)
  .replace(
    '  server: ',
    `  webhooks: [{ name: 'pager', url: 'https://hooks.example.com/alerts?token=${URL_SECRET}', topic: 'events', headers: { authorization: \`Bearer \${PAGER_KEY}\`, 'x-short': ${JSON.stringify(SHORT_SECRET)} } }],\n  server: `,
  );

const SECRETS = [
  HEADER_SECRET,
  URL_SECRET,
  TOKENS.admin,
  TOKENS.query,
  hashToken(TOKENS.admin),
  hashToken(TOKENS.query),
];

/** Every row of every kappa_* table, as text. */
function kappaRowsText(path: string): { tables: string[]; text: string } {
  const db = new Database(path, { readonly: true });
  try {
    const tables = (
      db
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'kappa\\_%' ESCAPE '\\'")
        .raw()
        .all() as [string][]
    ).map(([n]) => n);
    let text = '';
    for (const t of tables) {
      for (const row of db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][]) {
        text += row.map((v) => (Buffer.isBuffer(v) ? v.toString('latin1') : String(v))).join('\u0000') + '\n';
      }
    }
    return { tables, text };
  } finally {
    db.close();
  }
}

describe('secrets in the config are not stored with view versions', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(CONFIG);
  });
  after(() => h?.close());

  test('no row of any kappa_* table holds a token, a token hash, a webhook header or URL secret', async () => {
    const r = await postJson(h.url, '/v1/topics/sales/records', [{ region: 'north', cents: 100 }], TOKENS.admin);
    assert.equal(r.status, 200, r.text);
    const path = join(h.dir, 'views.db');
    const deadline = Date.now() + 15_000;
    const codeRows = (): [string][] => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare("SELECT code FROM kappa_view_code WHERE name = 'sales_totals'").raw().all() as [string][];
      } finally {
        db.close();
      }
    };
    while (codeRows().length === 0) {
      if (Date.now() > deadline) throw new Error('the version never kept its code');
      await new Promise((res) => setTimeout(res, 20));
    }
    const { tables, text } = kappaRowsText(path);
    assert.ok(tables.includes('kappa_view_code') && tables.includes('kappa_views'), tables.join());
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `a kappa_* table holds ${secret}`);
    const [[code]] = codeRows();
    assert.ok(!code.includes(`"${SHORT_SECRET}"`), 'the short header value is kept');
    assert.match(code, /kappa-secret-removed/);
    // The kept code still loads, with the same view (only its views are ever used).
    const app = await loadBundledApp(code);
    assert.deepEqual(
      app.views.map((v) => v.name),
      ['sales_totals'],
    );
    assert.equal(app.webhooks[0].headers?.authorization, 'Bearer kappa-secret-removed');
  });

  test('a secret that is also in a view’s logic keeps the code from being stored, and says to use the environment', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kappa-secret-logic-'));
    try {
      writeFileSync(join(root, 'package.json'), '{ "type": "module" }\n');
      const file = join(root, 'kappa.config.ts');
      writeFileSync(
        file,
        `import { Type, count, defineApp, from, topic, view } from ${JSON.stringify(SRC)};
const KEY = ${JSON.stringify(HEADER_SECRET)};
const sales = topic('sales', { partitions: 1, schema: Type.Object({ region: Type.String() }) });
export default defineApp({
  topics: [sales],
  views: [view('t', from(sales).filter((s) => s.region !== ${JSON.stringify(HEADER_SECRET)}).groupBy((s) => ({ region: s.region })).aggregate({ n: count() }))],
  webhooks: [{ name: 'w', url: 'https://example.com/', headers: { 'x-key': KEY } }],
});
`,
      );
      await assert.rejects(bundleConfig(file), /appears in the logic of view "t".*process\.env/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
