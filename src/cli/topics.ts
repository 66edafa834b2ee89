/** `kappa topics create|list|describe`. */
import type { CliContext } from './main.ts';
import { openForReading, openForWriting, withLog } from './open.ts';
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
