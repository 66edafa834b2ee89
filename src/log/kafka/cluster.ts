/**
 * KafkaLog's view of the cluster: connections to the brokers (connection.ts: framing, correlation,
 * TLS; sasl.ts: the login), the metadata (brokers, each partition's leader), and the APIs
 * each broker offers. Requests go to the partition's leader; on an error that means "the leader
 * moved" or on a broken connection, the metadata is refreshed and the request sent again, a few
 * times, before the caller gets LOG_UNAVAILABLE with the brokers named.
 *
 * Connections: one shared connection per broker for short requests (Produce, ListOffsets, Metadata,
 * admin), pipelined (a broker answers a connection's requests in order, so appends to a partition
 * arrive in the order they were sent); and one per followed partition for long-poll Fetches, which a
 * broker holds for up to their max wait and would otherwise hold up every request behind them.
 */
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { KappaError } from '../../errors.ts';
import { BrokerConnection as Connection, KafkaConnectionError } from './connection.ts';
import { KAFKA, LOG_UNAVAILABLE, RETRIABLE, kafkaError, unsupported } from './errors.ts';
import { type SaslOptions, authenticate } from './sasl.ts';
import * as wire from './wire.ts';

export interface ClusterOptions {
  brokers: string[];
  clientId: string;
  tls?: TlsOptions;
  sasl?: SaslOptions;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

export interface TopicMetadata {
  name: string;
  /** Leader node id of each partition, by index (-1 while there is none). */
  leaders: number[];
}

const RETRIES_MAX = 5;
/** The longest a long-poll Fetch asks the broker to wait (reader.ts); its connection allows for it. */
export const LONG_POLL_MS = 500;
/** Node's codes for a peer certificate that TLS does not trust (unknown CA, wrong name, expired…). */
const TLS_TRUST_CODES = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS_CERT_ALTNAME_INVALID/;
const RETRY_PAUSE_MS = 200;
const IN_FLIGHT_MAX = 32;

/** An error that a retry after a metadata refresh may cure. */
export class RetriableError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class Cluster {
  private readonly shared = new Map<string, Promise<Connection>>();
  private readonly pollers = new Map<string, Promise<Connection>>();
  private brokers = new Map<number, string>();
  private controllerId = -1;
  private topicsByName = new Map<string, TopicMetadata>();
  private versions: Map<number, wire.ApiRange> | null = null;
  /** Every connection made, connected or not: close() ends them all, so none keeps the process alive. */
  private readonly made = new Set<Connection>();
  private closed = false;

  constructor(readonly opts: ClusterOptions) {}

  get bootstrap(): string {
    return this.opts.brokers.join(',');
  }

  private async connect(address: string, inFlight: number, waitMs = 0): Promise<Connection> {
    const [host, port] = splitAddress(address);
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', 'The log is closed.');
    const c = new Connection({
      clientId: this.opts.clientId,
      connectTimeoutMs: this.opts.connectTimeoutMs,
      // A long poll's answer may take its wait plus the usual time (as a Kafka consumer's
      // request.timeout.ms must exceed fetch.max.wait.ms).
      requestTimeoutMs: this.opts.requestTimeoutMs + waitMs,
      maxInFlight: inFlight,
      tls: this.opts.tls,
    });
    this.made.add(c);
    c.on('close', () => this.made.delete(c));
    // A connection that broke (a reset, a request that timed out) is closed, and forgotten by the
    // caches on 'close': the next request opens another. Its requests under way fail and are
    // retried (retrying). Without a listener the event would crash the process.
    c.on('error', () => c.destroy());
    try {
      await c.connect(host, port);
      if (this.opts.sasl !== undefined) await authenticate(c, this.opts.sasl);
      return c;
    } catch (err) {
      c.destroy();
      throw this.connectFailure(address, err);
    }
  }

