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
//   - The whole run may take KAPPA_TEST_TIMEOUT_MS (default 25 min); then it is stopped and fails.
//   - The runner starts in its own process group and every process it starts carries
//     KAPPA_TEST_RUN_ID in its environment. When the run ends, any process still alive in that group
//     or carrying that id is named, killed, and fails the run.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const MINUTE_MS = 60_000;
const RUN_TIMEOUT_MS = Number(process.env.KAPPA_TEST_TIMEOUT_MS || 25 * MINUTE_MS);
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
const files = [...collect('src', []), ...collect('test', [])]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
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
const testArgs = ['--import', 'tsx', '--test', `--test-timeout=${FILE_TIMEOUT_MS}`, ...forceExit];
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
  if (stopping === 'timeout') process.exit(1);
  if (stopping !== null) process.exit(130);
  if (survivors.length > 0) process.exit(1);
  process.exit(code ?? (signal ? 1 : 0));
});

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
