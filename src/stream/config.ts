/**
 * Loads the user's app config (`kappa.config.ts` or `.js`): a module whose default export is
 * `defineApp({ topics, views, outputs })`. TypeScript configs run through tsx, which the `kappa` command
 * registers. Every failure is a KAPPA_CONFIG_INVALID naming the file, the line when known, and why.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KappaError } from '../errors.ts';
import type { AppDef } from './dsl.ts';

export function defaultConfigPath(cwd = process.cwd()): string {
  for (const name of ['kappa.config.ts', 'kappa.config.js', 'kappa.config.mjs']) {
    const p = resolve(cwd, name);
    if (existsSync(p)) return p;
  }
  return resolve(cwd, 'kappa.config.ts');
}

function invalid(file: string, message: string, line?: number, cause?: unknown): KappaError {
  return new KappaError('KAPPA_CONFIG_INVALID', `${file}${line ? `:${line}` : ''}: ${message}`, { file, line }, cause);
}

/** The line in `file` that a load error points at: esbuild's "file:line:col" or the first stack frame in the file. */
function lineOf(err: unknown, file: string): number | undefined {
  const text = `${(err as Error)?.message ?? ''}\n${(err as Error)?.stack ?? ''}`;
  const escaped = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${escaped}:(\\d+)(?::\\d+)?`).exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Imports the config at `path` and checks it. `load` imports it another way (a worker thread's
 * bundle holds the config already); its errors are reported the same.
 */
export async function loadApp(path: string, load?: () => Promise<{ default?: unknown }>): Promise<AppDef> {
  const file = resolve(path);
  if (load === undefined && !existsSync(file))
    throw invalid(file, 'the config file does not exist (create kappa.config.ts, or pass --config FILE)');
  let mod: { default?: unknown };
  try {
    mod = load === undefined ? ((await import(pathToFileURL(file).href)) as { default?: unknown }) : await load();
  } catch (err) {
    const first =
      String((err as Error)?.message ?? err)
        .split('\n')
        .find((l) => l.trim() !== '') ?? 'unknown error';
    throw invalid(file, `the config does not load: ${first}`, lineOf(err, file), err);
  }
  const app = mod.default as Partial<AppDef> | undefined;
  if (!app || !Array.isArray(app.topics) || !Array.isArray(app.views)) {
    throw invalid(file, 'the default export must be defineApp({ topics: [...], views: [...] })');
  }
  const topics = new Set<string>();
  for (const t of app.topics) {
    if (t?.kind !== 'topic') throw invalid(file, 'every entry of topics must come from topic(...)');
    if (topics.has(t.name)) throw invalid(file, `topic "${t.name}" is defined twice`);
    topics.add(t.name);
  }
  const views = new Set<string>();
  for (const v of app.views) {
    if (v?.kind !== 'view') throw invalid(file, 'every entry of views must come from view(...)');
    if (views.has(v.name)) throw invalid(file, `view "${v.name}" is defined twice`);
    views.add(v.name);
    const source = v.aggregation.stream.source.name;
    if (!topics.has(source))
      throw invalid(
        file,
        `view "${v.name}" reads topic "${source}", which is not in topics (known: ${[...topics].join(', ') || 'none'})`,
      );
  }
  const outputs = app.outputs ?? [];
  if (!Array.isArray(outputs)) throw invalid(file, 'outputs must be a list of from(topic)....to(topic) pipelines');
  for (const o of outputs) {
    if (o?.kind !== 'output') throw invalid(file, 'every entry of outputs must come from from(topic)....to(topic)');
    if (views.has(o.name)) throw invalid(file, `output "${o.name}" has the name of a view; names must be unique`);
    views.add(o.name);
    const source = o.stream.source.name;
    if (!topics.has(source))
      throw invalid(
        file,
        `output "${o.name}" reads topic "${source}", which is not in topics (known: ${[...topics].join(', ') || 'none'})`,
      );
    if (!topics.has(o.target.name))
      throw invalid(
        file,
        `output "${o.name}" writes topic "${o.target.name}", which is not in topics (add it so its partitions and schema are known)`,
      );
  }
  const server = app.server ?? {};
  if (typeof server !== 'object' || server === null)
    throw invalid(file, 'server must be an object: { host, port, tokens, bodyLimitBytes }');
  return { ...app, outputs, server, webhooks: app.webhooks ?? [] } as AppDef;
}
