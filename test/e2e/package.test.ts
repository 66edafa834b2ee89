/**
 * Kappa as someone outside the repository gets it: `npm pack` (which builds dist/ through `prepare`)
 * in a copy of the repository's files with no dist/, `npm install <tarball>` into an empty project,
 * then from that project `npx kappa init`, `npx kappa check`, `npx kappa start`, records POSTed over
 * HTTP and the view queried over HTTP and with `npx kappa query`. The config the project gets
 * imports `from 'kappa'`, and the project's package.json (written by npm) has no "type": "module".
 * Then the compiled CLI's start-up: `kappa --help`, `views` and `query` never load tsx and answer
 * within a bound generous enough never to flake (bench/cli.ts measures them).
 *
 * The install uses npm's cache first (--prefer-offline; the registry is asked only for what the
 * cache lacks) and skips install scripts: the one that matters, better-sqlite3's, downloads a
 * prebuilt binary from GitHub or compiles SQLite for minutes, which tests Kappa's packaging not at
 * all. Its binary is copied from this repository's node_modules instead (the same version, checked).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { salesGenerator } from '../../src/cli/demo.ts';
import { postJson } from '../support/http.ts';
import { tempDir } from '../support/cleanup.ts';
import { type RunResult, runCommand, runKappa, spawnOwned, waitFor } from '../support/processes.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
/** What `npm pack` needs from a clone: everything but tests, docs, benches and the build's output. */
const PACKED_FROM = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'bin',
  'scripts',
  'src',
  'templates',
  'examples',
];
/** Each npm command; with the rest, the file stays within the 10 minutes scripts/test.js allows a file. */
const NPM_TIMEOUT_MS = 200_000;
/** Start-up bound for the compiled CLI: bench/cli.ts has the figures (well under a second); this only catches tsx creeping back. */
const STARTUP_MS_MAX = 3_000;
/** The environment of every command: no data dir or dist switch leaking in from the caller's. */
const ENV = { KAPPA_DATA_DIR: undefined, KAPPA_FROM_DIST: undefined, NODE_OPTIONS: undefined };

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code ?? r.signal}).\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Copies the files npm packs from into `stage`, with the repository's node_modules (for tsc) linked in. */
function stageClone(stage: string): void {
  for (const name of PACKED_FROM) cpSync(join(REPO, name), join(stage, name), { recursive: true });
  symlinkSync(join(REPO, 'node_modules'), join(stage, 'node_modules'), 'dir');
}

/** better-sqlite3's native binary, from this repository's install (see the header). */
function copySqliteBinary(project: string): void {
  const version = (dir: string): string =>
    (JSON.parse(readFileSync(join(dir, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string })
      .version;
  assert.equal(version(project), version(REPO), 'the project got another better-sqlite3 than the repository has');
  const release = 'node_modules/better-sqlite3/build/Release';
  mkdirSync(join(project, release), { recursive: true });
  cpSync(join(REPO, release, 'better_sqlite3.node'), join(project, release, 'better_sqlite3.node'));
}

/** The JSON of the first `curl … -d '<json>'` in `text`. */
function curlBody(text: string): string {
  const body = /curl [^\n]*\/records[^]*?-d '(\[[^']*\])'/.exec(text)?.[1];
  assert.ok(body !== undefined, `no curl with a body in:\n${text}`);
  return body;
}

