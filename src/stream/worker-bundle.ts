/**
 * The worker threads' code as plain JavaScript: the worker module, the user's config and
 * everything they import (Kappa's own modules: its TypeScript sources in a clone of the repository,
 * its compiled dist/ when installed as a package), bundled with esbuild on the engine's thread when
 * the pool starts, written to a temp directory and removed as soon as every thread has loaded it.
 * A thread then loads one or two plain ES modules instead of registering tsx and compiling every
 * module through its loader thread: on the process bench two workers were up in about 0.2 s
 * instead of 0.9-1.1 s, and each cost about 20 MB of RSS instead of 50 (an idle pool, measured).
 *
 * Rules, so the bundle behaves like the sources it came from:
 * - Only the user's own files and Kappa's sources are bundled (and TypeBox, see BUNDLED_PACKAGE).
 *   Every other installed package (in node_modules: native addons, packages that read their own
 *   files, ESM or CommonJS) stays outside, imported by the file URL esbuild resolves for it from
 *   the importing file.
 * - In the bundled files, `import.meta.url`, `import.meta.filename`, `import.meta.dirname`,
 *   `__filename` and `__dirname` are replaced by the original file's values, so a config that
 *   reads a file next to itself reads the same file.
 * - `require` is defined for bundled CommonJS that loads Node built-ins.
 * - The Kafka log adapter (log/kafka/) is bundled only for a process whose log is on Kafka; for a
 *   file log it is replaced by a stub that is never called (a thread opens the log of its
 *   process), which keeps the adapter's code out of every embedded thread.
 *
 * Kappa's own part (its modules, TypeBox, ajv: ~400 files, 150-190 ms of esbuild) is bundled once
 * and kept between starts while none of its files changes (worker-runtime.ts); a start then bundles
 * only the config and what it imports locally, which import that runtime (`withKeptRuntime`). The
 * code a view version keeps is made the same way, the runtime's text stored beside the config's
 * part (`bundleConfig`).
 *
 * When bundling fails, or the bundle does not load in a thread, the pool falls back to the tsx
 * entry (worker-entry.js), which loads the sources as they are; the engine logs why.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { isProcessAlive } from '../log/index.ts';
import { loadApp } from './config.ts';
import { type Runtime, cachedRuntime, packageJsonOf } from './worker-runtime.ts';
import type { AppDef } from './dsl.ts';
import { fingerprintParts } from './view-fingerprint.ts';

/** True when this module runs from Kappa's TypeScript sources (a clone), false from the compiled package. */
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_MODULE = fileURLToPath(new URL(FROM_SOURCE ? './worker.ts' : './worker.js', import.meta.url));
/** Kappa's entry module (what `import … from 'kappa'` reaches), which the kept runtime exports. */
const KAPPA_ENTRY = fileURLToPath(new URL(FROM_SOURCE ? '../index.ts' : '../index.js', import.meta.url));
/** The runtime's name for the worker's entry function, beside what Kappa's entry module exports. */
const RUN_WORKER = '__kappaRunWorker';
/** Kappa's own modules (src/ or dist/): bundled even when Kappa is installed under node_modules. */
const KAPPA_SRC = fileURLToPath(new URL('../', import.meta.url));
/**
 * From the sources, `import … from 'kappa'` in a config must reach src/ as it does on the main
 * thread (bin/kappa-source-hooks.js): the "kappa-source" export condition. esbuild drops its default
 * `module` condition once any is given, so it is kept. From the package, esbuild's defaults pick dist/.
 */
const CONDITIONS = FROM_SOURCE ? ['kappa-source', 'module'] : undefined;
/**
 * Installed packages bundled all the same: plain JavaScript that reads no file of its own, made of
 * so many small modules that loading them cost a thread more than everything else it loads:
 * TypeBox's ESM build (266 files, about 0.2 s of each worker's start) and ajv with its
 * dependencies (about 50 ms). TypeBox marks its schemas with Symbol.for keys, so its bundled copy
 * and the main thread's agree; ajv is used only inside the thread.
 */
