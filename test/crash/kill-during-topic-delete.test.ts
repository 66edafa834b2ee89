/**
 * `kappa topics delete` killed (SIGKILL, as a power cut or kill -9) at each step of the deletion:
 * before the topic's directory is renamed out of topics/, the whole topic is still there with every
 * record; after it, the topic is gone and the next open removes what was left. The other topics
 * never change.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type LogRecord, openFileLog } from '../../src/log/index.ts';
import { tempDir } from '../support/cleanup.ts';
import { quietLogger } from '../support/loggers.ts';
import { runKappa } from '../support/processes.ts';

async function values(dir: string, topic: string, partitions: number): Promise<string[]> {
  const log = await openFileLog({ dir, logger: quietLogger });
  try {
    const out: string[] = [];
    for (let p = 0; p < partitions; p++)
      for await (const batch of log.read(topic, p, 0))
        out.push(...batch.records(0).map((r: LogRecord) => r.value!.toString()));
    return out.sort();
  } finally {
    await log.close();
  }
}

const cases = [
  { at: 'delete-topic-before-rename', topicLeft: true },
  { at: 'delete-topic-after-rename', topicLeft: false },
];

for (const { at, topicLeft } of cases) {
  test(
    `killed at ${at}: the topic is ${topicLeft ? 'whole' : 'gone'}, the others untouched`,
    { timeout: 60_000 },
    async (t) => {
      const dir = tempDir(t, 'kappa-crash-delete-');
      const log = await openFileLog({ dir, logger: quietLogger });
      await log.createTopic('doomed', { partitions: 2 });
      await log.createTopic('kept', { partitions: 1 });
      await log.append(
        'doomed',
        ['a', 'b', 'c', 'd'].map((value, i) => ({ value, partition: i % 2 })),
      );
      await log.append('kept', [{ value: 'k1' }, { value: 'k2' }]);
      await log.close();

      const run = await runKappa(['--data-dir', dir, 'topics', 'delete', 'doomed'], {
        t,
        env: { KAPPA_TEST_CRASH_AT: at },
        timeoutMs: 30_000,
      });
      assert.equal(run.signal, 'SIGKILL', `the delete was killed at ${at}: ${run.stderr}`);

      const reopened = await openFileLog({ dir, logger: quietLogger });
      const names = (await reopened.topics()).map((x) => x.name);
      await reopened.close();
      assert.deepEqual(names, topicLeft ? ['doomed', 'kept'] : ['kept']);
      if (topicLeft) assert.deepEqual(await values(dir, 'doomed', 2), ['a', 'b', 'c', 'd']);
      assert.deepEqual(await values(dir, 'kept', 1), ['k1', 'k2']);
      const trash = join(dir, 'deleted-topics');
      assert.deepEqual(existsSync(trash) ? readdirSync(trash) : [], [], 'the next open finished the removal');

      // And the deletion can be done again, or for the first time, after the crash.
      if (topicLeft) {
        const again = await runKappa(['--data-dir', dir, 'topics', 'delete', 'doomed'], { t, timeoutMs: 30_000 });
        assert.equal(again.code, 0, again.stderr);
      }
    },
  );
}
