/**
 * `kappa check` and the checks `kappa start` runs, as a user meets them: a typo on a typed schema
 * (which used to start normally and dead-letter every record), a syntax error (which used to say
 * only "Transform failed with 1 error:"), a view reading a topic the config does not declare, and
 * a config with nothing wrong.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { describe, test } from 'node:test';
import { runKappa, startKappa } from '../support/processes.ts';
import { KAPPA_SRC, tempDataProject, totalsConfig } from '../support/project.ts';

/** totalsConfig with `s.region` misspelt in the groupBy, on line 6 of the file. */
const TYPO = totalsConfig().replace('({ region: s.region })', '({ region: s.regoin })');
/** The same, with the view's closing parenthesis missing. */
const SYNTAX = totalsConfig().replace('n: count() })', 'n: count() }');
/** A view that reads `refunds`, which is not in topics, and one whose source is misspelt. */
const UNDECLARED = `
import { count, defineApp, from, topic, view } from ${JSON.stringify(KAPPA_SRC)};
const sales = topic('sales');
const refunds = topic('refunds');
const salez = topic('salez');
export default defineApp({
  topics: [sales],
  views: [
    view('by_refund', from(refunds).groupBy(() => ({ k: 1 })).aggregate({ n: count() })),
    view('by_sale', from(salez).groupBy(() => ({ k: 1 })).aggregate({ n: count() })),
  ],
});
`;

/** The pid of `parent`'s child whose command line includes `arg`, once it exists. */
async function childProcess(parent: number, arg: string): Promise<number> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const [pid] = childrenOf(parent, arg);
    if (pid !== undefined) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no child of ${parent} with ${arg} appeared within 30 s`);
}

/** The pids of `parent`'s children whose command line includes `arg` (Linux /proc). */
function childrenOf(parent: number, arg: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (statField(Number(entry), 4) !== parent) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(arg)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat, read after the command name. */
function statField(pid: number, n: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3]);
}

const niceOf = (pid: number): number => statField(pid, 19);

/**
 * The nice value `pid` settles at within a second. The start lowers its check's priority as soon as
 * spawn returns, which is just after the child's exec: a look at /proc in between sees nice 0.
 */
async function settledNice(pid: number): Promise<number> {
  const until = Date.now() + 1_000;
  let nice = niceOf(pid);
  while (nice === 0 && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    nice = niceOf(pid);
  }
  return nice;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('kappa check', { timeout: 120_000 }, () => {
  test('a typo on a typed schema is a type error at file:line:col, with the line and a caret under it', async (t) => {
    const project = tempDataProject(t, 'kappa-check-typo-', TYPO);
    const res = await runKappa(['check', '--config', project.config], { cwd: project.root });
    assert.equal(res.code, 1, res.stderr);
    const line = TYPO.split('\n').findIndex((l) => l.includes('s.regoin')) + 1;
    const column = TYPO.split('\n')[line - 1].indexOf('regoin') + 1;
    assert.match(
      res.stderr,
      new RegExp(
        `kappa\\.config\\.ts:${line}:${column} - error TS2551: Property 'regoin' does not exist.*Did you mean 'region'\\?`,
      ),
    );
    assert.match(res.stderr, new RegExp(`^  ${line} \\| .*s\\.regoin`, 'm'), 'the code frame shows the line');
    assert.match(res.stderr, /^ {2}\s+\| +\^{6}$/m, 'a caret under the six letters of regoin');
    assert.match(res.stderr, /check found 1 error/);
    assert.equal(res.stdout, '');
  });

  test('a syntax error names its reason and its line:col, in check and in start', async (t) => {
    const project = tempDataProject(t, 'kappa-check-syntax-', SYNTAX);
    const line = SYNTAX.split('\n').findIndex((l) => l.includes("view('totals'")) + 1;
    const res = await runKappa(['check', '--config', project.config], { cwd: project.root });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`kappa\\.config\\.ts:${line}:\\d+ - syntax error: ',' expected`));

    const start = await runKappa(['--data-dir', project.dir, '--config', project.config, 'start', '--no-server']);
    assert.equal(start.code, 1, start.stderr);
    assert.doesNotMatch(start.stderr, /Transform failed/);
    assert.match(
      start.stderr,
      new RegExp(
        `${escape(project.config)}:${line}:\\d+: the config does not load: syntax error: Expected "\\)" but found "\\]"`,
      ),
    );
    assert.match(start.stderr, /^ +\| +\^$/m, 'a caret under where the parser stopped');
  });

  test('a view that reads an undeclared topic is refused, with the closest declared name', async (t) => {
    const project = tempDataProject(t, 'kappa-check-undeclared-', UNDECLARED);
    const res = await runKappa(['check', '--config', project.config], { cwd: project.root });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /view "by_refund" reads topic "refunds", which is not in topics \(declared: sales\)/);
    assert.match(res.stderr, /view "by_sale" reads topic "salez", which is not in topics \(did you mean "sales"\?/);
    assert.match(res.stderr, /check found 2 errors/);
  });

  test('a config with nothing wrong: "ok" and what it holds, exit 0', async (t) => {
    const project = tempDataProject(t, 'kappa-check-ok-', totalsConfig());
    const res = await runKappa(['check'], { cwd: project.root });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^ok: .*kappa\.config\.ts: 1 topic \(sales\), 1 view \(totals\), 0 outputs/);
    assert.equal(res.stderr, '');
  });
});

describe('kappa start checks the config', { timeout: 120_000 }, () => {
  test('a type error is a warning with its code frame, and the app runs', async (t) => {
    const project = tempDataProject(t, 'kappa-start-typo-', TYPO);
    const start = startKappa(t, ['--data-dir', project.dir, '--config', project.config, 'start', '--port', '0']);
    // The check runs beside the app, once its views are current, at the lowest CPU priority: advice
    // must not slow the app down.
    const check = await childProcess(start.pid, '--types-json');
    assert.equal(await settledNice(check), 19, 'the background type check runs at nice 19');
    await start.waitForOutput(/HTTP API on /, { timeoutMs: 60_000 });
    await start.waitForOutput(/kappa: warning: 1 type error in the config/, { timeoutMs: 60_000 });
    assert.match(start.stderr, /kappa\.config\.ts:\d+:\d+ - warning TS2551: Property 'regoin'/);
    assert.equal((await start.stop()).code, 0, start.stderr);

    // Started again with the config unchanged: the kept findings, at once, and no second check.
    const again = startKappa(t, ['--data-dir', project.dir, '--config', project.config, 'start', '--port', '0']);
    await again.waitForOutput(/HTTP API on /, { timeoutMs: 60_000 });
    const warned = again.stderr.indexOf('warning TS2551');
    assert.ok(warned >= 0 && warned < again.stderr.indexOf('HTTP API on'), again.stderr);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(childrenOf(again.pid, '--types-json'), [], 'no type check runs');
    assert.equal((await again.stop()).code, 0, again.stderr);
  });

  test('--strict refuses to start on a type error, and opens nothing', async (t) => {
    const project = tempDataProject(t, 'kappa-start-strict-', TYPO);
    const res = await runKappa(['--data-dir', project.dir, '--config', project.config, 'start', '--strict']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /kappa\.config\.ts:\d+:\d+ - error TS2551: Property 'regoin'/);
    assert.match(res.stderr, /1 type error \(shown above\); --strict refuses to start/);
    assert.doesNotMatch(res.stderr, /running 1 view/);
  });
});
