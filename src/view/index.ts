/**
 * The serving layer's ports: `ViewStore` and `ControlStore`, with the view definitions they share.
 * Adapters live in subfolders with their own index (`view/sqlite/index.ts`), so code that only
 * needs the ports (worker threads) does not load a native database module.
 */
export type { ViewStore } from './view-store.ts';
export type {
  VersionTable,
  ViewVersionInfo,
  ViewState,
  ColumnType,
  MergeRule,
  KeyColumn,
  StateColumn,
  OutputColumn,
  RowDelta,
  DeltaColumns,
  Deltas,
  FlushResult,
  Checkpoint,
  OutputCheckpoint,
  QueryOptions,
  QueryResult,
  StoreChange,
  BuildInfo,
  BuildReason,
  ViewRequest,
  ViewRequestAction,
} from './types.ts';
export type { VersionDiff, VersionSide, RowsDiffering } from './diff.ts';
export type { ControlStore } from './control-store.ts';
export type { ConsumerOffsetStore, CommittedOffset } from './consumer-offsets.ts';
export type {
  TableStateStore,
  StoredTable,
  StoredTablePartition,
  StoredTableVersion,
  TableStateChange,
} from './table-states.ts';
export type { TaskLeases, TaskLease, TaskFence, TaskId, Member, MemberInfo } from './leases.ts';
export { taskId } from './leases.ts';
export { deltaColumns, deltaCount, deltaKeys, deltaRow, deltaRows, isDeltaColumns, sortByKey } from './deltas.ts';
export { validateDefinition, definitionJson, versionTableName, IDENTIFIER_CHARS_MAX } from './definition.ts';
