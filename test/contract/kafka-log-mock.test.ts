/**
 * Runs the Log contract on KafkaLog against librdkafka 2.0.2's mock cluster, a Kafka implementation
 * Kappa did not write (python3-confluent-kafka; `npm test` skips it with one line, `npm run
 * test:all` and CI run it). The mock offers no CreateTopics, DeleteTopics or DescribeConfigs, checks
 * no producer sequences and has no time index: the harness's capability flags say so, and the
 * contract tests what KafkaLog does instead.
 */
import { test } from 'node:test';
import { requireDebianPackage } from '../support/debian.ts';
import { PYTHON3_CONFLUENT_KAFKA } from '../support/kafka-clients.ts';
import { mockHarness } from '../support/kafka-log.ts';
import { logContract } from './log.contract.ts';

const need = { ...PYTHON3_CONFLUENT_KAFKA, suite: 'the Log contract on the librdkafka mock cluster' };
let skipped = false;
requireDebianPackage({ skip: () => void (skipped = true) }, need);

if (skipped) test('Log contract: KafkaLog on the librdkafka mock cluster', (t) => void requireDebianPackage(t, need));
else logContract('KafkaLog on the librdkafka mock cluster', mockHarness);
