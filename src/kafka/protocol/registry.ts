/**
 * The APIs the codec knows, their tables, and the compiled plan of each (API, version, direction),
 * built on first use and kept: a plan is pure data derived from the tables, the same for every caller.
 */
import { apiVersions } from './apis/api-versions.ts';
import { createTopics } from './apis/create-topics.ts';
import { deleteTopics } from './apis/delete-topics.ts';
import { describeConfigs } from './apis/describe-configs.ts';
import { describeGroups } from './apis/describe-groups.ts';
import { fetch } from './apis/fetch.ts';
import { findCoordinator } from './apis/find-coordinator.ts';
import { heartbeat } from './apis/heartbeat.ts';
import { initProducerId } from './apis/init-producer-id.ts';
import { joinGroup } from './apis/join-group.ts';
import { leaveGroup } from './apis/leave-group.ts';
import { listGroups } from './apis/list-groups.ts';
import { deleteGroups } from './apis/delete-groups.ts';
import { listOffsets } from './apis/list-offsets.ts';
import { metadata } from './apis/metadata.ts';
import { offsetCommit } from './apis/offset-commit.ts';
import { offsetFetch } from './apis/offset-fetch.ts';
import { produce } from './apis/produce.ts';
import { saslAuthenticate } from './apis/sasl-authenticate.ts';
import { saslHandshake } from './apis/sasl-handshake.ts';
import { syncGroup } from './apis/sync-group.ts';
import { compileStruct, type StructPlan } from './plan.ts';
import type { ApiSpec, ApiTable } from './types.ts';
import { parseVersions } from './versions.ts';

const TABLES: readonly ApiTable[] = [
  produce,
  fetch,
  listOffsets,
  metadata,
  offsetCommit,
  offsetFetch,
  findCoordinator,
  joinGroup,
  heartbeat,
  leaveGroup,
  syncGroup,
  describeGroups,
  listGroups,
  deleteGroups,
  saslHandshake,
  apiVersions,
  createTopics,
  deleteTopics,
  initProducerId,
  describeConfigs,
  saslAuthenticate,
];

function toSpec(table: ApiTable): ApiSpec {
  const range = parseVersions(table.versions);
  const flexible = parseVersions(table.flexibleVersions);
  return {
    name: table.name,
    key: table.key,
    minVersion: range.min,
    maxVersion: range.max,
    firstFlexibleVersion: flexible.min <= flexible.max ? flexible.min : null,
    request: table.request,
    response: table.response,
  };
}

/** Each API by key: its name, the versions its table covers, its first flexible version, its fields. */
export const API_SPECS: ReadonlyMap<number, ApiSpec> = new Map(TABLES.map((t) => [t.key, toSpec(t)]));

/** API keys by name: API_KEYS.Produce === 0. */
export const API_KEYS = Object.freeze(Object.fromEntries(TABLES.map((t) => [t.name, t.key]))) as Readonly<
  Record<ApiName, number>
>;

export type ApiName =
  | 'Produce'
  | 'Fetch'
  | 'ListOffsets'
  | 'Metadata'
  | 'OffsetCommit'
  | 'OffsetFetch'
  | 'FindCoordinator'
  | 'JoinGroup'
  | 'Heartbeat'
  | 'LeaveGroup'
  | 'SyncGroup'
  | 'DescribeGroups'
  | 'ListGroups'
  | 'DeleteGroups'
  | 'SaslHandshake'
  | 'ApiVersions'
  | 'CreateTopics'
  | 'DeleteTopics'
  | 'InitProducerId'
  | 'DescribeConfigs'
  | 'SaslAuthenticate';

export function isFlexible(spec: ApiSpec, version: number): boolean {
  return spec.firstFlexibleVersion !== null && version >= spec.firstFlexibleVersion;
}

const plans = new Map<number, StructPlan>();

/** The compiled plan of one API version's request or response; the caller checked the version. */
export function planFor(spec: ApiSpec, version: number, response: boolean): StructPlan {
  const id = spec.key * 4096 + version * 2 + (response ? 1 : 0);
  let plan = plans.get(id);
  if (!plan) {
    plan = compileStruct(response ? spec.response : spec.request, version, isFlexible(spec, version));
    plans.set(id, plan);
  }
  return plan;
}
