/** `kappa verify`: checks every stored byte; exit code 1 when anything is damaged. */
import { verifyLog } from '../log/index.ts';
import type { CliContext } from './main.ts';
import { formatBytes } from './table.ts';

export async function verifyCommand(ctx: CliContext, opts: { json?: boolean }): Promise<void> {
  const report = verifyLog({ dir: ctx.dataDir });
  if (!report.ok) ctx.exitCode = 1;
  if (opts.json) {
    ctx.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  for (const f of report.findings) {
    const where = f.position === null ? f.file : `${f.file} at byte ${f.position}`;
    ctx.stdout.write(`${f.severity.toUpperCase()}: ${where}: ${f.message}\n`);
  }
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const summary = `checked ${report.topics} topics, ${report.partitions} partitions, ${report.segments} segments, ${report.batches} batches, ${report.records} records (${formatBytes(report.bytes)})`;
  ctx.stdout.write(
    errors === 0
      ? `${summary}: no damage found\n`
      : `${summary}: ${errors} damaged place${errors === 1 ? '' : 's'} found\n`,
  );
}
