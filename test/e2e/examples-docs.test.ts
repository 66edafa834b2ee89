/**
 * The examples as their READMEs tell a user to run them: each on its own data directory (so the
 * iot example run after the demo never counts the demo's alerts), an SSE curl that asks for SSE,
 * and generators that answer --help with a usage line instead of a stack trace.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '../support/processes.ts';

const example = (name: string, file: string): string =>
  fileURLToPath(new URL(`../../examples/${name}/${file}`, import.meta.url));
const readme = (name: string): string => readFileSync(example(name, 'README.md'), 'utf8');

/** The `kappa` command lines of a README's shell blocks. */
function kappaCommands(text: string): string[] {
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((b) => b.split('\n')).filter((line) => /\bnpx kappa\b/.test(line));
}

test('the iot and fraud READMEs run every kappa command on the example’s own data directory', () => {
  const dirs = new Map<string, string>();
  for (const name of ['iot', 'fraud']) {
    const commands = kappaCommands(readme(name));
    assert.ok(commands.length >= 2, `${name}: the README shows how to start and query it`);
    for (const line of commands) {
      const dir = /--data-dir (\S+)/.exec(line)?.[1];
      assert.ok(dir !== undefined, `${name}: "${line}" names no --data-dir, so it would use the demo's .kappa`);
      assert.notEqual(dir, '.kappa', `${name}: the demo's directory`);
      assert.equal(dirs.get(name) ?? dir, dir, `${name}: every command uses the same directory`);
      dirs.set(name, dir);
    }
  }
  assert.notEqual(dirs.get('iot'), dirs.get('fraud'));
  const sales = readme('sales');
  assert.match(sales, /`\.kappa`/, 'the sales README says where the demo keeps its data');
});

test('the iot README’s SSE curl asks for an event stream', () => {
  const curls = readme('iot')
    .split('\n')
    .filter((l) => /curl .*records\?from=latest/.test(l));
  assert.equal(curls.length, 1);
  assert.match(curls[0], /-H 'accept: text\/event-stream'/);
});

for (const name of ['iot', 'fraud']) {
  test(`examples/${name}/generate.ts answers --help with its usage, and a bad option with the usage too`, async (t) => {
    const script = example(name, 'generate.ts');
    const help = await runCommand(process.execPath, ['--import', 'tsx', script, '--help'], { t, timeoutMs: 30_000 });
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^usage: node --import tsx examples/${name}/generate.ts \\[--url <url>\\]`));
    assert.match(help.stdout, /--rate <n>/);
    assert.equal(help.stderr, '');
    const bad = await runCommand(process.execPath, ['--import', 'tsx', script, '--rat', '5'], { t, timeoutMs: 30_000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Unknown option '--rat'[\s\S]*usage: /);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
    const rate = await runCommand(process.execPath, ['--import', 'tsx', script, '--rate', 'fast'], {
      t,
      timeoutMs: 30_000,
    });
    assert.equal(rate.code, 1);
    assert.match(rate.stderr, /--rate must be a positive number, not "fast"/);
  });
}
