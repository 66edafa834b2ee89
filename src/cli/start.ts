/**
 * `kappa start`: runs every pipeline of the config over the embedded log until SIGINT or SIGTERM,
 * then flushes, checkpoints and exits 0. A task failure stops everything with exit code 1.
 */
import { join } from 'node:path';
import { stderrLogger } from '../log/index.ts';
import { Engine, defaultConfigPath, loadApp } from '../stream/index.ts';
import { openSqliteStore } from '../view/index.ts';
import type { CliContext } from './main.ts';
import { openForWriting } from './open.ts';

export interface StartOptions {
  config?: string;
  flushIntervalMs?: number;
}

export function storePath(dataDir: string): string {
  return join(dataDir, 'views.db');
}

export async function startCommand(ctx: CliContext, opts: StartOptions): Promise<void> {
  const app = await loadApp(opts.config ?? defaultConfigPath());
  const log = await openForWriting(ctx.dataDir);
  const store = await openSqliteStore({ path: storePath(ctx.dataDir) });
  const engine = new Engine({ log, store, app, logger: stderrLogger, flushIntervalMs: opts.flushIntervalMs });
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => (stopping ??= engine.stop());
  try {
    await engine.start();
    const tasks = engine.status().length;
    ctx.stderr.write(`kappa: running ${app.views.length} view${app.views.length === 1 ? '' : 's'} as ${tasks} task${tasks === 1 ? '' : 's'} over ${ctx.dataDir} (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve, reject) => {
      const onSignal = (): void => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      engine.failure.catch((err) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        reject(err);
      });
    });
    await stop();
    ctx.stderr.write('kappa: stopped; every view is flushed and checkpointed\n');
  } finally {
    await store.close();
    await log.close();
  }
}
