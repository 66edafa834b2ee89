/**
 * A consumer-group member in a child process that prints JSON lines (confluent.py, kafka_python.py,
 * node-member.mjs):
 *
 *   {"event": "assigned", "partitions": [0, 2]}   {"event": "revoked", "partitions": [0, 2]}
 *   {"event": "assignment", "partitions": [1]}    (the whole new assignment, for clients without a revoke callback)
 *   {"event": "record", "record": {...}}           (printed after its offset was committed)
 *   {"event": "commit-failed" | "error", "error": "..."}     {"event": "closed"}
 *
 * It closes cleanly on the line "close" on its stdin, and dies without leaving the group on SIGKILL.
 * kcat speaks differently; kcat.ts feeds its lines to the same class through `onLine`.
 */
import type { Owner } from '../cleanup.ts';
import { type OwnedChild, spawnOwned } from '../processes.ts';
import type { ConsumedRecord, GroupMember } from './types.ts';

const CLOSE_TIMEOUT_MS = 20_000;
const QUOTED_CHARS_MAX = 3_000;

export interface MemberEvent {
  event: string;
  partitions?: number[];
  record?: ConsumedRecord;
  error?: string;
}

export class ProcessMember implements GroupMember {
  assignment: number[] | null = null;
  readonly records: ConsumedRecord[] = [];
  readonly errors: string[] = [];
  closed = false;
  /** Set once the test asked it to close or killed it: an exit before that is a failure. */
  private ending = false;
  private buffered = '';

  constructor(
    readonly name: string,
    readonly process: OwnedChild,
    /** How to ask it to leave cleanly; default: the line "close" on stdin. */
    private readonly askToClose: () => void = () => process.child.stdin?.end('close\n'),
    /** Turns a line of stdout into an event (null: not one); default: the line is the event's JSON. */
    private readonly parse: { stdout: (line: string) => MemberEvent | null } = {
      stdout: (line) => JSON.parse(line) as MemberEvent,
    },
  ) {
    process.child.stdout!.on('data', (chunk: string) => this.take(chunk));
  }

  /** Applies one event (the JSON lines of the scripts, or kcat's output translated by kcat.ts). */
  apply(e: MemberEvent): void {
    if (e.event === 'assignment') this.assignment = [...e.partitions!].sort((x, y) => x - y);
    else if (e.event === 'assigned')
      this.assignment = [...new Set([...(this.assignment ?? []), ...e.partitions!])].sort((x, y) => x - y);
    else if (e.event === 'revoked') this.assignment = (this.assignment ?? []).filter((p) => !e.partitions!.includes(p));
    else if (e.event === 'record') this.records.push(e.record!);
    else if (e.event === 'closed') this.closed = true;
    else if (e.error !== undefined) this.errors.push(`${e.event}: ${e.error}`);
  }

  describe(): string {
    const tail = (s: string): string => (s.length > QUOTED_CHARS_MAX ? `…${s.slice(-QUOTED_CHARS_MAX)}` : s);
    return (
      `member ${this.name}: assignment ${JSON.stringify(this.assignment)}, ${this.records.length} records, ` +
      `errors ${JSON.stringify(this.errors.slice(-5))}, running ${this.process.running}\n` +
      `its stderr:\n${tail(this.process.stderr)}`
    );
  }

  /** It exited (or could not start) before the test asked it to close or killed it. */
  get failed(): boolean {
    return !this.ending && !this.process.running;
  }

  async close(): Promise<void> {
    this.ending = true;
    this.askToClose();
    const exit = await Promise.race([
      this.process.exited,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), CLOSE_TIMEOUT_MS).unref()),
    ]);
    if (exit === null) {
      await this.process.stop({ signal: 'SIGKILL' });
      throw new Error(`${this.name} did not close within ${CLOSE_TIMEOUT_MS} ms.\n${this.describe()}`);
    }
  }

  async kill(): Promise<void> {
    this.ending = true;
    await this.process.stop({ signal: 'SIGKILL', timeoutMs: 5_000 });
  }

  private take(chunk: string): void {
    this.buffered += chunk;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl).trim();
      this.buffered = this.buffered.slice(nl + 1);
      if (line === '') continue;
      try {
        const event = this.parse.stdout(line);
        if (event) this.apply(event);
      } catch {
        this.errors.push(`unparsable line: ${line.slice(0, 200)}`);
      }
    }
  }
}

/** Starts `command args` as a member that prints the JSON lines above. */
export function startJsonMember(t: Owner, name: string, command: string, args: string[]): ProcessMember {
  const child = spawnOwned(t, command, args, { stdin: 'pipe' });
  return new ProcessMember(name, child);
}
