import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type FileLog, type Log, openFileLog } from '../log/index.ts';
import { RegistryError } from './errors.ts';
import { Registry } from './registry.ts';
import { SCHEMAS_TOPIC } from './store.ts';
import { toyCodec, toySchema } from './test-helpers.ts';

const quiet = { info() {}, warn() {} };
const avro = (schema: string) => ({ schemaType: 'AVRO' as const, schema, references: [] });
const V1 = avro(toySchema('Sale', 'region:string', 'cents:int'));
const V2 = avro(toySchema('Sale', 'region:string', 'cents:long', 'note:string=""'));
const OTHER = avro(toySchema('Click', 'url:string'));

async function setup(t: {
  after(fn: () => unknown): void;
}): Promise<{ dir: string; log: FileLog; open(log?: Log): Promise<Registry>; reopen(): Promise<FileLog> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-registry-'));
  const log = await openFileLog({ dir, logger: quiet });
  const logs: Log[] = [log];
  t.after(async () => {
    for (const l of logs) await l.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    log,
    reopen: async () => {
      await log.close();
      const again = await openFileLog({ dir, logger: quiet });
      logs.push(again);
      return again;
    },
    open: (other?: Log) => Registry.open({ log: other ?? log, codecs: { AVRO: toyCodec() }, schemaBytesMax: 4096 }),
  };
}

/** Fails unless `fn` rejects with a RegistryError of this Confluent code. */
async function refused(fn: () => Promise<unknown>, errorCode: number, message?: RegExp): Promise<RegistryError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof RegistryError, `not a RegistryError: ${String(err)}`);
    assert.equal(err.errorCode, errorCode, err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`expected error ${errorCode}`);
}

const end = async (log: Log): Promise<number> => (await log.offsets(SCHEMAS_TOPIC, 0)).end;

test('ids are global: the same schema gets the same id in every subject, and again in its own without a new version', async (t) => {
  const { open } = await setup(t);
  const r = await open();
  assert.deepEqual(await r.register('sales-value', V1), { id: 1, version: 1 });
  assert.deepEqual(await r.register('sales-value', V1), { id: 1, version: 1 });
  assert.deepEqual(await r.register('archive-value', V1), { id: 1, version: 1 });
  assert.deepEqual(await r.register('clicks-value', OTHER), { id: 2, version: 1 });
  assert.deepEqual(await r.register('sales-value', V2), { id: 3, version: 2 });
  assert.deepEqual(await r.versions('sales-value'), [1, 2]);
  assert.deepEqual(await r.subjects(), ['archive-value', 'clicks-value', 'sales-value']);
  assert.equal((await r.version('sales-value', 'latest')).id, 3);
  assert.deepEqual(await r.usesOf(1), [
    { subject: 'sales-value', version: 1 },
    { subject: 'archive-value', version: 1 },
  ]);
  assert.equal((await r.lookup('sales-value', V1)).version, 1);
  await refused(() => r.lookup('sales-value', OTHER), 40403);
  await refused(() => r.lookup('nosuch', OTHER), 40401);
});

test('an incompatible schema is refused with the version, field and rule named, and nothing is appended', async (t) => {
  const { open, log } = await setup(t);
  const r = await open();
  await r.register('s', V1);
  const before = await end(log);
  const e = await refused(() => r.register('s', avro(toySchema('Sale', 'region:string', 'cents:string'))), 409);
  assert.match(e.message, /version 1: Sale\.cents: field cents changed type from int to string/);
  assert.match(e.message, /BACKWARD/);
  await refused(() => r.register('s', avro('{"type":')), 42201, /Invalid schema/);
  await refused(() => r.register('s', avro(toySchema('Sale', `${'x'.repeat(5000)}:string`))), 422, /bytes/);
  await refused(() => r.register('', V1), 42208);
  await refused(() => r.register('a\nb', V1), 42208);
  await refused(() => r.register('s', { schemaType: 'PROTOBUF', schema: 'x', references: [] }), 42201, /no PROTOBUF/);
  await refused(
    () => r.register('s', { ...V1, references: [{ name: 'x', subject: 'nosuch', version: 1 }] }),
    42201,
    /not registered/,
  );
  assert.equal(await end(log), before);
  assert.deepEqual(await r.versions('s'), [1]);
});

