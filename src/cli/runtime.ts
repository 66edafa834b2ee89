/**
 * Where `kappa start` keeps its log and its views: the embedded data dir (FileLog + SQLite, one
 * process), or a Kafka cluster (`--log kafka://host:port[,host:port…]`) and a PostgreSQL database
 * (`--store postgres://…`), which several `kappa start` processes share (docs/scale-out.md). The
 * config is the same either way. The one place the CLI turns those URLs into adapters.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { KappaError } from '../errors.ts';
import { type KafkaLogDescriptor, type Log, type LogDescriptor, openLog } from '../log/index.ts';
import type { ClusterOptions } from '../stream/index.ts';
import type { ConsumerOffsetStore, ControlStore, TaskLeases, ViewStore } from '../view/index.ts';
import { openSqliteStore } from '../view/sqlite/index.ts';
import { openForWriting } from './open.ts';

/** `--log` and `--store`, as given. */
export interface RuntimeOptions {
  /** `kafka://host:port[,host:port…]`; default: the embedded log in the data dir. */
  log?: string;
  /** `postgres://user:password@host:port/database`; default: SQLite in the data dir. */
  store?: string;
  /** In a cluster: heartbeat and rebalance interval, and how long a silent process keeps its tasks. */
  heartbeatMs?: number;
  sessionTimeoutMs?: number;
}

/** A store that serves the views, the control records and the Kafka listener's committed offsets. */
export type RuntimeStore = ViewStore &
  ControlStore & {
    consumerOffsets: ConsumerOffsetStore;
    /** Present on a store several processes share (PostgreSQL). */
    leases?: TaskLeases;
  };

/** Parses `kafka://host:port[,host:port…]` into a KafkaLog descriptor; a clear error otherwise. */
/**
 * `--log kafka://host:port[,host2:port…][?option=value&…]`. Options: `tls=true` (the system's CAs;
 * `tls-ca=<PEM file>` for another CA), `sasl=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512` with `username=` (the
 * password comes from the environment variable KAPPA_KAFKA_PASSWORD, never the command line, which
 * other users of the machine can read), `client-id=`, `replication-factor=`, `connect-timeout-ms=`,
 * `request-timeout-ms=`.
 */
export function kafkaDescriptor(url: string, env: NodeJS.ProcessEnv = process.env): LogDescriptor {
  const m = /^kafka:\/\/([^/?#]+)\/?(?:\?([^#]*))?$/.exec(url);
  const brokers = m?.[1].split(',').map((b) => b.trim()) ?? [];
  if (m === null || brokers.some((b) => !/^[^:\s]+:\d{1,5}$/.test(b))) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `--log "${redact(url)}" is not a Kafka address. Give kafka://host:port, or several brokers as kafka://host1:9092,host2:9092 (options after ?, e.g. ?tls=true&sasl=SCRAM-SHA-512&username=kappa).`,
      { log: redact(url) },
    );
  }
  return { kind: 'kafka', brokers, clientId: 'kappa', ...kafkaOptions(new URLSearchParams(m[2] ?? ''), url, env) };
}

const KAFKA_OPTIONS = [
  'tls',
  'tls-ca',
  'sasl',
  'username',
  'client-id',
  'replication-factor',
  'connect-timeout-ms',
  'request-timeout-ms',
];
const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;