/** Every file under `dir` with its content, to show that a refused command changed nothing. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules') continue;
    if (statSync(path).isDirectory()) for (const [p, c] of snapshot(path)) out.set(p, c);
    else out.set(path, readFileSync(path, 'utf8'));
  }
  return out;
}

describe('the packed kappa, installed into an empty project', { timeout: 570_000 }, () => {
  // Made here, not in before(): an after() registered inside a hook would run when the hook ends.
  const suite = { after };
  const stage = tempDir(suite, 'kappa-pack-clone-');
  const out = tempDir(suite, 'kappa-pack-out-');
  const project = tempDir(suite, 'kappa-pack-project-');
  let packed: string[] = [];

  before(
    async () => {
      stageClone(stage);
      const pack = ok(
        await runCommand('npm', ['pack', '--pack-destination', out, '--json'], {
          cwd: stage,
          env: ENV,
          timeoutMs: NPM_TIMEOUT_MS,
        }),
        'npm pack',
      );
      const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
      packed = info.files.map((f) => f.path);
      const install = ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'];
      ok(
        await runCommand('npm', [...install, join(out, info.filename)], {
          cwd: project,
          env: ENV,
          timeoutMs: NPM_TIMEOUT_MS,
        }),
        'npm install <tarball>',
      );
      copySqliteBinary(project);
    },
    { timeout: 2 * NPM_TIMEOUT_MS },
  );

  test('the tarball holds the compiled code, its types and files, and no TypeScript sources', () => {
    for (const file of [
      'bin/kappa.js',
      'dist/cli/main.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/server/index.d.ts',
      'dist/dashboard/index.html',
      'dist/view/sqlite/timed-reader-child.cjs',
      'dist/stream/worker-entry.js',
      'templates/app/kappa.config.ts',
      'examples/sales/kappa.config.ts',
    ])
      assert.ok(packed.includes(file), `${file} is missing from the tarball`);
    assert.deepEqual(
      packed.filter((f) => f.startsWith('src/') || /\.test\.(js|d\.ts)$/.test(f)),
      [],
      'sources or tests in the tarball',
    );
  });

  test('init, check, start, POST and query, all from the project', { timeout: 300_000 }, async (t) => {
    const init = ok(await runCommand('npx', ['kappa', 'init'], { cwd: project, env: ENV }), 'npx kappa init');
    assert.match(init.stdout, /npx kappa start/);
    assert.match(readFileSync(join(project, 'kappa.config.ts'), 'utf8'), /from 'kappa'/);
    const before = snapshot(project);
    const again = await runCommand('npx', ['kappa', 'init'], { cwd: project, env: ENV });
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /already has kappa\.config\.ts.*wrote nothing/);
    assert.deepEqual(snapshot(project), before, 'a refused init changed files');

    const check = ok(await runCommand('npx', ['kappa', 'check'], { cwd: project, env: ENV }), 'npx kappa check');
    assert.match(check.stdout, /^ok: /m);

    const start = spawnOwned(t, 'npx', ['kappa', 'start', '--port', '0', '--workers', '1'], { cwd: project, env: ENV });
    const [, url] = await start.waitForOutput(/HTTP API on (http:\/\/\S+)/, { timeoutMs: 60_000 });
    // First the very records of the curl that init printed (one order, DE, 12.5), then two more.
    const printed = JSON.parse(curlBody(init.stdout)) as { ts: number }[];
    assert.equal((await postJson(url, '/v1/topics/orders/records', printed)).status, 200);
    const ts = printed[0].ts;
    const orders = [
      { orderId: 'o2', customer: 'c2', country: 'FR', product: 'lamp', amount: 30, ts: ts + 1000 },
      { orderId: 'o3', customer: 'c3', country: 'DE', product: 'book', amount: 7.5, ts: ts + 2000 },
    ];
    const posted = await postJson(url, '/v1/topics/orders/records', orders);
    assert.equal(posted.status, 200, posted.text);
    const rows = await waitFor(
      'both countries and all three orders in revenue_by_country',
      async () => {
        const res = await fetch(`${url}/v1/views/revenue_by_country`);
        const body = (await res.json()) as { rows?: { country: string; revenue: number; orders: number }[] };
        // All three orders: DE's second may be folded (on another partition) after FR's row is there.
        return body.rows?.length === 2 && body.rows.reduce((n, r) => n + r.orders, 0) === 3 ? body.rows : null;
      },
      { timeoutMs: 30_000, intervalMs: 200, child: start },
    );
    const byCountry = Object.fromEntries(rows.map((r) => [r.country, [r.revenue, r.orders]]));
    assert.deepEqual(byCountry, { DE: [20, 2], FR: [30, 1] });

    const sql = 'SELECT country, revenue, orders FROM revenue_by_country ORDER BY country';
    const query = ok(await runCommand('npx', ['kappa', 'query', sql, '--json'], { cwd: project, env: ENV }), 'query');
    assert.deepEqual(JSON.parse(query.stdout), [
      { country: 'DE', revenue: 20, orders: 2 },
      { country: 'FR', revenue: 30, orders: 1 },
    ]);
    // Ctrl-C, as in a terminal: SIGINT to the whole group. npx passes no SIGTERM on to kappa, and
    // ends by the signal itself, so kappa's clean exit shows in what it prints.
    process.kill(-start.pid, 'SIGINT');
    await Promise.race([start.exited, new Promise((r) => setTimeout(r, 20_000))]);
    assert.equal(start.running, false, 'kappa start is still running 20 s after Ctrl-C');
    assert.match(start.stderr, /stopped; every view is flushed and checkpointed/);
  });

  test(`--help, views and query start without tsx and answer within ${STARTUP_MS_MAX} ms`, async (t) => {
    // Each resolution of tsx is printed by this hook: none may happen.
    writeFileSync(
      join(project, 'tsx-hooks.mjs'),
      'export async function resolve(s, c, next) {\n' +
        "  if (/(^|\\/)tsx(\\/|$)/.test(s)) console.error('kappa-test: tsx resolved: ' + s);\n" +
        '  return next(s, c);\n}\n',
    );
    const probe = join(project, 'tsx-probe.mjs');
    writeFileSync(probe, "import { register } from 'node:module';\nregister('./tsx-hooks.mjs', import.meta.url);\n");
    const bin = join(project, 'node_modules', '.bin', 'kappa');
    for (const args of [['--help'], ['views'], ['query', 'SELECT country FROM revenue_by_country']]) {
      // The best of three: the machine's other work (2 cores, tests beside this one) only ever adds.
      let elapsedMs = Infinity;
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        ok(await runCommand(process.execPath, [bin, ...args], { cwd: project, env: ENV }), `kappa ${args[0]}`);
        elapsedMs = Math.min(elapsedMs, performance.now() - started);
      }
      t.diagnostic(`kappa ${args.join(' ')}: ${Math.round(elapsedMs)} ms`);
      assert.ok(elapsedMs < STARTUP_MS_MAX, `kappa ${args[0]} took ${Math.round(elapsedMs)} ms`);
      const probed = ok(
        await runCommand(process.execPath, ['--import', probe, bin, ...args], { cwd: project, env: ENV }),
        `kappa ${args[0]} with the probe`,
      );
      assert.doesNotMatch(probed.stderr, /kappa-test: tsx resolved/, `kappa ${args[0]} loaded tsx`);
    }
    // The probe does see tsx where it is needed: a command that loads the config.
    const check = await runCommand(process.execPath, ['--import', probe, bin, 'check'], { cwd: project, env: ENV });
    assert.match(check.stderr, /kappa-test: tsx resolved/);
    // The installed command knows its version (read from the installed package.json).
    const installed = ok(
      await runCommand(process.execPath, [bin, '--version'], { cwd: project, env: ENV }),
      'kappa -V',
    );
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal(installed.stdout, `${version}\n`);
  });
});

test('kappa init never overwrites: an existing file makes it write nothing and say which', async (t) => {
  const dir = tempDir(t, 'kappa-init-');
  writeFileSync(join(dir, 'README.md'), 'mine\n');
  const r = await runKappa(['init', dir]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /already has README\.md, so kappa init wrote nothing/);
  assert.deepEqual(readdirSync(dir), ['README.md']);
  assert.equal(readFileSync(join(dir, 'README.md'), 'utf8'), 'mine\n');

  const app = join(dir, 'app');
  const made = await runKappa(['init', app]);
  assert.equal(made.code, 0, made.stderr);
  assert.deepEqual(readdirSync(app).sort(), [
    '.gitignore',
    'README.md',
    'generate.mjs',
    'kappa.config.ts',
    'package.json',
    'schema.ts',
  ]);
  assert.equal((JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { type: string }).type, 'module');
  // The printed curl's records (which the packed app accepts, above) have every field of an order.
  assert.deepEqual(Object.keys((JSON.parse(curlBody(made.stdout)) as object[])[0]).sort(), [
    'amount',
    'country',
    'customer',
    'orderId',
    'product',
    'ts',
  ]);
});

test("the README's curl examples send records with every field the app's schema requires", () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const shape = (record: object): Record<string, string> =>
    Object.fromEntries(Object.entries(record).map(([k, v]) => [k, typeof v]));
  // The demo's sales: the generator sends what examples/sales/kappa.config.ts requires, every field.
  const sale = JSON.parse(salesGenerator(1)(1, Date.UTC(2026, 0, 1))[0].value as string) as object;
  const demoCurl = readme.slice(readme.indexOf('## The HTTP API'));
  for (const record of JSON.parse(curlBody(demoCurl)) as object[]) assert.deepEqual(shape(record), shape(sale));
  // The starter app's orders, in "Start your own app": the fields of templates/app/schema.ts.
  const ownApp = readme.slice(readme.indexOf('## Start your own app'));
  const template = readFileSync(join(REPO, 'templates/app/schema.ts'), 'utf8');
  const fields = [...template.matchAll(/^\s+(\w+): Type\.(String|Number|Integer)\(\)/gm)].map((m) => m[1]);
  for (const record of JSON.parse(curlBody(ownApp)) as object[])
    assert.deepEqual(Object.keys(record).sort(), fields.sort());
});
