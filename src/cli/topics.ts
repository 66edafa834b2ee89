/** `kappa topics create|list|describe|delete`. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { KappaError } from '../errors.ts';
import { checkTopicName } from '../log/index.ts';
import { defaultConfigPath, loadApp } from '../stream/index.ts';
import { type SqliteStore, openSqliteStore } from '../view/sqlite/index.ts';
import type { CliContext } from './main.ts';
import { holdDataDir, openForReading, openForWriting, withLog } from './open.ts';
import { storePath } from './defaults.ts';
import { formatBytes, formatMs, formatTable } from './table.ts';

export async function topicsCreate(
  ctx: CliContext,
  name: string,
  opts: { partitions: number; retentionMs: number; retentionBytes: number; segmentBytes?: number },
): Promise<void> {
  const info = await withLog(openForWriting(ctx.dataDir), (log) =>
    log.createTopic(name, {
      partitions: opts.partitions,
      retentionMs: opts.retentionMs,
      retentionBytes: opts.retentionBytes,
      segmentBytes: opts.segmentBytes,
    }),
  );
  ctx.stdout.write(
    `created topic "${info.name}" with ${info.partitions} partition${info.partitions === 1 ? '' : 's'} (retention ${formatMs(info.retentionMs)})\n`,
  );
}

export async function topicsList(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  await withLog(openForReading(ctx.dataDir), async (log) => {
    const rows = [];
    for (const t of await log.topics()) {
      let records = 0;
      for (let p = 0; p < t.partitions; p++) {
        const o = await log.offsets(t.name, p);
        records += o.end - o.start;
      }
      rows.push({
        name: t.name,
        partitions: t.partitions,
        records,
        retentionMs: t.retentionMs,
        retentionBytes: t.retentionBytes,
      });
    }
    if (opts.json) ctx.stdout.write(JSON.stringify(rows) + '\n');
    else if (rows.length === 0)
      ctx.stdout.write(`no topics in ${ctx.dataDir} (create one with \`kappa topics create <name>\`)\n`);
    else
      ctx.stdout.write(
        formatTable(
          ['TOPIC', 'PARTITIONS', 'RECORDS', 'RETENTION'],
          rows.map((r) => [r.name, r.partitions, r.records, formatMs(r.retentionMs)]),
        ),
      );
  });
}

export async function topicsDescribe(ctx: CliContext, name: string, opts: { json?: boolean }): Promise<void> {
  await withLog(openForReading(ctx.dataDir), async (log) => {
    const info = await log.topic(name);
    const health = log.health(name);
    const partitions = [];
    for (let p = 0; p < info.partitions; p++) {
      const o = await log.offsets(name, p);
      partitions.push({
        partition: p,
        startOffset: o.start,
        endOffset: o.end,
        records: o.end - o.start,
        corruption: health[p].corruption,
      });
    }
    if (opts.json) {
      ctx.stdout.write(JSON.stringify({ ...info, partitionDetails: partitions }) + '\n');
      return;
    }
    ctx.stdout.write(
      `topic ${info.name}\n` +
        `  partitions       ${info.partitions}\n` +
        `  retention        ${formatMs(info.retentionMs)}${info.retentionBytes >= 0 ? `, at most ${formatBytes(info.retentionBytes)} per partition` : ''}\n` +
        `  segment size     ${formatBytes(info.segmentBytes)}\n` +
        `  created          ${new Date(info.createdAtMs).toISOString()}\n\n`,
    );
    ctx.stdout.write(
      formatTable(
        ['PARTITION', 'START', 'END', 'RECORDS', 'STATUS'],
        partitions.map((p) => [
          p.partition,
          p.startOffset,
          p.endOffset,
          p.records,
          p.corruption ? `DAMAGED at ${p.corruption.file}:${p.corruption.position}` : 'ok',
        ]),
      ),
    );
  });
}

/** Who depends on a topic: pipelines that read it (views, outputs) or write it (outputs). */
interface TopicUser {
  kind: 'view' | 'output';
  name: string;
  how: 'reads' | 'writes';
  /** The topic it uses: the one deleted, or one of its side topics (see sideTopics). */
  topic: string;
  /** The store keeps its rows or positions (so deleting the topic leaves them stale). */
  stored: boolean;
  /** The config defines it (so the next `kappa start` runs it). */
  configured: boolean;
}

