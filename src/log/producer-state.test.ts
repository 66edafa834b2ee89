import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  PRODUCER_BATCHES_MAX,
  ProducerStateLoader,
  ProducerStates,
  SEQUENCE_MODULUS,
  SEQUENCE_WINDOW,
  SHORT_LIVED_PRODUCER_ID_MIN,
  duplicateOffsets,
  entryAfterAppend,
} from './producer-state.ts';

const WHERE = 't/0';

function stateWith(
  producerId: number,
  epoch: number,
  baseSequence: number,
  count: number,
  baseOffset: number,
): ProducerStates {
  const loader = new ProducerStateLoader();
  loader.apply(producerId, epoch, baseSequence, count, baseOffset);
  return loader.finish(0);
}

describe('producer state', () => {
  test('counts the leading duplicates of a batch by sequence, up to the whole batch', () => {
    const state = stateWith(1, 0, 0, 10, 0); // sequences 0-9
    const p = (baseSequence: number) => ({ producerId: 1, producerEpoch: 0, baseSequence });
    assert.equal(state.duplicatesIn(p(10), 5, WHERE), 0);
    assert.equal(state.duplicatesIn(p(8), 5, WHERE), 2);
    assert.equal(state.duplicatesIn(p(0), 5, WHERE), 5);
    assert.equal(state.duplicatesIn(p(0), 50, WHERE), 10);
    assert.throws(() => state.duplicatesIn(p(11), 1, WHERE), { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' });
    assert.equal(
      state.duplicatesIn({ producerId: 2, producerEpoch: 0, baseSequence: 77 }, 1, WHERE),
      0,
      'unknown producers start anywhere',
    );
  });

  test('reads a sequence up to 2^30 behind the last as a duplicate and anything ahead as a gap, across the wrap', () => {
    const last = 5;
    const state = stateWith(1, 0, 0, last + 1, 0);
    const p = (baseSequence: number) => ({ producerId: 1, producerEpoch: 0, baseSequence });
    const behind = (n: number): number => (last - n + SEQUENCE_MODULUS) % SEQUENCE_MODULUS;
    assert.equal(state.duplicatesIn(p(behind(SEQUENCE_WINDOW - 1)), 1, WHERE), 1);
    assert.throws(() => state.duplicatesIn(p(behind(SEQUENCE_WINDOW)), 1, WHERE), {
      code: 'KAPPA_OUT_OF_ORDER_SEQUENCE',
    });
    assert.equal(state.duplicatesIn(p(SEQUENCE_MODULUS - 1), 1, WHERE), 1, '2^31 - 1 is 6 behind 5, across the wrap');
    const wrapped = stateWith(1, 0, SEQUENCE_MODULUS - 2, 4, 0); // sequences 2^31-2, 2^31-1, 0, 1
    assert.equal(wrapped.duplicatesIn(p(SEQUENCE_MODULUS - 1), 4, WHERE), 3);
    assert.equal(wrapped.duplicatesIn(p(2), 1, WHERE), 0);
  });

  test('fences an older epoch and lets a newer one continue the sequence', () => {
    const state = stateWith(1, 3, 0, 5, 0);
    assert.throws(() => state.duplicatesIn({ producerId: 1, producerEpoch: 2, baseSequence: 5 }, 1, WHERE), {
      code: 'KAPPA_PRODUCER_FENCED',
    });
    assert.equal(state.duplicatesIn({ producerId: 1, producerEpoch: 4, baseSequence: 3 }, 4, WHERE), 2);
    assert.throws(
      () => state.duplicatesIn({ producerId: 1, producerEpoch: 4, baseSequence: 6 }, 1, WHERE),
      { code: 'KAPPA_OUT_OF_ORDER_SEQUENCE' },
      'a new epoch does not restart the numbering',
    );
  });

  test('remembers the last five batches and maps duplicate sequences to their offsets', () => {
    let entry = entryAfterAppend(undefined, 0, 0, 2, 100); // seq 0-1 at 100-101
    for (let i = 1; i <= PRODUCER_BATCHES_MAX; i++) entry = entryAfterAppend(entry, 0, i * 2, 2, 100 + i * 10);
    assert.equal(entry.batches.length, PRODUCER_BATCHES_MAX);
    assert.deepEqual(duplicateOffsets(entry, 0, 4), [-1, -1, 110, 111]);
    assert.deepEqual(duplicateOffsets(entry, 10, 2), [150, 151]);
    // A batch that does not continue the sequence (only possible for a producer starting over) starts a new history.
    assert.deepEqual(entryAfterAppend(entry, 0, 500, 1, 900).batches, [
      { lastSequence: 500, count: 1, baseOffset: 900 },
    ]);
  });

  test('forgets producers whose last batch lies below the start offset', () => {
    const loader = new ProducerStateLoader();
    loader.apply(1, 0, 0, 5, 0);
    loader.apply(2, 0, 0, 5, 5);
    const state = loader.finish(5);
    assert.equal(state.get(1), undefined);
    assert.ok(state.get(2));
    state.expireBefore(10);
    assert.equal(state.size, 0);
  });

  test('the loader keeps the same batches as appends do', () => {
    const loader = new ProducerStateLoader();
    let entry;
    for (let i = 0; i < 8; i++) {
      loader.apply(1, i < 4 ? 0 : 1, i * 3, 3, i * 10);
      entry = entryAfterAppend(entry, i < 4 ? 0 : 1, i * 3, 3, i * 10);
    }
    loader.apply(1, 1, 500, 2, 100);
    entry = entryAfterAppend(entry, 1, 500, 2, 100);
    const resumed = new ProducerStateLoader(loader.finish(0));
    resumed.apply(1, 2, 502, 1, 110);
    entry = entryAfterAppend(entry, 2, 502, 1, 110);
    assert.deepEqual(resumed.finish(0).get(1), entry);
  });
});

describe('short-lived producers', () => {
  const S = SHORT_LIVED_PRODUCER_ID_MIN;

  test('a partition remembers only the most recently appended ones, and every long-lived one', () => {
    const state = new ProducerStates(undefined, 3);
    for (let i = 0; i < 5; i++) state.set(S + i, entryAfterAppend(undefined, 0, 0, 1, i));
    for (let i = 0; i < 5; i++) state.set(i, entryAfterAppend(undefined, 0, 0, 1, 10 + i));
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => state.get(S + i) !== undefined),
      [false, false, true, true, true],
    );
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((i) => state.get(i) !== undefined),
      [true, true, true, true, true],
    );
    // Appending again makes a producer the most recent: S+2 is kept, S+3 goes.
    state.set(S + 2, entryAfterAppend(state.get(S + 2), 0, 1, 1, 20));
    state.set(S + 9, entryAfterAppend(undefined, 0, 0, 1, 21));
    assert.deepEqual(
      [2, 3, 4, 9].map((i) => state.get(S + i) !== undefined),
      [true, false, true, true],
    );
    assert.equal(state.size, 5 + 3);
    assert.equal(state.clone().get(S + 3), undefined);
    // A remembered one's re-send is a duplicate; a forgotten one's is new.
    assert.equal(state.duplicatesIn({ producerId: S + 4, producerEpoch: 0, baseSequence: 0 }, 1, WHERE), 1);
    assert.equal(state.clone().duplicatesIn({ producerId: S + 4, producerEpoch: 0, baseSequence: 0 }, 1, WHERE), 1);
    assert.equal(state.duplicatesIn({ producerId: S + 0, producerEpoch: 0, baseSequence: 0 }, 1, WHERE), 0);
  });

  test('rebuilding from the log (and from a snapshot) remembers the same ones as the appends did', () => {
    const live = new ProducerStates(undefined, 4);
    const loader = new ProducerStateLoader(undefined, 4);
    const order = [0, 1, 2, 0, 3, 4, 5, 1, 6];
    order.forEach((i, offset) => {
      const prior = live.get(S + i);
      const seq = prior ? prior.batches[prior.batches.length - 1].lastSequence + 1 : 0;
      live.set(S + i, entryAfterAppend(prior, 0, seq, 1, offset));
      loader.apply(S + i, 0, seq, 1, offset);
    });
    const rebuilt = loader.finish(0);
    const kept = (s: ProducerStates): number[] => [...s.entriesOf()].map(([id]) => id - S);
    assert.deepEqual(kept(live), [4, 5, 1, 6], 'the four most recently appended, least recent first');
    assert.deepEqual(kept(rebuilt), kept(live));
    for (const [id, entry] of live.entriesOf()) assert.deepEqual(rebuilt.get(id), entry);
    // A snapshot keeps the order, so the next producer forgotten is the same one.
    const parsed = ProducerStates.fromSnapshot(live.toSnapshot(9), 9);
    assert.ok(parsed instanceof ProducerStates);
    assert.deepEqual(kept(parsed), [4, 5, 1, 6]);
    const resumed = new ProducerStateLoader(parsed, 4);
    resumed.apply(S + 7, 0, 0, 1, 9);
    assert.deepEqual(kept(resumed.finish(0)), [5, 1, 6, 7]);
  });
});

