/**
 * `to(topic)` exactly once, at the crash window that matters: the derived records are appended
 * (durable) and the process dies before the checkpoint that covers them is saved. Here the
 * store refuses that checkpoint once, which fails the engine exactly there; a new engine resumes
 * from the previous checkpoint, re-sends those records under the same sequence numbers, and the
 * log drops them. The derived topic must hold each record exactly once, on the main thread and on
 * a worker thread alike.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type FileLog, openFileLog } from '../../src/log/index.ts';
import { Engine, loadApp } from '../../src/stream/index.ts';
import { type OutputCheckpoint } from '../../src/view/index.ts';
import { type SqliteStore, openSqliteStore } from '../../src/view/sqlite/index.ts';
import { quietLogger } from '../support/loggers.ts';
import { KAPPA_SRC as SRC, tempProject } from '../support/project.ts';

const quiet = quietLogger;

const CONFIG = `
import { Type, defineApp, from, topic } from ${JSON.stringify(SRC)};
const Payment = Type.Object({ id: Type.Integer(), card: Type.String(), cents: Type.Integer() });
const payments = topic('payments', { partitions: 2, schema: Payment, key: (p) => p.card });
const flagged = topic('flagged', { partitions: 3, key: (f) => f.card });
export default defineApp({
  topics: [payments, flagged],
  outputs: [from(payments).filter((p) => p.cents % 3 === 0).flatMap((p) => [{ id: p.id, card: p.card, copy: 1 }, { id: p.id, card: p.card, copy: 2 }]).to(flagged)],
});
`;

/** A store that refuses the next output checkpoint once, as a crash right before it would. */
function refusingOnce(store: SqliteStore): SqliteStore & { armed: boolean; refused: number } {
  const wrapped = Object.create(store) as SqliteStore & { armed: boolean; refused: number };
  wrapped.armed = false;
  wrapped.refused = 0;
  wrapped.saveOutputCheckpoint = async (name: string, cp: OutputCheckpoint) => {
    if (wrapped.armed) {
      wrapped.armed = false;
      wrapped.refused++;
      throw new Error('simulated crash before the checkpoint');
    }
    return store.saveOutputCheckpoint(name, cp);
  };
  return wrapped;
}

async function consumeAll(log: FileLog, topic: string): Promise<{ id: number; copy: number }[]> {
  const out: { id: number; copy: number }[] = [];
  const info = await log.topic(topic);
  for (let p = 0; p < info.partitions; p++) {
    for await (const batch of log.read(topic, p, 0))
      for (const r of batch.records()) out.push(JSON.parse(r.value!.toString()) as { id: number; copy: number });
  }
  return out.sort((a, b) => a.id - b.id || a.copy - b.copy);
}

async function until(what: string, done: () => Promise<boolean> | boolean, engine?: Engine): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Promise.race([engine?.failure ?? new Promise(() => {}), new Promise((r) => setTimeout(r, 10))]);
  }
}

describe('to(topic) exactly once across a crash between the appends and the checkpoint', () => {
  const project = tempProject({ after }, 'kappa-outputs-');
  const config = project.writeConfig(CONFIG);

  for (const workers of [0, 1]) {
    test(
      `${workers === 0 ? 'on the main thread' : 'on a worker thread'}: every record once after the restart`,
      { timeout: 60_000 },
      async () => {
        const dir = project.dataDir(`data-${workers}`);
        const log = await openFileLog({ dir, logger: quiet });
        const base = await openSqliteStore({ path: join(dir, 'views.db') });
        const app = await loadApp(config);
        let nextId = 0;
        const produce = (n: number) =>
          log.append(
            'payments',
            Array.from({ length: n }, () => {
              const id = nextId++;
              return { key: `card${id % 7}`, value: JSON.stringify({ id, card: `card${id % 7}`, cents: id * 10 }) };
            }),
          );
        const engineOver = (store: SqliteStore): Engine =>
          new Engine({
            log,
            store,
            control: store,
            app,
            logger: quiet,
            workers,
            configPath: config,
            flushIntervalMs: 10,
          });
        /** Starts `engine`, produces `n` payments, and waits until the output's checkpoints add up to `checkpointed`. */
        const startAndProduce = async (
          engine: Engine,
          n: number,
          what: string,
          checkpointed: number,
        ): Promise<void> => {
          await engine.start();
          await produce(n);
          await until(
            what,
            async () =>
              (await base.outputCheckpoints('payments_to_flagged')).reduce((s, c) => s + c.offset, 0) === checkpointed,
            engine,
          );
        };
        try {
          const store = refusingOnce(base);
          const first = engineOver(store);
          await startAndProduce(first, 300, 'the first checkpoints', 300);
          // The next flush appends its records, then its checkpoint is refused: the engine fails there.
          store.armed = true;
          await produce(300);
          await assert.rejects(first.failure, /simulated crash before the checkpoint/);
          assert.equal(store.refused, 1);
          await first.close();
          const written = (await consumeAll(log, 'flagged')).length;
          assert.ok(written > 200, `the refused flush had appended its records (${written} in the topic)`);

          const second = engineOver(base);
          await startAndProduce(second, 150, 'the restart to catch up', 750);
          await second.stop();

          const expected = Array.from({ length: nextId }, (_, id) => id)
            .filter((id) => (id * 10) % 3 === 0)
            .flatMap((id) => [
              { id, card: `card${id % 7}`, copy: 1 },
              { id, card: `card${id % 7}`, copy: 2 },
            ]);
          assert.deepEqual(await consumeAll(log, 'flagged'), expected);
        } finally {
          await base.close();
          await log.close();
        }
      },
    );
  }
});

