/**
 * The `kappa` CLI end to end: real data directories, the real command (in-process through `main`
 * for speed, and as a child process where stdin pipes, exit codes and signals matter).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { partitionForKey } from '../../src/log/index.ts';
import { type CliRun, kappaInProcess, kappaProcess as runCli } from '../support/cli.ts';
import { runKappa, startKappa } from '../support/processes.ts';

/** Runs the CLI in this process with the given stdin text. */
const kappa = (dataDir: string, args: string[], stdin = ''): Promise<CliRun> =>
  kappaInProcess(['--data-dir', dataDir, ...args], stdin);

/** Runs the CLI as a child process, the way a user does, with `stdin` as its standard input. */
const kappaProcess = (dataDir: string, args: string[], stdin = ''): Promise<CliRun> =>
  runCli(['--data-dir', dataDir, ...args], { input: stdin, timeoutMs: 30_000 });

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

describe('kappa CLI', () => {
  let root: string;
  let n = 0;
  const freshDir = (): string => join(root, `d${n++}`);
  /** A fresh data directory with one topic, created by `kappa topics create ...args`. */
  const withTopic = async (...args: string[]): Promise<string> => {
    const dir = freshDir();
    await kappa(dir, ['topics', 'create', ...args]);
    return dir;
  };
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kappa-cli-'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test(
    'produce then consume round-trips NDJSON and keys records with Kafka’s partitioner',
    { timeout: 60_000 },
    async () => {
      const dir = freshDir();
      assert.equal((await kappa(dir, ['topics', 'create', 'sales', '--partitions', '4'])).code, 0);
      const input = [
        '{"storeId":"s1","amount":1}',
        '{"storeId":"s2","amount":2}',
        '{"storeId":"s3","amount":3.5,"note":"ünïcode"}',
      ];
      const produced = await kappaProcess(dir, ['produce', 'sales', '--key-field', 'storeId'], input.join('\n') + '\n');
      assert.equal(produced.code, 0, produced.stderr);
      assert.match(produced.stderr, /produced 3 records/);
      const consumed = await kappa(dir, ['consume', 'sales', '--with-meta']);
      assert.equal(consumed.code, 0, consumed.stderr);
      const records = lines(consumed.stdout).map((l) => JSON.parse(l));
      assert.equal(records.length, 3);
      for (const r of records) {
        assert.equal(r.topic, 'sales');
        assert.equal(r.key, r.value.storeId);
        assert.equal(r.partition, partitionForKey(r.key, 4));
        assert.equal(typeof r.timestamp, 'number');
      }
      const values = lines((await kappa(dir, ['consume', 'sales'])).stdout).sort();
      assert.deepEqual(values, [...input].sort());
    },
  );

  test(
    'a malformed line stops produce with its line number; lines before it stay, nothing after is written',
    { timeout: 60_000 },
    async () => {
      const dir = await withTopic('t');
      const res = await kappaProcess(dir, ['produce', 't'], '{"a":1}\n{"a":2}\n{"a": oops}\n{"a":4}\n');
      assert.equal(res.code, 1);
      assert.match(res.stderr, /line 3 is not valid JSON/);
      assert.match(res.stderr, /2 records from the lines before it were produced/);
      assert.deepEqual(lines((await kappa(dir, ['consume', 't'])).stdout), ['{"a":1}', '{"a":2}']);
    },
  );

  test('a line without the key field is refused with its line number', async () => {
    const dir = await withTopic('t');
    const res = await kappa(dir, ['produce', 't', '--key-field', 'user.id'], '{"user":{"id":7}}\n{"user":{}}\n');
    assert.equal(res.code, 1);
    assert.match(res.stderr, /line 2 has no string or number at "user.id"/);
    const meta = lines((await kappa(dir, ['consume', 't', '--with-meta'])).stdout).map((l) => JSON.parse(l));
    assert.deepEqual(
      meta.map((m) => m.key),
      ['7'],
    );
  });

  test('topic names outside Kafka’s rule are refused before anything touches the disk', async () => {
    const dir = freshDir();
    for (const bad of ['../x', 'a/b', '.', '..', 'x'.repeat(250), 'sp ace']) {
      const res = await kappa(dir, ['topics', 'create', bad]);
      assert.equal(res.code, 1, bad);
      assert.match(res.stderr, /is not a valid topic name/);
    }
    assert.equal(existsSync(join(dir, 'x')), false);
    assert.deepEqual(existsSync(join(dir, 'topics')) ? readdirSync(join(dir, 'topics')) : [], []);
    assert.equal((await kappa(dir, ['topics', 'create', 'ok.name_1-x'])).code, 0);
  });

  test('unknown topics, partitions, offsets and times get clear errors and exit code 1', async () => {
    const dir = await withTopic('t', '--partitions', '2');
    await kappa(dir, ['produce', 't'], '{"a":1}\n');
    const cases: [string[], RegExp][] = [
      [['consume', 'nope'], /Topic "nope" does not exist/],
      [['produce', 'nope'], /Topic "nope" does not exist/],
      [['consume', 't', '--partition', '2'], /has partitions 0 to 1; there is no partition 2/],
      [['consume', 't', '--partition', 'x'], /--partition must be a whole number/],
      [['consume', 't', '--from', '5', '--partition', '0'], /outside partition 0/],
      [['consume', 't', '--from', 'yesterday'], /--from "yesterday" is not understood/],
      [['consume', 't', '--from', '@not-a-time'], /is not a time Kappa can read/],
      [['topics', 'create', 't'], /already exists/],
      [['topics', 'create', 'u', '--partitions', '0'], /--partitions must be a whole number/],
      [['topics', 'describe', 'nope'], /does not exist/],
    ];
    for (const [args, message] of cases) {
      const res = await kappa(dir, args);
      assert.equal(res.code, 1, args.join(' '));
      assert.match(res.stderr, message, args.join(' '));
      assert.match(res.stderr, /^kappa: error: /);
    }
  });

  test('consume --from picks earliest, latest, an offset or a time; --limit stops early', async () => {
    const dir = await withTopic('ev');
    const input = [0, 1, 2, 3, 4].map((i) => JSON.stringify({ i, at: `2026-01-01T00:0${i}:00Z` })).join('\n');
    assert.equal((await kappa(dir, ['produce', 'ev', '--time-field', 'at'], input)).code, 0);
    const values = async (...args: string[]): Promise<number[]> =>
      lines((await kappa(dir, ['consume', 'ev', ...args])).stdout).map((l) => JSON.parse(l).i);
    assert.deepEqual(await values(), [0, 1, 2, 3, 4]);
    assert.deepEqual(await values('--from', 'latest'), []);
    assert.deepEqual(await values('--from', '3'), [3, 4]);
    assert.deepEqual(await values('--from', '@2026-01-01T00:02:00Z'), [2, 3, 4]);
    assert.deepEqual(await values('--from', '@2026-01-01T00:01:30Z'), [2, 3, 4]);
    assert.deepEqual(await values('--limit', '2'), [0, 1]);
    const meta = JSON.parse(lines((await kappa(dir, ['consume', 'ev', '--with-meta', '--limit', '1'])).stdout)[0]);
    assert.equal(meta.timestamp, Date.parse('2026-01-01T00:00:00Z'));
  });

  test(
    'consume --follow prints records that another process produces later, and stops on Ctrl-C',
    { timeout: 60_000 },
    async (t) => {
      const dir = await withTopic('live');
      const consumer = startKappa(t, ['--data-dir', dir, 'consume', 'live', '--follow']);
      await new Promise((r) => setTimeout(r, 1500)); // let the consumer start and reach the end of the log
      const produced = await kappaProcess(dir, ['produce', 'live'], '{"n":1}\n{"n":2}\n');
      assert.equal(produced.code, 0, produced.stderr);
      await consumer.waitForOutput('{"n":2}\n', { timeoutMs: 10_000, stream: 'stdout' });
      assert.deepEqual(lines(consumer.stdout), ['{"n":1}', '{"n":2}']);
      consumer.kill('SIGINT');
      assert.equal((await consumer.exited).code, 0, consumer.stderr);
    },
  );

  test('topics list and describe report partitions and offsets, as text and as JSON', async () => {
    const dir = freshDir();
    assert.match((await kappa(dir, ['topics', 'list'])).stdout, /no topics/);
    await kappa(dir, ['topics', 'create', 'a', '--partitions', '3', '--retention-ms', '86400000']);
    await kappa(dir, ['produce', 'a', '--key-field', 'k'], '{"k":"x"}\n{"k":"y"}\n{"k":"z"}\n');
    const list = JSON.parse((await kappa(dir, ['topics', 'list', '--json'])).stdout);
    assert.deepEqual(list, [{ name: 'a', partitions: 3, records: 3, retentionMs: 86400000, retentionBytes: -1 }]);
    const text = (await kappa(dir, ['topics', 'list'])).stdout;
    assert.match(text, /^TOPIC\s+PARTITIONS\s+RECORDS\s+RETENTION\na\s+3\s+3\s+1d\n$/);
    const described = JSON.parse((await kappa(dir, ['topics', 'describe', 'a', '--json'])).stdout);
    assert.equal(described.partitionDetails.length, 3);
    assert.equal(
      described.partitionDetails.reduce((s: number, p: { records: number }) => s + p.records, 0),
      3,
    );
    assert.match((await kappa(dir, ['topics', 'describe', 'a'])).stdout, /PARTITION\s+START\s+END\s+RECORDS\s+STATUS/);
  });

  test('KAPPA_DATA_DIR chooses the data directory when --data-dir is not given', { timeout: 60_000 }, async () => {
    const dir = await withTopic('from-env');
    const res = await runKappa(['topics', 'list', '--json'], {
      env: { KAPPA_DATA_DIR: dir },
      cwd: root,
      timeoutMs: 30_000,
    });
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(
      JSON.parse(res.stdout).map((t: { name: string }) => t.name),
      ['from-env'],
    );
  });

  test('verify passes on healthy data and reports what it checked', { timeout: 60_000 }, async () => {
    const dir = await withTopic('v', '--partitions', '2');
    await kappa(dir, ['produce', 'v'], '{"a":1}\n{"a":2}\n');
    const res = await kappaProcess(dir, ['verify']);
    assert.equal(res.code, 0, res.stdout + res.stderr);
    assert.match(res.stdout, /checked 1 topics, 2 partitions, 2 segments, 1 batches, 2 records .*: no damage found/);
    const json = JSON.parse((await kappa(dir, ['verify', '--json'])).stdout);
    assert.equal(json.ok, true);
  });

  test(
    'a second writer is refused while the data directory is locked, and read-only commands still work',
    { timeout: 60_000 },
    async (t) => {
      const dir = await withTopic('w');
      const holder = startKappa(t, ['--data-dir', dir, 'produce', 'w'], { stdin: 'pipe' });
      holder.child.stdin!.write('{"a":1}\n');
      const deadline = Date.now() + 10_000;
      while (!existsSync(join(dir, '.lock')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const refused = await kappa(dir, ['produce', 'w'], '{"b":2}\n');
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /is in use by process \d+/);
      assert.equal((await kappa(dir, ['topics', 'list'])).code, 0);
      holder.child.stdin!.end();
      assert.equal((await holder.exited).code, 0, holder.stderr);
      assert.deepEqual(lines((await kappa(dir, ['consume', 'w'])).stdout), ['{"a":1}']);
    },
  );
});
