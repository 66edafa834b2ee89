// Runs the test files (`src/**/*.test.ts`, `test/**/*.test.ts`) with Node's built-in test runner.
// Node 20's `--test` does not expand globs itself, so the files are listed here.
//
//   npm test                  every suite that needs only Node and the npm packages; suites that
//                             need a Debian package (test/support/debian.ts) print one "skipped:" line
//   npm run test:all          the same runner with --all: those suites run too; a missing package
//                             skips them, or fails them when CI=true or KAPPA_REQUIRE_ALL=1
//   npm test -- segment crash run only the files whose path contains one of the words
//
// Files that assert latency (SOLO below) run after the others, one at a time.
//
// Guards, so that a run always ends and leaves nothing behind:
//   - Each test file may run for KAPPA_TEST_FILE_TIMEOUT_MS (default 10 min; Node 20's
//     --test-timeout bounds a whole file, not each test: tests set their own `timeout`).
//   - --test-force-exit (Node 20.14 and later): a file ends once its tests have, even if a test that
//     timed out left a timer or socket behind.
//   - Every test file reports all of its results, or the run fails (RESULTS_COMPLETE below). Node 20
//     judges a file by its exit code alone: a file process that exits 0 before it has written every
//     result passes with fewer tests. --test-force-exit did exactly that under load: it calls
//     process.exit() once the file's results are handed to stdout, a pipe, and on Linux whatever the
//     pipe could not take yet (up to about 16 KiB: the last suites of a file) was dropped. So each file
//     writes its stdout and stderr synchronously (PRELOAD), ends its output with a RESULTS_COMPLETE
//     line, and after the run any file without that line, or whose tests started and never reported,
//     is named with those tests and fails the run.
//   - The whole run may take KAPPA_TEST_TIMEOUT_MS (default 60 min); then it is stopped and fails.
//     The full set takes about 25 minutes on a 2-core machine that does nothing else, and CI's slower
//     or busier machines took longer; 60 minutes plus the install stays inside CI's 90.
//   - The runner starts in its own process group and every process it starts carries
//     KAPPA_TEST_RUN_ID in its environment. When the run ends, any process still alive in that group
//     or carrying that id is named, killed, and fails the run.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const MINUTE_MS = 60_000;
const RUN_TIMEOUT_MS = Number(process.env.KAPPA_TEST_TIMEOUT_MS || 60 * MINUTE_MS);
const FILE_TIMEOUT_MS = Number(process.env.KAPPA_TEST_FILE_TIMEOUT_MS || 10 * MINUTE_MS);
/** Between asking the runner to stop (SIGTERM: test files kill their children) and SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Processes that are already dying when the run ends get this long before they count as left behind. */
const SURVIVOR_GRACE_MS = 2_000;

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const args = process.argv.slice(2);
const all = args.includes('--all');
const filters = args.filter((a) => a !== '--all');
// The suites under test/ (processes, browsers, Kafka clients: up to a minute and a half each) start
// first and the many short unit files under src/ after them, so that the two lanes of
// --test-concurrency=2 end close together instead of one waiting on a long suite started last.
const matches = (f) => filters.length === 0 || filters.some((s) => f.includes(s));
const files = [...collect('test', []).sort(), ...collect('src', []).sort()].filter(matches);
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const runId = randomUUID();
const env = { ...process.env, KAPPA_TEST_RUN_ID: runId };
// `import … from 'kappa'` (the examples' configs, loaded by tests and by the processes they start)
// must reach the sources under test, src/, not the compiled dist/ of an installed package: the
// "kappa-source" export condition of package.json. Tests of the installed package remove it.
env.NODE_OPTIONS = [env.NODE_OPTIONS, '--conditions=kappa-source'].filter(Boolean).join(' ');
if (all) delete env.KAPPA_TEST_SKIP_DEBIAN;
else env.KAPPA_TEST_SKIP_DEBIAN = '1';

