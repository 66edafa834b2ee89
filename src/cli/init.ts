/**
 * `kappa init [dir]`: writes a starter app into `dir` (default: the current folder) from the
 * templates in templates/app (shipped with the package, found relative to this module in src/ and
 * in dist/ alike): kappa.config.ts (a topic of orders and two views, importing from 'kappa'),
 * schema.ts, generate.mjs (sends orders to the running app), a README, and a package.json and a
 * .gitignore when the folder has none. Then it prints the commands to run next, with a curl that
 * works against the app as written.
 *
 * It never overwrites: if any file it would write exists (or another kappa.config.*, which
 * `kappa start` would pick instead), it writes nothing and names them. Files are created with
 * O_EXCL, so a file that appears meanwhile is not overwritten either; what was written before is
 * then removed again.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KappaError } from '../errors.ts';
import type { CliContext } from './main.ts';

const TEMPLATES = fileURLToPath(new URL('../../templates/app/', import.meta.url));
/** Kappa's own folder (the package root, or the clone), for the install hint. */
const KAPPA_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What init writes: the file in templates/app, its name in the app, and what it is. */
const FILES = [
  { template: 'kappa.config.ts', name: 'kappa.config.ts', what: 'the app: topic orders, two views over it' },
  { template: 'schema.ts', name: 'schema.ts', what: 'what an order looks like (every record is checked)' },
  { template: 'generate.mjs', name: 'generate.mjs', what: 'sends made-up orders to the running app' },
  { template: 'README.md', name: 'README.md', what: 'how to run and change the app' },
] as const;
/** Written only when missing (a folder often has them already); npm drops a packed .gitignore, hence the name. */
const OPTIONAL_FILES = [
  { template: 'gitignore', name: '.gitignore', what: 'keeps .kappa/ and node_modules/ out of git' },
];
/** Configs `kappa start` would find instead of (or besides) the new kappa.config.ts. */
const OTHER_CONFIGS = ['kappa.config.js', 'kappa.config.mjs'];

export async function initCommand(ctx: CliContext, dir: string | undefined): Promise<void> {
  const root = resolve(dir ?? '.');
  if (existsSync(root) && !statSync(root).isDirectory())
    throw new KappaError('KAPPA_INVALID_ARGUMENT', `${root} is a file, not a folder: give a folder for the new app.`);
  const taken = [...FILES.map((f) => f.name), ...OTHER_CONFIGS].filter((name) => existsSync(join(root, name)));
  if (taken.length > 0) refuse(root, dir, taken);

  const writes: { name: string; what: string; text: string }[] = [
    ...FILES.map((f) => ({ ...f, text: readFileSync(join(TEMPLATES, f.template), 'utf8') })),
    ...OPTIONAL_FILES.filter((f) => !existsSync(join(root, f.name))).map((f) => ({
      ...f,
      text: readFileSync(join(TEMPLATES, f.template), 'utf8'),
    })),
  ];
  const packageJson = join(root, 'package.json');
  if (!existsSync(packageJson))
    writes.push({ name: 'package.json', what: 'an ES module package with npm scripts', text: packageJsonFor(root) });
  mkdirSync(root, { recursive: true });
  writeAll(root, writes);

  const out = ctx.stdout;
  out.write(`Created a Kappa app in ${shown(root)}:\n`);
  const width = Math.max(...writes.map((w) => w.name.length));
  for (const w of writes) out.write(`  ${w.name.padEnd(width)}  ${w.what}\n`);
  for (const warning of packageWarnings(packageJson, writes)) out.write(`\n${warning}\n`);
  out.write(`\n${nextSteps(root)}`);
}

function refuse(root: string, dir: string | undefined, taken: string[]): never {
  const where = dir === undefined ? 'this folder' : shown(root);
  throw new KappaError(
    'KAPPA_INVALID_ARGUMENT',
    `${where} already has ${taken.join(', ')}, so kappa init wrote nothing (it never overwrites a file). ` +
      'Create the app in a new folder instead: kappa init my-app',
    { dir: root, existing: taken },
  );
}

/** Creates every file, failing if one exists; on any failure removes the ones it created and rethrows. */
function writeAll(root: string, writes: { name: string; text: string }[]): void {
  const written: string[] = [];
  try {
    for (const w of writes) {
      const path = join(root, w.name);
      writeFileSync(path, w.text, { flag: 'wx' });
      written.push(path);
    }
  } catch (err) {
    for (const path of written) rmSync(path, { force: true });
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EEXIST')
      throw new KappaError(
        'KAPPA_INVALID_ARGUMENT',
        `${e.path} appeared while kappa init was writing, so it wrote nothing (it never overwrites a file).`,
        { path: e.path },
      );
    throw new KappaError('KAPPA_IO_ERROR', `kappa init could not write ${e.path ?? root}: ${e.message}`, {}, err);
  }
}

function packageJsonFor(root: string): string {
  const name =
    basename(root)
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[._-]+|-+$/g, '') || 'kappa-app';
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: { check: 'kappa check', start: 'kappa start', generate: 'node generate.mjs' },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** What to say about a package.json the user already had. */
function packageWarnings(packageJson: string, writes: { name: string }[]): string[] {
  if (writes.some((w) => w.name === 'package.json')) return [];
  try {
    const pkg = JSON.parse(readFileSync(packageJson, 'utf8')) as { type?: string };
    if (pkg.type === 'module') return [];
  } catch {
    return [];
  }
  return [
    'Note: package.json (kept as it was) has no "type": "module". Kappa loads kappa.config.ts as an ES module\n' +
      'anyway; add "type": "module" if you write more of the app in JavaScript as ES modules.',
  ];
}

/** True if `import … from 'kappa'` in a file of `root` finds a Kappa package. */
function kappaResolvesFrom(root: string): boolean {
  try {
    createRequire(join(root, 'kappa.config.ts')).resolve('kappa/package.json');
    return true;
  } catch {
    return false;
  }
}

function nextSteps(root: string): string {
  const lines = ['Next:'];
  const rel = relative(process.cwd(), root);
  if (rel !== '') lines.push(`  cd ${quote(rel)}`);
  if (!kappaResolvesFrom(root))
    lines.push(
      `  npm install ${quote(KAPPA_ROOT.replace(/\/$/, ''))}   # Kappa itself, so kappa.config.ts can import 'kappa'`,
    );
  lines.push(
    '  npx kappa check          # types and definitions, with the line of any mistake',
    '  npx kappa start          # pipelines, HTTP API and dashboard on http://127.0.0.1:8080/ (Ctrl-C stops)',
    '',
    'Then, in another terminal of the same folder:',
    `  curl -s localhost:8080/v1/topics/orders/records -H 'content-type: application/json' \\`,
    `    -d '[${JSON.stringify(sampleOrder(Date.now()))}]'`,
    '  curl -s localhost:8080/v1/views/revenue_by_country',
    '  node generate.mjs        # 20 orders a second until Ctrl-C',
    '  npx kappa query "SELECT * FROM revenue_by_country ORDER BY revenue DESC"',
    '',
  );
  return lines.join('\n');
}

function sampleOrder(ts: number): object {
  return { orderId: 'o1', customer: 'c1', country: 'DE', product: 'mug', amount: 12.5, ts };
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') ? path : `./${rel}`;
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