const BUNDLED_PACKAGE =
  /[\\/]node_modules[\\/](@sinclair[\\/]typebox|ajv|fast-deep-equal|fast-uri|json-schema-traverse)[\\/]/;
/** Marks the resolve calls this plugin makes itself, so it does not see them again. */
const RESOLVING = Symbol('kappa-worker-resolving');
/** The Kafka log adapter's entry module, which log/open.ts imports on demand. */
const KAFKA_LOG_MODULE = fileURLToPath(
  new URL(FROM_SOURCE ? '../log/kafka/index.ts' : '../log/kafka/index.js', import.meta.url),
);
/** What replaces it in the bundle of a process whose log is not on Kafka. */
const NO_KAFKA_LOG = [
  'export function openKafkaLog() {',
  "  throw new Error('invariant: this worker thread was bundled for a log in the data directory, so it has no Kafka log adapter (worker-bundle.ts)');",
  '}',
].join('\n');

export interface WorkerBundleOptions {
  /**
   * The kind of log the threads open (the process's own): 'kafka' bundles the Kafka log adapter,
   * any other leaves it out (see the file comment). Default 'kafka', which works for either.
   */
  logKind?: 'file' | 'kafka';
}

export interface WorkerBundle {
  /** The bundle's file URL, for `new Worker`. */
  url: URL;
  /** The files bundled from outside node_modules (the config and what it imports locally, Kappa's sources). */
  inputs: string[];
  /** Removes the bundle's directory. Idempotent. */
  dispose(): void;
}

/** Bundles the worker module with the config at `configPath` (absolute). Throws esbuild's errors, joined. */
export async function bundleWorker(configPath: string, opts: WorkerBundleOptions = {}): Promise<WorkerBundle> {
  const withKafka = (opts.logKind ?? 'kafka') === 'kafka';
  const { code, inputs } =
    (await withKeptRuntime(configPath, withKafka)) ??
    (await bundle({
      // The config is imported lazily (esbuild keeps a bundled dynamic import lazy), so an error it
      // throws while loading reaches runWorker, which reports it as the config's, not as a crash.
      entry: [
        `import { runWorker } from ${JSON.stringify(WORKER_MODULE)};`,
        `runWorker(${JSON.stringify(configPath)}, () => import(${JSON.stringify(configPath)}));`,
      ].join('\n'),
      resolveDir: dirname(configPath),
      sourcefile: 'kappa-worker-entry.js',
      withKafka,
    }));
  removeStaleBundles();
  const dir = mkdtempSync(join(tmpdir(), `${BUNDLE_DIR_PREFIX}${process.pid}-`));
  const file = join(dir, 'worker.mjs');
  writeFileSync(file, code);
  return { url: pathToFileURL(file), inputs, dispose: () => removeQuietly(dir) };
}

/**
 * The worker bundle as two modules: Kappa's runtime, kept between starts (worker-runtime.ts), and
 * the config with what it imports locally, which imports the runtime. Null when that cannot be
 * done: nothing can be kept on this machine, or the config reaches Kappa other than through its
 * entry module (a deep import of one of its files) or imports TypeBox or ajv itself, which would
 * then exist twice in the thread; the caller bundles everything as one module instead.
 */
async function withKeptRuntime(
  configPath: string,
  withKafka: boolean,
): Promise<{ code: Uint8Array; inputs: string[] } | null> {
  const runtime = await keptRuntime(withKafka);
  if (runtime === null) return null;
  try {
    const built = await bundle({
      entry: [
        `import { ${RUN_WORKER} } from ${JSON.stringify(runtime.url)};`,
        `${RUN_WORKER}(${JSON.stringify(configPath)}, () => import(${JSON.stringify(configPath)}));`,
      ].join('\n'),
      resolveDir: dirname(configPath),
      sourcefile: 'kappa-worker-entry.js',
      withKafka,
      runtimeUrl: runtime.url,
    });
    const kappaFiles = runtime.files.filter((f) => !/[\\/]node_modules[\\/]/.test(f) && !f.endsWith('package.json'));
    return { code: built.code, inputs: [...new Set([...kappaFiles, ...built.inputs])] };
  } catch {
    return null;
  }
}

