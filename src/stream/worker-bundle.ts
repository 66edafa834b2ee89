/**
 * The worker threads' code as ONE JavaScript file: the worker module, the user's config and
 * everything they import (Kappa's TypeScript sources, pure-JS packages), bundled with esbuild on
 * the engine's thread when the pool starts, written to a temp directory and removed as soon as
 * every thread has loaded it. A thread then loads one plain ES module instead of registering tsx and compiling every
 * module through its loader thread: on the process bench two workers were up in about 0.2 s
 * instead of 0.9-1.1 s, and each cost about 20 MB of RSS instead of 50 (an idle pool, measured).
 *
 * Rules, so the bundle behaves like the sources it came from:
 * - Only the user's own files and Kappa's sources are bundled. Every installed package (in
 *   node_modules: native addons, packages that read their own files, ESM or CommonJS) stays
 *   outside, imported by the file URL esbuild resolves for it from the importing file.
 * - In the bundled files, `import.meta.url`, `import.meta.filename`, `import.meta.dirname`,
 *   `__filename` and `__dirname` are replaced by the original file's values, so a config that
 *   reads a file next to itself reads the same file.
 * - `require` is defined for bundled CommonJS that loads Node built-ins.
 *
 * When bundling fails, or the bundle does not load in a thread, the pool falls back to the tsx
 * entry (worker-entry.js), which loads the sources as they are; the engine logs why.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { loadApp } from './config.ts';
import type { AppDef } from './dsl.ts';

const WORKER_MODULE = fileURLToPath(new URL('./worker.ts', import.meta.url));
/** Kappa's own TypeScript sources: bundled even when Kappa is installed under node_modules. */
const KAPPA_SRC = fileURLToPath(new URL('../', import.meta.url));
/** Marks the resolve calls this plugin makes itself, so it does not see them again. */
const RESOLVING = Symbol('kappa-worker-resolving');

export interface WorkerBundle {
  /** The bundle's file URL, for `new Worker`. */
  url: URL;
  /** The files bundled from outside node_modules (the config and what it imports locally, Kappa's sources). */
  inputs: string[];
  /** Removes the bundle's directory. Idempotent. */
  dispose(): void;
}

/** Bundles the worker module with the config at `configPath` (absolute). Throws esbuild's errors, joined. */
export async function bundleWorker(configPath: string): Promise<WorkerBundle> {
  // The config is imported lazily (esbuild keeps a bundled dynamic import lazy), so an error it
  // throws while loading reaches runWorker, which reports it as the config's, not as a crash.
  const entry = [
    `import { runWorker } from ${JSON.stringify(WORKER_MODULE)};`,
    `runWorker(${JSON.stringify(configPath)}, () => import(${JSON.stringify(configPath)}));`,
  ].join('\n');
  const { code, inputs } = await bundle(entry, dirname(configPath), 'kappa-worker-entry.js');
  removeStaleBundles();
  const dir = mkdtempSync(join(tmpdir(), `${BUNDLE_DIR_PREFIX}${process.pid}-`));
  const file = join(dir, 'worker.mjs');
  writeFileSync(file, code);
  return { url: pathToFileURL(file), inputs, dispose: () => removeQuietly(dir) };
}

/**
 * The config at `configPath` (absolute) as one self-contained ES module, by the same rules as the
 * worker bundle (installed packages imported by file URL). A view version keeps this code, so its
 * logic can run again after the config changed (the old version keeping up during a rebuild, or a
 * rollback); `loadBundledApp` loads it.
 */
export async function bundleConfig(configPath: string): Promise<string> {
  const entry = `export { default } from ${JSON.stringify(configPath)};`;
  return Buffer.from((await bundle(entry, dirname(configPath), 'kappa-config-entry.js')).code).toString('utf8');
}

/** The app exported by code from `bundleConfig`, loaded once per distinct code. */
export function loadBundledApp(code: string): Promise<AppDef> {
  const id = createHash('sha256').update(code).digest('hex');
  let app = loadedApps.get(id);
  if (app === undefined) {
    app = (async () => {
      removeStaleBundles();
      const dir = mkdtempSync(join(tmpdir(), `${CODE_DIR_PREFIX}${process.pid}-`));
      const file = join(dir, `${id.slice(0, 16)}.mjs`);
      try {
        writeFileSync(file, code);
        return await loadApp(file, () => import(pathToFileURL(file).href) as Promise<{ default?: unknown }>);
      } finally {
        removeQuietly(dir);
      }
    })();
    loadedApps.set(id, app);
    app.catch(() => loadedApps.delete(id));
  }
  return app;
}