// Detached: the runner leads its own process group, so it can be killed with everything in it.
// stdin is not passed on: a background process group reading the terminal would be stopped.
const forceExit = spawnSync(process.execPath, ['--help'], { encoding: 'utf8' }).stdout.includes('--test-force-exit')
  ? ['--test-force-exit']
  : [];
// Files that assert latency (how long an HTTP answer may wait while the engine works) run after the
// others, one at a time: beside another test file on a 2-core machine they measure that file too.
const SOLO = new Set(['test/e2e/backfill.test.ts']);
const shared = files.filter((f) => !SOLO.has(f));
const solo = files.filter((f) => SOLO.has(f));

// The line each test file's process writes after its last result (a diagnostic of its root test):
// without it, the file's results did not all arrive.
const RESULTS_COMPLETE = 'kappa: every result was sent by';
// Loaded (--import) by every process the test runner starts; it acts only in a test file's own
// process (NODE_TEST_CONTEXT=child-v8, main thread, a .test.ts file): not in the runner, workers, or
// processes the tests fork. It makes stdout and stderr synchronous, so that the process.exit() of
// --test-force-exit cannot drop results still waiting for the pipe, and adds the RESULTS_COMPLETE
// line in an after() hook of the root test, which runs once every test of the file has reported.
const PRELOAD = `
import { relative } from 'node:path';
import { isMainThread } from 'node:worker_threads';
const file = process.argv[1] ?? '';
if (process.env.NODE_TEST_CONTEXT === 'child-v8' && isMainThread && file.endsWith('.test.ts')) {
  for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);
  const { after } = await import('node:test');
  after((t) => t.diagnostic(${JSON.stringify(RESULTS_COMPLETE)} + ' ' + relative(process.cwd(), file)));
}`;
// A reporter beside the usual one: it appends the events the check needs to EVENTS_FILE, one JSON
// line each, synchronously (the runner's own process.exit() must not cut it short either).
const EVENTS_FILE = join(tmpdir(), `kappa-test-${runId}.jsonl`);
const REPORTER = `
import { appendFileSync } from 'node:fs';
const KEPT = new Set(['test:enqueue', 'test:dequeue', 'test:pass', 'test:fail', 'test:complete', 'test:diagnostic']);
export default async function* (source) {
  for await (const { type, data } of source) {
    if (!KEPT.has(type)) continue;
    if (type === 'test:diagnostic' && !data.message.startsWith(${JSON.stringify(RESULTS_COMPLETE)})) continue;
    const { name, nesting, file, line, column, message } = data;
    const exitCode = data.details?.error?.exitCode;
    appendFileSync(${JSON.stringify(EVENTS_FILE)}, JSON.stringify({ type, name, nesting, file, line, column, message, exitCode }) + '\\n');
  }
}`;
const dataUrl = (code) => `data:text/javascript,${encodeURIComponent(code)}`;
// Naming a reporter replaces Node's default one, so it is named too: spec on a terminal, else TAP.
const reporters = [
  `--test-reporter=${process.stdout.isTTY ? 'spec' : 'tap'}`,
  '--test-reporter-destination=stdout',
  `--test-reporter=${dataUrl(REPORTER)}`,
  '--test-reporter-destination=stdout',
];
const testArgs = [
  '--import',
  'tsx',
  '--import',
  dataUrl(PRELOAD),
  '--test',
  `--test-timeout=${FILE_TIMEOUT_MS}`,
  ...forceExit,
  ...reporters,
];
const passes = [
  shared.length > 0 ? [...testArgs, '--test-concurrency=2', ...shared] : null,
  solo.length > 0 ? [...testArgs, '--test-concurrency=1', ...solo] : null,
].filter((p) => p !== null);
// The runner is one process (the leader of the group below) that runs the passes in turn and
// fails if any failed.
const driver = `
const { spawnSync } = require('node:child_process');
let failed = 0;
for (const args of JSON.parse(process.env.KAPPA_TEST_PASSES)) {
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) failed = r.status ?? 1;
}
process.exit(failed);
`;
env.KAPPA_TEST_PASSES = JSON.stringify(passes);
const runner = spawn(process.execPath, ['-e', driver], {
  stdio: ['ignore', 'inherit', 'inherit'],
  detached: true,
  env,
});
const group = runner.pid;
let stopping = null;