function kafkaOptions(q: URLSearchParams, url: string, env: NodeJS.ProcessEnv): Partial<KafkaLogDescriptor> {
  const bad = (why: string): KappaError =>
    new KappaError('KAPPA_INVALID_ARGUMENT', `--log "${redact(url)}": ${why}`, { log: redact(url) });
  for (const key of q.keys())
    if (!KAFKA_OPTIONS.includes(key))
      throw bad(`unknown option "${key}"; the options are ${KAFKA_OPTIONS.join(', ')}.`);
  const whole = (key: string, min: number): number | undefined => {
    const v = q.get(key);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw bad(`${key} must be a whole number of at least ${min}, not "${v}".`);
    return Number(v);
  };
  const out: Partial<KafkaLogDescriptor> = {};
  const tls = q.get('tls');
  if (tls !== null && tls !== 'true' && tls !== 'false') throw bad(`tls must be true or false, not "${tls}".`);
  const ca = q.get('tls-ca');
  if (ca !== null) out.tls = { ca: readPem(ca, bad) };
  else if (tls === 'true') out.tls = true;
  const sasl = q.get('sasl');
  if (sasl !== null) {
    const mechanism = SASL_MECHANISMS.find((x) => x === sasl.toUpperCase());
    if (mechanism === undefined) throw bad(`sasl must be one of ${SASL_MECHANISMS.join(', ')}, not "${sasl}".`);
    const username = q.get('username');
    const password = env.KAPPA_KAFKA_PASSWORD;
    if (!username) throw bad(`sasl=${mechanism} needs username=<name>.`);
    if (!password) throw bad(`sasl=${mechanism} needs the password in the environment variable KAPPA_KAFKA_PASSWORD.`);
    out.sasl = { mechanism, username, password };
  } else if (q.has('username'))
    throw bad('username= is used with sasl=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512; give sasl too.');
  const clientId = q.get('client-id');
  if (clientId !== null) out.clientId = clientId;
  out.replicationFactor = whole('replication-factor', 1);
  out.connectTimeoutMs = whole('connect-timeout-ms', 100);
  out.requestTimeoutMs = whole('request-timeout-ms', 100);
  for (const k of Object.keys(out) as (keyof typeof out)[]) if (out[k] === undefined) delete out[k];
  return out;
}

function readPem(path: string, bad: (why: string) => KappaError): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw bad(`cannot read the CA file ${path} (${(err as Error).message}).`);
  }
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/** Opens the log: the Kafka cluster of `--log`, else the data dir's (taking its writer's lock). */
export async function openRuntimeLog(dataDir: string, rt: RuntimeOptions): Promise<Log> {
  if (rt.log === undefined) return openForWriting(dataDir);
  return openLog(kafkaDescriptor(rt.log));
}

/** Opens the store: the PostgreSQL database of `--store`, else the data dir's SQLite file. */
export async function openRuntimeStore(sqlitePath: string, rt: RuntimeOptions): Promise<RuntimeStore> {
  if (rt.store === undefined) return openSqliteStore({ path: sqlitePath });
  if (!isPostgresUrl(rt.store)) {
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `--store "${redact(rt.store)}" is not a PostgreSQL URL. Give postgres://user:password@host:5432/database.`,
      { store: redact(rt.store) },
    );
  }
  // Loaded on demand: an embedded start never loads the PostgreSQL client.
  const { openPostgresStore } = await import('../view/postgres/index.ts');
  return openPostgresStore({ connectionString: rt.store });
}

/** The cluster settings of a process on a shared store (null on an embedded one: one process, no leases). */
export function clusterOptions(store: RuntimeStore, rt: RuntimeOptions): ClusterOptions | undefined {
  if (store.leases === undefined) return undefined;
  const host = hostname();
  return {
    leases: store.leases,
    member: {
      id: `${host}/${process.pid}/${randomBytes(3).toString('hex')}`,
      host,
      pid: process.pid,
      httpUrl: null,
      startedAtMs: Date.now(),
    },
    heartbeatMs: rt.heartbeatMs,
    sessionTimeoutMs: rt.sessionTimeoutMs,
  };
}

/** A store URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** What the running line says the log and store are. */
export function describeRuntime(dataDir: string, rt: RuntimeOptions): string {
  if (rt.log === undefined && rt.store === undefined) return dataDir;
  const log = rt.log ?? `the embedded log in ${dataDir}`;
  const store = rt.store === undefined ? `SQLite in ${dataDir}` : redact(rt.store);
  return `${log} into ${store}`;
}
