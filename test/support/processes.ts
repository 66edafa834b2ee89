/**
 * Child processes in tests. Every process a test starts goes through this file, so that none
 * outlives the test that started it, whether the test passes, fails or times out.
 *
 * API
 *
 *   spawnOwned(t, command, args, opts?): OwnedChild
 *       Starts `command args` in its own process group, owned by test `t`: when `t` ends, pass or
 *       fail, the whole group is SIGKILLed and awaited. stdout and stderr are collected as text.
 *   startKappa(t, args, opts?): OwnedChild
 *       spawnOwned for `node bin/kappa.js ...args`: a long-running command such as `start`.
 *   runCommand(command, args, opts?): Promise<RunResult>
 *       Runs a command to completion and resolves with { code, signal, pid, stdout, stderr } (a non-zero
 *       exit is a result, not an error). If it has not ended within opts.timeoutMs (default 60 s)
 *       it is SIGKILLed and the promise rejects with the command line and what it printed.
 *   runKappa(args, opts?): Promise<RunResult>
 *       runCommand for `node bin/kappa.js ...args`, the way a user runs the CLI.
 *   waitFor(what, fn, { timeoutMs, intervalMs, child? }): Promise<T>
 *       Polls `fn` until it gives something other than null (such as a query's rows once they are
 *       complete). Rejects after timeoutMs, and at once if `child` (a `kappa start`) ends meanwhile,
 *       quoting what it printed.
 *
 *   An OwnedChild has:
 *     .child                  the ChildProcess (its stdin is a pipe when opts.stdin is 'pipe')
 *     .pid, .stdout, .stderr  the pid, and everything it printed so far
 *     .exited                 Promise<Exit>: { code, signal } once it ended and its output is read
 *     .running                true until it exited
 *     .waitForOutput(pattern, { timeoutMs, stream? }): Promise<RegExpExecArray>
 *                             resolves when stdout or stderr (or only `stream`) matches `pattern`;
 *                             rejects on timeout, or if the child exits first, quoting its output
 *     .kill(signal = 'SIGTERM'): void           sends a signal to the child only
 *     .stop({ signal?, timeoutMs? }): Promise<Exit>
 *                             sends `signal` (SIGTERM), waits up to timeoutMs (10 s), then SIGKILLs
 *                             the group; resolves with how it ended
 *
 *   Options (all optional): cwd; env (added to this process's environment; undefined removes a
 *   variable); stdin ('ignore', the default, or 'pipe'); input (text written to stdin, which is
 *   then closed); timeoutMs (runs only); t (runs only: also kill the run when this test ends).
 *
 * Example
 *
 *   test('start serves queries', { timeout: 60_000 }, async (t) => {
 *     const start = startKappa(t, ['--data-dir', dir, 'start', '--port', '0']);
 *     const [, url] = await start.waitForOutput(/HTTP API on (\S+)/, { timeoutMs: 20_000 });
 *     const q = await runKappa(['--data-dir', dir, 'query', 'SELECT 1']);
 *     assert.equal(q.code, 0, q.stderr);
 *     assert.equal((await start.stop()).code, 0, start.stderr);
 *   });
 *
 * Safety nets besides `t.after`: every child is also in a process-wide registry, and on this
 * process's 'exit', SIGTERM, SIGINT and SIGHUP everything still registered is SIGKILLed with its
 * process group. (The test runner stops a file that overruns its timeout with SIGTERM; without this
 * hook the file's children would be orphaned and keep running.) A process-wide registry is module
 * state, which the code under src/ avoids; here it is the point: the exit hook must see every child.
 *
 * Each child runs in its own process group (detached), so SIGKILLing the group also ends what the
 * child started itself, such as the SQLite reader process a `kappa start` forks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Owner, defer } from './cleanup.ts';

/** The `kappa` command, run as `node KAPPA_BIN ...`. */
export const KAPPA_BIN = fileURLToPath(new URL('../../bin/kappa.js', import.meta.url));

const RUN_TIMEOUT_MS_DEFAULT = 60_000;
const STOP_TIMEOUT_MS_DEFAULT = 10_000;
/** After SIGKILL a process ends at once; this bounds the wait for a process stuck in the kernel. */
const KILLED_EXIT_WAIT_MS_MAX = 5_000;
/** How much of a child's output an error message quotes (its end, where the reason usually is). */
const QUOTED_OUTPUT_CHARS_MAX = 4_000;

