/**
 * What a user sees of a cluster: two `kappa start` processes sharing a Kafka-protocol log (a third
 * Kappa's Kafka listener) and one PostgreSQL database. `GET /v1/pipelines` of either process shows
 * both processes (live, one coordinator, how many tasks each owns) and every task's owner, the
 * tasks the other process runs included; `kappa lag` and `kappa views` given the same `--log` and
 * `--store` (or KAPPA_LOG / KAPPA_STORE) show each task's owner and a table of the processes, in
 * text and in JSON, from a data dir that holds nothing. After one process is SIGKILLed it shows as
 * dead (no heartbeat for longer than the session timeout) and its tasks' owner is the other process.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tempDir } from '../support/cleanup.ts';
import { startKappaWithKafka } from '../support/kafka-clients.ts';
import { postgresForFile } from '../support/postgres.ts';
import { type RunResult, runKappa } from '../support/processes.ts';
import {
  type Member,
  PARTITIONS,
  SESSION_TIMEOUT_MS,
  startMember,
  startProducer,
  waitUntil,
  writeConfig,
} from './support.ts';

const postgres = postgresForFile();
/** A view task and an output task per source partition (the coordinator's lease is not a task). */
const TASKS = 2 * PARTITIONS;

interface ClusterMember {
  id: string;
  host: string;
  pid: number;
  httpUrl: string | null;
  heartbeatAtMs: number;
  heartbeatAgeMs: number;
  live: boolean;
  self: boolean;
  coordinator: boolean;
  tasks: number;
}
interface Lease {
  task: string;
  kind: string;
  name: string;
  version: number | null;
  topic: string;
  partition: number | null;
  owner: string | null;
  epoch: number;
}
interface Pipelines {
  tasks: {
    kind: string;
    view: string;
    topic: string;
    partition: number;
    owner?: string | null;
    epoch?: number | null;
  }[];
  cluster?: {
    memberId: string;
    coordinator: boolean;
    sessionTimeoutMs: number;
    members: ClusterMember[];
    leases: Lease[];
  };
}
type TaskRow = {
  kind: 'view' | 'output';
  view: string;
  version: number;
  topic: string;
  partition: number;
  owner: string | null;
};
type LagJsonRow =
  | TaskRow
  | { kind: 'consumer-group' }
  | {
      kind: 'process';
      id: string;
      live: boolean;
      ttlMs: number;
      tasks: number;
      coordinator: boolean;
      httpUrl: string | null;
    };

