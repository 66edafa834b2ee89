/**
 * What the listener's parts share: the dependencies a handler reads (`ListenerDeps`), a
 * connection's session (who authenticated, how SASL stands), the context of one request, and the
 * shape of a handler. Handlers are plain modules in handlers/, one per API or family of APIs.
 */
import type { Log, Logger } from '../../log/index.ts';
import type { Principal } from '../../server/index.ts';
import type { TokenConfig } from '../../stream/index.ts';
import type { RequestHeader } from '../protocol/index.ts';
import type { KafkaMetrics } from './metrics.ts';
import type { ProducerIdAllocator } from './producer-ids.ts';
import type { SchemaIdChecks } from './schema-ids.ts';

/** The consumer-group coordinator, as the handlers use it (see handlers/groups.ts). */
export type { GroupsPort } from './handlers/groups.ts';
import type { GroupsPort } from './handlers/groups.ts';

export interface ListenerDeps {
  log: Log;
  /** Null: the group APIs are not advertised (a listener for producers only). */
  groups: GroupsPort | null;
  tokens: readonly TokenConfig[];
  logger: Logger;
  metrics: KafkaMetrics;
  producerIds: ProducerIdAllocator;
  /** The host clients are told to connect to; null: the address each connection came in on. */
  advertisedHost: string | null;
  /** The port clients are told to connect to (the bound port unless overridden). */
  advertisedPort: number;
  clusterId: string;
  /** Topics a Metadata request may create when it asks to (null: never, as by default). */
  autoCreateTopics: { partitions: number } | null;
  /** Why a topic may not be deleted now (the running pipelines read it), or null. */
  topicInUse(name: string): string | null;
  /** Checks of produced records' schema ids, for the topics whose config format asks for them; null: none. */
  schemaIds: SchemaIdChecks | null;
  /** Largest Fetch response, whatever the client asks (Kafka's fetch.max.bytes). */
  fetchBytesMax: number;
  /** The APIs and versions this listener serves, as ApiVersions lists them. */
  advertised: readonly { apiKey: number; minVersion: number; maxVersion: number }[];
  /** Logs an unexpected error once per distinct message, so a client that repeats it cannot flood the log. */
  logOnce(what: string, err: unknown): void;
}

export interface Session {
  /** Null until SASL succeeds when tokens are configured; without tokens, the anonymous principal. */
  principal: Principal | null;
  /** The mechanism a SaslHandshake chose; SaslAuthenticate is refused before it. */
  saslMechanism: string | null;
  /** After a SaslHandshake v0 the next frame is a bare SASL token, not a Kafka request. */
  rawSaslNext: boolean;
  /** The address and port this connection came in on (what Metadata advertises by default). */
  localAddress: string;
  localPort: number;
  /** The client's address, as DescribeGroups shows it. */
  remoteAddress: string;
}

export interface RequestContext {
  deps: ListenerDeps;
  session: Session;
  header: RequestHeader;
  /** Aborted when the connection closes or the listener stops (long polls stop waiting). */
  signal: AbortSignal;
  /** Whether the connection's principal may do what `scope` names (always, without tokens). */
  allowed(scope: string): boolean;
  /** Whether the principal holds any scope starting with `prefix` (`consume:`): for the group APIs. */
  allowedAny(prefix: string): boolean;
  /** Closes the connection once this request's response is written (a failed SASL exchange). */
  closeAfterResponse(): void;
}

/** One API's handler. `handle` is called synchronously in arrival order (Produce relies on it). */
export interface Handler {
  readonly key: number;
  readonly minVersion: number;
  readonly maxVersion: number;
  /** The response body, or null when the request gets no response (Produce with acks=0). */
  handle(ctx: RequestContext, body: unknown): Promise<object | null>;
  /** A response saying `errorCode` for everything the request asked (an unexpected failure). */
  errorBody(body: unknown, errorCode: number, apiVersion: number): object;
  /**
   * True when, once `handle` resolves, nothing refers to the request's bytes any more (no view of
   * them is kept or still being written), so the connection may reuse its frame's buffer.
   */
  readonly keepsNoBytes?: boolean;
}

/** The principal of a connection when no tokens are configured: everything is allowed. */
export const ANONYMOUS: Principal = { name: 'ANONYMOUS', scopes: ['admin'] };
