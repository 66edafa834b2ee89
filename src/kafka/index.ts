/**
 * Kappa speaks Kafka: a listener serving the Kafka protocol over Kappa's log (server/), its codec
 * (protocol/) and the consumer-group coordinator (groups/).
 */
export {
  startKafkaListener,
  KAFKA_LIMITS_DEFAULT,
  type KafkaListener,
  type KafkaListenerOptions,
  type KafkaLimits,
} from './server/listener.ts';
export type { GroupsPort } from './server/context.ts';
export { GroupCoordinator, groupLag, type GroupLag, type PartitionLag } from './groups/index.ts';
