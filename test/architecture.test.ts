/**
 * The shape of src/, checked on every import of every module (src/**\/*.ts, not *.test.ts).
 *
 * AREAS: each top-level folder of src/ and each root file, with its layer (low to high). A module may
 * import its own area freely, a lower or equal layer through that area's entry, and never a higher
 * layer. docs/architecture.md cites this table and the rules below by their ids.
 *
 *   layer  area                                         what it is
 *   0      errors.ts assert.ts crash-point.ts random.ts  root helpers every layer may use
 *          cache-dir.ts
 *   1      log/                                         the partitioned log (the `Log` port, FileLog)
 *   1      schema/                                      event schemas: validation and decoding
 *   1      formats/                                     record formats (JSON, Avro, Protobuf) in Confluent's wire format
 *   2      registry/                                    the schema registry (Confluent's REST API), kept in the log
 *   2      view/                                        the serving layer (ViewStore, ControlStore, SQLite)
 *   3      stream/                                      the stream engine, its DSL and worker threads
 *   4      app/                                         what runs beside the engine in `kappa start` (webhooks)
 *   5      server/                                      the HTTP API (may use app/, as DESIGN.md's diagram says)
 *   5      dashboard/                                   static files the server serves (no TypeScript)
 *   5      kafka/                                       the Kafka listener: wire codec, consumer groups, handlers
 *   6      cli/                                         the `kappa` command
 *   7      index.ts                                     the package's public API
 *
 * RULES
 *
 *   A1 (entries) A module that imports from another top-level folder of src/ goes through that
 *      folder's index.ts, or the index.ts of one of its subfolders (src/view/sqlite/index.ts is an
 *      entry). An index.ts is the folder's public API; the other files are its insides.
 *   A2 (layers)  A module never imports a module of a higher layer (equal layers may import each
 *      other through their entries).
 *   A3 (workers) The modules a worker thread loads (src/stream/worker.ts and everything it imports at
 *      run time, transitively) never import better-sqlite3 or src/view/sqlite/: a worker reads the
 *      log and reports rows; only the main thread touches the database.
 *
 * Only run-time imports count for A3 (`import type` and `export type` are erased; with
 * verbatimModuleSyntax an `import { type X }` still loads its module, so it counts).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const SRC = join(REPO, 'src');

/** The table above, as data: area (a folder with a trailing slash, or a root file) to layer. */
export const AREA_LAYERS: Readonly<Record<string, number>> = {
  'errors.ts': 0,
  'assert.ts': 0,
  'crash-point.ts': 0,
  'random.ts': 0,
  'cache-dir.ts': 0,
  'log/': 1,
  'schema/': 1,
  'formats/': 1,
  'registry/': 2,
  'view/': 2,
  'stream/': 3,
  'app/': 4,
  'server/': 5,
  'dashboard/': 5,
  'kafka/': 5,
  'cli/': 6,
  'index.ts': 7,
};

/** Where a worker thread starts (rule A3), and what it must never load. */
const WORKER_ENTRY = 'stream/worker.ts';
const WORKER_FORBIDDEN = [{ package: 'better-sqlite3' }, { under: 'view/sqlite/' }] as const;

/** One import of one module: paths are relative to src/ ('stream/engine.ts'); a package keeps its name. */
export interface Import {
  from: string;
  line: number;
  specifier: string;
  /** The module it names, relative to src/, or null for a package, a node: builtin or a file outside src/. */
  target: string | null;
  /** False for `import type` / `export type`, which are erased before anything runs. */
  runtime: boolean;
}

/** The area a path relative to src/ belongs to ('view/' for 'view/sqlite/index.ts'), or null if the table lacks it. */
export function areaOf(path: string): string | null {
  const slash = path.indexOf('/');
  const area = slash === -1 ? path : path.slice(0, slash + 1);
  return area in AREA_LAYERS ? area : null;
}

