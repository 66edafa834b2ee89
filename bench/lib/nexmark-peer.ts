/**
 * The nexmark bench's same-run yardstick: a plain JavaScript loop on one thread over the bench's own
 * events, `JSON.parse` of each value and, for a bid, `JSON.stringify` of q1's output (`auction,
 * bidder, price * 0.908, dateTime`): what a hand-written q1 costs on this machine without a log,
 * checks, state or exactly-once. Flink's per-core figures are fixed while this machine's speed
 * drifts by a quarter within half an hour; a query's events/s per core divided by this loop's
 * events/s, measured right before and after the query's run, does not drift with it.
 */
import type { FileLog } from '../../src/log/index.ts';

const SAMPLE_EVENTS = 100_000;
const PEER_MS = 300;

/** The values of the first events of partition 0 of `topic`, as the log holds them. */
export async function peerSample(log: FileLog, topic: string): Promise<Buffer[]> {
  const values: Buffer[] = [];
  for await (const batch of log.read(topic, 0, 0)) {
    for (const r of batch.records()) if (r.value !== null) values.push(Buffer.from(r.value));
    if (values.length >= SAMPLE_EVENTS) break;
  }
  return values;
}

/** Events/s of the loop over `sample`, run for about PEER_MS (whole passes over the sample). */
export function peerEventsPerS(sample: readonly Buffer[]): number {
  let events = 0;
  let bytes = 0;
  const t0 = performance.now();
  let ms: number;
  do {
    for (const value of sample) {
      const e = JSON.parse(value.toString()) as {
        type: string;
        auction: number;
        bidder: number;
        price: number;
        dateTime: number;
      };
      if (e.type === 'bid')
        bytes += JSON.stringify({
          auction: e.auction,
          bidder: e.bidder,
          price: e.price * 0.908,
          dateTime: e.dateTime,
        }).length;
    }
    events += sample.length;
    ms = performance.now() - t0;
  } while (ms < PEER_MS);
  if (bytes === 0) throw new Error('invariant: the peer sample holds no bids');
  return (events / ms) * 1000;
}