/** Asks every process of the run to stop (test files kill their own children on SIGTERM), then kills what is left. */
function stopRun(reason) {
  if (stopping !== null) return;
  stopping = reason;
  signalGroup('SIGTERM');
  setTimeout(() => signalGroup('SIGKILL'), STOP_GRACE_MS).unref();
}

function duration(ms) {
  return ms >= MINUTE_MS ? `${Math.round((ms / MINUTE_MS) * 10) / 10} minutes` : `${Math.round(ms / 1000)} seconds`;
}

function signalGroup(signal) {
  try {
    process.kill(-group, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

const runTimer = setTimeout(() => {
  console.error(
    `\nnpm test: the tests have run for ${duration(RUN_TIMEOUT_MS)} (the limit, KAPPA_TEST_TIMEOUT_MS=${RUN_TIMEOUT_MS}), so the run is stopped and fails.` +
      '\nA test file that had not finished is missing from the results above; run it alone with `node --import tsx --test FILE` to see where it hangs.',
  );
  stopRun('timeout');
}, RUN_TIMEOUT_MS);

// Ctrl-C reaches this process (the terminal's foreground group), not the detached runner: pass it on.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`\nnpm test: ${signal} received, stopping the tests.`);
    stopRun(signal);
  });
}

runner.on('close', async (code, signal) => {
  clearTimeout(runTimer);
  const survivors = await leftBehind();
  for (const p of survivors) kill(p.pid);
  if (survivors.length > 0) {
    console.error(
      `\nnpm test: ${survivors.length} process(es) started by the tests were still running after the tests ended. They are killed now:`,
    );
    for (const p of survivors) console.error(`  pid ${p.pid}: ${p.command}`);
    console.error(
      'A test let a child process outlive it. Start children through test/support/processes.ts (spawnOwned, runKappa), which kills them when the test ends.',
    );
  }
  const incomplete = stopping === null ? incompleteFiles() : [];
  rmSync(EVENTS_FILE, { force: true });
  if (incomplete.length > 0) reportIncomplete(incomplete);
  if (stopping === 'timeout') process.exit(1);
  if (stopping !== null) process.exit(130);
  if (survivors.length > 0 || incomplete.length > 0) process.exit(1);
  process.exit(code ?? (signal ? 1 : 0));
});

/**
 * The test files whose results did not all arrive: no RESULTS_COMPLETE line, or tests that were
 * queued to run and never reported a result. Each: { file, reported, missing: [names], exitCode }.
 */