export type { Owner } from './cleanup.ts';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunResult extends Exit {
  pid: number;
  stdout: string;
  stderr: string;
}

export interface SpawnOptions {
  cwd?: string;
  /** Added to this process's environment (so PATH and the test run's marker are kept); undefined removes a variable. */
  env?: Record<string, string | undefined>;
  /** 'pipe' keeps stdin open for the test to write to `child.stdin`; default 'ignore'. */
  stdin?: 'ignore' | 'pipe';
  /** Written to stdin, which is then closed. */
  input?: string;
}

export interface RunOptions extends SpawnOptions {
  /** Kill the command and reject if it has not ended by then. Default 60 s. */
  timeoutMs?: number;
  /** Also kill the command when this test ends (for a run the test does not await to the end). */
  t?: Owner;
}

export interface WaitOptions {
  timeoutMs: number;
  /** Which output to search; default either. */
  stream?: 'stdout' | 'stderr' | 'either';
}

export interface OwnedChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly exited: Promise<Exit>;
  readonly running: boolean;
  waitForOutput(pattern: RegExp | string, opts: WaitOptions): Promise<RegExpExecArray>;
  kill(signal?: NodeJS.Signals): void;
  stop(opts?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<Exit>;
}

/** Every child not yet known to have ended, for the exit and signal hooks. */
const registry = new Set<Child>();
let hooksInstalled = false;

class Child implements OwnedChild {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<Exit>;
  readonly commandLine: string;
  stdout = '';
  stderr = '';
  running = true;
  private readonly listeners = new Set<() => void>();

  /** `label` names the command in messages (`kappa verify …` rather than the node binary's path). */
  constructor(
    command: string,
    args: readonly string[],
    opts: SpawnOptions,
    label = [command, ...args].map(quote).join(' '),
  ) {
    this.commandLine = label;
    const stdin = opts.input !== undefined ? 'pipe' : (opts.stdin ?? 'ignore');
    this.child = spawn(command, args, {
      cwd: opts.cwd,
      env: mergeEnv(opts.env),
      stdio: [stdin, 'pipe', 'pipe'],
      detached: true,
    });
    if (this.child.pid === undefined) {
      // The spawn failed (no such command, for example); 'error' says why.
      this.pid = -1;
    } else {
      this.pid = this.child.pid;
    }
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.notify();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.notify();
    });
    this.exited = new Promise<Exit>((resolve, reject) => {
      this.child.once('error', (err) => {
        this.running = false;
        registry.delete(this);
        this.notify();
        reject(new Error(`could not start ${this.commandLine}: ${err.message}`, { cause: err }));
      });
      // 'close', not 'exit': by then stdout and stderr are read to the end.
      this.child.once('close', (code, signal) => {
        this.running = false;
        registry.delete(this);
        this.notify();
        resolve({ code, signal });
      });
    });
    // A caller that never awaits `exited` must not get an unhandled rejection from a failed spawn.
    this.exited.catch(() => {});
    if (opts.input !== undefined) this.child.stdin!.end(opts.input);
    registry.add(this);
    installHooks();
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGKILLs the child's whole process group (children it started too), then waits a bounded time for it to end. */
  async killGroup(): Promise<void> {
    killGroupNow(this);
    await Promise.race([this.exited.catch(() => {}), sleep(KILLED_EXIT_WAIT_MS_MAX)]);
  }

  async stop(opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<Exit> {
    this.kill(opts.signal ?? 'SIGTERM');
    const ended = await Promise.race([
      this.exited.then(() => true),
      sleep(opts.timeoutMs ?? STOP_TIMEOUT_MS_DEFAULT).then(() => false),
    ]);
    if (!ended) await this.killGroup();
    return this.exited;
  }

  waitForOutput(pattern: RegExp | string, opts: WaitOptions): Promise<RegExpExecArray> {
    const re =
      typeof pattern === 'string'
        ? new RegExp(escapeRegExp(pattern))
        : new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
    const stream = opts.stream ?? 'either';
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found =
          (stream !== 'stderr' ? re.exec(this.stdout) : null) ?? (stream !== 'stdout' ? re.exec(this.stderr) : null);
        if (found) finish(() => resolve(found));
        else if (!this.running)
          finish(() => reject(new Error(`${this.commandLine} ended before printing ${re}.\n${this.describeOutput()}`)));
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(
                `${this.commandLine} printed nothing matching ${re} within ${opts.timeoutMs} ms.\n${this.describeOutput()}`,
              ),
            ),
          ),
        opts.timeoutMs,
      );
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  describeOutput(): string {
    return `Its stdout:\n${tail(this.stdout)}\nIts stderr:\n${tail(this.stderr)}`;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/**
 * Starts `command args`, owned by test `t`: when `t` ends, pass or fail, the child and its process
 * group are SIGKILLed and awaited (a child the test already stopped is left alone).
 */
export function spawnOwned(t: Owner, command: string, args: readonly string[], opts: SpawnOptions = {}): OwnedChild {
  return own(t, new Child(command, args, opts));
}

/** Deferred (cleanup.ts), so a child is killed before the temp dirs the test made before it are removed. */
function own(t: Owner, child: Child): Child {
  defer(t, () => child.killGroup());
  return child;
}

/** `node bin/kappa.js ...args`, owned by test `t`, for a long-running command such as `start`. */
export function startKappa(t: Owner, args: readonly string[], opts: SpawnOptions = {}): OwnedChild {
  return own(t, new Child(process.execPath, [KAPPA_BIN, ...args], opts, kappaLabel(args)));
}

/**
 * Runs `command args` to completion. Resolves with its exit code or signal and its output; rejects
 * if it cannot start, or if it has not ended within `timeoutMs` (then it is SIGKILLed first).
 */
export function runCommand(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(new Child(command, args, opts), opts);
}

/** `node bin/kappa.js ...args` to completion, the way a user runs the CLI (see runCommand). */
export function runKappa(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(new Child(process.execPath, [KAPPA_BIN, ...args], opts, kappaLabel(args)), opts);
}

async function run(child: Child, opts: RunOptions): Promise<RunResult> {
  if (opts.t) own(opts.t, child);
  const timeoutMs = opts.timeoutMs ?? RUN_TIMEOUT_MS_DEFAULT;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const ended = await Promise.race([child.exited, timedOut]);
    if (ended === 'timeout') {
      await child.killGroup();
      throw new Error(
        `${child.commandLine} did not finish within ${timeoutMs} ms, so it was killed.\n${child.describeOutput()}`,
      );
    }
    return { ...ended, pid: child.pid, stdout: child.stdout, stderr: child.stderr };
  } finally {
    clearTimeout(timer);
  }
}

