/**
 * Ingestion refusals that depend on the machine: a full disk (503 with Retry-After, no ack,
 * nothing half-written) and more body bytes in flight than the server takes at once (429 with
 * Retry-After). The log is real; only its file system fails on demand.
 */
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type LogFs, openFileLog } from '../../src/log/index.ts';
import { startServer } from '../../src/server/index.ts';
import { Type, defineApp, topic } from '../../src/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { call } from './server-harness.ts';

const app = defineApp({
  topics: [topic('sales', { partitions: 1, schema: Type.Object({ region: Type.String(), cents: Type.Integer() }) })],
});

/** The real file system, but a write fails with ENOSPC whenever `full()` says so (it is asked once a write). */
function diskFullWhen(full: () => boolean): LogFs {
  return {
    ...nodeFs,
    writevSync: ((fd: number, buffers: NodeJS.ArrayBufferView[], position?: number) => {
      if (full())
        throw Object.assign(new Error('ENOSPC: no space left on device, writev'), {
          code: 'ENOSPC',
          syscall: 'writev',
        });
      return nodeFs.writevSync(fd, buffers, position);
    }) as typeof nodeFs.writevSync,
  };
}

async function setup(fs: LogFs, inFlight?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'kappa-http-limits-'));
  const log = await openFileLog({ dir, fs, logger: { info() {}, warn() {} } });
  await log.createTopic('sales', { partitions: 1 });
  const store = await openSqliteStore({ path: join(dir, 'views.db') });
  const server = await startServer({
    log,
    store,
    control: store,
    app,
    engine: null,
    port: 0,
    ingestInFlightBytesMax: inFlight,
  });
  return {
    url: server.url,
    log,
    async close() {
      await server.close();
      await store.close();
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('a full disk: 503 with Retry-After and KAPPA_DISK_FULL; nothing is acknowledged or half-written', async () => {
  let full = false;
  const s = await setup(diskFullWhen(() => full));
  try {
    const ok = await call(s.url, 'POST', '/v1/topics/sales/records', {
      body: '{"region":"n","cents":1}',
      type: 'application/json',
    });
    assert.equal(ok.status, 200);
    const end = (await s.log.offsets('sales', 0)).end;
    full = true;
    const r = await call(s.url, 'POST', '/v1/topics/sales/records', {
      body: '{"region":"n","cents":2}\n{"region":"s","cents":3}\n',
      type: 'application/x-ndjson',
    });
    assert.equal(r.status, 503, r.text);
    assert.equal((r.body as { error: { code: string } }).error.code, 'KAPPA_DISK_FULL');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal((await s.log.offsets('sales', 0)).end, end, 'nothing appended');
  } finally {
    await s.close();
  }
});

test('a disk that fills up in the middle of a large request: the answer says how much was appended, a retry with its key appends nothing twice, and once there is room it appends the rest', async () => {
  let writesLeft = Infinity;
  const s = await setup(diskFullWhen(() => writesLeft-- <= 0));
  try {
    const body = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ region: 'n', cents: i })).join('\n') + '\n';
    writesLeft = 2; // the first record (a keyed request's probe) and the first append call (1,999 more) are written, the next fails
    const send = (): ReturnType<typeof call> =>
      call(s.url, 'POST', '/v1/topics/sales/records', {
        body,
        type: 'application/x-ndjson',
        headers: { 'idempotency-key': 'k1' },
      });
    const r = await send();
    assert.equal(r.status, 503, r.text);
    const err = (r.body as { error: { code: string; message: string; details: { appended: number } } }).error;
    assert.equal(err.code, 'KAPPA_DISK_FULL');
    assert.equal(err.details.appended, 2000);
    assert.match(err.message, /The first 2000 records of the request/);
    const end = (await s.log.offsets('sales', 0)).end;
    assert.equal(end, 2000);
    const retry = await send();
    assert.equal(retry.status, 503, 'the retry gets the same answer');
    assert.equal((await s.log.offsets('sales', 0)).end, end, 'and appends nothing twice');
    writesLeft = Infinity;
    const done = await send();
    assert.equal(done.status, 200, done.text);
    const acks = (done.body as { records: { index: number; offset: number }[] }).records;
    assert.deepEqual(
      acks.map((a) => a.offset),
      Array.from({ length: 5000 }, (_, i) => i),
      'the first 2,000 at their original offsets, the rest after them',
    );
    assert.equal((await s.log.offsets('sales', 0)).end, 5000, 'every record once');
  } finally {
    await s.close();
  }
});

test('more body bytes in flight than the server takes: 429 with Retry-After, nothing appended from it', async () => {
  const s = await setup(nodeFs, 10_000);
  try {
    const line = JSON.stringify({ region: 'north', cents: 1 }) + '\n';
    const lines = 400; // about 10 KB
    // A slow request holds its declared bytes while its body trickles in.
    const slow = new Promise<number>((resolve, reject) => {
      const req = request(
        `${s.url}/v1/topics/sales/records`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson', 'content-length': String(line.length * lines) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.write(line);
      setTimeout(() => req.end(line.repeat(lines - 1)), 500);
    });
    await new Promise((r) => setTimeout(r, 150));
    const refused = await call(s.url, 'POST', '/v1/topics/sales/records', {
      body: line.repeat(lines),
      type: 'application/x-ndjson',
    });
    assert.equal(refused.status, 429, refused.text);
    assert.equal((refused.body as { error: { code: string } }).error.code, 'KAPPA_OVERLOADED');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(await slow, 200);
    assert.equal((await s.log.offsets('sales', 0)).end, lines, 'only the slow request was appended');
    const later = await call(s.url, 'POST', '/v1/topics/sales/records', { body: line, type: 'application/x-ndjson' });
    assert.equal(later.status, 200, 'accepted again once the budget is free');
  } finally {
    await s.close();
  }
});

test('single-record POSTs refused by a full disk give back their in-flight bytes', async () => {
  let full = true;
  const s = await setup(
    diskFullWhen(() => full),
    200,
  );
  try {
    // Each body is ~35 bytes against a 200-byte budget: were a failed request's bytes kept, the
    // sixth would be refused with 429 instead of failing on the disk.
    for (let i = 0; i < 12; i++) {
      const failed = await call(s.url, 'POST', '/v1/topics/sales/records', {
        body: JSON.stringify({ region: 'north', cents: i }),
        type: 'application/json',
      });
      assert.equal(failed.status, 503, failed.text);
    }
    full = false;
    const ok = await call(s.url, 'POST', '/v1/topics/sales/records', {
      body: JSON.stringify({ region: 'north', cents: 1 }),
      type: 'application/json',
    });
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(await s.log.offsets('sales', 0), { start: 0, end: 1 });
  } finally {
    await s.close();
  }
});
