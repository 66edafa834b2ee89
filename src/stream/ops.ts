/**
 * The operator chain of a stream (`filter`, `map`, `flatMap`, and the stateful steps of alerts),
 * run on one value; shared by views (plan.ts) and output pipelines (output-plan.ts). It runs per
 * record on the hot path: a loop over the steps, recursing only where a step gives several values,
 * and no allocation of its own.
 */
import type { Op } from './dsl.ts';
import { tableSignature } from './tables.ts';
import type { TaskTables } from './tables.ts';

/** What fingerprints hash of a step: its kind and function text (and, for a join, what it joins). */
export function opSignature(op: Op): string {
  if (op.kind !== 'join') return `${op.kind}:${op.fn.toString()}`;
  return `join:${op.left ? 'left' : 'inner'}:${tableSignature(op.table)}:${op.key.toString()}:${op.fn.toString()}`;
}

/**
 * Runs `ops` from step `i` on `value`, pushing each value that comes out of the last step onto
 * `out`. `opState` holds each stateful step's state by its index (null where the chain cannot have
 * one: views refuse stateful steps when compiled); `eventTimeMs` is the record's event time, which
 * stateful steps are given, and the version of a joined table a join reads (`tables`: the task's,
 * which the plan made sure were read past the event's time). Whatever a user function throws goes
 * to the caller.
 */
export function runOps(
  ops: readonly Op[],
  value: unknown,
  i: number,
  out: unknown[],
  opState: Map<number, Map<unknown, unknown>> | null,
  eventTimeMs: number,
  tables: TaskTables | null,
): void {
  for (; i < ops.length; i++) {
    const op = ops[i];
    if (op.kind === 'filter') {
      if (!op.fn(value)) return;
    } else if (op.kind === 'map') value = op.fn(value);
    else if (op.kind === 'flatMap') {
      for (const v of op.fn(value)) runOps(ops, v, i + 1, out, opState, eventTimeMs, tables);
      return;
    } else if (op.kind === 'join') {
      const key = op.key(value);
      if (op.table.window !== null) {
        const matches = key === null || key === undefined ? [] : tables!.within(op.table, String(key), eventTimeMs);
        for (const m of matches) runOps(ops, op.fn(value, m), i + 1, out, opState, eventTimeMs, tables);
        if (matches.length === 0 && op.left)
          runOps(ops, op.fn(value, undefined), i + 1, out, opState, eventTimeMs, tables);
        return;
      }
      const row = key === null || key === undefined ? undefined : tables!.lookup(op.table, String(key), eventTimeMs);
      if (row === undefined && !op.left) return;
      value = op.fn(value, row);
    } else {
      if (opState === null) throw new TypeError('a stateful step cannot feed a view'); // refused when compiled
      let state = opState.get(i);
      if (state === undefined) opState.set(i, (state = new Map()));
      for (const v of op.fn(state, value, eventTimeMs)) runOps(ops, v, i + 1, out, opState, eventTimeMs, tables);
      return;
    }
  }
  out.push(value);
}
