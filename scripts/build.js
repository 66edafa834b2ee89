// `npm run build` (and `prepare`, so `npm install` in a clone and `npm pack` both run it): compiles
// src/ to dist/ with tsc (tsconfig.build.json: JavaScript, .d.ts types), then copies the files tsc
// does not emit that the compiled code reads or runs beside itself:
//   - every file of src/ that is not TypeScript: the dashboard's page, script and styles
//     (src/dashboard/*, read relative to server/dashboard.js), the CommonJS modules of the SQLite
//     adapter and their types (src/view/sqlite/*.cjs, *.d.cts: the query child is forked by path),
//     and the worker threads' fallback entry (src/stream/worker-entry.js);
//   - nothing else: the templates of `kappa init` (templates/) and the examples ship as they are,
//     listed in package.json "files", and are found relative to dist/ the same way as to src/.
// dist/ is removed first, so a file deleted from src/ does not linger in the package.
//
//   node scripts/build.js [--out DIR]   DIR defaults to dist
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const args = process.argv.slice(2);
const outAt = args.indexOf('--out');
const OUT = resolve(ROOT, outAt === -1 ? 'dist' : args[outAt + 1]);

/**
 * Files of src/ that are not TypeScript but are not part of the package either: none today.
 * Test fixtures would go here (a `.log` fixture beside a test, for example).
 */
const SKIP = [/\.test\./, /\.log$/];

/**
 * The fallback entry of the worker threads imports the worker module by its source name
 * (`./worker.ts`, for tsx); compiled, that module is `./worker.js`. The build fails if the import
 * is not found, rather than ship an entry that cannot start.
 */
const REWRITES = { 'stream/worker-entry.js': [["import('./worker.ts')", "import('./worker.js')"]] };

function compile() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', OUT], {
    stdio: ['ignore', 2, 2], // tsc prints its errors on stdout; `npm pack --json` owns stdout
  });
  if (r.status !== 0) {
    console.error(`build: tsc failed (exit ${r.status ?? r.signal}); ${relative(ROOT, OUT)}/ is incomplete.`);
    process.exit(1);
  }
}

function copyAssets(dir) {
  let copied = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      copied += copyAssets(path);
      continue;
    }
    if (name.endsWith('.ts') || SKIP.some((re) => re.test(name))) continue;
    const rel = relative(SRC, path);
    const target = join(OUT, rel);
    mkdirSync(dirname(target), { recursive: true });
    const rewrites = REWRITES[rel.split('\\').join('/')];
    if (rewrites === undefined) cpSync(path, target);
    else writeFileSync(target, rewrite(rel, readFileSync(path, 'utf8'), rewrites));
    copied++;
  }
  return copied;
}

function rewrite(rel, text, rewrites) {
  let out = text;
  for (const [from, to] of rewrites) {
    if (!out.includes(from)) {
      console.error(`build: src/${rel} no longer contains ${from}; update REWRITES in scripts/build.js.`);
      process.exit(1);
    }
    out = out.split(from).join(to);
  }
  return out;
}

const started = Date.now();
rmSync(OUT, { recursive: true, force: true });
compile();
const assets = copyAssets(SRC);
console.error(
  `build: ${relative(ROOT, OUT)}/ compiled from src/, ${assets} other files copied, in ${Date.now() - started} ms`,
);
