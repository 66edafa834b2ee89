/**
 * The layout grows without a migration step: a store file made before a column existed gains it when
 * it is opened, and what it held reads as before.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteStore } from './index.ts';

test("a file without the output checkpoints' watermark column gains it on open, its checkpoints kept", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-schema-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'views.db');
  await (await openSqliteStore({ path })).close();
  // As a file from before the column: no watermark, one checkpoint.
  const db = new Database(path);
  db.exec('ALTER TABLE kappa_output_checkpoints DROP COLUMN watermark');
  db.prepare(
    'INSERT INTO kappa_output_checkpoints (output, topic, "partition", "offset", sequences) VALUES (?, ?, ?, ?, ?)',
  ).run('refunds', 'sales', 0, 7, '[2]');
  db.close();
  const store = await openSqliteStore({ path });
  try {
    assert.deepEqual(await store.outputCheckpoints('refunds'), [
      { topic: 'sales', partition: 0, offset: 7, sequences: [2] },
    ]);
    await store.saveOutputCheckpoint('refunds', {
      topic: 'sales',
      partition: 0,
      offset: 9,
      sequences: [3],
      watermark: 5,
    });
    assert.deepEqual(await store.outputCheckpoints('refunds'), [
      { topic: 'sales', partition: 0, offset: 9, sequences: [3], watermark: 5 },
    ]);
  } finally {
    await store.close();
  }
});
