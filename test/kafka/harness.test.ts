/**
 * The compatibility suites' harness (test/support/kafka-clients.ts) checked against librdkafka's
 * mock cluster, a Kafka implementation Kappa did not write: if a scenario fails here, the harness or
 * the client is at fault, not Kappa's listener. The mock creates topics on first use with
 * MOCK_PARTITIONS partitions.
 */
import { describe, test } from 'node:test';
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
import { skipUnlessInstalled } from './suite.ts';

// Left out, as the mock (librdkafka 2.0.2) does not serve them: @platformatic/kafka (the mock answers
// its ApiVersions v3 with an error, and it does not retry lower), and the groups of kafka-python and
// kafkajs (the mock answers INVALID_REQUEST to kafka-python's JoinGroup and kafkajs's SyncGroup v3
// once a second member joins).
const clients = [
  { client: kcat, groups: true },
  { client: confluentKafka, groups: true },
  { client: kafkaPython, groups: false },
  { client: kafkajsClient, groups: false },
];

describe(
  "the suites' harness against librdkafka's mock cluster",
  { skip: skipUnlessInstalled([PYTHON3_CONFLUENT_KAFKA, KCAT, PYTHON3_KAFKA]) },
  () => {
    for (const { client } of clients) {
      test(
        `${client.name} produces keyed records to the mock and consumes them back`,
        { timeout: 90_000 },
        async (t) => {
          const mock = await startMockKafka(t);
          await produceAndConsume(t, client, mock.bootstrap, 'harness', MOCK_PARTITIONS);
        },
      );
    }

    for (const { client } of clients.filter((c) => c.groups)) {
      test(
        `${client.name}: a consumer group on the mock rebalances on join and on a death`,
        { timeout: 180_000 },
        async (t) => {
          const mock = await startMockKafka(t);
          await groupScenario(t, client, mock.bootstrap, 'harness-group', MOCK_PARTITIONS);
        },
      );
    }
  },
);