/** Kappa's own part of the worker bundle, kept between starts (worker-runtime.ts); null when nothing can be kept. */
async function keptRuntime(withKafka: boolean): Promise<Runtime | null> {
  const slot = createHash('sha256')
    .update(
      JSON.stringify({ KAPPA_SRC, KAPPA_ENTRY, WORKER_MODULE, CONDITIONS, withKafka, esbuild: await esbuildVersion() }),
    )
    .digest('hex')
    .slice(0, 16);
  try {
    return await cachedRuntime(slot, async () => {
      const built = await bundle({
        entry: [
          `export * from ${JSON.stringify(KAPPA_ENTRY)};`,
          `export { runWorker as ${RUN_WORKER} } from ${JSON.stringify(WORKER_MODULE)};`,
        ].join('\n'),
        resolveDir: KAPPA_SRC,
        sourcefile: 'kappa-runtime-entry.js',
        withKafka,
      });
      // This file too: its rules (what is bundled, what is replaced) shape the code.
      const files = [...built.allInputs, ...built.externals, fileURLToPath(import.meta.url)];
      for (const f of [...files]) {
        const pkg = packageJsonOf(f);
        if (pkg !== null) files.push(pkg);
      }
      return { code: built.code, files };
    });
  } catch {
    return null; // bundled as one module instead, which reports what failed
  }
}

/**
 * The config at `configPath` (absolute) as self-contained code, by the same rules as the worker
 * bundle (installed packages imported by file URL). A view version keeps this code, so its logic
 * can run again after the config changed (the old version keeping up during a rebuild, or a
 * rollback); `loadBundledApp` loads it. The code is stored in the view store, so the config's
 * secrets are taken out of it first (see `withoutSecrets`); when that cannot be done without
 * changing a view's logic, this throws and the version keeps no code.
 *
 * Kept as two modules when it can be (`keptCode`): the kept runtime's text, as it is, and the
 * config's part on top of it, so a start bundles only the config (~20 ms of esbuild) rather than
 * Kappa's ~400 files again (~0.3 CPU-s, a tenth of a 10M-event rebuild's time on 2 cores: the
 * first flush of a build waits for its code). Else as one module (the whole of it bundled).
 */
export async function bundleConfig(configPath: string, opts: WorkerBundleOptions = {}): Promise<string> {
  // UTF-8 output keeps a non-ASCII secret as its own characters, so withoutSecrets finds it.
  const entry = {
    entry: `export { default } from ${JSON.stringify(configPath)};`,
    resolveDir: dirname(configPath),
    sourcefile: 'kappa-config-entry.js',
    charset: 'utf8',
  } as const;
  const withKafka = (opts.logKind ?? 'kafka') === 'kafka';
  const runtime = await keptRuntime(withKafka);
  let code: string | null = null;
  if (runtime !== null) {
    try {
      const config = await bundle({ ...entry, withKafka, runtimeUrl: KEPT_RUNTIME });
      code = keptCode(readFileSync(fileURLToPath(runtime.url), 'utf8'), Buffer.from(config.code).toString('utf8'));
    } catch {
      // bundled as one module instead, which reports what failed
    }
  }
  code ??= Buffer.from((await bundle(entry)).code).toString('utf8');
  return withoutSecrets(code);
}

/**
 * Kept code of two modules starts with this line, which ends with the runtime's length (in
 * UTF-16 code units); the runtime's text follows, then the config's part, which imports the
 * runtime as KEPT_RUNTIME. Code without this line is one module (as kept before, or as bundled
 * when there is no kept runtime).
 */
const TWO_MODULES = '// kappa kept code: a runtime module, then the config module; runtime length ';
/** How the config's part of two-module kept code imports the runtime; loadBundledApp points it at its copy. */
const KEPT_RUNTIME = 'kappa:kept-runtime';

function keptCode(runtime: string, config: string): string {
  return `${TWO_MODULES}${runtime.length}\n${runtime}${config}`;
}

