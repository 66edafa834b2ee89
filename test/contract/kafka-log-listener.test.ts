/**
 * Runs the Log contract on KafkaLog against Kappa's own Kafka listener (in process, on a FileLog in
 * a temp dir): the same suite as FileLog's, through the Kafka protocol. The listener keeps FileLog's
 * idempotent-producer rules and time index; retention is the cluster's (its settings are handed
 * over), and sizeBytes is KafkaLog's estimate (the listener offers no DescribeLogDirs).
 */
import { listenerHarness } from '../support/kafka-log.ts';
import { logContract } from './log.contract.ts';

logContract('KafkaLog on Kappa’s Kafka listener', listenerHarness);
