/**
 * Keeps the tables that stream–table joins read (`table(topic, …)`) in the view store, so a restart
 * reads each table's topic only from where the last save got to, and a table outlives its topic's
 * retention (Kafka Streams keeps a KTable in a state store for the same reasons).
 *
 * At start the engine loads every table its pipelines join from the store (`TableKeeper.start`):
 * the copies seed this thread's tables and go to the worker threads with their start (tables.ts,
 * `seedTables`), and each table then reads its topic on from the copy's offsets. Meanwhile the
 * keeper reads each table's topic into a table of its own (every version, with its record bytes)
 * and saves the keys that changed and the offsets, in one transaction, about every `everyMs`. It
 * starts once the engine has caught up with the log: a recovery or a first catch-up is what the
 * user waits for, and the copy only saves a restart some reading.
 *
 * The copy is always one the topic's prefix up to its offsets makes (the versions of a key are
 * replaced whole, with the offsets, in one transaction), so a table started from it holds what one
 * read from offset 0 would, provided the copy kept what that task may look up: a copy that dropped
 * versions (a `retention`) older than a replay needs is not used (the replay's table reads the
 * topic from its beginning). The other side of a stream–stream join is not kept: it holds only a
 * window of recent events. In a cluster every process keeps the tables; a save behind the stored
 * offsets changes nothing, so the furthest process's copy wins.
 */
import type { Log, Logger } from '../log/index.ts';
import type { StoredTable, TableStateStore } from '../view/index.ts';
import type { AppDef } from './dsl.ts';
import { pause } from './log-outage.ts';
import { SharedTable, type TableDef, joinedTables, seedKey, seedTables, tableId } from './tables.ts';

export { tableId };

/** Reads per partition per round: a busy topic is saved every few MB rather than once at its end. */
const READS_PER_ROUND = 8;

export interface TableKeeperOptions {
  log: Log;
  store: TableStateStore;
  logger: Logger;
  /** Aborts when the engine stops. */
  signal: AbortSignal;
  /** How long the keeper waits, once every table was read to its end, before it reads again. */
  everyMs?: number;
  /**
   * Whether the engine has caught up since it started: until then the keeper waits, so a recovery
   * or a first catch-up (which the user is waiting for) does not share the CPU with it.
   */
  caughtUp: () => boolean;
}

/** The tables an app's views and outputs join (not the other sides of stream–stream joins), each once. */
export function keptTables(app: AppDef): TableDef<unknown>[] {
  const ops = [...app.views.map((v) => v.aggregation.stream.ops), ...app.outputs.map((o) => o.stream.ops)];
  const out = new Map<string, TableDef<unknown>>();
  for (const t of ops.flatMap((o) => joinedTables(o))) if (t.window === null) out.set(tableId(t), t);
  return [...out.values()];
}

export class TableKeeper {
  private readonly loops: Promise<void>[] = [];

  private constructor(
    private readonly opts: TableKeeperOptions,
    /** The copies the store held at start, by seed key: what the worker threads start from. */
    readonly seeds: { key: string; table: StoredTable }[],
  ) {}

  /** Loads the tables' copies, seeds this thread with them, and starts keeping each table. */
  static async start(opts: TableKeeperOptions, tables: readonly TableDef<unknown>[]): Promise<TableKeeper> {
    const seeds: { key: string; table: StoredTable }[] = [];
    const keys = tables.map(seedKey);
    for (const [i, def] of tables.entries()) {
      if (keys.indexOf(keys[i]) !== keys.lastIndexOf(keys[i])) continue; // two tables a worker could not tell apart: read from their topic
      const table = await opts.store.load(tableId(def));
      if (table !== null) seeds.push({ key: keys[i], table });
    }
    seedTables(seeds, tables);
    const keeper = new TableKeeper(opts, seeds);
    for (const def of tables) keeper.loops.push(keeper.keep(def));
    return keeper;
  }

  /** Resolves once every table's keeping stopped (the engine's signal aborted), its last save done. */
  async stopped(): Promise<void> {
    await Promise.all(this.loops);
  }

  private async keep(def: TableDef<unknown>): Promise<void> {
    const { log, store, logger, signal } = this.opts;
    const id = tableId(def);
    const table = SharedTable.kept(log, def);
    let savedOffsets = '';
    let failures = 0;
    while (!signal.aborted && !this.opts.caughtUp()) await pause(this.opts.everyMs ?? 1000, signal);
    while (!signal.aborted) {
      let atEnd = true;
      try {
        atEnd = await table.catchUp(READS_PER_ROUND);
        const change = table.takeChange();
        const offsets = JSON.stringify(change.partitions.map((p) => p.offset));
        if (change.keys.length > 0 || offsets !== savedOffsets) {
          let saved = false;
          try {
            saved = await store.save(id, change);
          } finally {
            // Refused (another process saved further) or failed: the keys go with the next save.
            if (!saved) table.unsaved(change.keys);
          }
          if (saved) savedOffsets = offsets;
        }
        failures = 0;
      } catch (err) {
        // A store or log out of reach: the copy only ages (a restart reads more of the topic); tried again later.
        if (failures++ === 0)
          logger.warn(
            `table "${def.topic.name}" could not be read from the log or saved in the view store (trying again every second until it works): ${(err as Error).message}`,
          );
      }
      if (atEnd || failures > 0) await pause(this.opts.everyMs ?? 1000, signal);
    }
  }
}