  /**
   * Why a connection could not be made, in words that point at the fix: a refused SASL login or a
   * broker certificate TLS does not trust is not retried (it would fail the same way); anything else
   * is the broker out of reach, which is.
   */
  private connectFailure(address: string, err: unknown): KappaError {
    const causes: { code?: string; message?: string }[] = [];
    for (let e = err as { code?: string; message?: string; cause?: unknown } | null; e; e = e.cause as typeof e)
      causes.push(e);
    const deepest = messageOf(causes.at(-1) ?? err).replace(/\.$/, '');
    const sasl = this.opts.sasl;
    if (sasl !== undefined && err instanceof KafkaConnectionError && err.kind === 'authentication')
      return new KappaError(
        'KAPPA_UNAUTHENTICATED',
        `The Kafka broker at ${address} refused the SASL ${sasl.mechanism} login of "${sasl.username}" (${deepest}). Check username= in --log and the password in KAPPA_KAFKA_PASSWORD.`,
        { broker: address, username: sasl.username },
        err,
      );
    const tls = causes.find((e) => e.code !== undefined && TLS_TRUST_CODES.test(e.code));
    if (tls !== undefined)
      return new KappaError(
        LOG_UNAVAILABLE,
        `The Kafka broker at ${address} presented a TLS certificate this process does not trust (${tls.code}: ${tls.message}). Give the CA that signed it with tls-ca=<PEM file> in --log.`,
        { brokers: this.opts.brokers },
        err,
      );
    return new KappaError(
      LOG_UNAVAILABLE,
      `Cannot reach the Kafka broker at ${address} (${messageOf(err).replace(/\.$/, '')}). Check that it runs and that the broker list (kappa start --log) names it right.`,
      { broker: address },
      err,
    );
  }

  private cached(map: Map<string, Promise<Connection>>, key: string, address: string, inFlight: number, waitMs = 0) {
    if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', 'The log is closed.');
    let p = map.get(key);
    if (p === undefined) {
      p = this.connect(address, inFlight, waitMs);
      map.set(key, p);
      p.then(
        (c) => c.on('close', () => map.get(key) === p && map.delete(key)),
        () => map.get(key) === p && map.delete(key),
      );
    }
    return p;
  }

  /** The shared connection to broker `nodeId` (or to a bootstrap address). */
  connection(address: string): Promise<Connection> {
    return this.cached(this.shared, address, address, IN_FLIGHT_MAX);
  }

  /** A connection of its own for the long polls of one reader (`key`), to the given broker. */
  pollConnection(key: string, address: string): Promise<Connection> {
    return this.cached(this.pollers, `${key}@${address}`, address, 1, LONG_POLL_MS);
  }

  /** Forgets a reader's poll connection and closes it. */
  async dropPoll(key: string, address: string): Promise<void> {
    const p = this.pollers.get(`${key}@${address}`);
    this.pollers.delete(`${key}@${address}`);
    if (p) await p.then((c) => c.destroy()).catch(() => {});
  }

  /** Any broker that answers: the known ones, then the bootstrap list. */
  async anyConnection(): Promise<Connection> {
    const candidates = [...new Set([...this.brokers.values(), ...this.opts.brokers])];
    let last: unknown = null;
    for (const address of candidates) {
      try {
        return await this.connection(address);
      } catch (err) {
        last = err;
      }
    }
    if (candidates.length === 1) throw last;
    throw new KappaError(
      LOG_UNAVAILABLE,
      `No Kafka broker answered (tried ${candidates.join(', ')}). Check that the cluster runs and that the broker list (kappa start --log) names it right.`,
      { brokers: candidates },
      last,
    );
  }