type Found = Omit<TopicUser, 'stored' | 'configured'>;

/**
 * The topics Kappa derives from `topic` and names after it: its dead letters (`.dlq`), late events
 * (`.late`) and undeliverable webhook records (`.webhook-dlq`). They hold its records, so they go
 * with it; kept, they would also make the log drop the side records of a topic created again under
 * the name, which are numbered by source offset and so look like re-sent ones.
 */
const sideTopics = (topic: string, existing: string[]): string[] =>
  ['.dlq', '.late', '.webhook-dlq'].map((suffix) => topic + suffix).filter((t) => existing.includes(t));

/** The pipelines of the stored catalog and of the config (when there is one) that use one of `topics`. */
async function topicUsers(
  store: SqliteStore | null,
  topics: string[],
  configPath: string | null,
): Promise<TopicUser[]> {
  const users = new Map<string, TopicUser>();
  const add = (u: Found, where: 'stored' | 'configured'): void => {
    const key = `${u.kind}:${u.name}:${u.how}:${u.topic}`;
    const known = users.get(key) ?? { ...u, stored: false, configured: false };
    users.set(key, { ...known, [where]: true });
  };
  const ours = (t: string): boolean => topics.includes(t);
  if (store !== null) {
    for (const v of await store.versions())
      for (const t of new Set((await store.checkpoints(v.name, v.version)).map((c) => c.topic)))
        if (ours(t)) add({ kind: 'view', name: v.name, how: 'reads', topic: t }, 'stored');
    for (const o of await store.outputs())
      for (const t of new Set((await store.outputCheckpoints(o)).map((c) => c.topic)))
        if (ours(t)) add({ kind: 'output', name: o, how: 'reads', topic: t }, 'stored');
  }
  if (configPath !== null) {
    const app = await loadApp(configPath);
    for (const v of app.views) {
      const t = v.aggregation.stream.source.name;
      if (ours(t)) add({ kind: 'view', name: v.name, how: 'reads', topic: t }, 'configured');
    }
    for (const o of app.outputs) {
      const [source, target] = [o.stream.source.name, o.target.name];
      if (ours(source)) add({ kind: 'output', name: o.name, how: 'reads', topic: source }, 'configured');
      if (ours(target)) add({ kind: 'output', name: o.name, how: 'writes', topic: target }, 'configured');
    }
  }
  return [...users.values()].sort((a, b) => (a.kind + a.name < b.kind + b.name ? -1 : 1));
}

const describeUser = (u: TopicUser, topic: string): string =>
  `${u.kind} "${u.name}" (${u.how} ${u.topic === topic ? 'it' : `"${u.topic}"`})`;

/** The config to look in: the one given, else ./kappa.config.* if there is one. */
function configToCheck(config: string | undefined): string | null {
  if (config !== undefined) return resolve(config);
  const path = defaultConfigPath();
  return existsSync(path) ? path : null;
}

export interface TopicsDeleteOptions {
  /** Delete even though pipelines use it: the views that read it are dropped, the outputs set back to its start. */
  force?: boolean;
  config?: string;
}

/**
 * `kappa topics delete <topic>`: refused while `kappa start` holds the data directory, and while a
 * view or output of the stored catalog or of the config uses the topic, unless `--force`. With
 * `--force` the views that read it are dropped (every version), since their rows and positions
 * came from records that no longer exist; the next `kappa start` rebuilds those still configured.
 * The outputs that read it are set back to offset 0 of the topic (ControlStore.resetOutputSource),
 * keeping their sequences, so a topic created again under the name is read from its first record.
 * Its side topics (dead letters, late events, undeliverable webhook records) are deleted with it.
 */
