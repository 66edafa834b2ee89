/**
 * `kappa consume` on a topic whose config declares a format (issue 17): values decoded to JSON
 * with the writer schema their id names, resolved to the config's (a field the old writer lacked
 * gets its default); a value that does not decode printed with its error and bytes; `--with-meta`
 * around the same; a topic without a format printed as before; without a config, or with one that
 * does not load (a warning says so), values printed as stored. Run as a child process from the
 * project's folder, as a user does.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CODECS, encodeAvro } from '../../src/formats/index.ts';
import { openFileLog } from '../../src/log/index.ts';
import { Registry } from '../../src/registry/index.ts';
import { kappaProcess } from '../support/cli.ts';
import { quietLogger as quiet } from '../support/loggers.ts';
import { KAPPA_SRC, tempDataProject } from '../support/project.ts';

/** What the writer used for one record: an older version, without `cents` (the reader's default fills it). */
const OLD_SALE = JSON.stringify({ type: 'record', name: 'Sale', fields: [{ name: 'region', type: 'string' }] });
const READER = JSON.stringify({
  type: 'record',
  name: 'Sale',
  fields: [
    { name: 'region', type: 'string' },
    { name: 'cents', type: 'long', default: 0 },
  ],
});

const CONFIG = `
import { avro, defineApp, topic } from ${JSON.stringify(KAPPA_SRC)};
export default defineApp({ topics: [topic('sales', { format: avro(${JSON.stringify(READER)}) }), topic('plain')] });
`;

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

test('kappa consume decodes the values of a topic with a format', { timeout: 120_000 }, async (t) => {
  const project = tempDataProject(t, 'kappa-consume-formats-', CONFIG);
  const log = await openFileLog({ dir: project.dir, logger: quiet });
  let bad: Buffer[];
  try {
    await log.createTopic('sales', { partitions: 1 });
    await log.createTopic('plain', { partitions: 1 });
    const registry = await Registry.open({ log, codecs: CODECS });
    const reg = (schema: string) => registry.register('sales-value', { schemaType: 'AVRO', schema, references: [] });
    const old = await reg(OLD_SALE);
    const now = await reg(READER);
    const unknownId = encodeAvro(now.id, registry.schemaFor(now.id)!, { region: 'eu', cents: 1 });
    unknownId.writeInt32BE(777, 1);
    bad = [Buffer.from('{"region":"eu"}'), unknownId];
    await log.append('sales', [
      { key: 'a', value: encodeAvro(old.id, registry.schemaFor(old.id)!, { region: 'apac' }) },
      { key: 'b', value: encodeAvro(now.id, registry.schemaFor(now.id)!, { region: 'eu', cents: 2 ** 40 + 1 }) },
      { key: 'c', value: bad[0] },
      { key: 'd', value: bad[1] },
      { key: 'e', value: null },
    ]);
    await log.append('plain', [{ key: 'p', value: Buffer.from('{"x":1}') }]);
  } finally {
    await log.close();
  }
  const consume = (cwd: string, ...args: string[]) =>
    kappaProcess(['--data-dir', project.dir, 'consume', ...args], { cwd, timeoutMs: 60_000, t });

  const got = await consume(project.root, 'sales');
  assert.equal(got.code, 0, got.stderr);
  const values = lines(got.stdout).map((l) => JSON.parse(l) as Record<string, unknown> | null);
  assert.deepEqual(values.slice(0, 2), [
    { region: 'apac', cents: 0 },
    { region: 'eu', cents: 2 ** 40 + 1 },
  ]);
  for (const [i, says] of [
    [2, /magic byte/],
    [3, /777/],
  ] as const) {
    const v = values[i] as { valueError: string; valueBase64: string };
    assert.match(v.valueError, says);
    assert.equal(v.valueBase64, bad[i - 2].toString('base64'));
  }
  assert.equal(values[4], null, 'a tombstone');

  const meta = await consume(project.root, 'sales', '--with-meta', '--limit', '2');
  assert.equal(meta.code, 0, meta.stderr);
  const records = lines(meta.stdout).map((l) => JSON.parse(l) as { key: string; offset: number; value: unknown });
  assert.deepEqual(
    records.map((r) => [r.key, r.offset, r.value]),
    [
      ['a', 0, { region: 'apac', cents: 0 }],
      ['b', 1, { region: 'eu', cents: 2 ** 40 + 1 }],
    ],
  );

  const plain = await consume(project.root, 'plain');
  assert.deepEqual([plain.code, plain.stdout], [0, '{"x":1}\n'], 'a topic without a format: as before');

  // No config here: the values as stored (not JSON: JSON strings), no warning.
  const elsewhere = join(project.root, 'elsewhere');
  mkdirSync(elsewhere);
  const raw = await consume(elsewhere, 'sales', '--limit', '3');
  assert.equal(raw.code, 0, raw.stderr);
  assert.equal(raw.stderr, '');
  assert.deepEqual(lines(raw.stdout)[2], '{"region":"eu"}');
  assert.equal(typeof JSON.parse(lines(raw.stdout)[0]), 'string');

  // A config that does not load: a warning, then the values as stored.
  const broken = join(project.root, 'broken');
  mkdirSync(broken);
  writeFileSync(join(broken, 'kappa.config.ts'), 'export default 42;\n');
  const warned = await consume(broken, 'sales', '--limit', '1');
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(warned.stderr, /warning: values are printed as stored, not decoded.*the config could not be loaded/);
  assert.equal(typeof JSON.parse(lines(warned.stdout)[0]), 'string');
});
