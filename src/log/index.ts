/** The streaming layer: the `Log` port and its embedded file implementation. */
export type {
  Log,
  LogDescriptor,
  KafkaLogDescriptor,
  TopicConfig,
  TopicInfo,
  ProducerRecord,
  RecordMetadata,
  PartitionOffsets,
  ReadOptions,
  FsyncMode,
  PartitionHealth,
  Clock,
  Logger,
  BatchOptions,
  EncodedAppendOptions,
  AppendBatchResult,
} from './types.ts';
export { openLog, type OpenLogOptions } from './open.ts';
// KafkaLog is opened through openLog({ kind: 'kafka', ... }), which loads the Kafka client only then.
export type { KafkaLog } from './kafka/index.ts';
export { FileLog, openFileLog, TOPIC_DEFAULTS, stderrLogger, type FileLogOptions } from './file-log.ts';
export { SEQUENCE_MODULUS } from './producer-state.ts';
export { BatchField, BATCH_HEADER_BYTES } from './format/index.ts';
export {
  RecordBatch,
  encodeBatch,
  checkBatch,
  checkRecords,
  compressBatch,
  decompressBatch,
  readableBatch,
  readHeaders,
  type LogRecord,
  type RecordHeader,
  type EncodableRecord,
} from './record-batch.ts';
export {
  Codec,
  CODEC_NAMES,
  type CodecName,
  codecName,
  codecUnavailable,
  CompressionError,
  prepareCompression,
} from './compression.ts';
export { BatchBuilder, type BuiltBatches, SpareBuffers, type ValueWriter, sealBatch } from './batch-builder.ts';
export { murmur2, partitionForKey } from './partitioner.ts';
export { checkTopicName } from './names.ts';
export { verifyLog, type VerifyReport, type VerifyFinding } from './verify.ts';
export { defaultFs, type LogFs } from './fs.ts';
export { isProcessAlive } from './data-dir-lock.ts';
