/**
 * Runs the ViewStore contract on the PostgreSQL adapter, against a real PostgreSQL server this file
 * starts (test/support/postgres.ts), each test on a fresh database; then checks what only
 * PostgreSQL has: the typed layout other tools read, values converted or refused for typed
 * columns, the reader role, limits enforced in the server, several processes on one database,
 * and a server that goes away and comes back.
 */
import { viewStoreContract } from './view-store.contract.ts';
import { openPostgresHarness, postgresForFile } from '../support/postgres.ts';

const server = postgresForFile();

viewStoreContract('PostgreSQL', async () => openPostgresHarness(await server()));