export async function topicsDelete(ctx: CliContext, name: string, opts: TopicsDeleteOptions): Promise<void> {
  checkTopicName(name);
  const command = `kappa topics delete ${name}${opts.force ? ' --force' : ''}`;
  await withLog(holdDataDir(ctx, `delete topic "${name}"`, command), async (log) => {
    const topics = (await log.topics()).map((t) => t.name);
    if (!topics.includes(name))
      throw new KappaError(
        'KAPPA_UNKNOWN_TOPIC',
        `There is no topic "${name}" in ${ctx.dataDir}` +
          (topics.length === 0 ? '.' : `; its topics are: ${topics.join(', ')}.`),
        { topic: name },
      );
    const store = existsSync(storePath(ctx.dataDir)) ? await openSqliteStore({ path: storePath(ctx.dataDir) }) : null;
    try {
      const configPath = configToCheck(opts.config);
      const sides = sideTopics(name, topics);
      const users = await topicUsers(store, [name, ...sides], configPath);
      refuseInUse(name, users, { force: opts.force === true });
      // The side topics first: if this stops part way, the topic is still there to delete again.
      for (const side of sides) await log.deleteTopic(side);
      await log.deleteTopic(name);
      // Tables read from it, kept in the view store, would start a topic made again under the name from old offsets.
      const forgotten = (await store?.tables?.forget(name)) ?? 0;
      if (forgotten > 0) ctx.stdout.write(`forgot the tables read from "${name}" that the view store kept\n`);
      ctx.stdout.write(
        `deleted topic "${name}"${sides.length === 0 ? '' : ` and its side topic${sides.length === 1 ? '' : 's'} ${sides.map((t) => `"${t}"`).join(', ')}`}\n`,
      );
      await afterForcedDelete(ctx, store, name, users);
    } finally {
      await store?.close();
    }
  });
}

/**
 * Refuses, before anything changes, while pipelines use the topic and `--force` is not given. The
 * message names every view and output that uses it, and says what `--force` would do to each.
 */
function refuseInUse(topic: string, users: TopicUser[], opts: { force: boolean }): void {
  if (users.length === 0 || opts.force) return;
  const what = `${users.map((u) => describeUser(u, topic)).join(', ')} use${users.length === 1 ? 's' : ''} it`;
  const names = (kind: TopicUser['kind'], how: TopicUser['how'] | null): string[] => [
    ...new Set(users.filter((u) => u.kind === kind && (how === null || u.how === how)).map((u) => `"${u.name}"`)),
  ];
  const views = names('view', null);
  const readers = names('output', 'reads');
  const effects = [
    views.length > 0
      ? `drops view${views.length === 1 ? '' : 's'} ${views.join(', ')} (every version; the next \`kappa start\` rebuilds what the config still defines)`
      : null,
    readers.length > 0
      ? `sets output${readers.length === 1 ? '' : 's'} ${readers.join(', ')} back to the start of "${topic}", so a topic created again under that name is read from its first record`
      : null,
  ].filter((e) => e !== null);
  const force =
    `run \`kappa topics delete ${topic} --force\` to delete it anyway` +
    (effects.length === 0 ? '' : `: that ${effects.join(', and ')}`);
  throw new KappaError(
    'KAPPA_VIEW_CONFLICT',
    `Topic "${topic}" was not deleted: ${what}. Remove them from the config (and drop the views with ` +
      `\`kappa views drop <view> --yes\`) first, or ${force}.`,
    { topic, users: users.map((u) => u.name) },
  );
}

/**
 * After `--force`: drop the stored views that read the topic, set the stored outputs that read it
 * back to its start (sequences kept, so what they write next continues their numbering and is not
 * taken by the log for a re-sent record), and say what is left to do.
 */
async function afterForcedDelete(
  ctx: CliContext,
  store: SqliteStore | null,
  topic: string,
  users: TopicUser[],
): Promise<void> {
  const stored = new Set((await store?.versions())?.map((v) => v.name) ?? []);
  for (const u of users) {
    if (u.kind !== 'view' || store === null || !stored.has(u.name)) continue;
    stored.delete(u.name);
    const versions = await store.dropView(u.name);
    ctx.stdout.write(`dropped view "${u.name}" (version${versions.length === 1 ? '' : 's'} ${versions.join(', ')})\n`);
  }
  for (const u of users) {
    if (u.kind !== 'output' || u.how !== 'reads' || store === null || !u.stored) continue;
    await store.resetOutputSource(u.name, u.topic);
    ctx.stdout.write(`output "${u.name}" will read "${u.topic}" from its first record if the topic is created again\n`);
  }
  if (users.some((u) => u.configured))
    ctx.stdout.write(
      `the config still uses "${topic}": the next \`kappa start\` creates it again, empty, rebuilds its views from it and runs its outputs from its start\n`,
    );
}
