/**
 * Kafka consumer groups for Kappa's Kafka listener: the coordinator (classic protocol: generations,
 * rebalances, session timeouts) and committed offsets kept in the view store (ConsumerOffsetStore),
 * and the consumer-group lag that `kappa lag`, the HTTP API and the dashboard show.
 */
export { GroupCoordinator } from './coordinator.ts';
export { GROUP_DEFAULTS, type GroupCoordinatorOptions } from './core.ts';
export { GROUP_ERRORS } from './errors.ts';
export type { GroupState } from './group.ts';
export type { GroupOverview, GroupMemberOverview } from './describe.ts';
export { groupLag, type GroupLag, type PartitionLag } from './lag.ts';
export { assignedPartitions, subscribedTopics, type TopicPartitions } from './consumer-protocol.ts';
export { REAL_TIME, ManualTime, type Clock, type Timers, type GroupTime } from './time.ts';
export { MemoryOffsetStore } from './memory-offset-store.ts';
export type * from './types.ts';
