/**
 * `kappa check [--config FILE]`: finds the mistakes in an app config before it runs. Two passes:
 *
 *   1. Types: the TypeScript compiler checks the config (and the user's own files it imports, not
 *      Kappa's nor node_modules') with strict settings, so a typo on a typed schema, such as
 *      `groupBy((s) => ({ region: s.regoin }))`, is caught here instead of sending every record to
 *      the dead-letter topic. Each error is reported as file:line:col with the line and a caret.
 *   2. The app: the config is loaded and every problem the engine would refuse is listed (topics
 *      read or written but not declared, names, windows, duplicates; see stream/config.ts).
 *
 * `kappa start` runs the same checks (startChecks): type errors are warnings there (the check runs
 * in a child process at the lowest priority once the views have caught up, and its findings are
 * kept between starts), or errors with `--strict`; a syntax error or an app problem stops it.
 *
 * TypeScript is imported only when a check runs, so the other commands do not pay for loading it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as TS from 'typescript';
import { KappaError, isKappaError } from '../errors.ts';
import { type AppDef, defaultConfigPath, loadApp } from '../stream/index.ts';
import type { CliContext } from './main.ts';
import { type CheckFootprint, checkKey, emptyFootprint, keepCheck, keptCheck, readText } from './check-cache.ts';

/** One compiler error in a config file, with where it is (1-based line and column). */
export interface ConfigDiagnostic {
  file: string;
  line: number;
  column: number;
  /** Characters the caret underlines (at least 1). */
  length: number;
  /** TypeScript's error number (TS2551 and so on). */
  code: number;
  message: string;
  /** True for a syntax error: the file cannot even be loaded. */
  syntax: boolean;
}

/** Kappa's own folder: its sources are checked by Kappa's build, not reported to the user. */
const KAPPA_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KAPPA_OWN = [folder(KAPPA_ROOT, 'src'), folder(KAPPA_ROOT, 'dist')];
/** Widest code frame line; a longer line is shown as a window around the error. */
const FRAME_CHARS_MAX = 110;

function folder(...parts: string[]): string {
  return resolve(...parts) + sep;
}

/**
 * Where the config's project keeps Node's types (the `@types` folder holding `node`), or null.
 * TypeScript 6 includes no `@types` package unless told to, and a config that reads `process.env`
 * must not fail the check for that; without them, NODE_GLOBALS stands in (loading @types/node
 * costs a second or more, so Kappa's own copy is not used).
 */
function nodeTypesFor(file: string): string | null {
  try {
    return dirname(dirname(createRequire(resolve(dirname(file), 'x.js')).resolve('@types/node/package.json')));
  } catch {
    return null; // not installed for the config's project
  }
}

/** Without @types/node: just enough of Node's globals for a config (`process.env` and the like). */
const NODE_GLOBALS_FILE = '/__kappa__/node-globals.d.ts';
const NODE_GLOBALS = `declare var process: {
  env: Record<string, string | undefined>; argv: string[]; cwd(): string; exit(code?: number): never; platform: string;
};
declare var console: { log(...a: unknown[]): void; warn(...a: unknown[]): void; error(...a: unknown[]): void };
`;

/** The files of `program` the user wrote: not declarations, not in node_modules, not Kappa's own. */
function userFiles(program: TS.Program): TS.SourceFile[] {
  return program
    .getSourceFiles()
    .filter(
      (f) =>
        !f.isDeclarationFile &&
        f.fileName !== NODE_GLOBALS_FILE &&
        !f.fileName.includes('/node_modules/') &&
        !KAPPA_OWN.some((own) => resolve(f.fileName).startsWith(own)),
    );
}

/**
 * Type-checks the config at `file` with the TypeScript compiler, as a user's editor would with
 * strict settings, and returns the errors in the user's files, syntax errors first.
 */