const COPY_CONFIG = `
import { Type, defineApp, from, topic } from ${JSON.stringify(SRC)};
const Payment = Type.Object({ id: Type.Integer(), card: Type.String(), cents: Type.Integer() });
const payments = topic('payments', { partitions: 2, schema: Payment, key: (p) => p.card });
const copied = topic('copied', { partitions: 3, key: (c) => c.card });
export default defineApp({
  topics: [payments, copied],
  outputs: [from(payments).map((p) => ({ id: p.id, card: p.card, euros: p.cents / 100 })).to(copied)],
});
`;

// The buffers an output's records are built in go back to the thread that built them once the
// flush's checkpoint is saved, and are built in again (batch-builder.ts, SpareBuffers): with small
// flushes, many rounds of that, and every record must still be there once, as it was made.
describe('to(topic) over many small flushes: buffers given back and built in again', () => {
  const project = tempProject({ after }, 'kappa-outputs-spares-');
  const config = project.writeConfig(COPY_CONFIG);

  for (const workers of [0, 1]) {
    test(`${workers === 0 ? 'on the main thread' : 'on a worker thread'}`, { timeout: 60_000 }, async () => {
      const dir = project.dataDir(`data-${workers}`);
      const log = await openFileLog({ dir, logger: quiet });
      const store = await openSqliteStore({ path: join(dir, 'views.db') });
      const engine = new Engine({
        log,
        store,
        control: store,
        app: await loadApp(config),
        logger: quiet,
        workers,
        configPath: config,
        flushIntervalMs: 5,
        dirtyRowsMax: 250,
      });
      const n = 20_000;
      try {
        await engine.start();
        for (let start = 0; start < n; start += 1000)
          await log.append(
            'payments',
            Array.from({ length: 1000 }, (_, i) => {
              const id = start + i;
              const card = `card${id % 7}-${'x'.repeat(id % 40)}`;
              return { key: card, value: JSON.stringify({ id, card, cents: id * 7 + 1 }) };
            }),
          );
        await until(
          'every payment copied',
          async () => (await store.outputCheckpoints('payments_to_copied')).reduce((s, c) => s + c.offset, 0) === n,
          engine,
        );
        await engine.stop();
        // Each card's copies in one partition, in the order the payments were made, each once.
        const seen = new Map<string, number>();
        let count = 0;
        for (let p = 0; p < 3; p++)
          for await (const batch of log.read('copied', p, 0))
            for (const r of batch.records()) {
              const c = JSON.parse(r.value!.toString()) as { id: number; card: string; euros: number };
              assert.equal(c.euros, (c.id * 7 + 1) / 100);
              assert.equal(c.card, `card${c.id % 7}-${'x'.repeat(c.id % 40)}`);
              assert.ok((seen.get(c.card) ?? -1) < c.id, `card ${c.card}: ${c.id} after ${seen.get(c.card)}`);
              seen.set(c.card, c.id);
              count++;
            }
        assert.equal(count, n);
      } finally {
        await engine.close();
        await store.close();
        await log.close();
      }
    });
  }
});
