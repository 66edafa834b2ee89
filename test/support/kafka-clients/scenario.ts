/**
 * The Kafka scenarios every client suite runs, written once against the KafkaClient driver
 * (types.ts), whatever broker it talks to (a `kappa start`, or librdkafka's mock cluster):
 *
 *   keyedRecords(n, opts)               n records, keys repeating over `keys` distinct keys, unique values
 *                                       (`<label>-<i>`), headers and timestamps set where the client can
 *   checkConsumed(produced, consumed, opts) -> problems[]
 *                                       no loss, no duplicates, each key on the partition Kafka's murmur2
 *                                       partitioner picks, offsets in produce order per partition, headers
 *                                       and timestamps intact, acks matching what was read
 *   assertNoProblems(what, problems)    fails with the list (the first 30) when it is not empty
 *   produceAndConsume(t, client, bootstrap, topic, partitions, opts)
 *   groupScenario(t, client, bootstrap, topic, partitions)
 *                                       members join one by one (rebalance on join), one dies (SIGKILL,
 *                                       rebalance by session timeout); every record consumed exactly
 *                                       once across the members' committed records; committed offsets
 *                                       at the end of each partition
 *   restartScenario(t, client, kappa, topic, partitions)
 *                                       a member commits, Kappa restarts on the same data dir, the
 *                                       group's next member resumes after the committed offsets
 *   compressionScenario(t, client, bootstrap, topic, partitions, codec, kappaUrl?)
 *                                       compressed batches consumed back intact, and the same records
 *                                       read through Kappa's own HTTP reader when kappaUrl is given
 */
import assert from 'node:assert/strict';
import { partitionForKey } from '../../../src/log/partitioner.ts';
import type { Owner } from '../cleanup.ts';
import type { Ack, Codec, ConsumedRecord, GroupMember, KafkaClient, KafkaRecord, ProduceOptions } from './types.ts';

const PROBLEMS_QUOTED_MAX = 30;
const CONSUME_TIMEOUT_MS = 30_000;
/** Long enough for a member's session (6 s in the member scripts) to expire and the group to rebalance. */
const GROUP_WAIT_MS = 45_000;
/** How long a group must be quiet (no new record) before it goes on; see KafkaClient.commitDelayMs. */
const QUIET_MS = 1_000;

export interface RecordsOptions {
  /** Makes values unique across the batches of one test: `<label>-<i>`. */
  label: string;
  keys?: number;
  perRecordHeaders?: boolean;
  timestamps?: boolean;
}

/** `n` keyed records; see the file comment. Timestamps are an hour ago plus i ms (CreateTime as given). */
export function keyedRecords(n: number, opts: RecordsOptions): KafkaRecord[] {
  const keys = opts.keys ?? 13;
  const base = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
  const records: KafkaRecord[] = [];
  for (let i = 0; i < n; i++) {
    const value = `${opts.label}-${i}`;
    records.push({
      key: `key-${i % keys}`,
      value,
      headers:
        opts.perRecordHeaders === false
          ? [['suite', opts.label]]
          : [
              ['suite', opts.label],
              ['index', String(i)],
            ],
      timestamp: opts.timestamps === false ? null : base + i,
    });
  }
  return records;
}

/** The records a client can produce as asked: kcat sets one header list for all and no timestamps. */
export function recordsFor(client: KafkaClient, n: number, label: string): KafkaRecord[] {
  return keyedRecords(n, { label, perRecordHeaders: client.perRecordHeaders, timestamps: client.setsTimestamps });
}

export interface CheckOptions {
  partitions: number;
  acks?: Ack[];
  /** For records produced without a timestamp: the producer's clock when it started and ended. */
  stampedBetween?: [number, number];
  /** A group's records: several consumers, so offsets are checked per partition only after sorting. */
  fromSeveralConsumers?: boolean;
}