export async function typeCheckConfig(file: string, seen?: CheckFootprint): Promise<ConfigDiagnostic[]> {
  const ts = (await import('typescript')).default;
  const options: TS.CompilerOptions = {
    strict: true,
    // An untyped helper's parameter is a matter of style; the check is there to find mistakes.
    noImplicitAny: false,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    allowImportingTsExtensions: true,
    allowJs: true,
    resolveJsonModule: true,
    esModuleInterop: true,
    // Run from the repository's sources, 'kappa' resolves to src/ (the kappa-source export
    // condition), so the check never reads a stale or missing dist/.
    customConditions: import.meta.url.endsWith('.ts') ? ['kappa-source'] : [],
  };
  const nodeTypes = nodeTypesFor(file);
  if (nodeTypes !== null) Object.assign(options, { types: ['node'], typeRoots: [nodeTypes] });
  const roots = nodeTypes === null ? [file, NODE_GLOBALS_FILE] : [file];
  const host = ts.createCompilerHost(options);
  if (seen !== undefined) recordFootprint(host, seen);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    name === NODE_GLOBALS_FILE
      ? ts.createSourceFile(name, NODE_GLOBALS, language)
      : getSourceFile(name, language, ...rest);
  const program = ts.createProgram(roots, options, host);
  const out: ConfigDiagnostic[] = [];
  for (const source of userFiles(program)) {
    const syntax = program.getSyntacticDiagnostics(source);
    // A file that does not parse gives nonsense type errors besides; the syntax errors say it all.
    const semantic = syntax.length > 0 ? [] : program.getSemanticDiagnostics(source);
    for (const d of [...syntax, ...semantic])
      out.push(toDiagnostic(ts, d, syntax.includes(d as TS.DiagnosticWithLocation)));
  }
  return out.sort((a, b) => Number(b.syntax) - Number(a.syntax));
}

/** Has `host` note in `seen` every file the compiler reads and every path it looks for (check-cache.ts). */
function recordFootprint(host: TS.CompilerHost, seen: CheckFootprint): void {
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (path) => {
    const text = readFile(path);
    seen.reads.set(path, text);
    return text;
  };
  host.fileExists = (path) => {
    const there = fileExists(path);
    seen.files.set(path, there);
    return there;
  };
  const directoryExists = host.directoryExists?.bind(host);
  if (directoryExists !== undefined)
    host.directoryExists = (path) => {
      const there = directoryExists(path);
      seen.directories.set(path, there);
      return there;
    };
}

/**
 * The type check `kappa start` runs: the findings kept from an earlier check of the same config if
 * nothing it saw has changed (check-cache.ts), else a check, whose findings are then kept.
 */
export async function startTypeCheck(file: string): Promise<ConfigDiagnostic[]> {
  const key = typeCheckKey(file);
  const kept = keptCheck(key);
  if (kept !== null) return kept;
  const seen = emptyFootprint();
  const diagnostics = await typeCheckConfig(file, seen);
  keepCheck(key, seen, diagnostics);
  return diagnostics;
}

