/**
 * Loads the user's app config (`kappa.config.ts` or `.js`): a module whose default export is
 * `defineApp({ topics, views, outputs })`. TypeScript configs run through tsx, which the `kappa` command
 * registers. Every failure is a KAPPA_CONFIG_INVALID naming the file, the line and column when known,
 * and why; `details.problems` lists every problem found (not only the first), so `kappa check` can
 * show them all at once.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KappaError, closestNames } from '../errors.ts';
import type { AppDef, OutputDef, ServerConfig, TopicDef, ViewDef } from './dsl.ts';
import { formatReader } from './value-decoder.ts';

export function defaultConfigPath(cwd = process.cwd()): string {
  for (const name of ['kappa.config.ts', 'kappa.config.js', 'kappa.config.mjs']) {
    const p = resolve(cwd, name);
    if (existsSync(p)) return p;
  }
  return resolve(cwd, 'kappa.config.ts');
}

/** Where in the config file a load error points: a line, and a column when known (both 1-based). */
interface Where {
  line?: number;
  column?: number;
}

function invalid(file: string, problems: string[], where: Where = {}, cause?: unknown): KappaError {
  const at = where.line ? `:${where.line}${where.column ? `:${where.column}` : ''}` : '';
  const message =
    problems.length === 1
      ? `${file}${at}: ${problems[0]}`
      : `${file}${at}: ${problems.length} problems:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
  return new KappaError(
    'KAPPA_CONFIG_INVALID',
    message,
    { file, line: where.line, column: where.column, problems },
    cause,
  );
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Why a config failed to import, and where. A syntax error comes from esbuild (through tsx) as
 * "Transform failed with 1 error:\n<file>:<line>:<col>: ERROR: <reason>": the reason is on the
 * second line, so it is picked out rather than the first line, which says nothing. Anything else
 * (a DSL call that threw) gives its message and the first stack frame in the file.
 */
export function loadFailure(err: unknown, file: string): { reason: string } & Where {
  const message = String((err as Error)?.message ?? err);
  const escaped = escapeRegExp(file);
  const syntax = new RegExp(`${escaped}:(\\d+):(\\d+): ERROR: (.*)`).exec(message);
  if (syntax) return { reason: `syntax error: ${syntax[3]}`, line: Number(syntax[1]), column: Number(syntax[2]) + 1 };
  const first =
    message.split('\n').find((l) => l.trim() !== '' && !/^Transform failed with \d+ errors?:$/.test(l.trim())) ??
    'unknown error';
  const text = `${message}\n${(err as Error)?.stack ?? ''}`;
  const m = new RegExp(`${escaped}:(\\d+)(?::(\\d+))?`).exec(text);
  return { reason: first, line: m ? Number(m[1]) : undefined, column: m?.[2] ? Number(m[2]) : undefined };
}

/**
 * Imports the config at `path` and checks it. `load` imports it another way (a worker thread's
 * bundle holds the config already); its errors are reported the same.
 */
export async function loadApp(path: string, load?: () => Promise<{ default?: unknown }>): Promise<AppDef> {
  const file = resolve(path);
  if (load !== undefined) return loadAppFrom(file, load);
  if (!existsSync(file))
    throw invalid(file, ['the config file does not exist (create kappa.config.ts, or pass --config FILE)']);
  return loadAppFrom(file, () => import(pathToFileURL(file).href) as Promise<{ default?: unknown }>);
}

/**
 * `loadApp` with the config imported by `load`. Worker threads call this one: it holds no
 * `import()` of its own, and a bundle with one costs every process that loads it through tsx
 * (kept code, loaded on the engine's thread: see worker-bundle.ts) about 0.25 s more, as tsx
 * rewrites the whole module around it.
 */
export async function loadAppFrom(path: string, load: () => Promise<{ default?: unknown }>): Promise<AppDef> {
  const file = resolve(path);
  let mod: { default?: unknown };
  try {
    mod = await load();
  } catch (err) {
    const { reason, line, column } = loadFailure(err, file);
    throw invalid(file, [`the config does not load: ${reason}`], { line, column }, err);
  }
  const app = mod.default as Partial<AppDef> | undefined;
  if (!app || !Array.isArray(app.topics) || !Array.isArray(app.views)) {
    throw invalid(file, ['the default export must be defineApp({ topics: [...], views: [...] })']);
  }
  const problems = appProblems(app);
  if (problems.length > 0) throw invalid(file, problems);
  return { ...app, outputs: app.outputs ?? [], server: app.server ?? {}, webhooks: app.webhooks ?? [] } as AppDef;
}

/** Kafka's topic-name rule, as the log applies it when the topic is created. */
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
/** Names the view store keeps for its own tables (see view/definition.ts). */
const RESERVED_VIEW_NAME = /^(kappa_|sqlite_)|__v[0-9]+$/i;
/** More windows per event than this makes every event cost that many row updates: almost surely a mistake. */
const WINDOWS_PER_EVENT_MAX = 1000;

/** Every problem of an app that loaded: names, topics read and written, windows. Empty when it can run. */
export function appProblems(app: Partial<AppDef>): string[] {
  const problems: string[] = [];
  const topics = new Set<string>();
  for (const t of app.topics ?? []) {
    if (t?.kind !== 'topic') {
      problems.push('every entry of topics must come from topic(...)');
      continue;
    }
    if (topics.has(t.name)) problems.push(`topic "${t.name}" is defined twice`);
    topics.add(t.name);
    problems.push(...topicProblems(t));
  }
  const pipelines = new Set<string>();
  for (const v of app.views ?? []) {
    if (v?.kind !== 'view') {
      problems.push('every entry of views must come from view(...)');
      continue;
    }
    if (pipelines.has(v.name)) problems.push(`view "${v.name}" is defined twice`);
    pipelines.add(v.name);
    problems.push(...viewProblems(v, topics));
  }
  const outputs = app.outputs ?? [];
  if (!Array.isArray(outputs)) problems.push('outputs must be a list of from(topic)....to(topic) pipelines');
  else
    for (const o of outputs) {
      if (o?.kind !== 'output') {
        problems.push('every entry of outputs must come from from(topic)....to(topic)');
        continue;
      }
      if (pipelines.has(o.name)) problems.push(`output "${o.name}" has the name of a view; names must be unique`);
      pipelines.add(o.name);
      problems.push(...outputProblems(o, topics));
    }
  const server = app.server ?? {};
  if (typeof server !== 'object' || server === null)
    problems.push('server must be an object: { host, port, tokens, bodyLimitBytes, kafka }');
  else problems.push(...kafkaProblems(server.kafka));
  return problems;
}

function kafkaProblems(kafka: ServerConfig['kafka']): string[] {
  if (kafka === undefined || kafka === false) return [];
  if (typeof kafka !== 'object' || kafka === null)
    return ['server.kafka must be false or an object: { host, port, advertisedHost, tls: { cert, key } }'];
  const problems: string[] = [];
  if (kafka.port !== undefined && !(Number.isInteger(kafka.port) && kafka.port >= 0 && kafka.port <= 65_535))
    problems.push(
      `server.kafka.port is ${JSON.stringify(kafka.port)}; use a port number from 0 to 65535 (0 picks a free one)`,
    );
  for (const key of ['host', 'advertisedHost'] as const)
    if (kafka[key] !== undefined && (typeof kafka[key] !== 'string' || kafka[key] === ''))
      problems.push(`server.kafka.${key} must be a host name or address`);
  if (kafka.tls !== undefined && (typeof kafka.tls?.cert !== 'string' || typeof kafka.tls?.key !== 'string'))
    problems.push('server.kafka.tls must be { cert: "<path of a PEM file>", key: "<path of a PEM file>" }');
  return problems;
}

function topicProblems(t: TopicDef<unknown>): string[] {
  const problems: string[] = [];
  if (typeof t.name !== 'string' || !TOPIC_NAME.test(t.name) || t.name === '.' || t.name === '..')
    problems.push(
      `topic name ${JSON.stringify(t.name)} is not valid: use 1 to 249 letters, digits, '.', '_' or '-' (and not '.' or '..')`,
    );
  if (!Number.isInteger(t.partitions) || t.partitions < 1 || t.partitions > 10_000)
    problems.push(`topic "${t.name}" has ${t.partitions} partitions; use a whole number from 1 to 10000`);
  if (t.format) {
    try {
      formatReader(t.format);
    } catch (err) {
      problems.push(`topic "${t.name}" has a ${t.format.type} schema that cannot be used: ${(err as Error).message}`);
    }
  }
  return problems;
}

function viewProblems(v: ViewDef, topics: Set<string>): string[] {
  const problems: string[] = [];
  if (RESERVED_VIEW_NAME.test(v.name))
    problems.push(
      `view name "${v.name}" is reserved: names may not start with "kappa_" or "sqlite_" nor end in "__v<number>"`,
    );
  const source = v.aggregation.stream.source.name;
  if (!topics.has(source)) problems.push(unknownTopic(`view "${v.name}" reads topic "${source}"`, source, topics));
  if (topics.has(v.lateTopic) && v.lateTopic !== `${source}.late`)
    problems.push(
      `view "${v.name}" sends late events to "${v.lateTopic}", a topic of the app: late events would mix with its records (choose another lateTopic)`,
    );
  if (v.lateTopic === source) problems.push(`view "${v.name}" sends late events to its own source "${source}"`);
  const w = v.aggregation.stream.windowSpec;
  if (w) {
    const perEvent = Math.ceil(w.sizeMs / w.advanceMs);
    if (perEvent > WINDOWS_PER_EVENT_MAX)
      problems.push(
        `view "${v.name}" has a hopping window of ${w.sizeMs} ms advancing by ${w.advanceMs} ms: each event would update ${perEvent} windows (at most ${WINDOWS_PER_EVENT_MAX}; use a larger advance)`,
      );
    if (v.allowedLatenessMs < 0 || v.outOfOrdernessMs < 0)
      problems.push(`view "${v.name}" has a negative allowedLateness or outOfOrderness`);
  }
  return problems;
}

function outputProblems(o: OutputDef, topics: Set<string>): string[] {
  const problems: string[] = [];
  const source = o.stream.source.name;
  if (!topics.has(source)) problems.push(unknownTopic(`output "${o.name}" reads topic "${source}"`, source, topics));
  if (!topics.has(o.target.name))
    problems.push(
      `${unknownTopic(`output "${o.name}" writes topic "${o.target.name}"`, o.target.name, topics)} (add it so its partitions and schema are known)`,
    );
  if (o.target.format !== null)
    problems.push(
      `output "${o.name}" writes topic "${o.target.name}", which has a ${o.target.format.type} format: outputs write plain JSON records, so their target topic takes a \`schema\`, not a \`format\``,
    );
  if (o.target.name === source)
    problems.push(
      `output "${o.name}" writes the topic it reads ("${source}"): each record would be read again forever`,
    );
  return problems;
}

/** "<what>, which is not in topics" with the closest declared name, or the list of them. */
function unknownTopic(what: string, name: string, topics: Set<string>): string {
  const [close] = closestNames(name, topics, 1);
  const known = [...topics].join(', ') || 'none';
  return `${what}, which is not in topics (${close ? `did you mean "${close}"? ` : ''}declared: ${known})`;
}