/** Everything that differs between what was produced and what was consumed; see the file comment. */
export function checkConsumed(produced: KafkaRecord[], consumed: ConsumedRecord[], opts: CheckOptions): string[] {
  const problems: string[] = [];
  const index = new Map(produced.map((r, i) => [r.value, i]));
  const seen = new Map<string, number>();
  for (const c of consumed) {
    const i = c.value === null ? undefined : index.get(c.value);
    if (i === undefined) {
      problems.push(`consumed a record nobody produced: ${JSON.stringify(c)}`);
      continue;
    }
    seen.set(c.value!, (seen.get(c.value!) ?? 0) + 1);
    problems.push(...checkOne(produced[i]!, i, c, opts));
  }
  for (const r of produced) {
    const n = seen.get(r.value) ?? 0;
    if (n === 0) problems.push(`lost: ${r.value} (key ${r.key})`);
    else if (n > 1) problems.push(`duplicated: ${r.value} consumed ${n} times`);
  }
  problems.push(...checkOrder(consumed, index, opts.fromSeveralConsumers === true));
  return problems;
}

function checkOne(p: KafkaRecord, i: number, c: ConsumedRecord, opts: CheckOptions): string[] {
  const problems: string[] = [];
  const what = `${p.value} (key ${p.key})`;
  if (c.key !== p.key) problems.push(`${what}: key came back as ${JSON.stringify(c.key)}`);
  if (p.key !== null) {
    const want = partitionForKey(p.key, opts.partitions);
    if (c.partition !== want) problems.push(`${what}: on partition ${c.partition}, murmur2 picks ${want}`);
  }
  if (JSON.stringify(c.headers) !== JSON.stringify(p.headers))
    problems.push(`${what}: headers ${JSON.stringify(c.headers)}, produced ${JSON.stringify(p.headers)}`);
  if (p.timestamp !== null && c.timestamp !== p.timestamp)
    problems.push(`${what}: timestamp ${c.timestamp}, produced ${p.timestamp}`);
  if (p.timestamp === null && opts.stampedBetween) {
    const [min, max] = opts.stampedBetween;
    if (c.timestamp < min || c.timestamp > max)
      problems.push(`${what}: timestamp ${c.timestamp} outside the produce run [${min}, ${max}]`);
  }
  const ack = opts.acks?.[i];
  if (ack) {
    if (ack.error !== null) problems.push(`${what}: producer got error ${ack.error}`);
    else if (ack.partition !== undefined && (ack.partition !== c.partition || ack.offset !== c.offset))
      problems.push(`${what}: acknowledged at ${ack.partition}/${ack.offset}, read at ${c.partition}/${c.offset}`);
  }
  return problems;
}

/** Per partition, offsets rise with the produce order (and, for one consumer, in the order read). */
function checkOrder(consumed: ConsumedRecord[], index: Map<string, number>, several: boolean): string[] {
  const problems: string[] = [];
  const byPartition = new Map<number, ConsumedRecord[]>();
  for (const c of consumed) byPartition.set(c.partition, [...(byPartition.get(c.partition) ?? []), c]);
  for (const [p, list] of byPartition) {
    const ordered = several ? [...list].sort((a, b) => a.offset - b.offset) : list;
    for (let k = 1; k < ordered.length; k++) {
      const [a, b] = [ordered[k - 1]!, ordered[k]!];
      if (b.offset <= a.offset && !several) problems.push(`partition ${p}: offset ${b.offset} read after ${a.offset}`);
      const [ia, ib] = [index.get(a.value ?? ''), index.get(b.value ?? '')];
      if (ia !== undefined && ib !== undefined && ib < ia && b.offset > a.offset)
        problems.push(
          `partition ${p}: ${b.value} (offset ${b.offset}) was produced before ${a.value} (offset ${a.offset})`,
        );
    }
  }
  return problems;
}

export function assertNoProblems(what: string, problems: string[]): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, PROBLEMS_QUOTED_MAX).map((p) => `  - ${p}`);
  const more = problems.length > PROBLEMS_QUOTED_MAX ? [`  … and ${problems.length - PROBLEMS_QUOTED_MAX} more`] : [];
  assert.fail(`${what}: ${problems.length} problems\n${[...shown, ...more].join('\n')}`);
}

function allPartitions(partitions: number): number[] {
  return Array.from({ length: partitions }, (_, p) => p);
}

export interface ProduceAndConsumeOptions extends ProduceOptions {
  n?: number;
  label?: string;
}

