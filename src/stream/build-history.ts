/**
 * The build history the engine keeps per view (ControlStore.recordBuild): when a build ends — its
 * version live, cancelled, or the engine failed under it — one entry says why it was made, what
 * changed in the logic, how many records it read, how long it took and how it ended. What a user
 * looks at to judge a replay after it is over (`kappa views`, the dashboard).
 *
 * What changed in the logic is known when the build starts (versions.ts describes it) and is held
 * here until the build ends; after a restart a resumed build's change is told from its reason.
 */
import type { Logger } from '../log/index.ts';
import type { BuildInfo, ControlStore } from '../view/index.ts';

type Entry = Parameters<ControlStore['recordBuild']>[0];

/** Where a build's tasks stand: the next offset each reads in its source partition. */
interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export class BuildHistory {
  private readonly changes = new Map<string, string>();

  constructor(
    private readonly control: ControlStore,
    private readonly logger: Logger,
  ) {}

  /** Notes what changed in the logic of the version a build makes, for its entry when it ends. */
  noteChange(view: string, version: number, change: string): void {
    this.changes.set(`${view}/${version}`, change);
  }

  /** Records how a build ended; failing to record is logged and never fails the build itself. */
  async ended(build: BuildInfo, result: Entry['result'], tasks: Position[], message: string | null): Promise<void> {
    const key = `${build.name}/${build.version}`;
    const change = this.changes.get(key) ?? changeOf(build);
    this.changes.delete(key);
    const endedAtMs = Date.now();
    const entry: Entry = {
      name: build.name,
      version: build.version,
      reason: build.reason,
      from: build.from,
      change,
      events: eventsRead(build, tasks),
      startedAtMs: build.startedAtMs,
      endedAtMs,
      durationMs: Math.max(0, endedAtMs - build.startedAtMs),
      result,
      message,
    };
    try {
      await this.control.recordBuild(entry);
    } catch (err) {
      this.logger.warn(
        `view ${build.name}: the end of the build of version ${build.version} (${result}) could not be recorded in its build history: ${(err as Error).message}`,
      );
    }
  }
}

/** Records read since the build started, summed over its source partitions. */
function eventsRead(build: BuildInfo, tasks: Position[]): number {
  let events = 0;
  for (const t of tasks) {
    const from = build.fromOffsets.find((f) => f.topic === t.topic && f.partition === t.partition)?.offset ?? 0;
    events += Math.max(0, t.offset - from);
  }
  return events;
}

/** What changed, told from the reason alone (a build resumed after a restart). */
function changeOf(build: BuildInfo): string | null {
  if (build.reason === 'rollback') return `back to version ${build.version}'s own logic`;
  if (build.reason === 'scheduled') return 'none: the same logic, rebuilt on schedule';
  if (build.reason === 'new view') return 'a new view';
  return null;
}
