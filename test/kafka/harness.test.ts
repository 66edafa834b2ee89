/**
 * The compatibility suites' harness (test/support/kafka-clients.ts) checked against librdkafka's
 * mock cluster, a Kafka implementation Kappa did not write: if a scenario fails here, the harness or
 * the client is at fault, not Kappa's listener. The mock creates topics on first use with
 * MOCK_PARTITIONS partitions.
 */
import { test } from 'node:test';
import { requireDebianPackage } from '../support/debian.ts';
import {
  KCAT,
  MOCK_PARTITIONS,
  PYTHON3_CONFLUENT_KAFKA,
  PYTHON3_KAFKA,
  confluentKafka,
  groupScenario,
  kafkaPython,
  kafkajsClient,
  kcat,
  produceAndConsume,
  startMockKafka,
} from '../support/kafka-clients.ts';

// Left out, as the mock (librdkafka 2.0.2) does not serve them: @platformatic/kafka (the mock answers
// its ApiVersions v3 with an error, and it does not retry lower), and the groups of kafka-python and
// kafkajs (the mock answers INVALID_REQUEST to kafka-python's JoinGroup and kafkajs's SyncGroup v3
// once a second member joins).
const clients = [
  { client: kcat, needs: [PYTHON3_CONFLUENT_KAFKA, KCAT], groups: true },
  { client: confluentKafka, needs: [PYTHON3_CONFLUENT_KAFKA], groups: true },
  { client: kafkaPython, needs: [PYTHON3_CONFLUENT_KAFKA, PYTHON3_KAFKA], groups: false },
  { client: kafkajsClient, needs: [PYTHON3_CONFLUENT_KAFKA], groups: false },
];

for (const { client, needs } of clients) {
  test(
    `${client.name} produces keyed records to librdkafka's mock cluster and consumes them back`,
    { timeout: 90_000 },
    async (t) => {
      if (needs.some((n) => requireDebianPackage(t, n) === null)) return;
      const mock = await startMockKafka(t);
      await produceAndConsume(t, client, mock.bootstrap, 'harness', MOCK_PARTITIONS);
    },
  );
}

for (const { client, needs } of clients.filter((c) => c.groups)) {
  test(
    `${client.name}: a consumer group on librdkafka's mock cluster rebalances on join and on a death`,
    { timeout: 180_000 },
    async (t) => {
      if (needs.some((n) => requireDebianPackage(t, n) === null)) return;
      const mock = await startMockKafka(t);
      await groupScenario(t, client, mock.bootstrap, 'harness-group', MOCK_PARTITIONS);
    },
  );
}