/** Produces keyed records with `client` and reads them back with it; asserts checkConsumed finds nothing. */
export async function produceAndConsume(
  t: Owner,
  client: KafkaClient,
  bootstrap: string,
  topic: string,
  partitions: number,
  opts: ProduceAndConsumeOptions = {},
): Promise<{ produced: KafkaRecord[]; consumed: ConsumedRecord[] }> {
  const produced = recordsFor(client, opts.n ?? 200, opts.label ?? `${client.name}-${topic}`);
  const before = Date.now();
  const acks = await client.produce(t, bootstrap, topic, produced, opts);
  const after = Date.now();
  assertNoProblems(
    `${client.name} producing to ${topic}`,
    acks.flatMap((a, i) => (a.error ? [`#${i}: ${a.error}`] : [])),
  );
  const consumed = await client.consume(t, bootstrap, topic, {
    partitions: allPartitions(partitions),
    count: produced.length,
    timeoutMs: CONSUME_TIMEOUT_MS,
  });
  const problems = checkConsumed(produced, consumed, {
    partitions,
    acks,
    stampedBetween: [before - 1_000, after + 1_000],
  });
  assertNoProblems(`${client.name}: ${produced.length} records produced to ${topic} and consumed back`, problems);
  return { produced, consumed };
}

/** Polls `ok` every 100 ms; fails after `timeoutMs` quoting the members. */
export async function waitForGroup(
  what: string,
  members: GroupMember[],
  ok: () => boolean,
  timeoutMs = GROUP_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const quoted = (): string => members.map((m) => m.describe()).join('\n');
  while (!ok()) {
    const gone = members.filter((m) => m.failed);
    if (gone.length > 0)
      assert.fail(`member ${gone.map((m) => m.name).join(', ')} ended while waiting for ${what}\n${quoted()}`);
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}\n${quoted()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Lets a rebalance settle for clients that need it (KafkaClient.rebalanceSettleMs). */
async function settle(client: KafkaClient): Promise<void> {
  if (client.rebalanceSettleMs > 0) await new Promise((r) => setTimeout(r, client.rebalanceSettleMs));
}

/** The members' assignments are disjoint, non-empty, and cover every partition. */
export function splitsAll(members: GroupMember[], partitions: number): boolean {
  const owned = members.map((m) => m.assignment ?? []);
  if (owned.some((a) => a.length === 0)) return false;
  const flat = owned.flat().sort((a, b) => a - b);
  return JSON.stringify(flat) === JSON.stringify(allPartitions(partitions));
}

function recordCount(members: GroupMember[]): number {
  return members.reduce((n, m) => n + m.records.length, 0);
}

/**
 * Waits until the members together hold `n` records and no new one came for QUIET_MS, or for as long
 * as the client may take to commit what its members reported.
 */
async function waitForRecords(client: KafkaClient, what: string, members: GroupMember[], n: number): Promise<void> {
  await waitForGroup(`${what}: ${n} records across the members`, members, () => recordCount(members) >= n);
  const quietMs = Math.max(QUIET_MS, client.commitDelayMs + QUIET_MS);
  let last = recordCount(members);
  let quietSince = Date.now();
  while (Date.now() - quietSince < quietMs) {
    await new Promise((r) => setTimeout(r, 100));
    if (recordCount(members) !== last) [last, quietSince] = [recordCount(members), Date.now()];
  }
}

async function produceOrFail(
  t: Owner,
  client: KafkaClient,
  bootstrap: string,
  topic: string,
  records: KafkaRecord[],
  opts: ProduceOptions = {},
): Promise<void> {
  const acks = await client.produce(t, bootstrap, topic, records, opts);
  assertNoProblems(
    `${client.name} producing to ${topic}`,
    acks.flatMap((a, i) => (a.error ? [`#${i}: ${a.error}`] : [])),
  );
}

export interface GroupScenarioOptions {
  produce?: ProduceOptions;
  /** The members' client-specific settings, such as librdkafka's partition.assignment.strategy. */
  settings?: Record<string, string | number | boolean>;
}

/**
 * A group of up to three members of `client` on `topic` (which should have 3 partitions); see the
 * file comment. `opts.settings` go to every member (an assignor, say).
 */
export async function groupScenario(
  t: Owner,
  client: KafkaClient,
  bootstrap: string,
  topic: string,
  partitions: number,
  opts: GroupScenarioOptions = {},
): Promise<void> {
  const { produce = {}, settings = {} } = opts;
  const group = `${client.name}-group-${topic}`;
  const label = `${client.name}-${topic}`;
  const batches = [1, 2, 3, 4].map((b) => recordsFor(client, 30, `${label}-b${b}`));
  const member = (name: string): GroupMember => client.startMember(t, bootstrap, topic, group, name, settings);

  await produceOrFail(t, client, bootstrap, topic, batches[0]!, produce);
  const a = member('a');
  await waitForGroup('member a to be assigned every partition', [a], () => splitsAll([a], partitions));
  await settle(client);
  await waitForRecords(client, 'member a alone', [a], 30);

  const b = member('b');
  await waitForGroup('a rebalance that splits the partitions between a and b', [a, b], () =>
    splitsAll([a, b], partitions),
  );
  await settle(client);
  await produceOrFail(t, client, bootstrap, topic, batches[1]!, produce);
  await waitForRecords(client, 'members a and b', [a, b], 60);

  const c = member('c');
  await waitForGroup('a rebalance that splits the partitions among a, b and c', [a, b, c], () =>
    splitsAll([a, b, c], partitions),
  );
  await settle(client);
  await produceOrFail(t, client, bootstrap, topic, batches[2]!, produce);
  await waitForRecords(client, 'members a, b and c', [a, b, c], 90);

  await b.kill();
  await waitForGroup('a rebalance after b died, giving its partitions to a and c', [a, b, c], () =>
    splitsAll([a, c], partitions),
  );
  await settle(client);
  await produceOrFail(t, client, bootstrap, topic, batches[3]!, produce);
  await waitForRecords(client, 'members a and c after b died', [a, b, c], 120);
  await Promise.all([a.close(), c.close()]);

  const consumed = [a, b, c].flatMap((m) => m.records);
  const problems = checkConsumed(batches.flat(), consumed, { partitions, fromSeveralConsumers: true });
  for (const m of [a, b, c]) problems.push(...m.errors.map((e) => `member ${m.name}: ${e}`));
  problems.push(...(await committedAtEnd(t, client, bootstrap, topic, group, partitions, consumed)));
  // Who read what, first in the list: a duplicate is explained by which members read that partition.
  if (problems.length > 0) problems.unshift(...[a, b, c].map(readSummary));
  assertNoProblems(`${client.name}: a group of three on ${topic}, one of which died`, problems);
}

/** `member a (last assignment [0]) read partition 0: offsets 0-29, 30-59; partition 1: offsets 0-9`. */
function readSummary(m: GroupMember): string {
  const byPartition = new Map<number, number[]>();
  for (const r of m.records) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.offset]);
  const ranges = [...byPartition.entries()]
    .sort(([x], [y]) => x - y)
    .map(([p, offsets]) => `partition ${p}: offsets ${runsOf(offsets)}`);
  return `member ${m.name} (last assignment ${JSON.stringify(m.assignment)}) read ${ranges.join('; ') || 'nothing'}`;
}

