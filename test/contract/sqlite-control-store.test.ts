/**
 * Runs the ControlStore contract on the SQLite adapter with real database files in a temp dir
 * (the control records live in the same file as the views: see ./sqlite-view-store.test.ts for
 * what that adds).
 */
import { SqliteTestStores } from '../../src/view/sqlite/test-helpers.ts';
import { controlStoreContract } from './control-store.contract.ts';

const stores = new SqliteTestStores();

controlStoreContract('SQLite', () => stores.open());