export interface PollOptions {
  timeoutMs: number;
  /** Between two calls of the polled function. */
  intervalMs: number;
  /** The `kappa start` the wait depends on: its end fails the wait at once. */
  child?: OwnedChild;
}

/** Calls `fn` every `intervalMs` until it gives a value other than null; see the API above. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null>, opts: PollOptions): Promise<T> {
  const { child } = opts;
  const printed = (): string =>
    child ? `; kappa start printed:\n${child.stderr.slice(-QUOTED_OUTPUT_CHARS_MAX)}` : '';
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== null) return v;
    if (child && !child.running)
      throw new Error(
        `kappa start ended (code ${(await child.exited).code}) while waiting for ${what}:\n${child.stderr.slice(-QUOTED_OUTPUT_CHARS_MAX)}`,
      );
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${printed()}`);
    await sleep(opts.intervalMs);
  }
}

function kappaLabel(args: readonly string[]): string {
  return ['kappa', ...args].map(quote).join(' ');
}

/** SIGKILLs the group the child leads and the child itself (in case it left the group); already gone is fine. */
function killGroupNow(child: Child): void {
  if (child.pid <= 0) return;
  for (const target of [-child.pid, child.pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // ESRCH: nothing left to kill.
    }
  }
}

function killEverythingRegistered(): void {
  for (const child of registry) killGroupNow(child);
  registry.clear();
}

/** Installed once, when the first child starts, so test files that start none are untouched. */
function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killEverythingRegistered);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killEverythingRegistered();
      process.removeListener(signal, onSignal);
      // Die of the signal as if nobody had listened, unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

function mergeEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function tail(text: string): string {
  if (text === '') return '  (nothing)';
  return text.length <= QUOTED_OUTPUT_CHARS_MAX ? text : `…${text.slice(-QUOTED_OUTPUT_CHARS_MAX)}`;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
