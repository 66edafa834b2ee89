/** The serving layer: the `ViewStore` port and its adapters (SQLite now, PostgreSQL later). */
export type {
  ViewStore,
  ViewDefinition,
  ViewVersionInfo,
  ViewState,
  ColumnType,
  MergeRule,
  KeyColumn,
  StateColumn,
  OutputColumn,
  RowDelta,
  Checkpoint,
  OutputCheckpoint,
  QueryOptions,
  QueryResult,
  BuildInfo,
  BuildReason,
  ViewRequest,
  ViewRequestAction,
} from './types.ts';
export { validateDefinition, definitionJson, versionTableName, IDENTIFIER_CHARS_MAX } from './definition.ts';
export { openSqliteStore, READERS_MAX, QUERY_ROWS_MAX_DEFAULT, type SqliteStoreOptions } from './sqlite/sqlite-store.ts';