/** Kept code's modules: the runtime (null for one-module code) and the config's. */
function keptParts(code: string): { runtime: string | null; config: string } {
  if (!code.startsWith(TWO_MODULES)) return { runtime: null, config: code };
  const lineEnd = code.indexOf('\n');
  const length = Number(code.slice(TWO_MODULES.length, lineEnd));
  return { runtime: code.slice(lineEnd + 1, lineEnd + 1 + length), config: code.slice(lineEnd + 1 + length) };
}

/** Secrets this long are removed wherever they appear; shorter ones only as a whole string literal. */
const SECRET_CHARS_BARE_MIN = 10;
const REMOVED = 'kappa-secret-removed';
/** What a removed URL becomes: still a URL, so the kept config loads (defineApp checks webhook URLs). */
const REMOVED_URL = 'https://kappa-secret-removed.invalid/';

/**
 * `code` (a bundled config) without the values that must not be stored with a view version: the
 * token hashes in `server.tokens`, and each webhook's `url` and `headers` values (and their
 * words and URL parts of 10 characters or more, which catches `Bearer ${TOKEN}` built from a
 * constant). The values are read by loading the code, then replaced in its text wherever they
 * appear. Only the views of the kept code are ever used (its server and webhooks never run), so
 * the replacement is checked: the code must still load and its views must have the same
 * fingerprints; otherwise this throws. A value computed in code (`Buffer.from('me:pw')
 * .toString('base64')`) is not in the text and cannot be found: docs/concepts.md asks for secrets
 * in environment variables, which the kept code reads again when loaded and never holds.
 */
export async function withoutSecrets(code: string): Promise<string> {
  const app = await loadBundledApp(code);
  const secrets = secretsOf(app).sort((a, b) => b.length - a.length); // a value before its parts
  // Secrets are the config's: the runtime part is Kappa's own code.
  const { runtime, config } = keptParts(code);
  let keptConfig = config;
  for (const secret of secrets) keptConfig = replaceSecret(keptConfig, secret);
  if (keptConfig === config) return code;
  const kept = runtime === null ? keptConfig : keptCode(runtime, keptConfig);
  let stripped: AppDef;
  try {
    stripped = await loadBundledApp(kept);
  } catch (err) {
    throw new Error(
      `the config's secrets (server.tokens, webhook urls and headers) could not be taken out of the code kept with each view version: without them it does not load (${(err as Error).message.split('\n')[0]}). Read them from environment variables (process.env.NAME) instead.`,
      { cause: err },
    );
  }
  for (const view of app.views) {
    const after = stripped.views.find((v) => v.name === view.name);
    if (after === undefined || JSON.stringify(fingerprintParts(after)) !== JSON.stringify(fingerprintParts(view))) {
      throw new Error(
        `the config's secrets (server.tokens, webhook urls and headers) could not be taken out of the code kept with each view version: one of them also appears in the logic of view "${view.name}". Read them from environment variables (process.env.NAME) instead.`,
      );
    }
  }
  return kept;
}

function secretsOf(app: AppDef): string[] {
  const secrets = new Set<string>();
  const add = (value: unknown, parts: string[]): void => {
    if (typeof value !== 'string' || value === '') return;
    secrets.add(value);
    for (const part of parts) if (part.length >= SECRET_CHARS_BARE_MIN) secrets.add(part);
  };
  for (const t of app.server.tokens ?? []) add(t.sha256, []);
  for (const w of app.webhooks) {
    add(w.url, urlParts(w.url));
    for (const value of Object.values(w.headers ?? {})) add(value, typeof value === 'string' ? value.split(/\s+/) : []);
  }
  return [...secrets];
}

/** A URL's user, password and query values (where tokens often travel). */
function urlParts(url: string): string[] {
  try {
    const u = new URL(url);
    return [
      decodeURIComponent(u.username),
      decodeURIComponent(u.password),
      u.username,
      u.password,
      ...u.searchParams.values(),
    ];
  } catch {
    return [];
  }
}