/** Rules A1 and A2 for one import; each broken rule is one message a newcomer can act on. */
export function checkImport(imp: Import): string[] {
  if (imp.target === null) return [];
  const where = `src/${imp.from}:${imp.line} imports '${imp.specifier}'`;
  const fromArea = areaOf(imp.from);
  const toArea = areaOf(imp.target);
  for (const [path, area] of [
    [imp.from, fromArea],
    [imp.target, toArea],
  ] as const) {
    if (area === null) {
      return [
        `${where}: src/${path} is in no area of the table at the top of test/architecture.test.ts. ` +
          'A new top-level folder or root file of src/ needs a row there (and in docs/architecture.md): ' +
          'which layer is it?',
      ];
    }
  }
  if (fromArea === toArea) return [];
  const out: string[] = [];
  if (toArea!.endsWith('/') && !imp.target.endsWith('/index.ts')) {
    out.push(
      `[A1 entries] ${where}, a file inside src/${toArea} other than its entry. ` +
        `Import it from ${entryFor(imp.target, toArea!)} instead; ` +
        'if that index does not export what you need, export it there ' +
        `(an index.ts is its folder's public API, so the insides can change without breaking you).`,
    );
  }
  const fromLayer = AREA_LAYERS[fromArea!];
  const toLayer = AREA_LAYERS[toArea!];
  if (toLayer > fromLayer) {
    out.push(
      `[A2 layers] ${where}: src/${fromArea} is layer ${fromLayer} and src/${toArea} is layer ${toLayer}; ` +
        'a lower layer must not depend on a higher one. Move what both need down to the lower layer, or let the ' +
        'higher layer pass it in (a parameter, a callback, or a port the lower layer declares and the higher one ' +
        'implements).',
    );
  }
  return out;
}

/** The entry to import instead of `target`: the nearest index.ts at or above its folder, inside its area. */
function entryFor(target: string, area: string): string {
  for (let dir = dirname(target); dir.length + 1 >= area.length && dir !== '.'; dir = dirname(dir)) {
    if (existsSync(join(SRC, dir, 'index.ts'))) return `src/${dir}/index.ts`;
  }
  return `src/${area}index.ts (create it: it is the folder's public API)`;
}

/** Every module under `dir` (not tests), relative to src/, sorted. */
function listModules(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const isModule = entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts');
    if (entry.isFile() && isModule) {
      out.push(relative(SRC, join(entry.parentPath, entry.name)).split('\\').join('/'));
    }
  }
  return out.sort();
}

