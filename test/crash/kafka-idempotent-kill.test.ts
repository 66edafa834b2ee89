/**
 * SIGKILL of `kappa start` while a librdkafka idempotent producer (python3-confluent-kafka,
 * enable.idempotence=true, acks=all, linger.ms=5: test/support/kafka-robust/idempotent_producer.py)
 * is sending numbered, keyed records. The test kills the whole `kappa start` process group KILLS
 * times, each once the producer has had at least ACKS_BETWEEN_KILLS more records acknowledged, and
 * starts it again each time on the same data dir and the same Kafka port, so the producer reconnects
 * by itself and retries its in-flight batches with the same producer id, epoch and sequences. Once
 * the producer has flushed everything and exited, `kappa start` stops and `kappa consume` reads the
 * whole topic back:
 *   - every acknowledged id is in the topic exactly once, at the partition and offset its delivery
 *     report gave;
 *   - no id is in the topic twice, acknowledged or not (a batch retried across a kill is
 *     deduplicated by the producer state the log recovered, as src/log/producer-state.ts keeps it);
 *   - per key, ids rise with offsets (the order the producer sent them);
 *   - the producer saw no fatal idempotence error and nothing failed;
 *   - at every kill, records were handed to librdkafka and not yet acknowledged (the producer
 *     prints {"sent": n} every 100 records), so each kill lands mid-stream.
 *
 * Needs Debian's python3-confluent-kafka (skipped by `npm test`; `npm run test:all -- kafka-idempotent`).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireDebianPackage } from '../support/debian.ts';
import { PYTHON, PYTHON3_CONFLUENT_KAFKA, kafkaTopicsConfig } from '../support/kafka-clients.ts';
import { type OwnedChild, type Owner, runKappa, spawnOwned, startKappa, waitFor } from '../support/processes.ts';
import { tempDataProject } from '../support/project.ts';

const PRODUCER = fileURLToPath(new URL('../support/kafka-robust/idempotent_producer.py', import.meta.url));
const TOPIC = 'orders';
const PARTITIONS = 3;
const KEYS = 16;
const RECORDS = 40_000;
const PER_SECOND = 2_500;
const KILLS = 3;
const ACKS_BETWEEN_KILLS = 2_000;
const START_TIMEOUT_MS = 60_000;
const ACKS_TIMEOUT_MS = 60_000;
const PRODUCER_END_TIMEOUT_MS = 180_000;

interface ProducerLine {
  ack?: number;
  partition?: number;
  offset?: number;
  failed?: number;
  error?: string;
  fatal?: string;
  done?: boolean;
  unacknowledged?: number;
}

function linesOf(child: OwnedChild): ProducerLine[] {
  return child.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ProducerLine);
}

const ackCount = (producer: OwnedChild): number => (producer.stdout.match(/"ack": /g) ?? []).length;
const lastSent = (producer: OwnedChild): number =>
  Math.max(0, ...[...producer.stdout.matchAll(/"sent": (\d+)/g)].map((m) => Number(m[1])));

/** A port free right now (the listener takes it a moment later; nothing else on this box binds ports at random). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function start(t: Owner, dir: string, config: string, kafkaPort: number): OwnedChild {
  const args = ['--data-dir', dir, '--config', config, 'start', '--port', '0', '--kafka-port', String(kafkaPort)];
  return startKappa(t, [...args, '--workers', '0']);
}

/** SIGKILL to the whole process group (kappa start and anything it forked), then its end. */
async function killHard(kappa: OwnedChild): Promise<void> {
  process.kill(-kappa.pid, 'SIGKILL');
  const exit = await Promise.race([kappa.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
  assert.ok(exit !== null && exit.signal === 'SIGKILL', `kappa start died of SIGKILL (${JSON.stringify(exit)})`);
}

interface Stored {
  partition: number;
  offset: number;
  key: string;
  id: number;
}

async function readTopic(dir: string): Promise<Stored[]> {
  const run = await runKappa(['--data-dir', dir, 'consume', TOPIC, '--with-meta'], { timeoutMs: 60_000 });
  assert.equal(run.code, 0, run.stderr);
  return run.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const r = JSON.parse(l) as { partition: number; offset: number; key: string; value: unknown };
      const value = typeof r.value === 'string' ? (JSON.parse(r.value) as { id: number }) : (r.value as { id: number });
      return { partition: r.partition, offset: r.offset, key: r.key, id: value.id };
    });
}

