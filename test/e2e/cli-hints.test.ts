/**
 * What the CLI tells a user who made a small mistake: a topic name with a typo gets the closest
 * existing name, `kappa produce` beside a running writer says to send through its HTTP API (with
 * the curl), and no text names a `kappa token create` command that does not exist.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { tokenName } from '../../src/cli/token.ts';
import { closestNames, isKappaError } from '../../src/errors.ts';
import { openFileLog } from '../../src/log/index.ts';
import { openSqliteStore } from '../../src/view/sqlite/index.ts';
import { kappaInProcess } from '../support/cli.ts';
import { defer, tempDir } from '../support/cleanup.ts';

/** Tests of changes the lead makes outside this part's files (see the part E report). */

test('closestNames finds one-letter typos, swapped letters and case, and nothing for an unrelated name', () => {
  const names = ['sales', 'alerts', 'readings', 'sales_per_minute'];
  assert.deepEqual(closestNames('sale', names), ['sales']);
  assert.deepEqual(closestNames('slaes', names), ['sales']);
  assert.deepEqual(closestNames('Alerts', names), ['alerts']);
  assert.deepEqual(closestNames('redings', names), ['readings']);
  assert.deepEqual(closestNames('orders', names), []);
});

test('kappa consume and produce with a mistyped topic suggest the closest topic, and change nothing', async (t) => {
  const dir = tempDir(t, 'kappa-hints-');
  assert.equal((await kappaInProcess(['--data-dir', dir, 'topics', 'create', 'sales'])).code, 0);
  const consume = await kappaInProcess(['--data-dir', dir, 'consume', 'sale']);
  assert.equal(consume.code, 1);
  assert.match(consume.stderr, /Topic "sale" does not exist\. Did you mean "sales"\?/);
  assert.doesNotMatch(consume.stderr, /topics create/, 'a typo is not advice to create a topic');
  const produce = await kappaInProcess(['--data-dir', dir, 'produce', 'sale'], '{"a":1}\n');
  assert.equal(produce.code, 1);
  assert.match(produce.stderr, /Did you mean "sales"\?/);
  const topics = await kappaInProcess(['--data-dir', dir, 'topics', 'list', '--json']);
  assert.deepEqual(
    (JSON.parse(topics.stdout) as { name: string }[]).map((x) => x.name),
    ['sales'],
  );
  // A name close to nothing: the topics there are, and how to create one.
  const other = await kappaInProcess(['--data-dir', dir, 'consume', 'orders']);
  assert.match(other.stderr, /The topics here: sales\. Create it with `kappa topics create orders`/);
});

test('kappa produce while another process writes the data dir says to POST to the running server', async (t) => {
  const dir = tempDir(t, 'kappa-hints-');
  const writer = await openFileLog({ dir });
  defer(t, () => writer.close());
  await writer.createTopic('sales', { partitions: 1 });
  const res = await kappaInProcess(['--data-dir', dir, 'produce', 'sales'], '{"a":1}\n');
  assert.equal(res.code, 1);
  assert.match(res.stderr, /kappa produce cannot write to .*: it is in use by process \d+, most likely `kappa start`/);
  assert.match(
    res.stderr,
    /curl -s http:\/\/127\.0\.0\.1:8080\/v1\/topics\/sales\/records -H 'content-type: application\/x-ndjson' --data-binary @records\.ndjson/,
  );
  assert.equal((await writer.offsets('sales', 0)).end, 0, 'nothing was written');
});

test('no user-facing text outside the CLI names `kappa token create` (the command is `kappa token <name> --scopes …`)', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const path = join(dir, f);
      if (statSync(path).isDirectory()) return files(path);
      return /\.(ts|js|md|html)$/.test(f) && !f.endsWith('.test.ts') ? [path] : [];
    });
  // src/cli is where `kappa token create <name>` is taken as an alias, and says so.
  const cli = join(root, 'src', 'cli');
  const texts = [join(root, 'README.md'), ...files(join(root, 'docs')), ...files(join(root, 'src'))];
  for (const f of texts.filter((path) => !path.startsWith(cli)))
    assert.doesNotMatch(readFileSync(f, 'utf8'), /kappa token create/, f);
});

test('tokenName takes `<name>` or `create <name>`, and refuses anything else', () => {
  assert.equal(tokenName(['alice']), 'alice');
  assert.equal(tokenName(['create', 'alice']), 'alice');
  assert.equal(tokenName(['create']), 'create', 'a token may be named create');
  assert.throws(
    () => tokenName(['alice', 'bob']),
    (err) => isKappaError(err, 'KAPPA_INVALID_ARGUMENT') && /takes one name, not "alice bob"/.test(err.message),
  );
});

test('kappa token create <name> --scopes … makes a token as kappa token <name> does', async () => {
  const res = await kappaInProcess(['token', 'create', 'alice', '--scopes', 'query']);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^\S{20,}\n$/);
  assert.match(res.stderr, /"name":"alice".*"scopes":\["query"\]/);
});

test('kappa query shows epoch-ms times in time columns as ISO times and fractions without float noise', async (t) => {
  const dir = tempDir(t, 'kappa-hints-');
  await (await openSqliteStore({ path: join(dir, 'views.db') })).close();
  const ms = Date.UTC(2026, 5, 1, 12, 30);
  const res = await kappaInProcess([
    '--data-dir',
    dir,
    'query',
    `SELECT 945504.3599999986 AS total, ${ms} AS window_start, ${ms} AS orders`,
  ]);
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`945504\\.36\\s+2026-06-01T12:30:00\\.000Z\\s+${ms}\\n`));
  const json = await kappaInProcess(['--data-dir', dir, 'query', '--json', `SELECT ${ms} AS window_start`]);
  assert.deepEqual(JSON.parse(json.stdout), [{ window_start: ms }], '--json keeps the number');
});

test('kappa query on a name that is not a view says SQL reads views, not topics, and lists the views', async (t) => {
  const dir = tempDir(t, 'kappa-hints-');
  await (await openSqliteStore({ path: join(dir, 'views.db') })).close();
  const res = await kappaInProcess(['--data-dir', dir, 'query', 'SELECT * FROM sales']);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /There is no view "sales"\. There are no views yet\. SQL reads only views, not topics/);
  assert.match(res.stderr, /kappa consume sales/);
});

test('kappa --version and -V print the version of the package, and nothing else', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  for (const flag of ['--version', '-V']) {
    const run = await kappaInProcess([flag]);
    assert.equal(run.code, 0);
    assert.equal(run.stdout, `${version}\n`);
  }
});
