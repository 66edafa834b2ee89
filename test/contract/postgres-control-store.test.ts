/**
 * Runs the ControlStore contract on the PostgreSQL adapter, against a real PostgreSQL server this
 * file starts (test/support/postgres.ts), each test on a fresh database. What only PostgreSQL has
 * is in ./postgres-view-store.test.ts; the task leases in ./postgres-task-leases.test.ts.
 */
import { openPostgresHarness, postgresForFile } from '../support/postgres.ts';
import { controlStoreContract } from './control-store.contract.ts';

const server = postgresForFile();

controlStoreContract('PostgreSQL', async () => openPostgresHarness(await server()));