function incompleteFiles() {
  const events = existsSync(EVENTS_FILE)
    ? readFileSync(EVENTS_FILE, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  const byPath = new Map(files.map((f) => [resolve(f), { file: f, complete: false, exitCode: undefined }]));
  // A test is known by where it is declared and its name; a loop may declare several alike.
  const queued = new Map();
  const reported = new Map();
  const bump = (map, key, e) => map.set(key, { e, n: (map.get(key)?.n ?? 0) + 1 });
  // For the messages, "suite > test": a test is queued by the suite that started last one level up.
  const running = new Map();
  for (const e of events) {
    // The runner's own entry for a file (named by its path, at 1:1) gives its process's exit code.
    const runnerEntry = e.nesting === 0 && e.line === 1 && e.column === 1 ? byPath.get(resolve(e.name)) : undefined;
    if (e.type === 'test:diagnostic') {
      const entry = byPath.get(resolve(e.message.slice(RESULTS_COMPLETE.length + 1)));
      if (entry) entry.complete = true;
    } else if (runnerEntry) {
      if (e.type === 'test:complete') runnerEntry.exitCode = e.exitCode ?? 0;
    } else if (e.type === 'test:dequeue') {
      const path = running.get(e.file) ?? [];
      path.splice(e.nesting, Infinity, e.name);
      running.set(e.file, path);
    } else if (e.type === 'test:enqueue') {
      e.label = [...(running.get(e.file) ?? []).slice(0, e.nesting), e.name].join(' > ');
      bump(queued, `${e.file}:${e.line}:${e.column}:${e.nesting}:${e.name}`, e);
    } else if (e.type === 'test:pass' || e.type === 'test:fail') {
      bump(reported, `${e.file}:${e.line}:${e.column}:${e.nesting}:${e.name}`, e);
    }
  }
  const missing = new Map();
  for (const [key, { e, n }] of queued) {
    for (let i = reported.get(key)?.n ?? 0; i < n; i++) {
      const list = missing.get(e.file) ?? [];
      list.push(e.label);
      missing.set(e.file, list);
    }
  }
  const countReported = (path) =>
    [...reported.values()].filter(({ e }) => e.file === path).reduce((a, r) => a + r.n, 0);
  const out = [];
  for (const [path, entry] of byPath) {
    if (entry.complete && !missing.has(path)) continue;
    out.push({ ...entry, reported: countReported(path), missing: missing.get(path) ?? [] });
    missing.delete(path);
  }
  // Tests declared in a helper module carry the helper's path, not the test file's: listed under it.
  for (const [path, list] of missing)
    out.push({ file: path, complete: true, reported: countReported(path), missing: list });
  return out;
}

function reportIncomplete(incomplete) {
  console.error(
    `\nnpm test: ${incomplete.length} test file(s) did not report every test, so the run fails (the counts above leave those tests out):`,
  );
  for (const f of incomplete) {
    const exit = f.exitCode === undefined ? '' : `, its process exited with code ${f.exitCode}`;
    const end = f.complete ? '' : `; the line that ends its results ("${RESULTS_COMPLETE} ${f.file}") never came`;
    console.error(`  ${f.file}: ${f.reported} results (of tests and suites) arrived${exit}${end}.`);
    if (f.missing.length > 0) {
      console.error('    Queued to run, with no result (nor for any tests inside them):');
      for (const m of f.missing) console.error(`      ${m}`);
    } else {
      console.error('    No missing test is known by name: those missing come after the last result that arrived.');
    }
  }
  console.error(
    "A test file's process ended before it had written all of its results: a process.exit() in a test or in code it calls, " +
      'or output lost when the process exited. Run the file alone (npm test -- FILE) to compare.',
  );
}

/** Processes still alive in the runner's group or carrying this run's id, after a short grace for those already dying. */
async function leftBehind() {
  const deadline = Date.now() + SURVIVOR_GRACE_MS;
  for (;;) {
    const found = processesOfRun();
    if (found.length === 0 || Date.now() >= deadline) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function kill(pid) {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Live (not zombie) processes in the runner's group or whose environment holds KAPPA_TEST_RUN_ID=<runId>. */
function processesOfRun() {
  if (!existsSync('/proc/self/stat')) return processesOfGroupFromPs();
  const marker = Buffer.from(`KAPPA_TEST_RUN_ID=${runId}\0`);
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command name (which may hold spaces and parentheses): state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state === 'Z' || state === 'X') continue;
      const inGroup = Number(pgrp) === group;
      if (inGroup || readFileSync(`/proc/${name}/environ`).includes(marker)) {
        const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ').trim();
        out.push({ pid: Number(name), command: command.length > 300 ? `${command.slice(0, 300)}…` : command });
      }
    } catch {
      // Gone meanwhile, or another user's process whose environment we may not read.
    }
  }
  return out;
}

/** Where there is no /proc (macOS): only the runner's process group can be checked. */
function processesOfGroupFromPs() {
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,pgid=,stat=,command='], { encoding: 'utf8' });
  if (ps.status !== 0) return [];
  const out = [];
  for (const line of ps.stdout.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (m && Number(m[2]) === group && !m[3].startsWith('Z')) out.push({ pid: Number(m[1]), command: m[4] });
  }
  return out;
}
