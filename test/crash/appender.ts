/**
 * Child process of kill-during-append.test.ts: opens the log in `dir`, creates topic `crash` if it
 * is missing, prints `ready`, then keeps appending until it is killed.
 *
 *   node --import tsx test/crash/appender.ts <dir> <firstSeq>
 *
 * Several appends are in flight at once (so batches share a group commit), each a batch of 1 to 40
 * records, now and then 100, to one of the topic's partitions; record number `seq` has the value
 * `valueFor(seq)`. As soon as an append resolves (its records are durable), one line per record
 * goes to stdout: `ack <partition> <offset> <seq>`. A line that reached the parent is a promise the
 * log must keep after SIGKILL. Any failure goes to stderr and exits with status 1, so the parent can
 * tell a crash it caused from one it did not.
 */
import { openFileLog } from '../../src/log/index.ts';
import { CRASH_PARTITIONS, CRASH_TOPIC, valueFor } from './records.ts';

/** Small segments, so kills also land in the middle of segment rolls. */
const CRASH_SEGMENT_BYTES = 256 * 1024;
const APPENDS_IN_FLIGHT = 6;

async function main(dir: string, firstSeq: number): Promise<void> {
  const log = await openFileLog({
    dir,
    fsync: 'always',
    logger: { info: () => {}, warn: (m) => process.stderr.write(`warning: ${m}\n`) },
  });
  if (!(await log.topics()).some((t) => t.name === CRASH_TOPIC)) {
    await log.createTopic(CRASH_TOPIC, { partitions: CRASH_PARTITIONS, segmentBytes: CRASH_SEGMENT_BYTES });
  }
  process.stdout.write('ready\n');
  let nextSeq = firstSeq;
  const worker = async (): Promise<never> => {
    for (;;) {
      const count = Math.random() < 0.05 ? 100 : 1 + Math.floor(Math.random() * 40);
      const partition = Math.floor(Math.random() * CRASH_PARTITIONS);
      const first = nextSeq;
      nextSeq += count;
      const records = Array.from({ length: count }, (_, i) => ({ partition, value: valueFor(first + i) }));
      const acks = await log.append(CRASH_TOPIC, records);
      let lines = '';
      for (let i = 0; i < acks.length; i++) lines += `ack ${acks[i].partition} ${acks[i].offset} ${first + i}\n`;
      // On Linux a write to a pipe is synchronous, so once this returns the parent has the line.
      process.stdout.write(lines);
    }
  };
  await Promise.all(Array.from({ length: APPENDS_IN_FLIGHT }, worker));
}

const [dir, firstSeq] = process.argv.slice(2);
if (!dir || !/^\d+$/.test(firstSeq ?? '')) {
  process.stderr.write('usage: appender.ts <dir> <firstSeq>\n');
  process.exit(2);
}
main(dir, Number(firstSeq)).catch((err: unknown) => {
  process.stderr.write(`appender failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
