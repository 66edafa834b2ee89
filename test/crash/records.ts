/**
 * Self-describing record values for the crash suites: the value of record number `seq` holds `seq`
 * and a filler that is a pure function of it, so a reader can tell from the bytes alone which
 * record it is and whether any byte of it changed. Lengths vary with `seq` (3 to about 600 bytes) so
 * batches have uneven sizes and batch boundaries fall at irregular byte positions.
 */

const FILLER_BYTES_MAX = 600;
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz';
const FILLER_SOURCE = ALPHABET.repeat(Math.ceil(FILLER_BYTES_MAX / ALPHABET.length) + 1);

/** The topic appender.ts writes and kill-during-append.test.ts checks. */
export const CRASH_TOPIC = 'crash';
export const CRASH_PARTITIONS = 2;

/** The value stored for record number `seq`. */
export function valueFor(seq: number): string {
  const fillerBytes = (Math.imul(seq + 1, 2654435761) >>> 0) % FILLER_BYTES_MAX;
  const from = seq % ALPHABET.length;
  return `#${seq}#${FILLER_SOURCE.slice(from, from + fillerBytes)}`;
}

/** The sequence number a value claims, or null when the value is not exactly `valueFor(thatSeq)`. */
export function seqOf(value: Buffer | null): number | null {
  if (value === null) return null;
  const text = value.toString('utf8');
  const match = /^#(\d+)#/.exec(text);
  if (!match) return null;
  const seq = Number(match[1]);
  return valueFor(seq) === text ? seq : null;
}
