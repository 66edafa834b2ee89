import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { type Owner, runCommand, spawnOwned } from '../../test/support/processes.ts';
import { openTestLog, readRecords, tempDir } from './test-helpers.ts';

/** The pid of a live process other than this one, to hold the lock; it is killed when test `t` ends. */
function idleProcessPid(t: Owner): number {
  return spawnOwned(t, process.execPath, ['-e', 'setInterval(() => {}, 1000)']).pid;
}

/** The pid of a process that has exited (so no live process owns it). */
async function deadPid(): Promise<number> {
  return (await runCommand(process.execPath, ['-e', ''], { timeoutMs: 20_000 })).pid;
}

describe('data directory lock', () => {
  let tmp: ReturnType<typeof tempDir>;

  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => {
    tmp.cleanup();
  });

  test('refuses a second writer in the same process with KAPPA_DATA_DIR_LOCKED', async () => {
    const log = await openTestLog(tmp.dir);
    try {
      await assert.rejects(openTestLog(tmp.dir), (err: { code?: string; message: string }) => {
        assert.equal(err.code, 'KAPPA_DATA_DIR_LOCKED');
        assert.match(err.message, /this process/);
        return true;
      });
    } finally {
      await log.close();
    }
  });

  test(
    'refuses a writer while another live process holds the lock, naming that process',
    { timeout: 30_000 },
    async (t) => {
      const pid = idleProcessPid(t);
      fs.mkdirSync(join(tmp.dir, 'topics'), { recursive: true });
      fs.writeFileSync(join(tmp.dir, '.lock'), String(pid));
      await assert.rejects(
        openTestLog(tmp.dir),
        (err: { code?: string; message: string; details?: Record<string, unknown>; retriable?: boolean }) => {
          assert.equal(err.code, 'KAPPA_DATA_DIR_LOCKED');
          assert.equal(err.details?.pid, pid);
          assert.match(err.message, new RegExp(`process ${pid}`));
          assert.equal(err.retriable, true);
          return true;
        },
      );
      assert.equal(fs.readFileSync(join(tmp.dir, '.lock'), 'utf8'), String(pid), 'the other process keeps its lock');
    },
  );

  test('takes over a stale lock left by a process that no longer runs', { timeout: 30_000 }, async () => {
    const setup = await openTestLog(tmp.dir);
    await setup.createTopic('t', { partitions: 1 });
    await setup.append('t', [{ value: 'survives' }]);
    await setup.close();
    fs.writeFileSync(join(tmp.dir, '.lock'), String(await deadPid()));
    const log = await openTestLog(tmp.dir);
    try {
      assert.equal(fs.readFileSync(join(tmp.dir, '.lock'), 'utf8'), String(process.pid));
      assert.equal((await readRecords(log, 't', 0))[0].value!.toString(), 'survives');
    } finally {
      await log.close();
    }
  });

  test('takes over a lock file that holds no pid', async () => {
    fs.writeFileSync(join(tmp.dir, '.lock'), '');
    const log = await openTestLog(tmp.dir);
    assert.equal(fs.readFileSync(join(tmp.dir, '.lock'), 'utf8'), String(process.pid));
    await log.close();
  });

  test('releases the lock on close so the next writer can open', async () => {
    const first = await openTestLog(tmp.dir);
    assert.equal(fs.readFileSync(join(tmp.dir, '.lock'), 'utf8'), String(process.pid));
    await first.close();
    assert.ok(!fs.existsSync(join(tmp.dir, '.lock')));
    const second = await openTestLog(tmp.dir);
    await second.close();
  });

  test('read-only opens need no lock and work beside a writer in another process', { timeout: 30_000 }, async (t) => {
    const setup = await openTestLog(tmp.dir);
    await setup.createTopic('t', { partitions: 1 });
    await setup.append('t', [{ value: 'v' }]);
    await setup.close();
    const pid = idleProcessPid(t);
    fs.writeFileSync(join(tmp.dir, '.lock'), String(pid));
    const reader = await openTestLog(tmp.dir, { readOnly: true });
    try {
      assert.equal((await readRecords(reader, 't', 0)).length, 1);
    } finally {
      await reader.close();
    }
    assert.equal(fs.readFileSync(join(tmp.dir, '.lock'), 'utf8'), String(pid), 'the reader leaves the lock alone');
  });
});
