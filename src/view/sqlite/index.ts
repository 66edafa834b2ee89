/** The SQLite adapter of the `ViewStore` and `ControlStore` ports (the embedded default). */
export { READERS_MAX, QUERY_ROWS_MAX_DEFAULT, type SqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';
/** `openSqliteStore` opens the store with the Kafka consumer groups' committed offsets as `consumerOffsets`. */
export { openSqliteStoreWithOffsets as openSqliteStore, type SqliteStoreWithOffsets } from './consumer-offsets.ts';
