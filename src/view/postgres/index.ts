/**
 * The PostgreSQL adapter of the serving layer's ports (`pg`): `ViewStore`, `ControlStore`, the
 * Kafka consumer groups' offsets and the task leases of several Kappa processes, on one database.
 */
export {
  openPostgresStore,
  POOL_SIZE_DEFAULT,
  POOL_SIZE_MAX,
  READERS_MAX,
  QUERY_ROWS_MAX_DEFAULT,
  type PostgresStore,
  type PostgresStoreOptions,
} from './postgres-store.ts';
