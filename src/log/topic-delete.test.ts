import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import * as nodeFs from 'node:fs';
import { join } from 'node:path';
import type { FileLog } from './file-log.ts';
import type { LogFs } from './fs.ts';
import { openTestLog, readRecords, tempDir } from './test-helpers.ts';

/** Node's fs, except that `failing` throws (as a crash at that step would stop the deletion). */
function failingAt(failing: 'renameSync' | 'rmSync', when: (path: string) => boolean): LogFs {
  return {
    ...nodeFs,
    [failing]: (path: string, ...rest: unknown[]) => {
      if (when(String(path))) throw Object.assign(new Error(`simulated crash at ${failing}`), { code: 'EIO' });
      return (nodeFs[failing] as (...a: unknown[]) => unknown)(path, ...rest);
    },
  } as LogFs;
}

/** What a crashed process leaves: its lock file, which the next open would take for a live one (same pid). */
function crashLeftovers(dir: string): void {
  nodeFs.rmSync(join(dir, '.lock'), { force: true });
}

/** A temp dir whose logs (`closing`) are closed before it is removed, after the test. */
function scratch(t: TestContext): { dir: string; closing: FileLog[] } {
  const tmp = tempDir();
  const closing: FileLog[] = [];
  t.after(async () => {
    for (const log of closing) await log.close();
    tmp.cleanup();
  });
  return { dir: tmp.dir, closing };
}

async function withTopic(dir: string, fs?: LogFs) {
  const log = await openTestLog(dir, { fsync: 'never', ...(fs ? { fs } : {}) });
  await log.createTopic('doomed', { partitions: 2 });
  await log.append('doomed', [
    { value: 'a', partition: 0 },
    { value: 'b', partition: 1 },
  ]);
  return log;
}

test('a crash before the topic directory is renamed away leaves the whole topic, records and all', async (t) => {
  const tmp = scratch(t);
  const log = await withTopic(
    tmp.dir,
    failingAt('renameSync', (p) => p.endsWith(join('topics', 'doomed'))),
  );
  await assert.rejects(log.deleteTopic('doomed'), /simulated crash/);
  crashLeftovers(tmp.dir);
  const reopened = await openTestLog(tmp.dir);
  tmp.closing.push(reopened);
  assert.deepEqual(
    (await reopened.topics()).map((x) => x.name),
    ['doomed'],
  );
  assert.deepEqual(
    (await readRecords(reopened, 'doomed', 0)).map((r) => r.value!.toString()),
    ['a'],
  );
  assert.deepEqual(
    (await readRecords(reopened, 'doomed', 1)).map((r) => r.value!.toString()),
    ['b'],
  );
});

test('a crash after the rename leaves no topic, and the next open removes what was left of it', async (t) => {
  const tmp = scratch(t);
  const log = await withTopic(
    tmp.dir,
    failingAt('rmSync', (p) => p.includes('deleted-topics') && nodeFs.existsSync(p)),
  );
  await assert.rejects(log.deleteTopic('doomed'), /simulated crash/);
  crashLeftovers(tmp.dir);
  assert.equal(nodeFs.readdirSync(join(tmp.dir, 'deleted-topics')).length, 1, 'the renamed directory is left over');
  const reopened = await openTestLog(tmp.dir);
  tmp.closing.push(reopened);
  assert.deepEqual(await reopened.topics(), []);
  assert.deepEqual(nodeFs.readdirSync(join(tmp.dir, 'deleted-topics')), []);
  assert.deepEqual(nodeFs.readdirSync(join(tmp.dir, 'topics')), []);
});

test('a follower reading the deleted topic stops instead of waiting forever', async (t) => {
  const tmp = scratch(t);
  const log = await withTopic(tmp.dir);
  tmp.closing.push(log);
  const seen: string[] = [];
  const following = (async () => {
    for await (const batch of log.read('doomed', 0, 0, { follow: true }))
      for (const r of batch.records(0)) seen.push(r.value!.toString());
  })();
  // Deleted once the follower has read what is there (a loaded machine may take longer than 50 ms to)
  // and waits at the end.
  const deadline = Date.now() + 10_000;
  while (seen.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  await log.deleteTopic('doomed');
  await following;
  assert.deepEqual(seen, ['a']);
  assert.deepEqual(nodeFs.readdirSync(join(tmp.dir, 'topics')), []);
});