/** Offsets in the order read, as runs of consecutive ones: `0-29, 30-59` (a restart shows as a new run). */
function runsOf(offsets: number[]): string {
  const runs: string[] = [];
  let start = offsets[0]!;
  for (let i = 1; i <= offsets.length; i++) {
    if (i < offsets.length && offsets[i] === offsets[i - 1]! + 1) continue;
    runs.push(start === offsets[i - 1] ? `${start}` : `${start}-${offsets[i - 1]}`);
    start = offsets[i]!;
  }
  return runs.join(', ');
}

/** The group's committed offset of each partition is one past the last record consumed there. */
async function committedAtEnd(
  t: Owner,
  client: KafkaClient,
  bootstrap: string,
  topic: string,
  group: string,
  partitions: number,
  consumed: ConsumedRecord[],
): Promise<string[]> {
  const committed = await client.committed(t, bootstrap, topic, group, allPartitions(partitions));
  const problems: string[] = [];
  for (const p of allPartitions(partitions)) {
    const offsets = consumed.filter((c) => c.partition === p).map((c) => c.offset);
    const want = offsets.length === 0 ? -1 : Math.max(...offsets) + 1;
    if (want >= 0 && committed.get(p) !== want)
      problems.push(`partition ${p}: committed offset ${committed.get(p)}, want ${want}`);
  }
  return problems;
}

