/**
 * Producer ids for Kafka's idempotent producers (InitProducerId), mapped onto the log's producer
 * state (src/log/producer-state.ts), which deduplicates a retried batch by (producer id, epoch,
 * sequence) exactly as for the engine's own producers.
 *
 * Why a fresh random id every time, in the log's short-lived range (2^52 to 2^53 - 1):
 * - The log does not hand out ids: its callers choose them, and it remembers a producer's last
 *   sequences across restarts. An id given out again after a restart would meet the old
 *   producer's sequences, and a new producer's sequence 0 would look like a re-sent old record and
 *   be dropped. A counter would have to be stored durably; 52 random bits need no storage, and two
 *   producers meet only with a chance of about n^2 / 2^53.
 * - Ids below 2^52 are the engine's tasks (hashes of their names), remembered until retention.
 *   A Kafka producer's id is used for one producer session and never again, which is what the
 *   short-lived range is for: each partition remembers the 100,000 that appended last, as Kafka
 *   forgets producers after producer.id.expiration.ms.
 * - Kafka restarts sequences at 0 when it bumps an epoch; the log does not (it has no transactions
 *   to abort what the older epoch wrote). So an epoch bump (InitProducerId v3+ with the current id
 *   and epoch) also gets a new id, at epoch 0, which Kafka's clients accept as KIP-360 allows.
 */
import { randomBytes } from 'node:crypto';

const SHORT_LIVED_ID_MIN = 2 ** 52;

export interface ProducerIdAllocator {
  next(): { producerId: number; producerEpoch: number };
}

export function randomProducerIds(random: (n: number) => Buffer = randomBytes): ProducerIdAllocator {
  return {
    next() {
      const b = random(7);
      // 52 random bits: 4 from the first byte, 48 from the next six.
      const high = b[0] & 0x0f;
      const low = b.readUIntBE(1, 6);
      return { producerId: SHORT_LIVED_ID_MIN + high * 2 ** 48 + low, producerEpoch: 0 };
    },
  };
}
