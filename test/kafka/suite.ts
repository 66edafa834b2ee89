/**
 * The compatibility suite every client file (kcat.test.ts, confluent-kafka.test.ts, ...) registers
 * for its client, against a real `kappa start` with its Kafka listener on a free port:
 *
 *   1. keyed records produced and consumed back: no loss, no duplicates, order per partition, each
 *      key on the partition murmur2 picks, headers and timestamps intact; then, per codec the client
 *      can compress with, the same with compressed batches, also read back through Kappa's HTTP reader
 *   2. a consumer group of three members: rebalance on each join and on a member's death (SIGKILL),
 *      every record consumed exactly once across the members' committed records, committed offsets
 *      at the end of every partition
 *      (and again with each librdkafka assignor the suite names: roundrobin, cooperative-sticky)
 *   3. committed offsets survive a restart of `kappa start` (SIGTERM, or SIGKILL where the suite asks), and
 *      the group's next member resumes after them
 *
 * Suites that need a Debian package list it in `needs`: `npm test` skips them with one line each.
 * The tests of a suite run at once, each on its own `kappa start`: they mostly wait (for sessions to
 * expire, groups to settle), so together they take about as long as the longest.
 */
import { describe, test } from 'node:test';
import { requireDebianPackage } from '../support/debian.ts';
import {
  type KafkaClient,
  type KappaWithKafka,
  type ProduceOptions,
  type RestartableKafka,
  type TopicSpec,
  compressionScenario,
  groupScenario,
  produceAndConsume,
  restartScenario,
  startKappaWithKafka,
} from '../support/kafka-clients.ts';
import type { DebianPackage } from '../support/debian.ts';

const PARTITIONS = 3;

export interface SuiteOptions {
  /** Debian packages the client needs (none for the npm clients). */
  needs?: DebianPackage[];
  /** How the client produces in every scenario (confluent-kafka: the idempotent producer, acks=all). */
  produce?: ProduceOptions;
  /** librdkafka assignors (partition.assignment.strategy) to run scenario 2 again with, beside the client's default. */
  assignors?: string[];
  /** How scenario 3 stops `kappa start`: SIGTERM (default), or SIGKILL, after which committed offsets must still be there. */
  restartSignal?: 'SIGTERM' | 'SIGKILL';
}

/** A `kappa start` as restartScenario wants it, restarted with `signal`. */
function restartable(kappa: KappaWithKafka, signal: NodeJS.Signals): RestartableKafka {
  return { bootstrap: kappa.bootstrap, restart: async () => restartable(await kappa.restart(signal), signal) };
}

function topics(names: string[]): TopicSpec[] {
  return names.map((name) => ({ name, partitions: PARTITIONS }));
}

/**
 * False when every package in `needs` is there, or else the one line requireDebianPackage would
 * skip with (for describe's `skip`, so a whole suite is skipped with one line, not one per test).
 */
export function skipUnlessInstalled(needs: DebianPackage[]): string | false {
  for (const need of needs) {
    let message = '';
    if (requireDebianPackage({ skip: (m = '') => (message = m) }, need) === null) return message;
  }
  return false;
}

export function compatibilitySuite(client: KafkaClient, opts: SuiteOptions = {}): void {
  describe(
    `${client.name} against Kappa's Kafka listener`,
    { skip: skipUnlessInstalled(opts.needs ?? []), concurrency: true },
    () => registerTests(client, opts),
  );
}

function registerTests(client: KafkaClient, opts: SuiteOptions): void {
  const signal = opts.restartSignal ?? 'SIGTERM';
  const produceNote = opts.produce?.idempotent ? ' (idempotent producer, acks=all)' : '';

  test(
    `${client.name} produces keyed records to Kappa${produceNote} and consumes them back, plain and with each codec it compresses with`,
    { timeout: 180_000 },
    async (t) => {
      const codecTopics = client.codecs.map((codec) => `compressed-${codec}`);
      const kappa = await startKappaWithKafka(t, { topics: topics(['keyed', ...codecTopics]) });
      await produceAndConsume(t, client, kappa.bootstrap, 'keyed', PARTITIONS, opts.produce);
      for (const codec of client.codecs)
        await t.test(`${codec}: consumed back intact, and readable through Kappa's HTTP API`, async () => {
          await compressionScenario(
            t,
            client,
            kappa.bootstrap,
            `compressed-${codec}`,
            PARTITIONS,
            codec,
            kappa.url,
            opts.produce,
          );
        });
    },
  );

  test(
    `${client.name}: a consumer group of three on Kappa rebalances on each join and on a member's death, and consumes every record exactly once`,
    { timeout: 240_000 },
    async (t) => {
      const kappa = await startKappaWithKafka(t, { topics: topics(['grouped']) });
      await groupScenario(t, client, kappa.bootstrap, 'grouped', PARTITIONS, { produce: opts.produce });
    },
  );

  for (const assignor of opts.assignors ?? [])
    test(
      `${client.name}: the same group with partition.assignment.strategy=${assignor}`,
      { timeout: 240_000 },
      async (t) => {
        const kappa = await startKappaWithKafka(t, { topics: topics(['grouped']) });
        const settings = { 'partition.assignment.strategy': assignor };
        await groupScenario(t, client, kappa.bootstrap, 'grouped', PARTITIONS, { produce: opts.produce, settings });
      },
    );

  test(
    `${client.name}: a group's committed offsets survive ${signal === 'SIGKILL' ? 'a SIGKILL and restart' : 'a restart'} of Kappa, and its next member resumes after them`,
    { timeout: 180_000 },
    async (t) => {
      const kappa = await startKappaWithKafka(t, { topics: topics(['resumed']) });
      await restartScenario(t, client, restartable(kappa, signal), 'resumed', PARTITIONS, opts.produce);
    },
  );
}
