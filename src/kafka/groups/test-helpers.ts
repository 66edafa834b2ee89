/**
 * Helpers for the coordinator's tests: a coordinator on manual time and an in-memory offset store,
 * requests built with Kafka's defaults, and promises whose settling a test can observe. Nothing in
 * the coordinator imports this file.
 */
import assert from 'node:assert/strict';
import { GroupCoordinator } from './coordinator.ts';
import type { GroupCoordinatorOptions } from './core.ts';
import { MemoryOffsetStore } from './memory-offset-store.ts';
import { ManualTime } from './time.ts';
import type { GroupRequestContext, JoinGroupRequest, JoinGroupResponse, SyncGroupResponse } from './types.ts';

export const SESSION_MS = 10_000;
export const REBALANCE_MS = 30_000;

export interface Harness {
  coordinator: GroupCoordinator;
  time: ManualTime;
  offsets: MemoryOffsetStore;
}

export function harness(opts: Partial<GroupCoordinatorOptions> = {}): Harness {
  const time = new ManualTime();
  const offsets = new MemoryOffsetStore();
  const coordinator = new GroupCoordinator({
    offsets,
    time,
    initialRebalanceDelayMs: 0,
    minSessionTimeoutMs: 1_000,
    ...opts,
  });
  return { coordinator, time, offsets };
}

export function ctx(apiVersion: number, clientId = 'client'): GroupRequestContext {
  return { apiVersion, clientId, clientHost: '/127.0.0.1' };
}

/** The consumer protocol's subscription bytes for `topics` (version 0, no user data). */
export function subscription(...topics: string[]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0, 0]), int32(topics.length)];
  for (const t of topics) parts.push(string(t));
  parts.push(int32(-1));
  return Buffer.concat(parts);
}

/** The consumer protocol's assignment bytes (version 0, no user data). */
export function assignment(parts: Record<string, number[]>): Uint8Array {
  const out: Buffer[] = [Buffer.from([0, 0]), int32(Object.keys(parts).length)];
  for (const [topic, partitions] of Object.entries(parts)) {
    out.push(string(topic), int32(partitions.length), ...partitions.map(int32));
  }
  out.push(int32(-1));
  return Buffer.concat(out);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function string(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeInt16BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

export function joinRequest(groupId: string, memberId: string, over: Partial<JoinGroupRequest> = {}): JoinGroupRequest {
  return {
    groupId,
    sessionTimeoutMs: SESSION_MS,
    rebalanceTimeoutMs: REBALANCE_MS,
    memberId,
    groupInstanceId: null,
    protocolType: 'consumer',
    protocols: [{ name: 'range', metadata: subscription('sales') }],
    ...over,
  };
}

/** A promise and whether it has settled yet (checked after `settle()`). */
export interface Watched<T> {
  promise: Promise<T>;
  readonly done: boolean;
  readonly value: T;
}

export function watch<T>(promise: Promise<T>): Watched<T> {
  let done = false;
  let value: T | undefined;
  promise.then(
    (v) => {
      done = true;
      value = v;
    },
    () => {
      done = true;
    },
  );
  return {
    promise,
    get done() {
      return done;
    },
    get value() {
      assert.ok(done, 'the request has been answered');
      return value as T;
    },
  };
}

/** Lets every promise that can settle now do so. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A v5 member that joins from scratch: the MEMBER_ID_REQUIRED round trip, then the join proper.
 * Returns the member id and the watched JoinGroup (answered when the rebalance completes).
 */
export async function joinNew(
  h: Harness,
  groupId: string,
  over: Partial<JoinGroupRequest> = {},
  apiVersion = 5,
): Promise<{ memberId: string; join: Watched<JoinGroupResponse> }> {
  const first = await h.coordinator.joinGroup(joinRequest(groupId, '', over), ctx(apiVersion));
  assert.equal(first.errorCode, 79, 'MEMBER_ID_REQUIRED');
  const memberId = first.memberId;
  return { memberId, join: watch(h.coordinator.joinGroup(joinRequest(groupId, memberId, over), ctx(apiVersion))) };
}

export async function sync(
  h: Harness,
  groupId: string,
  memberId: string,
  generationId: number,
  assignments: { memberId: string; assignment: Uint8Array }[] = [],
): Promise<Watched<SyncGroupResponse>> {
  const w = watch(h.coordinator.syncGroup({ groupId, generationId, memberId, assignments }, ctx(3)));
  await settle();
  return w;
}

export function heartbeat(h: Harness, groupId: string, memberId: string, generationId: number): number {
  return h.coordinator.heartbeat({ groupId, generationId, memberId }, ctx(3)).errorCode;
}