test('levels: BACKWARD checks the latest version only, *_TRANSITIVE every live one, FORWARD the other way, NONE nothing', async (t) => {
  const { open } = await setup(t);
  const r = await open();
  const a = avro(toySchema('R', 'x:int'));
  const b = avro(toySchema('R', 'x:int', 'y:int=0'));
  const c = avro(toySchema('R', 'y:int')); // reads b's data (y present), not a's (y missing, no default)
  await r.register('s', a);
  await r.register('s', b);
  assert.deepEqual(await r.compatibility('s', 'level', c), []);
  assert.match((await r.compatibility('s', 1, c)).join(), /version 1: R\.y: reader field y is missing/);
  await r.setConfig('s', 'BACKWARD_TRANSITIVE');
  assert.equal((await r.compatibility('s', 'level', c)).length, 1);
  await refused(() => r.register('s', c), 409, /version 1: R\.y/);
  await r.setConfig('s', 'FORWARD');
  // FORWARD: version 2 (the reader) must read data written with the candidate; b's y has a default.
  assert.deepEqual(await r.compatibility('s', 'level', avro(toySchema('R', 'x:int'))), []);
  assert.equal((await r.compatibility('s', 'level', avro(toySchema('R', 'y:int')))).length, 1);
  await r.setConfig('s', 'FULL');
  assert.equal((await r.compatibility('s', 'level', avro(toySchema('R', 'x:long', 'y:int=0')))).length, 1);
  await r.setConfig('s', 'NONE');
  assert.deepEqual(await r.compatibility('s', 'level', avro(toySchema('R', 'z:string'))), []);
  assert.equal(await r.config('s'), 'NONE');
  assert.equal(await r.deleteConfig('s'), 'NONE');
  await refused(() => r.config('s'), 40408);
  assert.equal(await r.config('s', true), 'BACKWARD');
});

test('soft delete hides a version but its id still resolves; hard delete only after soft; numbers keep growing', async (t) => {
  const { open } = await setup(t);
  const r = await open();
  await r.register('s', V1);
  await r.register('s', V2);
  await refused(() => r.deleteVersion('s', 1, true), 40407);
  assert.equal(await r.deleteVersion('s', 1, false), 1);
  await refused(() => r.deleteVersion('s', 1, false), 40406);
  assert.deepEqual(await r.versions('s'), [2]);
  assert.deepEqual(await r.versions('s', true), [1, 2]);
  await refused(() => r.version('s', 1), 40402);
  assert.equal((await r.version('s', 1, true)).id, 1);
  assert.equal((await r.schemaById(1)).schema, V1.schema);
  // The same schema again after its version was soft-deleted: a new version, the same id.
  await r.setConfig('s', 'NONE');
  assert.deepEqual(await r.register('s', V1), { id: 1, version: 3 });
  await refused(() => r.deleteSubject('s', true), 40405);
  assert.deepEqual(await r.deleteSubject('s', false), [2, 3]);
  await refused(() => r.deleteSubject('s', false), 40404);
  await refused(() => r.versions('s'), 40401);
  assert.deepEqual(await r.subjects(), []);
  assert.deepEqual(await r.subjects({ deleted: true }), ['s']);
  assert.equal((await r.schemaById(2)).schema, V2.schema, 'a soft-deleted version still resolves by id');
  assert.deepEqual(await r.deleteSubject('s', true), [1, 2, 3]);
  await refused(() => r.schemaById(2), 40403);
  await refused(() => r.deleteSubject('s', false), 40401);
  // A subject deleted for good starts again at version 1; its schema's id is the one it had, and new ids are never reused.
  assert.deepEqual(await r.register('s', V2), { id: 2, version: 1 });
  assert.deepEqual(await r.register('t', OTHER), { id: 3, version: 1 });
});

test('a version referenced by another schema cannot be deleted', async (t) => {
  const { open } = await setup(t);
  const r = await open();
  await r.register('base', V1);
  await r.register('user', { ...OTHER, references: [{ name: 'Sale', subject: 'base', version: 1 }] });
  await refused(() => r.deleteVersion('base', 1, false), 42206, /user version 1/);
  await refused(() => r.deleteSubject('base', false), 42206);
});

