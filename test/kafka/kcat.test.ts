// Kappa's Kafka listener with Debian's kcat (librdkafka 2.0.2): see suite.ts for the scenarios, and
// below for kcat -L (metadata).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KCAT, kcat, kcatMetadata, startKappaWithKafka } from '../support/kafka-clients.ts';
import { compatibilitySuite, skipUnlessInstalled } from './suite.ts';

compatibilitySuite(kcat, { needs: [KCAT], assignors: ['cooperative-sticky'] });

describe('kcat -L against Kappa', { skip: skipUnlessInstalled([KCAT]) }, () => {
  test(
    "lists Kappa's topics with their partitions, each led by the one broker at the listener's address",
    { timeout: 90_000 },
    async (t) => {
      const kappa = await startKappaWithKafka(t, {
        topics: [
          { name: 'orders', partitions: 3 },
          { name: 'payments', partitions: 1 },
        ],
      });
      const all = await kcatMetadata(t, kappa.bootstrap);
      assert.deepEqual(all.brokers, [{ id: 0, name: kappa.bootstrap }]);
      const listed = all.topics
        .filter((tp) => !tp.topic.startsWith('_'))
        .map((tp) => ({
          topic: tp.topic,
          error: tp.error,
          partitions: tp.partitions.map((p) => [p.partition, p.leader, p.error]),
        }))
        .sort((a, b) => a.topic.localeCompare(b.topic));
      assert.deepEqual(listed, [
        {
          topic: 'orders',
          error: undefined,
          partitions: [
            [0, 0, undefined],
            [1, 0, undefined],
            [2, 0, undefined],
          ],
        },
        { topic: 'payments', error: undefined, partitions: [[0, 0, undefined]] },
      ]);
      const missing = await kcatMetadata(t, kappa.bootstrap, 'no_such_topic');
      assert.equal(missing.topics[0]?.error, 'Broker: Unknown topic or partition', JSON.stringify(missing));
    },
  );
});