  /** Reads the cluster's metadata: `once` tries one broker request (between the tries of another request), else retries. */
  async refresh(once = false): Promise<Map<string, TopicMetadata>> {
    // Never refreshed between its own tries: that refresh would be this one again, nested without end.
    const md = await this.retrying(
      { action: 'reading the cluster metadata' },
      async () => wire.metadata(await this.anyConnection(), null),
      { refreshBetween: false, tries: once ? 1 : RETRIES_MAX + 1 },
    );
    this.brokers = new Map(md.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`]));
    this.controllerId = md.controllerId;
    this.topicsByName = new Map(
      md.topics
        .filter((t) => t.errorCode === 0 && !t.internal)
        .map((t) => {
          const leaders = Array.from({ length: t.partitions.length }, () => -1);
          for (const p of t.partitions) leaders[p.index] = p.errorCode === 0 ? p.leader : -1;
          return [t.name, { name: t.name, leaders }];
        }),
    );
    return this.topicsByName;
  }

  known(topic: string): TopicMetadata | undefined {
    return this.topicsByName.get(topic);
  }

  /** The topic's metadata, refreshed when it is not known (KAPPA_UNKNOWN_TOPIC when the cluster lacks it). */
  async topic(name: string): Promise<TopicMetadata> {
    const t = this.topicsByName.get(name) ?? (await this.refresh()).get(name);
    if (t === undefined) throw kafkaError(KAFKA.UNKNOWN_TOPIC_OR_PARTITION, { topic: name, action: 'looking up' });
    return t;
  }

  /** The address of the leader of a partition (KAPPA_INVALID_PARTITION for one the topic lacks). */
  async leader(topic: string, partition: number): Promise<string> {
    let t = await this.topic(topic);
    if (!Number.isInteger(partition) || partition < 0 || partition >= t.leaders.length) {
      throw new KappaError(
        'KAPPA_INVALID_PARTITION',
        `Topic "${topic}" has partitions 0 to ${t.leaders.length - 1}; there is no partition ${partition}.`,
        { topic, partition, partitions: t.leaders.length },
      );
    }
    if (t.leaders[partition] < 0 || !this.brokers.has(t.leaders[partition])) {
      t = (await this.refresh()).get(topic) ?? t;
    }
    const address = this.brokers.get(t.leaders[partition]);
    if (address === undefined)
      throw new RetriableError(KAFKA.LEADER_NOT_AVAILABLE, `${topic}/${partition} has no leader right now`);
    return address;
  }

  /** The controller (where admin requests go), or any broker when the metadata names none. */
  async controller(): Promise<Connection> {
    if (this.brokers.size === 0) await this.refresh();
    const address = this.brokers.get(this.controllerId);
    return address === undefined ? this.anyConnection() : this.connection(address);
  }

  /** Whether the cluster offers `api` at KafkaLog's version (asked once, of one broker). */
  async supports(api: keyof typeof wire.API): Promise<boolean> {
    if (this.versions === null) {
      const res = await this.retrying({ action: 'asking which APIs the cluster offers' }, async () =>
        wire.apiVersions(await this.anyConnection()),
      );
      this.versions = new Map(res.apis.map((a) => [a.apiKey, a]));
    }
    const range = this.versions.get(wire.API[api]);
    const v = wire.VERSION[api];
    return range !== undefined && range.minVersion <= v && v <= range.maxVersion;
  }

  async require(api: keyof typeof wire.API, what: string): Promise<void> {
    if (!(await this.supports(api))) throw unsupported(`${api} v${wire.VERSION[api]}`, this.bootstrap, what);
  }

  /**
   * Runs `attempt` until it succeeds, retrying (with a metadata refresh) on a RetriableError, a
   * retriable Kafka code or a lost connection, at most RETRIES_MAX times.
   */
  async retrying<T>(
    subject: { action: string; topic?: string; partition?: number },
    attempt: () => Promise<T>,
    opts: { refreshBetween?: boolean; tries?: number } = {},
  ) {
    const { refreshBetween = true, tries = RETRIES_MAX + 1 } = opts;
    let last: unknown = null;
    for (let i = 0; i < tries; i++) {
      if (this.closed) throw new KappaError('KAPPA_LOG_CLOSED', 'The log is closed.');
      try {
        return await attempt();
      } catch (err) {
        if (!isRetriable(err)) throw err;
        last = err;
        if (i + 1 === tries) break;
        await new Promise((r) => setTimeout(r, RETRY_PAUSE_MS * (i + 1)));
        if (refreshBetween && !(err instanceof KappaError)) await this.refresh(true).catch(() => {});
      }
    }
    if (last instanceof KappaError) throw last;
    throw new KappaError(
      LOG_UNAVAILABLE,
      `The Kafka cluster at ${this.bootstrap} did not complete ${subject.action}${subject.topic ? ` (${subject.topic}${subject.partition === undefined ? '' : `/${subject.partition}`})` : ''} after ${tries} ${tries === 1 ? 'try' : 'tries'}: ${messageOf(last)}.`,
      { brokers: this.opts.brokers },
      last,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.shared.values(), ...this.pollers.values()];
    this.shared.clear();
    this.pollers.clear();
    await Promise.all(all.map((p) => p.then((c) => c.destroy()).catch(() => {})));
    for (const c of this.made) c.destroy();
    this.made.clear();
  }
}

/** A Kafka error code of a response: a KappaError, or a RetriableError for the codes a retry may cure. */
export function check(code: number, s: { action: string; topic?: string; partition?: number }, message?: string) {
  if (code === 0) return;
  if (RETRIABLE.has(code)) throw new RetriableError(code, `Kafka error ${code} while ${s.action}`);
  throw kafkaError(code, s, message ?? null);
}

function isRetriable(err: unknown): boolean {
  if (err instanceof RetriableError) return true;
  if (err instanceof KappaError) return err.code === LOG_UNAVAILABLE && err.details?.broker !== undefined;
  // The connection broke or the broker did not answer (a refused login is not retried).
  return err instanceof KafkaConnectionError && err.kind !== 'authentication';
}

export function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new KappaError(
      'KAPPA_INVALID_ARGUMENT',
      `"${address}" is not a Kafka broker address; write host:port, for example localhost:9092.`,
      { broker: address },
    );
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), port];
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