async function pipelines(m: Member): Promise<Pipelines> {
  const res = await fetch(`${m.url}/v1/pipelines`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Pipelines;
}

const isMember = (id: string, m: Member): boolean => id.includes(`/${m.child.pid}/`);

function ok(r: RunResult, what: string): string {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

test(
  'GET /v1/pipelines, kappa lag and kappa views show the processes, their health and who owns each task',
  { timeout: 150_000 },
  async (t) => {
    const pgServer = await postgres();
    const storeUrl = await pgServer.freshDatabase();
    const broker = await startKappaWithKafka(t, {
      topics: [
        { name: 'sales', partitions: PARTITIONS },
        { name: 'big_sales', partitions: 2 },
      ],
    });
    const config = writeConfig(t, 1);
    const m1 = await startMember(t, 'm1', config, broker.bootstrap, storeUrl);
    const m2 = await startMember(t, 'm2', config, broker.bootstrap, storeUrl);
    let passed = false;
    t.after(() => {
      if (!passed) for (const m of [m1, m2]) t.diagnostic(`--- ${m.name}\n${m.child.stderr.slice(-2500)}`);
    });
    // Some sales, so every task has flushed a checkpoint (what `kappa lag` lists).
    const producer = startProducer(broker.bootstrap);
    await waitUntil('some sales acknowledged', async () => producer.acked.length >= 300, 60_000);
    await producer.stop();

    // Both processes own tasks and every task is owned, as either process's /v1/pipelines says.
    await waitUntil(
      'both processes own tasks and every task is owned',
      async () => {
        const c = (await pipelines(m1)).cluster;
        return (
          c !== undefined &&
          c.leases.length === TASKS &&
          c.leases.every((l) => l.owner !== null) &&
          c.members.length === 2 &&
          c.members.every((m) => m.live && m.tasks > 0 && m.httpUrl !== null)
        );
      },
      60_000,
    );
    for (const m of [m1, m2]) {
      const p = await pipelines(m);
      const c = p.cluster!;
      assert.ok(isMember(c.memberId, m), `${m.name}'s memberId ${c.memberId} names its pid ${m.child.pid}`);
      assert.equal(c.sessionTimeoutMs, SESSION_TIMEOUT_MS);
      assert.deepEqual(
        c.members.map((x) => [isMember(x.id, m1), isMember(x.id, m2)]).sort(),
        [
          [false, true],
          [true, false],
        ],
        'both processes are listed',
      );
      const self = c.members.find((x) => x.self)!;
      assert.equal(self.id, c.memberId);
      assert.equal(self.httpUrl, m.url, 'a member shows its HTTP API');
      assert.equal(self.coordinator, c.coordinator);
      assert.equal(c.members.filter((x) => x.coordinator).length, 1, 'one coordinator');
      assert.equal(
        c.members.reduce((n, x) => n + x.tasks, 0),
        TASKS,
        'the tasks owned add up to every task',
      );
      // Every lease of the cluster, the other process's included, parsed.
      const views = c.leases.filter((l) => l.kind === 'view');
      assert.equal(views.length, PARTITIONS);
      assert.ok(views.every((l) => l.name === 'region_totals' && l.version === 1 && l.topic === 'sales'));
      assert.ok(
        c.leases.some((l) => !isMember(l.owner!, m)),
        `${m.name} shows tasks the other process owns`,
      );
      // The tasks this process runs: each with its owner (this process) and the lease's epoch.
      assert.ok(p.tasks.length > 0);
      for (const task of p.tasks) {
        assert.equal(task.owner, c.memberId, JSON.stringify(task));
        assert.equal(typeof task.epoch, 'number');
      }
    }

    // kappa lag and kappa views, from a data dir that holds nothing, on the same log and store.
    const emptyDir = tempDir(t, 'kappa-surfaces-cli-');
    const shared = ['--log', `kafka://${broker.bootstrap}`, '--store', storeUrl];
    const lagJson = async (): Promise<LagJsonRow[]> =>
      JSON.parse(ok(await runKappa(['--data-dir', emptyDir, 'lag', '--json', ...shared]), 'kappa lag --json'));
    // kappa lag lists a task once it has flushed a checkpoint, which owning its lease does not mean
    // (a task the rebalance just moved may not have flushed yet): wait until it lists every task.
    let rows: LagJsonRow[] = [];
    const taskRows = (): TaskRow[] => rows.filter((r): r is TaskRow => r.kind === 'view' || r.kind === 'output');
    await waitUntil(
      'kappa lag to list every task (each has flushed a checkpoint)',
      async () => {
        rows = await lagJson();
        return taskRows().length === TASKS;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(rows)}`, { cause: err });
    });
    const tasks = taskRows();
    assert.equal(tasks.length, TASKS, JSON.stringify(rows));
    const processes = rows.filter((r) => r.kind === 'process');
    assert.equal(processes.length, 2);
    assert.ok(processes.every((p) => p.live && p.tasks > 0));
    // Each process's own session timeout, as it was started with (`kappa lag` is not told it).
    assert.ok(
      processes.every((p) => p.ttlMs === SESSION_TIMEOUT_MS),
      JSON.stringify(processes),
    );
    assert.equal(processes.filter((p) => p.coordinator).length, 1);
    for (const r of tasks)
      assert.ok(
        processes.some((p) => p.id === r.owner),
        `owner of ${JSON.stringify(r)}`,
      );

    const lagText = ok(await runKappa(['--data-dir', emptyDir, 'lag', ...shared]), 'kappa lag');
    t.diagnostic(`kappa lag:\n${lagText}`);
    assert.match(lagText, /OWNER/);
    assert.match(lagText, /Processes sharing the work/);
    for (const p of processes) {
      assert.ok(lagText.includes(p.id), `kappa lag names ${p.id}:\n${lagText}`);
      assert.ok(lagText.includes(p.httpUrl!), `kappa lag shows ${p.httpUrl}`);
    }
    assert.equal(lagText.match(/ live /g)?.length, 2, lagText);
    assert.match(lagText, /SESSION TIMEOUT/);
    assert.equal(lagText.match(new RegExp(` ${SESSION_TIMEOUT_MS / 1000} s `, 'g'))?.length, 2, lagText);

    // kappa views: through KAPPA_LOG and KAPPA_STORE this time.
    const env = { KAPPA_LOG: `kafka://${broker.bootstrap}`, KAPPA_STORE: storeUrl };
    const viewsJson = JSON.parse(
      ok(await runKappa(['--data-dir', emptyDir, 'views', '--json'], { env }), 'kappa views --json'),
    ) as { name?: string; kind?: string; owners?: { owner: string | null }[] }[];
    const live = viewsJson.find((v) => v.name === 'region_totals')!;
    assert.equal(live.owners?.length, PARTITIONS, JSON.stringify(viewsJson));
    assert.ok(live.owners!.every((o) => processes.some((p) => p.id === o.owner)));
    assert.equal(viewsJson.filter((v) => v.kind === 'process').length, 2);
    const viewsText = ok(await runKappa(['--data-dir', emptyDir, 'views'], { env }), 'kappa views');
    t.diagnostic(`kappa views:\n${viewsText}`);
    assert.match(viewsText, /OWNERS/);
    assert.match(viewsText, /Processes sharing the work/);
    for (const p of processes) assert.ok(viewsText.includes(p.id), `kappa views names ${p.id}:\n${viewsText}`);

    // Bad input: a clear error, nothing opened.
    const bad = await runKappa(['--data-dir', emptyDir, 'lag', '--store', 'mysql://x/y']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /is not a PostgreSQL URL/);
    const noLog = await runKappa(['--data-dir', emptyDir, 'views', '--store', storeUrl]);
    assert.equal(noLog.code, 1);
    assert.match(noLog.stderr, /give the --log kafka:\/\/host:port the kappa start processes run with/);
    // The session timeout belongs to kappa start only: lag and views refuse it as any unknown flag.
    for (const command of ['lag', 'views']) {
      const timeout = await runKappa(['--data-dir', emptyDir, command, ...shared, '--session-timeout-ms', '10000']);
      assert.equal(timeout.code, 1, `${command}: ${timeout.stdout}`);
      assert.match(timeout.stderr, /error: unknown option '--session-timeout-ms'/);
    }

    // SIGKILL one: it shows as dead, and its tasks are the other's.
    const killedId = processes.find((p) => isMember(p.id, m1))!.id;
    m1.child.kill('SIGKILL');
    await waitUntil(
      'the killed process dead and every task owned by the other',
      async () => {
        const c = (await pipelines(m2)).cluster!;
        const dead = c.members.find((x) => x.id === killedId);
        return (
          dead !== undefined &&
          !dead.live &&
          dead.heartbeatAgeMs > SESSION_TIMEOUT_MS &&
          c.leases.every((l) => l.owner === c.memberId) &&
          c.coordinator
        );
      },
      60_000,
    );
    const after = await lagJson();
    const killed = after.find((r) => r.kind === 'process' && r.id === killedId);
    assert.ok(killed?.kind === 'process' && !killed.live && killed.tasks === 0, JSON.stringify(killed));
    const survivor = after.find((r) => r.kind === 'process' && r.id !== killedId);
    assert.ok(survivor?.kind === 'process' && survivor.live && survivor.tasks === TASKS && survivor.coordinator);
    for (const r of after) if (r.kind === 'view' || r.kind === 'output') assert.equal(r.owner, survivor.id);
    const afterText = ok(await runKappa(['--data-dir', emptyDir, 'lag', ...shared]), 'kappa lag');
    assert.match(afterText.split('\n').find((l) => l.startsWith(killedId)) ?? '', / dead /, afterText);
    passed = true;
  },
);