/** The imports of one module: static imports and re-exports, side-effect imports, import('…') and require('…') of a literal. */
export function importsOf(from: string, text: string): Import[] {
  const file = ts.createSourceFile(from, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (node: ts.Node, specifier: ts.Expression, runtime: boolean): void => {
    if (!ts.isStringLiteralLike(specifier)) return;
    const line = file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1;
    out.push({ from, line, specifier: specifier.text, target: resolveTarget(from, specifier.text), runtime });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, !node.importClause?.isTypeOnly);
    else if (ts.isExportDeclaration(node) && node.moduleSpecifier) add(node, node.moduleSpecifier, !node.isTypeOnly);
    else if (ts.isCallExpression(node) && node.arguments[0] && isImportOrRequire(node.expression)) {
      add(node, node.arguments[0], true);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return out;
}

/** `import(…)`, or `require(…)` (a createRequire'd require also loads a module). */
function isImportOrRequire(callee: ts.Expression): boolean {
  return callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require');
}

function resolveTarget(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const path = relative(SRC, resolve(SRC, dirname(from), specifier))
    .split('\\')
    .join('/');
  return path.startsWith('..') ? null : path;
}

function readImports(from: string): Import[] {
  return importsOf(from, readFileSync(join(SRC, from), 'utf8'));
}

/** Rule A3: the chains from the worker entry to anything it must not load, each as 'a.ts -> b.ts -> better-sqlite3'. */
export function forbiddenWorkerChains(entry: string, importsFor: (module: string) => Import[]): string[] {
  const chains: string[] = [];
  const seen = new Set<string>([entry]);
  const queue: string[][] = [[entry]];
  while (queue.length > 0) {
    const path = queue.shift()!;
    for (const imp of importsFor(path[path.length - 1]).filter((i) => i.runtime)) {
      const forbidden = WORKER_FORBIDDEN.some((f) =>
        'package' in f ? imp.target === null && imp.specifier === f.package : (imp.target ?? '').startsWith(f.under),
      );
      const label = imp.target === null ? imp.specifier : `src/${imp.target}`;
      if (forbidden) chains.push([...path.map((p) => `src/${p}`), label].join(' -> '));
      else if (imp.target !== null && imp.target.endsWith('.ts') && !seen.has(imp.target)) {
        seen.add(imp.target);
        queue.push([...path, imp.target]);
      }
    }
  }
  return chains;
}

function failWith(title: string, problems: string[], advice: string): void {
  assert.equal(problems.length, 0, `${title} (${problems.length}):\n\n${problems.join('\n\n')}\n\n${advice}`);
}

describe('architecture of src/ (the rules at the top of test/architecture.test.ts)', () => {
  const modules = listModules(SRC);
  const imports = modules.flatMap(readImports);

  test('the scan sees the modules and imports it checks (so the rules below cannot pass by reading nothing)', () => {
    const moved = `src/${WORKER_ENTRY} is the worker entry of rule A3; if it moved, update WORKER_ENTRY`;
    assert.ok(modules.includes(WORKER_ENTRY), moved);
    assert.ok(modules.includes('log/index.ts') && modules.includes('view/sqlite/index.ts'));
    assert.ok(!modules.some((m) => m.endsWith('.test.ts')), 'tests are not checked');
    const workerReadsLog = imports.some((i) => i.from === WORKER_ENTRY && i.target === 'log/index.ts');
    assert.ok(workerReadsLog, 'worker.ts imports ../log/index.ts');
    assert.ok(
      imports.some((i) => i.specifier === 'better-sqlite3'),
      'the SQLite adapter imports better-sqlite3',
    );
  });

  test('the checks catch what they are meant to catch', () => {
    const imp = (from: string, specifier: string, runtime = true): Import => {
      return { from, line: 1, specifier, target: resolveTarget(from, specifier), runtime };
    };
    assert.deepEqual(checkImport(imp('stream/engine.ts', '../view/index.ts')), []);
    assert.deepEqual(checkImport(imp('cli/start.ts', '../view/sqlite/index.ts')), []);
    assert.deepEqual(checkImport(imp('stream/engine.ts', './plan.ts')), []);
    assert.deepEqual(checkImport(imp('view/sqlite/sqlite-store.ts', '../../errors.ts')), []);
    assert.deepEqual(checkImport(imp('log/file-log.ts', 'node:fs')), []);
    const intoView = checkImport(imp('stream/engine.ts', '../view/types.ts')).join();
    assert.match(intoView, /\[A1 entries\].*src\/view\/index\.ts/);
    assert.match(checkImport(imp('log/file-log.ts', '../stream/index.ts')).join(), /\[A2 layers\]/);
    assert.match(checkImport(imp('errors.ts', './cli/main.ts')).join(), /\[A1 entries\].*\[A2 layers\]/);
    assert.match(checkImport(imp('newfolder/x.ts', '../log/index.ts')).join(), /in no area of the table/);
    const graph: Record<string, Import[]> = {
      // A type-only import of the adapter loads nothing; a run-time chain to better-sqlite3 does.
      'stream/worker.ts': [
        imp('stream/worker.ts', './a.ts'),
        imp('stream/worker.ts', '../view/sqlite/index.ts', false),
      ],
      'stream/a.ts': [imp('stream/a.ts', 'better-sqlite3')],
    };
    const calls = importsOf(
      'x/y.ts',
      "const a = await import('../log/index.ts'); const b = require('better-sqlite3');",
    );
    assert.deepEqual(
      calls.map((i) => [i.specifier, i.target, i.runtime]),
      [
        ['../log/index.ts', 'log/index.ts', true],
        ['better-sqlite3', null, true],
      ],
    );
    const chains = forbiddenWorkerChains('stream/worker.ts', (m) => graph[m] ?? []);
    assert.deepEqual(chains, ['src/stream/worker.ts -> src/stream/a.ts -> better-sqlite3']);
  });

  test('A1 and A2: a module reaches another folder only through its index.ts, and never a higher layer', () => {
    failWith(
      'Imports that break the architecture of src/',
      imports.flatMap(checkImport),
      'Each line says what to change. The rules and the layer table are at the top of test/architecture.test.ts ' +
        '(and in docs/architecture.md); if a rule itself should change, change the table in both places.',
    );
  });

  test('A3: the modules a worker thread loads never load better-sqlite3 or src/view/sqlite/', () => {
    const byModule = new Map<string, Import[]>();
    for (const i of imports) byModule.set(i.from, [...(byModule.get(i.from) ?? []), i]);
    failWith(
      `Chains from src/${WORKER_ENTRY} to the database`,
      forbiddenWorkerChains(WORKER_ENTRY, (m) => byModule.get(m) ?? []),
      'A worker thread must not load the native SQLite module (each thread would open its own copy). Import the ' +
        'port types from src/view/index.ts with `import type`, or move what the worker needs out of src/view/sqlite/.',
    );
  });
});
