/**
 * KafkaLog: the `Log` port over a Kafka cluster, through its own broker connections (connection.ts,
 * sasl.ts) and Kappa's own RecordBatch codec (see kafka-log.ts, and wire.ts for the requests and
 * versions). It loads no Kafka client package: a thread that opens it loads only these modules.
 * `openLog({ kind: 'kafka', brokers, clientId })` opens it, in any thread.
 *
 * It passes the Log contract (test/contract/log.contract.ts) against Kappa's listener and the
 * librdkafka 2.0.2 mock cluster. Where it differs from FileLog, the contract's capability flags say
 * so and test the weaker promise:
 *
 * - Durability and retention belong to the cluster: an append resolves once the cluster acknowledged
 *   it with acks=all; retention.ms / retention.bytes / segment.* are passed to CreateTopics when the
 *   topic config gives them, and the cluster applies them on its own schedule.
 * - Idempotent producers: the caller's producer id, epoch and sequences go into the batch and the
 *   cluster's rules apply (producer.ts). Kappa's listener keeps FileLog's rules; Apache Kafka drops
 *   a re-send of one of the producer's last 5 batches only, refuses a partial overlap and a new
 *   epoch not starting at sequence 0; the librdkafka mock drops nothing. When Apache Kafka refuses
 *   a re-send that overlaps what the partition holds, KafkaLog reads the producer's last sequence
 *   from the partition's tail, reports the overlap as duplicates and sends only the rest
 *   (resend.ts), so the result is FileLog's; a real gap or a re-send under another epoch stays
 *   refused. `sequenceGaps: 'allow'` appends (dead letters, late events) are at least once on Kafka.
 * - offsetForTime: ListOffsets by time, answered by the cluster's time index (the mock answers
 *   "none" for every time, so it gives the end offset).
 * - sizeBytes: DescribeLogDirs when the cluster offers it, else an estimate (records retained times
 *   the bytes per record of the last batch).
 * - health: every partition healthy (a client cannot see a broker's disks). reopenPartition: no-op.
 * - TopicInfo.createdAtMs is 0: Kafka does not say when a topic was created.
 * - The mock offers neither CreateTopics nor DeleteTopics nor DescribeConfigs: createTopic and
 *   deleteTopic say so (KAPPA_INVALID_ARGUMENT), and topics are made with the mock's own tools.
 */
export { KafkaLog, openKafkaLog, type KafkaLogOptions } from './kafka-log.ts';
