/**
 * The worker threads' code as ONE JavaScript file: the worker module, the user's config and
 * everything they import (Kappa's TypeScript sources, pure-JS packages), bundled with esbuild on
 * the engine's thread when the pool starts, written to a temp directory and removed as soon as
 * every thread has loaded it. A thread then loads one plain ES module instead of registering tsx and compiling every
 * module through its loader thread: on the process bench two workers were up in about 0.2 s
 * instead of 0.9-1.1 s, and each cost about 20 MB of RSS instead of 50 (an idle pool, measured).
 *
 * Rules, so the bundle behaves like the sources it came from:
 * - Native addons (a package with a `binding.gyp` or a `napi` field: better-sqlite3,
 *   @node-rs/crc32) stay outside the bundle, imported by the absolute path Node would resolve
 *   from the importing file, as they load their binary relative to their own directory.
 * - In files outside node_modules, `import.meta.url`, `import.meta.filename` and
 *   `import.meta.dirname` are replaced by the original file's values, so a config that reads a file
 *   next to itself reads the same file.
 * - `require` is defined for bundled CommonJS that loads Node built-ins.
 *
 * When bundling fails (a config using something esbuild cannot bundle), the pool falls back to the
 * tsx entry (worker-entry.js), which loads the sources as they are; the engine logs why.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const WORKER_MODULE = fileURLToPath(new URL('./worker.ts', import.meta.url));

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
  const esbuild = await import('esbuild');
  // The config is imported lazily (esbuild keeps a bundled dynamic import lazy), so an error it
  // throws while loading reaches runWorker, which reports it as the config's, not as a crash.
  const entry = [
    `import { runWorker } from ${JSON.stringify(WORKER_MODULE)};`,
    `runWorker(${JSON.stringify(configPath)}, () => import(${JSON.stringify(configPath)}));`,
  ].join('\n');
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: dirname(configPath), loader: 'js', sourcefile: 'kappa-worker-entry.js' },
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
          build.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('node:') || args.importer === '') return undefined;
            // The bundler itself (worker-pool imports this module) never runs in a worker.
            if (args.path === 'esbuild') return { path: args.path, external: true };
            const name = packageName(args.path);
            const req = createRequire(args.importer);
            let manifest: string;
            try {
              manifest = req.resolve(`${name}/package.json`);
            } catch {
              return undefined; // no readable package.json (exports hide it): let esbuild bundle it
            }
            if (!isNative(manifest)) return undefined;
            return { path: req.resolve(args.path), external: true };
          });
          build.onLoad({ filter: /\.[cm]?[jt]sx?$/ }, async (args) => {
            if (/[\\/]node_modules[\\/]/.test(args.path)) return undefined;
            const source = readFileSync(args.path, 'utf8');
            if (!source.includes('import.meta')) return undefined;
            // esbuild's own `define`, per file, so only real import.meta expressions change (not text in strings).
            const out = await esbuild.transform(source, {
              loader: loaderFor(args.path),
              format: 'esm',
              sourcefile: args.path,
              define: {
                'import.meta.url': JSON.stringify(pathToFileURL(args.path).href),
                'import.meta.filename': JSON.stringify(args.path),
                'import.meta.dirname': JSON.stringify(dirname(args.path)),
              },
            });
            return { contents: out.code, loader: 'js', resolveDir: dirname(args.path) };
          });
        },
      },
    ],
  });
  removeStaleBundles();
  const dir = mkdtempSync(join(tmpdir(), `${BUNDLE_DIR_PREFIX}${process.pid}-`));
  const file = join(dir, 'worker.mjs');
  writeFileSync(file, result.outputFiles[0].contents);
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !/(^|[\\/])node_modules[\\/]/.test(p) && !p.startsWith('<'))
    .map((p) => resolve(p))
    .filter((p) => existsSync(p)); // not the generated entry (stdin)
  return { url: pathToFileURL(file), inputs, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

const BUNDLE_DIR_PREFIX = 'kappa-worker-';

/** Removes bundle directories left by processes that were killed before they could (their pid is gone). */
function removeStaleBundles(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${BUNDLE_DIR_PREFIX}(\\d+)-`).exec(name);
    if (m === null || isAlive(Number(m[1]))) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
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

/** `@scope/name/sub` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** A package with a compiled addon: built by node-gyp (binding.gyp) or napi-rs (`napi` in package.json). */
function isNative(manifestPath: string): boolean {
  if (existsSync(join(dirname(manifestPath), 'binding.gyp'))) return true;
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { napi?: unknown; gypfile?: unknown };
    return manifest.napi !== undefined || manifest.gypfile === true;
  } catch {
    return false;
  }
}

function loaderFor(path: string): 'ts' | 'tsx' | 'js' | 'jsx' {
  const ext = extname(path);
  if (ext === '.tsx') return 'tsx';
  if (ext === '.jsx') return 'jsx';
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') return 'ts';
  return 'js';
}