/** What shapes a check of `file` besides the files it reads: see check-cache.ts. */
function typeCheckKey(file: string): string {
  const require = createRequire(import.meta.url);
  let typescript = 'unknown';
  try {
    typescript = (JSON.parse(readFileSync(require.resolve('typescript/package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    // the key without it still names the checker and the config
  }
  return checkKey(file, [
    readText(fileURLToPath(import.meta.url)) ?? '',
    typescript,
    import.meta.url.endsWith('.ts') ? 'kappa-source' : '',
    nodeTypesFor(file) ?? '',
  ]);
}

function toDiagnostic(
  ts: Pick<typeof TS, 'flattenDiagnosticMessageText'>,
  d: TS.Diagnostic,
  syntax: boolean,
): ConfigDiagnostic {
  const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
  if (d.file === undefined || d.start === undefined)
    return { file: '', line: 0, column: 0, length: 1, code: d.code, message, syntax };
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  return {
    file: d.file.fileName,
    line: line + 1,
    column: character + 1,
    length: Math.max(1, d.length ?? 1),
    code: d.code,
    message,
    syntax,
  };
}

/**
 * The line an error is on, and a caret under it:
 *
 *     6 |   views: [view('totals', from(sales).groupBy((s) => ({ region: s.regoin }))...
 *       |                                                                  ^^^^^^
 */
export function codeFrame(source: string, line: number, column: number, length = 1): string {
  const text = (source.split(/\r?\n/)[line - 1] ?? '').replace(/\t/g, ' ');
  let from = 0;
  let to = text.length;
  if (text.length > FRAME_CHARS_MAX) {
    from = Math.max(0, Math.min(column - 1 - 60, text.length - FRAME_CHARS_MAX));
    to = Math.min(text.length, from + FRAME_CHARS_MAX);
  }
  const shown = `${from > 0 ? '...' : ''}${text.slice(from, to)}${to < text.length ? '...' : ''}`;
  const caretAt = column - 1 - from + (from > 0 ? 3 : 0);
  const caretLength = Math.max(1, Math.min(length, to - (column - 1)));
  const gutter = String(line);
  return (
    `  ${gutter} | ${shown}\n` +
    `  ${' '.repeat(gutter.length)} | ${' '.repeat(Math.max(0, caretAt))}${'^'.repeat(caretLength)}`
  );
}

/** `file:line:col - error TS2551: message`, then the code frame. `as` is 'error' or 'warning'. */
export function formatDiagnostic(d: ConfigDiagnostic, as: 'error' | 'warning', cwd = process.cwd()): string {
  const kind = d.syntax ? 'syntax error' : `${as} TS${d.code}`;
  if (d.file === '') return `${kind}: ${d.message}\n`;
  const name = relative(cwd, d.file).startsWith('..') ? d.file : relative(cwd, d.file) || d.file;
  let source = '';
  try {
    source = readFileSync(d.file, 'utf8');
  } catch {
    // The frame is a help, not the error: without the file, the location still says where.
  }
  const message = d.message.replace(/\n/g, '\n    ');
  const frame = source === '' ? '' : `${codeFrame(source, d.line, d.column, d.length)}\n`;
  return `${name}:${d.line}:${d.column} - ${kind}: ${message}\n${frame}`;
}

/** The problems a loaded app has (from loadApp's KAPPA_CONFIG_INVALID), or the error as is if it is another. */
function problemsOf(err: unknown): string[] {
  if (!isKappaError(err, 'KAPPA_CONFIG_INVALID')) throw err;
  const problems = err.details?.problems;
  return Array.isArray(problems) && problems.length > 1 ? (problems as string[]) : [err.message];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One line that says what the app holds: its topics, views and outputs by name. */
function summary(app: AppDef): string {
  const names = (items: { name: string }[]): string =>
    items.length === 0 ? '' : ` (${items.map((i) => i.name).join(', ')})`;
  return (
    `${plural(app.topics.length, 'topic')}${names(app.topics)}, ${plural(app.views.length, 'view')}${names(app.views)}, ` +
    `${plural(app.outputs.length, 'output')}${names(app.outputs)}`
  );
}

/**
 * `kappa check`: prints every error and exits 1, or prints "ok" with what the app holds. With
 * `typesJson` (what `kappa start` runs) it only type-checks, and prints the errors as JSON.
 */
export async function checkCommand(ctx: CliContext, opts: { config?: string; typesJson?: boolean }): Promise<void> {
  const file = resolve(opts.config ?? defaultConfigPath());
  if (!existsSync(file))
    throw new KappaError(
      'KAPPA_CONFIG_INVALID',
      `${file}: the config file does not exist (create kappa.config.ts, or pass --config FILE)`,
      { file },
    );
  const diagnostics = opts.typesJson === true ? await startTypeCheck(file) : await typeCheckConfig(file);
  if (opts.typesJson === true) {
    ctx.stdout.write(`${JSON.stringify(diagnostics)}\n`);
    return;
  }
  for (const d of diagnostics) ctx.stderr.write(formatDiagnostic(d, 'error'));
  let app: AppDef | null = null;
  let problems: string[] = [];
  // A file that does not parse cannot be loaded: the syntax errors above are all there is to say.
  if (!diagnostics.some((d) => d.syntax)) {
    try {
      app = await loadApp(file);
    } catch (err) {
      problems = problemsOf(err);
      for (const p of problems) ctx.stderr.write(`${problems.length > 1 ? `${file}: ` : ''}${p}\n`);
    }
  }
  const errors = diagnostics.length + problems.length;
  if (errors > 0 || app === null) {
    ctx.stderr.write(`kappa: check found ${plural(Math.max(1, errors), 'error')} in ${file}\n`);
    ctx.exitCode = 1;
    return;
  }
  ctx.stdout.write(`ok: ${file}: ${summary(app)}; types and app checked\n`);
}

/** For an error loading the config that points at a line (a syntax error): that line and a caret, else ''. */
export function loadErrorFrame(err: unknown): string {
  if (!isKappaError(err, 'KAPPA_CONFIG_INVALID')) return '';
  const { file, line, column } = (err.details ?? {}) as { file?: string; line?: number; column?: number };
  if (typeof file !== 'string' || typeof line !== 'number') return '';
  try {
    return `${codeFrame(readFileSync(file, 'utf8'), line, column ?? 1)}\n`;
  } catch {
    return '';
  }
}

/** The `kappa` command, which `kappa start` runs as `kappa check --types-json` beside itself. */
const KAPPA_BIN = resolve(KAPPA_ROOT, 'bin', 'kappa.js');

/**
 * The type check `kappa start` runs. Findings kept from an earlier check of the same, unchanged
 * config (check-cache.ts) are shown at once. Otherwise, with `strict` the check runs first, and
 * type errors refuse the start; without, it runs in a child process at the lowest CPU priority once
 * `quiet` resolves (the start's views have caught up: a check beside a replay took 25-35% of its
 * speed even at nice 19), and prints its findings as warnings when it ends. A syntax error is left
 * to the load, which stops the start with the reason and the line. Returns the function that stops
 * the child if it still runs (or keeps it from starting).
 */
export async function startChecks(
  ctx: CliContext,
  file: string,
  strict: boolean,
  quiet: Promise<void>,
): Promise<() => void> {
  if (!existsSync(file)) return () => {}; // loadApp says the file is missing, in the same words as always
  const kept = keptCheck(typeCheckKey(file));
  if (strict || kept !== null || !existsSync(KAPPA_BIN)) {
    const diagnostics = kept ?? (await startTypeCheck(file));
    if (diagnostics.some((d) => d.syntax)) return () => {};
    if (strict && diagnostics.length > 0) {
      for (const d of diagnostics) ctx.stderr.write(formatDiagnostic(d, 'error'));
      throw new KappaError(
        'KAPPA_CONFIG_INVALID',
        `${file}: ${plural(diagnostics.length, 'type error')} (shown above); --strict refuses to start with them. Fix them (\`kappa check\` lists them), or start without --strict.`,
        { file, typeErrors: diagnostics.length },
      );
    }
    typeWarnings(ctx, diagnostics);
    return () => {};
  }
  let stopped = false;
  let child: ChildProcess | null = null;
  void quiet.then(() => {
    if (!stopped) child = checkInChild(ctx, file);
  });
  return () => {
    stopped = true;
    if (child !== null && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
}

/** `kappa check --types-json` in a child process at nice TYPE_CHECK_NICE; its findings are printed as warnings when it ends. */
function checkInChild(ctx: CliContext, file: string): ChildProcess {
  const child = spawn(process.execPath, [KAPPA_BIN, 'check', '--config', file, '--types-json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  lowerPriority(child.pid);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString('utf8')));
  child.on('error', () => {}); // reported on close like any other failure
  child.on('close', (code, signal) => {
    if (signal !== null) return; // stopped by the start itself
    let diagnostics: ConfigDiagnostic[] | null = null;
    try {
      diagnostics = code === 0 ? (JSON.parse(out) as ConfigDiagnostic[]) : null;
    } catch {
      // reported below as a check that did not run
    }
    if (diagnostics === null) {
      const why = err.trim().split('\n').pop() ?? `exit code ${code}`;
      ctx.stderr.write(`kappa: warning: the config's type check did not run (${why}); \`kappa check\` runs it\n`);
    } else
      typeWarnings(
        ctx,
        diagnostics.filter((d) => !d.syntax),
      );
  });
  return child;
}

/**
 * The background type check's CPU priority (nice): the lowest. It is advice, not the app's work, and
 * costs 3-4 s of CPU (the compiler loads the config's whole import graph): at normal priority, on a
 * 2-core machine, the check of each `kappa start` took most of a core from the replay it started
 * beside (`npm run bench -- scale`: two processes, two checks, 1.0-1.4 of the 2 cores). At nice 19
 * it gets what the app leaves, and runs at full speed on an idle machine.
 */
const TYPE_CHECK_NICE = 19;

function lowerPriority(pid: number | undefined): void {
  if (pid === undefined) return; // spawn failed: reported on close
  try {
    setPriority(pid, TYPE_CHECK_NICE);
  } catch {
    // Not allowed here (or already gone): it runs at the start's own priority.
  }
}

/** Prints type errors as warnings, with what they mean for a running app. */
function typeWarnings(ctx: CliContext, diagnostics: ConfigDiagnostic[]): void {
  if (diagnostics.length === 0) return;
  for (const d of diagnostics) ctx.stderr.write(formatDiagnostic(d, 'warning'));
  ctx.stderr.write(
    `kappa: warning: ${plural(diagnostics.length, 'type error')} in the config (shown above): records that hit them may go to the dead-letter topics. Running anyway; \`kappa start --strict\` refuses instead.\n`,
  );
}
