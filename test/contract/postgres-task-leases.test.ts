/**
 * Runs the TaskLeases contract on the PostgreSQL adapter (the leases and the fenced store writes
 * on one database), against a real PostgreSQL server this file starts (test/support/postgres.ts),
 * each test on a fresh database.
 */
import { openPostgresHarness, postgresForFile } from '../support/postgres.ts';
import { taskLeasesContract } from './task-leases.contract.ts';

const server = postgresForFile();

taskLeasesContract('PostgreSQL', async () => {
  const h = await openPostgresHarness(await server());
  return {
    leases: h.store.leases,
    second: async () => (await h.second()).leases,
    store: h.store,
    cleanup: () => h.cleanup(),
  };
});