/** Everything that breaks "every acknowledged record exactly once, where it was acknowledged, in order per key". */
function problemsOf(lines: ProducerLine[], stored: Stored[]): string[] {
  const problems: string[] = [];
  const byId = new Map<number, Stored[]>();
  for (const s of stored) byId.set(s.id, [...(byId.get(s.id) ?? []), s]);
  for (const [id, copies] of byId)
    if (copies.length > 1)
      problems.push(
        `id ${id} is stored ${copies.length} times: ${copies.map((c) => `${c.partition}/${c.offset}`).join(', ')}`,
      );
  for (const l of lines) {
    if (l.fatal !== undefined) problems.push(`the producer got a fatal error: ${l.fatal}`);
    if (l.failed !== undefined) problems.push(`record ${l.failed} failed: ${l.error}`);
    if (l.ack === undefined) continue;
    const copies = byId.get(l.ack) ?? [];
    if (copies.length === 0) problems.push(`acknowledged id ${l.ack} (${l.partition}/${l.offset}) is not stored`);
    else if (copies[0]!.partition !== l.partition || copies[0]!.offset !== l.offset)
      problems.push(
        `id ${l.ack} acknowledged at ${l.partition}/${l.offset}, stored at ${copies[0]!.partition}/${copies[0]!.offset}`,
      );
  }
  const byKey = new Map<string, Stored[]>();
  for (const s of stored) byKey.set(s.key, [...(byKey.get(s.key) ?? []), s]);
  for (const [key, list] of byKey) {
    list.sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < list.length; i++)
      if (list[i]!.id <= list[i - 1]!.id)
        problems.push(`${key}: id ${list[i]!.id} at offset ${list[i]!.offset} after id ${list[i - 1]!.id}`);
  }
  return problems;
}

test(
  `SIGKILL of kappa start ${KILLS} times under a librdkafka idempotent producer (acks=all): every acknowledged record stored exactly once`,
  { timeout: 420_000 },
  async (t) => {
    if (requireDebianPackage(t, { ...PYTHON3_CONFLUENT_KAFKA, suite: 'the Kafka SIGKILL crash test' }) === null) return;
    const project = tempDataProject(
      t,
      'kappa-kafka-kill-',
      kafkaTopicsConfig([{ name: TOPIC, partitions: PARTITIONS }]),
    );
    const port = await freePort();
    let kappa = start(t, project.dir, project.config, port);
    await kappa.waitForOutput(/Kafka API on \S+:\d+/, { timeoutMs: START_TIMEOUT_MS });
    const spec = { bootstrap: `127.0.0.1:${port}`, topic: TOPIC, count: RECORDS, keys: KEYS, perSecond: PER_SECOND };
    const producer = spawnOwned(t, PYTHON, [PRODUCER, JSON.stringify(spec)]);

    const killedAt: number[] = [];
    /** At each kill: records handed to librdkafka but not yet acknowledged (in flight or queued), at least. */
    const outstanding: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const want = ackCount(producer) + ACKS_BETWEEN_KILLS;
      // Enough acknowledgements, and records on their way (handed to librdkafka, not acknowledged):
      // the kill must land mid-stream, not in a pause between deliveries.
      const at = await waitFor(
        'acknowledgements, with records on their way',
        async () => {
          const acked = ackCount(producer);
          const sent = lastSent(producer);
          return acked >= want && sent > acked ? { acked, sent } : null;
        },
        { timeoutMs: ACKS_TIMEOUT_MS, intervalMs: 20, child: kappa },
      );
      if (!producer.running) break;
      killedAt.push(at.acked);
      outstanding.push(at.sent - at.acked);
      await killHard(kappa);
      kappa = start(t, project.dir, project.config, port);
      await kappa.waitForOutput(/Kafka API on \S+:\d+/, { timeoutMs: START_TIMEOUT_MS });
    }
    const ended = await Promise.race([
      producer.exited,
      new Promise<null>((r) => setTimeout(() => r(null), PRODUCER_END_TIMEOUT_MS)),
    ]);
    assert.ok(ended !== null, `the producer did not finish:\n${producer.stderr.slice(-4_000)}`);
    assert.equal(ended.code, 0, producer.stderr.slice(-4_000));
    assert.equal((await kappa.stop()).code, 0, kappa.stderr.slice(-4_000));

    const lines = linesOf(producer);
    const done = lines.find((l) => l.done);
    const acks = lines.filter((l) => l.ack !== undefined).length;
    const stored = await readTopic(project.dir);
    t.diagnostic(
      `killed after ${killedAt.join(', ')} acks, with at least ${outstanding.join(', ')} records unacknowledged; ${acks} of ${RECORDS} acknowledged, ${stored.length} stored, ${done?.unacknowledged} never reported`,
    );
    assert.equal(killedAt.length, KILLS, 'the producer was still sending at every kill');
    assert.ok(
      outstanding.every((n) => n > 0),
      `records were on their way at every kill: ${outstanding.join(', ')}`,
    );
    assert.deepEqual(problemsOf(lines, stored).slice(0, 30), []);
    assert.equal(done?.unacknowledged, 0, 'the producer flushed every record');
    assert.equal(acks, RECORDS, 'every record was acknowledged in the end');
    assert.equal(stored.length, RECORDS);
  },
);
