/** The SQLite adapter of the `ViewStore` and `ControlStore` ports (the embedded default). */
export {
  openSqliteStore,
  READERS_MAX,
  QUERY_ROWS_MAX_DEFAULT,
  type SqliteStore,
  type SqliteStoreOptions,
} from './sqlite-store.ts';
