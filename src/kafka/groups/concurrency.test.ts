import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUP_ERRORS as E } from './errors.ts';
import { type Harness, type Watched, assignment, ctx, harness, joinRequest, settle, watch } from './test-helpers.ts';
import type { JoinGroupResponse, SyncGroupResponse } from './types.ts';

/** A small seeded generator (mulberry32), so a failing interleaving can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let x = s;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A client that follows the protocol as a Kafka consumer does, one request at a time: join (with
 * the member-id round trip), sync (assigning, if leader), then heartbeat; it rejoins on
 * REBALANCE_IN_PROGRESS and starts over on UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION. `step` sends its
 * next request when the previous one has been answered.
 */
class SimClient {
  memberId = '';
  generationId = -1;
  stableGeneration = -1;
  phase: 'join' | 'sync' | 'heartbeat' = 'join';
  inFlight: Watched<JoinGroupResponse> | Watched<SyncGroupResponse> | null = null;
  readonly requests: Watched<unknown>[] = [];

  constructor(
    readonly h: Harness,
    readonly groupId: string,
    readonly apiVersion: number,
  ) {}

  /** Sends the next request if the last one was answered; returns false while one is outstanding. */
  step(): void {
    if (this.inFlight !== null) {
      if (!this.inFlight.done) return;
      const done = this.inFlight;
      this.inFlight = null;
      if (this.phase === 'join') this.afterJoin(done.value as JoinGroupResponse);
      else this.afterSync(done.value as SyncGroupResponse);
      return;
    }
    if (this.phase === 'join') {
      this.send(this.h.coordinator.joinGroup(joinRequest(this.groupId, this.memberId), ctx(this.apiVersion)));
    } else if (this.phase === 'heartbeat') {
      const code = this.h.coordinator.heartbeat({
        groupId: this.groupId,
        generationId: this.generationId,
        memberId: this.memberId,
      }).errorCode;
      this.onError(code);
    }
  }

  private send(p: Promise<JoinGroupResponse> | Promise<SyncGroupResponse>): void {
    const w = watch(p as Promise<unknown>);
    this.requests.push(w);
    this.inFlight = w as Watched<JoinGroupResponse>;
  }

  private afterJoin(r: JoinGroupResponse): void {
    if (r.errorCode === E.MEMBER_ID_REQUIRED) {
      this.memberId = r.memberId;
      return;
    }
    if (r.errorCode !== E.NONE) return this.onError(r.errorCode);
    this.memberId = r.memberId;
    this.generationId = r.generationId;
    this.phase = 'sync';
    const assignments =
      r.leader === this.memberId
        ? r.members.map((m, i) => ({ memberId: m.memberId, assignment: assignment({ t: [i] }) }))
        : [];
    this.send(
      this.h.coordinator.syncGroup(
        { groupId: this.groupId, generationId: this.generationId, memberId: this.memberId, assignments },
        ctx(3),
      ),
    );
  }

  private afterSync(r: SyncGroupResponse): void {
    if (r.errorCode !== E.NONE) return this.onError(r.errorCode);
    this.phase = 'heartbeat';
    this.stableGeneration = this.generationId;
  }

  private onError(code: number): void {
    if (code === E.NONE) return;
    this.phase = 'join';
    this.stableGeneration = -1;
    if (code === E.UNKNOWN_MEMBER_ID || code === E.ILLEGAL_GENERATION || code === E.FENCED_INSTANCE_ID) {
      this.memberId = '';
      this.generationId = -1;
    }
  }
}

describe('many members at once', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    test(`interleaved joins, syncs, heartbeats, deaths and leaves settle into one generation; close answers every request (seed ${seed})`, async () => {
      const rand = random(seed);
      const h = harness({ initialRebalanceDelayMs: 200 });
      const live: SimClient[] = [];
      const all: SimClient[] = [];
      const spawn = (): void => {
        const c = new SimClient(h, 'g', rand() < 0.3 ? 3 : 5);
        live.push(c);
        all.push(c);
      };
      for (let i = 0; i < 6; i++) spawn();
      // Chaos: clients step at random, some die silently, some leave, some arrive, time moves in
      // uneven steps.
      for (let round = 0; round < 400; round++) {
        for (const c of live) if (rand() < 0.7) c.step();
        const r = rand();
        if (r < 0.02 && live.length > 1) live.splice(Math.floor(rand() * live.length), 1);
        else if (r < 0.04 && live.length > 1) {
          const [c] = live.splice(Math.floor(rand() * live.length), 1);
          if (c.memberId !== '')
            h.coordinator.leaveGroup({ groupId: 'g', members: [{ memberId: c.memberId }] }, ctx(3));
        } else if (r < 0.07 && live.length < 12) spawn();
        h.time.advance(Math.floor(rand() * 1_500));
        await settle();
      }
      // Calm: the live clients follow the protocol, heartbeating every second; the dead ones time out.
      for (let round = 0; round < 200; round++) {
        for (const c of live) c.step();
        h.time.advance(1_000);
        await settle();
      }
      // The chaos really happened: members came and went, through many generations.
      assert.ok(all.length - live.length >= 5, `${all.length - live.length} clients died or left`);
      assert.ok(live[0].stableGeneration >= 5, `generation ${live[0].stableGeneration}`);
      const generations = new Set(live.map((c) => c.stableGeneration));
      assert.equal(generations.size, 1, `every live client is in one generation (${[...generations].join(', ')})`);
      assert.ok(live[0].stableGeneration > 0, 'and that generation is Stable');
      const [described] = (await h.coordinator.describeGroups({ groups: ['g'] })).groups;
      assert.equal(described.groupState, 'Stable');
      assert.deepEqual(
        described.members.map((m) => m.memberId).sort(),
        live.map((c) => c.memberId).sort(),
        'the group is exactly the live clients: the dead ones were removed',
      );
      // One more join parks a request; closing answers it and every other one still waiting.
      const newcomer = new SimClient(h, 'g', 3);
      newcomer.step();
      all.push(newcomer);
      await settle();
      h.coordinator.close();
      await settle();
      const waiting = all.flatMap((c) => c.requests).filter((w) => !w.done);
      assert.equal(waiting.length, 0, `${waiting.length} request(s) were never answered`);
      assert.equal(h.time.pending, 0, 'no timer is left');
      const after = await h.coordinator.joinGroup(joinRequest('g', ''), ctx(5));
      assert.equal(after.errorCode, E.COORDINATOR_NOT_AVAILABLE);
    });
  }

  test('closing answers parked JoinGroup and SyncGroup requests NOT_COORDINATOR', async () => {
    const h = harness({ initialRebalanceDelayMs: 10_000 });
    const join = watch(h.coordinator.joinGroup(joinRequest('g', ''), ctx(3)));
    await settle();
    h.coordinator.close();
    await settle();
    assert.equal(join.value.errorCode, E.NOT_COORDINATOR);
  });
});