export interface RestartableKafka {
  bootstrap: string;
  restart(): Promise<RestartableKafka>;
}

/**
 * A member commits everything it read and leaves; the broker restarts on the same data; the group's
 * committed offsets are still there and its next member reads only what came after. Returns the
 * restarted broker.
 */
export async function restartScenario<K extends RestartableKafka>(
  t: Owner,
  client: KafkaClient,
  kafka: K,
  topic: string,
  partitions: number,
  produce: ProduceOptions = {},
): Promise<K> {
  const group = `${client.name}-resume-${topic}`;
  const label = `${client.name}-${topic}-resume`;
  const [first, second] = [recordsFor(client, 40, `${label}-1`), recordsFor(client, 40, `${label}-2`)];
  await produceOrFail(t, client, kafka.bootstrap, topic, first, produce);
  const a = client.startMember(t, kafka.bootstrap, topic, group, 'before-restart');
  await waitForRecords(client, 'the member before the restart', [a], first.length);
  await a.close();
  const before = await client.committed(t, kafka.bootstrap, topic, group, allPartitions(partitions));

  const restarted = (await kafka.restart()) as K;
  const after = await client.committed(t, restarted.bootstrap, topic, group, allPartitions(partitions));
  assert.deepEqual([...after.entries()].sort(), [...before.entries()].sort(), 'committed offsets after the restart');
  await produceOrFail(t, client, restarted.bootstrap, topic, second, produce);
  const b = client.startMember(t, restarted.bootstrap, topic, group, 'after-restart');
  await waitForRecords(client, 'the member after the restart', [b], second.length);
  await b.close();
  const problems = checkConsumed(second, b.records, { partitions, fromSeveralConsumers: true });
  problems.push(...checkConsumed(first, a.records, { partitions, fromSeveralConsumers: true }));
  problems.push(...[a, b].flatMap((m) => m.errors.map((e) => `member ${m.name}: ${e}`)));
  assertNoProblems(`${client.name}: group ${group} resumed after a restart of the broker`, problems);
  return restarted;
}

/**
 * Records produced in `codec`-compressed batches, consumed back intact by the client, and (with
 * kappaUrl) read back through Kappa's HTTP reader, GET /v1/topics/:topic/records.
 */
export async function compressionScenario(
  t: Owner,
  client: KafkaClient,
  bootstrap: string,
  topic: string,
  partitions: number,
  codec: Codec,
  kappaUrl?: string,
  produce: ProduceOptions = {},
): Promise<void> {
  const { produced } = await produceAndConsume(t, client, bootstrap, topic, partitions, {
    ...produce,
    compression: codec,
    label: `${client.name}-${codec}`,
    n: 300,
  });
  if (kappaUrl === undefined) return;
  const read = await readThroughHttp(kappaUrl, topic, partitions);
  assertNoProblems(
    `${client.name}: ${codec}-compressed records read through Kappa's HTTP API`,
    checkConsumed(produced, read, { partitions }),
  );
}

/** Every record of `topic` through Kappa's own reader, as ConsumedRecords. */
export async function readThroughHttp(url: string, topic: string, partitions: number): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  for (const partition of allPartitions(partitions)) {
    let from = 0;
    for (;;) {
      const res = await fetch(`${url}/v1/topics/${topic}/records?partition=${partition}&from=${from}&limit=1000`);
      assert.equal(res.status, 200, `GET records of ${topic}/${partition}: ${await res.clone().text()}`);
      const body = (await res.json()) as {
        records: {
          offset: number;
          timestamp: number;
          key: string | null;
          value: unknown;
          headers: Record<string, string | null>;
        }[];
        next: number;
      };
      for (const r of body.records)
        out.push({
          partition,
          offset: r.offset,
          key: r.key,
          value: typeof r.value === 'string' || r.value === null ? r.value : JSON.stringify(r.value),
          headers: Object.entries(r.headers),
          timestamp: r.timestamp,
        });
      if (body.records.length === 0) break;
      from = body.next;
    }
  }
  return out;
}