const loadedApps = new Map<string, Promise<AppDef>>();

/** esbuild's service is stopped after each build (see below), so builds take turns. */
let building: Promise<unknown> = Promise.resolve();

async function bundle(entry: string, resolveDir: string, sourcefile: string): Promise<{ code: Uint8Array; inputs: string[] }> {
  const turn = building.then(() => bundleNow(entry, resolveDir, sourcefile));
  building = turn.catch(() => {});
  return turn;
}

async function bundleNow(entry: string, resolveDir: string, sourcefile: string): Promise<{ code: Uint8Array; inputs: string[] }> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir, loader: 'js', sourcefile },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    metafile: true,
    logLevel: 'silent',
    banner: { js: "import { createRequire as __kappaCreateRequire } from 'node:module'; const require = __kappaCreateRequire(import.meta.url);" },
    plugins: [
      {
        name: 'kappa-worker',
        setup(build) {
          build.onResolve({ filter: /^[^./]/ }, async (args) => {
            if (args.path.startsWith('node:') || args.importer === '' || args.pluginData === RESOLVING) return undefined;
            // The bundler itself (worker-pool imports this module) never runs in a worker.
            if (args.path === 'esbuild') return { path: args.path, external: true };
            const resolved = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: RESOLVING });
            if (resolved.errors.length > 0) return { errors: resolved.errors };
            if (resolved.external || resolved.path === '') return undefined; // a Node built-in
            // Kappa's own sources are bundled (they are TypeScript); any other installed package is
            // imported from where it is installed, so it finds its own files as it always does.
            if (resolved.path.startsWith(KAPPA_SRC) || !/[\\/]node_modules[\\/]/.test(resolved.path)) return { path: resolved.path };
            return { path: pathToFileURL(resolved.path).href, external: true };
          });
          build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
            const source = readFileSync(args.path, 'utf8');
            if (!/import\.meta|__dirname|__filename/.test(source)) return undefined;
            // esbuild's own `define`, per file, so only real expressions change (not text in strings).
            const out = await esbuild.transform(source, {
              loader: loaderFor(args.path),
              sourcefile: args.path, // no format: CommonJS stays CommonJS, so its exports keep working
              define: {
                'import.meta.url': JSON.stringify(pathToFileURL(args.path).href),
                'import.meta.filename': JSON.stringify(args.path),
                'import.meta.dirname': JSON.stringify(dirname(args.path)),
                __filename: JSON.stringify(args.path),
                __dirname: JSON.stringify(dirname(args.path)),
              },
            });
            return { contents: out.code, loader: 'js', resolveDir: dirname(args.path) };
          });
        },
      },
    ],
  });
  // The build ran in an esbuild service process; stop it rather than keep it (about 45 MB) alive.
  await esbuild.stop();
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !/(^|[\\/])node_modules[\\/]/.test(p) && !p.startsWith('<'))
    .map((p) => resolve(p))
    .filter((p) => existsSync(p)); // not the generated entry (stdin)
  return { code: result.outputFiles[0].contents, inputs };
}

const BUNDLE_DIR_PREFIX = 'kappa-worker-';
const CODE_DIR_PREFIX = 'kappa-code-';

/** Removes bundle directories left by processes that were killed before they could (their pid is gone). */
function removeStaleBundles(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^kappa-(?:worker|code)-(\d+)-/.exec(name);
    if (m === null || isAlive(Number(m[1]))) continue;
    removeQuietly(join(tmpdir(), name));
  }
}

/** Best effort: a directory another user owns, or one a scanner holds open, is left for later. */
function removeQuietly(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // left behind; removeStaleBundles tries again next time
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function loaderFor(path: string): 'ts' | 'tsx' | 'js' | 'jsx' {
  const ext = extname(path);
  if (ext === '.tsx') return 'tsx';
  if (ext === '.jsx') return 'jsx';
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') return 'ts';
  return 'js';
}