/** `code` with every appearance of `secret`, as text or as a string literal's escaped text, replaced. */
function replaceSecret(code: string, secret: string): string {
  const placeholder = /^https?:\/\//i.test(secret) ? REMOVED_URL : REMOVED;
  const escapedBackslash = secret.replace(/\\/g, '\\\\');
  const forms = new Set([
    secret,
    escapedBackslash.replace(/"/g, '\\"'),
    escapedBackslash.replace(/'/g, "\\'"),
    escapedBackslash.replace(/`/g, '\\`'),
  ]);
  let out = code;
  for (const form of forms) {
    if (secret.length >= SECRET_CHARS_BARE_MIN) out = out.split(form).join(placeholder);
    else for (const q of ['"', "'", '`']) out = out.split(`${q}${form}${q}`).join(`${q}${placeholder}${q}`);
  }
  return out;
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
        const { runtime, config } = keptParts(code);
        if (runtime === null) writeFileSync(file, config);
        else {
          writeFileSync(join(dir, 'runtime.mjs'), runtime);
          writeFileSync(file, config.replaceAll(JSON.stringify(KEPT_RUNTIME), JSON.stringify('./runtime.mjs')));
        }
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

interface BundleRequest {
  entry: string;
  resolveDir: string;
  sourcefile: string;
  /** Default 'ascii'. */
  charset?: 'ascii' | 'utf8';
  /** Bundle the Kafka log adapter (default), or a stub in its place. */
  withKafka?: boolean;
  /**
   * The config's part of a two-module worker bundle: Kappa's entry module is this URL (the kept
   * runtime), and reaching any other of Kappa's files, or TypeBox or ajv, fails the build.
   */
  runtimeUrl?: string;
}

interface Bundled {
  code: Uint8Array;
  /** Files bundled from outside node_modules (not the generated entry). */
  inputs: string[];
  /** Every file bundled, node_modules ones included. */
  allInputs: string[];
  /** The files of installed packages imported from where they are installed. */
  externals: string[];
}

async function bundle(req: BundleRequest): Promise<Bundled> {
  const turn = building.then(() => bundleNow(req));
  building = turn.catch(() => {});
  return turn;
}

async function esbuildVersion(): Promise<string> {
  return (await import('esbuild')).version;
}

async function bundleNow(req: BundleRequest): Promise<Bundled> {
  const esbuild = await import('esbuild');
  const externals = new Set<string>();
  const result = await esbuild.build({
    stdin: { contents: req.entry, resolveDir: req.resolveDir, loader: 'js', sourcefile: req.sourcefile },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    write: false,
    charset: req.charset ?? 'ascii',
    metafile: true,
    logLevel: 'silent',
    conditions: CONDITIONS,
    banner: {
      js: "import { createRequire as __kappaCreateRequire } from 'node:module'; const require = __kappaCreateRequire(import.meta.url);",
    },
    plugins: [workerPlugin(esbuild, req, externals)],
  });
  // The build ran in an esbuild service process; stop it rather than keep it (about 45 MB) alive.
  await esbuild.stop();
  const allInputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.startsWith('<') && !/^[\w-]{2,}:/.test(p)) // not a plugin's namespace
    .map((p) => resolve(p))
    .filter((p) => existsSync(p)); // not the generated entry (stdin)
  return {
    code: result.outputFiles[0].contents,
    inputs: allInputs.filter((p) => !/[\\/]node_modules[\\/]/.test(p)),
    allInputs,
    externals: [...externals],
  };
}

/**
 * The rules of the module comment: which imports are bundled and which are imported from where
 * they are installed (recorded in `externals`), `import.meta` and `__dirname` kept per file.
 */
function workerPlugin(
  esbuild: typeof import('esbuild'),
  req: BundleRequest,
  externals: Set<string>,
): import('esbuild').Plugin {
  const { runtimeUrl } = req;
  return {
    name: 'kappa-worker',
    setup(build) {
      if (req.withKafka === false) leaveOutKafkaLog(build);
      if (runtimeUrl !== undefined) toKeptRuntime(build, runtimeUrl);
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.path.startsWith('node:') || args.importer === '' || args.pluginData === RESOLVING) return undefined;
        // The bundler itself (worker-pool imports this module) never runs in a worker.
        if (args.path === 'esbuild') return { path: args.path, external: true };
        const resolved = await build.resolve(args.path, {
          kind: args.kind,
          importer: args.importer,
          resolveDir: args.resolveDir,
          pluginData: RESOLVING,
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        if (resolved.external || resolved.path === '') return undefined; // a Node built-in
        if (runtimeUrl !== undefined) {
          const refused = notForConfigPart(resolved.path);
          if (refused !== null) return refused;
          if (resolved.path === KAPPA_ENTRY) return { path: runtimeUrl, external: true };
        }
        // Kappa's own sources are bundled (they are TypeScript); any other installed package is
        // imported from where it is installed, so it finds its own files as it always does.
        if (
          resolved.path.startsWith(KAPPA_SRC) ||
          !/[\\/]node_modules[\\/]/.test(resolved.path) ||
          BUNDLED_PACKAGE.test(resolved.path)
        )
          return { path: resolved.path };
        externals.add(resolved.path);
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
  };
}

/**
 * The config's part of a two-module bundle: an import of Kappa's entry module (by a path, as
 * benches and tests write it) becomes the kept runtime; one of Kappa's other files, or of TypeBox or
 * ajv, fails the build (see withKeptRuntime). Bare specifiers are checked where they resolve.
 */
function toKeptRuntime(build: import('esbuild').PluginBuild, runtimeUrl: string): void {
  build.onResolve({ filter: /^(?:[./]|file:)/ }, async (args) => {
    if (args.pluginData === RESOLVING) return undefined;
    if (args.path === runtimeUrl) return { path: runtimeUrl, external: true };
    const resolved = await build.resolve(args.path, {
      kind: args.kind,
      importer: args.importer,
      resolveDir: args.resolveDir,
      pluginData: RESOLVING,
    });
    if (resolved.errors.length > 0 || resolved.path === '') return undefined; // esbuild reports it
    if (resolved.path === KAPPA_ENTRY) return { path: runtimeUrl, external: true };
    return notForConfigPart(resolved.path) ?? undefined;
  });
}

/** Why `path` cannot be in the config's part of a two-module bundle, as a build error; null if it can. */
function notForConfigPart(path: string): { errors: { text: string }[] } | null {
  if (path === KAPPA_ENTRY) return null;
  if (path.startsWith(KAPPA_SRC) || BUNDLED_PACKAGE.test(path))
    return { errors: [{ text: `${path} would exist twice in a worker thread` }] };
  return null;
}

/** Resolves the Kafka log adapter's entry module to a stub, so neither it nor the Kafka client is bundled. */
function leaveOutKafkaLog(build: import('esbuild').PluginBuild): void {
  build.onResolve({ filter: /[\\/]kafka[\\/]index\.[jt]s$/ }, async (args) => {
    if (args.pluginData === RESOLVING) return undefined;
    const resolved = await build.resolve(args.path, {
      kind: args.kind,
      importer: args.importer,
      resolveDir: args.resolveDir,
      pluginData: RESOLVING,
    });
    // Anything else of that name (a config's own kafka/index.ts) resolves as usual.
    if (resolved.path !== KAFKA_LOG_MODULE) return undefined;
    return { path: KAFKA_LOG_MODULE, namespace: 'kappa-no-kafka-log' };
  });
  build.onLoad({ filter: /.*/, namespace: 'kappa-no-kafka-log' }, () => ({ contents: NO_KAFKA_LOG, loader: 'js' }));
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
    if (m === null || isProcessAlive(Number(m[1]))) continue;
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

function loaderFor(path: string): 'ts' | 'tsx' | 'js' | 'jsx' {
  const ext = extname(path);
  if (ext === '.tsx') return 'tsx';
  if (ext === '.jsx') return 'jsx';
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') return 'ts';
  return 'js';
}
