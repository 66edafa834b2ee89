import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import type { FileLog } from './file-log.ts';
import { TOPIC_DEFAULTS } from './file-log.ts';
import type { LogFs } from './fs.ts';
import { collectingLogger, openTestLog, readRecords, tempDir } from './test-helpers.ts';

/** Every path under `dir`, relative, sorted: a snapshot of what is on disk. */
function tree(dir: string): string[] {
  return (nodeFs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe('topics', () => {
  let tmp: ReturnType<typeof tempDir>;
  let log: FileLog;

  beforeEach(async () => {
    tmp = tempDir();
    log = await openTestLog(tmp.dir, { fsync: 'never', clock: { now: () => 1_700_000_000_000 } });
  });
  afterEach(async () => {
    await log.close();
    tmp.cleanup();
  });

  test("refuses names outside Kafka's rule with KAPPA_INVALID_TOPIC_NAME and creates nothing on disk", async () => {
    const before = tree(tmp.dir);
    const names = [
      '../x',
      '..',
      '.',
      '',
      'a/b',
      'a\\b',
      '/abs',
      'x'.repeat(250),
      'with space',
      'tab\t',
      'nul\u0000',
      'ünïcode',
      'a:b',
      '../../../../tmp/evil',
    ];
    for (const name of names) {
      await assert.rejects(
        log.createTopic(name, { partitions: 1 }),
        { code: 'KAPPA_INVALID_TOPIC_NAME' },
        JSON.stringify(name),
      );
    }
    assert.deepEqual(tree(tmp.dir), before);
    assert.ok(
      !nodeFs.existsSync(join(tmp.dir, 'topics', '../../../../tmp/evil')),
      'nothing escaped the data directory',
    );
    assert.deepEqual(await log.topics(), []);
  });

  test('refuses invalid names on every call that takes a topic, before touching the disk', async () => {
    for (const name of ['../x', 'a/b', '']) {
      await assert.rejects(log.append(name, [{ value: 'v' }]), { code: 'KAPPA_INVALID_TOPIC_NAME' });
      await assert.rejects(log.offsets(name, 0), { code: 'KAPPA_INVALID_TOPIC_NAME' });
      await assert.rejects(log.offsetForTime(name, 0, 0), { code: 'KAPPA_INVALID_TOPIC_NAME' });
      await assert.rejects(readRecords(log, name, 0), { code: 'KAPPA_INVALID_TOPIC_NAME' });
      await assert.rejects(log.topic(name), { code: 'KAPPA_INVALID_TOPIC_NAME' });
    }
  });

  test("accepts names at the edge of Kafka's rule: 249 characters, dots, dashes and underscores", async () => {
    for (const name of ['x'.repeat(249), '...', 'a.b_c-D9', '_', '-']) {
      await log.createTopic(name, { partitions: 1 });
      await log.append(name, [{ value: 'v' }]);
      assert.equal((await readRecords(log, name, 0)).length, 1);
    }
  });

  test('creates the partition directories, each with an empty first segment, and returns the config with defaults', async () => {
    const info = await log.createTopic('orders', { partitions: 3 });
    assert.deepEqual(info, { name: 'orders', partitions: 3, ...TOPIC_DEFAULTS, createdAtMs: 1_700_000_000_000 });
    for (let p = 0; p < 3; p++) {
      assert.deepEqual(nodeFs.readdirSync(join(tmp.dir, 'topics', 'orders', String(p))), ['00000000000000000000.log']);
    }
  });

  test('writes topic.json through a temporary file, fsync and rename, leaving no .tmp behind', async () => {
    await log.close();
    const calls: string[] = [];
    const fds = new Map<number, string>();
    const recording: LogFs = {
      ...nodeFs,
      openSync: ((path: string, ...rest: unknown[]) => {
        const fd = (nodeFs.openSync as (...a: unknown[]) => number)(path, ...rest);
        fds.set(fd, String(path));
        if (String(path).includes('topic.json')) calls.push(`open ${String(path).slice(tmp.dir.length)}`);
        return fd;
      }) as typeof nodeFs.openSync,
      fsyncSync: ((fd: number) => {
        const path = fds.get(fd) ?? '?';
        if (path.includes('topic.json')) calls.push(`fsync ${path.slice(tmp.dir.length)}`);
        else if (path.endsWith(join('topics', 'orders'))) calls.push('fsync topic dir');
        return nodeFs.fsyncSync(fd);
      }) as typeof nodeFs.fsyncSync,
      renameSync: ((from: string, to: string) => {
        calls.push(`rename ${String(from).slice(tmp.dir.length)} -> ${String(to).slice(tmp.dir.length)}`);
        return nodeFs.renameSync(from, to);
      }) as typeof nodeFs.renameSync,
    };
    log = await openTestLog(tmp.dir, { fs: recording });
    const info = await log.createTopic('orders', { partitions: 2, retentionMs: 5000 });
    const json = '/topics/orders/topic.json';
    const tmpJson = `${json}.tmp`;
    const fromWrite = calls.slice(calls.indexOf(`open ${tmpJson}`));
    assert.deepEqual(fromWrite, [
      `open ${tmpJson}`,
      `fsync ${tmpJson}`,
      `rename ${tmpJson} -> ${json}`,
      'fsync topic dir',
    ]);
    const dir = join(tmp.dir, 'topics', 'orders');
    assert.ok(!tree(dir).some((n) => n.endsWith('.tmp')));
    assert.deepEqual(JSON.parse(nodeFs.readFileSync(join(dir, 'topic.json'), 'utf8')), info);
  });

  test('removes a topic directory without topic.json (an interrupted creation) on open, and warns', async () => {
    await log.createTopic('kept', { partitions: 1 });
    await log.close();
    const half = join(tmp.dir, 'topics', 'half');
    nodeFs.mkdirSync(join(half, '0'), { recursive: true });
    nodeFs.writeFileSync(join(half, 'topic.json.tmp'), '{"name":"ha');
    const logger = collectingLogger();
    log = await openTestLog(tmp.dir, { logger });
    assert.ok(!nodeFs.existsSync(half));
    assert.ok(logger.warnings.some((m) => m.includes('half') && /interrupted/.test(m)));
    assert.deepEqual(
      (await log.topics()).map((t) => t.name),
      ['kept'],
    );
    await log.createTopic('half', { partitions: 1 });
  });

  test('refuses to create a topic twice, also after a reopen', async () => {
    await log.createTopic('t', { partitions: 1 });
    await log.append('t', [{ value: 'keep me' }]);
    await assert.rejects(log.createTopic('t', { partitions: 4 }), { code: 'KAPPA_TOPIC_EXISTS' });
    await log.close();
    log = await openTestLog(tmp.dir);
    await assert.rejects(log.createTopic('t', { partitions: 1 }), { code: 'KAPPA_TOPIC_EXISTS' });
    assert.equal((await readRecords(log, 't', 0))[0].value!.toString(), 'keep me');
  });

  test('refuses bad partition counts and topic limits with KAPPA_INVALID_ARGUMENT and creates nothing', async () => {
    const before = tree(tmp.dir);
    const bad = [
      { partitions: 0 },
      { partitions: -1 },
      { partitions: 1.5 },
      { partitions: 10_001 },
      { partitions: Number.NaN },
      { partitions: 1, retentionMs: -2 },
      { partitions: 1, retentionMs: 1.5 },
      { partitions: 1, retentionBytes: -5 },
      { partitions: 1, segmentBytes: 1023 },
      { partitions: 1, segmentBytes: 2 ** 31 },
      { partitions: 1, segmentMs: 0 },
    ];
    for (const config of bad)
      await assert.rejects(log.createTopic('t', config), { code: 'KAPPA_INVALID_ARGUMENT' }, JSON.stringify(config));
    assert.deepEqual(tree(tmp.dir), before);
  });

  test('topics() lists every topic sorted by name with its config; topic() returns one', async () => {
    await log.createTopic('zeta', { partitions: 1 });
    await log.createTopic('alpha', { partitions: 2, retentionMs: 1000, segmentBytes: 4096 });
    const list = await log.topics();
    assert.deepEqual(
      list.map((t) => [t.name, t.partitions]),
      [
        ['alpha', 2],
        ['zeta', 1],
      ],
    );
    assert.equal(list[0].retentionMs, 1000);
    assert.equal(list[0].segmentBytes, 4096);
    assert.deepEqual(await log.topic('alpha'), list[0]);
  });

  test('unknown topics fail with KAPPA_UNKNOWN_TOPIC on every call', async () => {
    await assert.rejects(log.append('nope', [{ value: 'v' }]), { code: 'KAPPA_UNKNOWN_TOPIC' });
    await assert.rejects(log.appendBatch('nope', 0, [{ key: null, value: 'v', timestamp: 1 }]), {
      code: 'KAPPA_UNKNOWN_TOPIC',
    });
    await assert.rejects(log.offsets('nope', 0), { code: 'KAPPA_UNKNOWN_TOPIC' });
    await assert.rejects(log.offsetForTime('nope', 0, 0), { code: 'KAPPA_UNKNOWN_TOPIC' });
    await assert.rejects(readRecords(log, 'nope', 0), { code: 'KAPPA_UNKNOWN_TOPIC' });
    await assert.rejects(log.topic('nope'), { code: 'KAPPA_UNKNOWN_TOPIC' });
    assert.ok(!nodeFs.existsSync(join(tmp.dir, 'topics', 'nope')));
  });

  test('partitions outside the topic fail with KAPPA_INVALID_PARTITION', async () => {
    await log.createTopic('t', { partitions: 2 });
    for (const p of [-1, 2, 1.5, Number.NaN, 99]) {
      await assert.rejects(log.offsets('t', p), { code: 'KAPPA_INVALID_PARTITION' }, String(p));
      await assert.rejects(log.offsetForTime('t', p, 0), { code: 'KAPPA_INVALID_PARTITION' });
      await assert.rejects(readRecords(log, 't', p), { code: 'KAPPA_INVALID_PARTITION' });
      await assert.rejects(log.appendBatch('t', p, [{ key: null, value: 'v', timestamp: 1 }]), {
        code: 'KAPPA_INVALID_PARTITION',
      });
      await assert.rejects(log.append('t', [{ value: 'v', partition: p }]), { code: 'KAPPA_INVALID_PARTITION' });
    }
  });

  test('offsets outside [start, end] fail with KAPPA_OFFSET_OUT_OF_RANGE; reading from end gives nothing', async () => {
    await log.createTopic('t', { partitions: 1 });
    await log.append('t', [{ value: 'a' }, { value: 'b' }]);
    for (const from of [-1, 3, 1.5, Number.NaN, 2 ** 53]) {
      await assert.rejects(readRecords(log, 't', 0, from), { code: 'KAPPA_OFFSET_OUT_OF_RANGE' }, String(from));
    }
    assert.deepEqual(await readRecords(log, 't', 0, 2), []);
  });

  test('appendBatch appends one batch to one partition and returns its offset range', async () => {
    await log.createTopic('t', { partitions: 2 });
    const range = await log.appendBatch('t', 1, [
      { key: null, value: 'a', timestamp: 5 },
      { key: 'k', value: 'b', timestamp: 6 },
    ]);
    assert.deepEqual(range, { baseOffset: 0, lastOffset: 1, duplicates: 0, duplicateOffsets: [] });
    assert.deepEqual(await log.appendBatch('t', 1, [{ key: null, value: 'c', timestamp: 7 }]), {
      baseOffset: 2,
      lastOffset: 2,
      duplicates: 0,
      duplicateOffsets: [],
    });
    assert.deepEqual(
      (await readRecords(log, 't', 1)).map((r) => r.value!.toString()),
      ['a', 'b', 'c'],
    );
    assert.deepEqual(await log.offsets('t', 0), { start: 0, end: 0 });
  });

  test('every call fails with KAPPA_LOG_CLOSED after close, and close twice is harmless', async () => {
    await log.createTopic('t', { partitions: 1 });
    await log.close();
    await log.close();
    await assert.rejects(log.append('t', [{ value: 'v' }]), { code: 'KAPPA_LOG_CLOSED' });
    await assert.rejects(log.offsets('t', 0), { code: 'KAPPA_LOG_CLOSED' });
    await assert.rejects(readRecords(log, 't', 0), { code: 'KAPPA_LOG_CLOSED' });
  });
});