test('READONLY mode refuses registrations and deletes; modes and levels are kept per subject and globally', async (t) => {
  const { open } = await setup(t);
  const r = await open();
  await r.register('s', V1);
  assert.equal(await r.mode(null), 'READWRITE');
  await refused(() => r.mode('s'), 40409);
  await r.setMode('s', 'READONLY');
  await refused(() => r.register('s', V2), 42205, /read-only/);
  await refused(() => r.deleteSubject('s', false), 42205);
  await r.register('t', V2);
  assert.equal(await r.deleteMode('s'), 'READONLY');
  await r.register('s', V2);
  await r.setConfig(null, 'FULL');
  assert.equal(await r.config(null), 'FULL');
  assert.equal(await r.config('s', true), 'FULL');
});

test('the state is rebuilt from _schemas when the log is reopened', async (t) => {
  const { open, reopen } = await setup(t);
  const r = await open();
  await r.register('s', V1);
  await r.register('s', V2);
  await r.register('t', OTHER);
  await r.deleteVersion('t', 1, false);
  await r.setConfig('s', 'FULL_TRANSITIVE');
  await r.setMode(null, 'IMPORT');
  const r2 = await open(await reopen());
  assert.deepEqual(await r2.versions('s'), [1, 2]);
  assert.equal((await r2.version('s', 2)).id, 2);
  await refused(() => r2.versions('t'), 40401);
  assert.equal((await r2.schemaById(3)).schema, OTHER.schema);
  assert.equal(await r2.config('s'), 'FULL_TRANSITIVE');
  assert.equal(await r2.mode(null), 'IMPORT');
  assert.deepEqual(await r2.register('u', avro(toySchema('New', 'a:int'))), { id: 4, version: 1 });
});

/** A log whose first append to _schemas lets `before` run first, as another process writing at that moment. */
function racingLog(log: Log, before: () => Promise<unknown>): Log {
  let raced = false;
  return new Proxy(log, {
    get(target, prop) {
      if (prop === 'append')
        return async (topic: string, records: Parameters<Log['append']>[1]) => {
          if (topic === SCHEMAS_TOPIC && !raced) {
            raced = true;
            await before();
          }
          return target.append(topic, records);
        };
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

test('two writers racing: the loser’s record is void, it decides again, and ids stay unique', async (t) => {
  const { open, log } = await setup(t);
  const a = await open();
  const b = await open(racingLog(log, () => a.register('other', OTHER)));
  // b decides id 1 for V1, but a takes id 1 for OTHER first: b's record lands after a's and is void.
  assert.deepEqual(await b.register('s', V1), { id: 2, version: 1 });
  assert.equal((await a.schemaById(1)).schema, OTHER.schema);
  assert.equal((await a.schemaById(2)).schema, V1.schema);
  assert.equal((await a.version('s', 1)).id, 2);
  assert.equal(await end(log), 3, 'a, b’s void record, b again');
  // The same schema raced into two subjects gets one id.
  const c = await open(racingLog(log, () => a.register('x', V2)));
  assert.deepEqual(await c.register('y', V2), { id: 3, version: 1 });
  assert.equal((await a.version('x', 1)).id, 3);
  // Every reader of the log agrees.
  const fresh = await open();
  assert.deepEqual(await fresh.usesOf(3), [
    { subject: 'x', version: 1 },
    { subject: 'y', version: 1 },
  ]);
});

test('records in _schemas that are not the registry’s are skipped with a warning, and change nothing', async (t) => {
  const { log } = await setup(t);
  const first = await Registry.open({ log, codecs: { AVRO: toyCodec() } });
  await first.register('s', V1);
  await log.append(SCHEMAS_TOPIC, [
    { value: 'not json' },
    { value: '{"v":1,"op":"register","base":2,"subject":"s"}' },
    { value: '{"v":1,"op":"config","base":0,"subject":null,"compatibility":"NONE"}' },
    { value: null },
  ]);
  const warnings: string[] = [];
  const r = await Registry.open({ log, codecs: { AVRO: toyCodec() }, logger: { warn: (m) => warnings.push(m) } });
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.match(warnings[0], /record 1 of _schemas ignored: not JSON/);
  assert.match(warnings[1], /record 2 .*"register" record with missing or wrong fields/);
  assert.equal(await r.config(null), 'BACKWARD', 'a record written on a stale state is void, silently');
  assert.deepEqual(await r.register('s', V2), { id: 2, version: 2 });
  assert.equal((await first.version('s', 'latest')).id, 2);
});