describe('producer snapshot', () => {
  function sample(): ProducerStates {
    const loader = new ProducerStateLoader();
    for (let i = 0; i < 7; i++)
      loader.apply(2 ** 53 - 1, 32767, (SEQUENCE_MODULUS - 3 + i * 2) % SEQUENCE_MODULUS, 2, 2 ** 40 + i * 2);
    loader.apply(0, 0, 0, 1, 2 ** 40 + 100);
    return loader.finish(0);
  }

  test('round-trips every producer with its epoch and remembered batches', () => {
    const state = sample();
    const parsed = ProducerStates.fromSnapshot(state.toSnapshot(2 ** 40 + 101), 2 ** 40 + 101);
    assert.ok(parsed instanceof ProducerStates, String(parsed));
    assert.equal(parsed.size, 2);
    assert.deepEqual(parsed.get(2 ** 53 - 1), state.get(2 ** 53 - 1));
    assert.deepEqual(parsed.get(0), state.get(0));
    assert.equal(parsed.get(2 ** 53 - 1)!.batches.length, PRODUCER_BATCHES_MAX);
    const empty = ProducerStates.fromSnapshot(new ProducerStates().toSnapshot(0), 0);
    assert.ok(empty instanceof ProducerStates && empty.size === 0);
  });

  test('reports any damaged byte, a cut file and a snapshot of another offset instead of trusting them', () => {
    const bytes = sample().toSnapshot(7);
    for (let i = 0; i < bytes.length; i++) {
      const damaged = Buffer.from(bytes);
      damaged[i] ^= 0x01;
      assert.equal(typeof ProducerStates.fromSnapshot(damaged, 7), 'string', `byte ${i}`);
    }
    assert.match(String(ProducerStates.fromSnapshot(bytes.subarray(0, bytes.length - 5), 7)), /CRC/);
    assert.match(String(ProducerStates.fromSnapshot(bytes.subarray(0, 10), 7)), /shorter than a snapshot header/);
    assert.match(String(ProducerStates.fromSnapshot(bytes, 8)), /describes offset 7, not 8/);
  });
});
