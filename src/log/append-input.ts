/**
 * Checks of what a caller hands to an append, before anything is encoded or queued: records (key,
 * value, headers, timestamp) and the idempotent-producer fields. A bad input is refused with a typed
 * KappaError (KAPPA_INVALID_RECORD, KAPPA_INVALID_ARGUMENT) naming the field, and nothing of the
 * call is appended.
 */
import { KappaError } from '../errors.ts';
import { EPOCH_MAX, type ProducerIdentity, SEQUENCE_MODULUS } from './producer-state.ts';
import type { EncodableRecord, RecordHeader } from './record-batch.ts';
import type { BatchOptions, ProducerRecord } from './types.ts';

/**
 * Checks one record and puts it in the encoder's shape. Runs for every record of a call before any
 * is queued, so a bad record refuses the whole call instead of leaving part of it appended.
 */
export function toEncodable(r: ProducerRecord, now: number, index: number): EncodableRecord {
  const timestamp = r.timestamp ?? now;
  // The encoder would silently store NaN as 0 and 1.5 as 1, so a bad timestamp is refused here.
  if (!Number.isSafeInteger(timestamp)) {
    throw new KappaError(
      'KAPPA_INVALID_RECORD',
      `Record ${index} has timestamp ${String(r.timestamp)}; a timestamp is a whole number of milliseconds since 1970.`,
      { index },
    );
  }
  const key = r.key ?? null;
  if (!isBytes(key) || !isBytes(r.value)) {
    throw new KappaError(
      'KAPPA_INVALID_RECORD',
      `Record ${index} has a ${isBytes(key) ? 'value' : 'key'} that is not a string, a Buffer or null.`,
      { index },
    );
  }
  let headers: RecordHeader[] | null = null;
  if (r.headers) {
    headers = Array.isArray(r.headers)
      ? r.headers
      : Object.entries(r.headers).map(([key, value]) => ({
          key,
          value: value === null ? null : typeof value === 'string' ? Buffer.from(value) : value,
        }));
  }
  return { key, value: r.value, headers, timestamp };
}

/** The producer of an idempotent append, or null for a plain one; refuses incomplete or out-of-range fields. */
export function producerOf(opts: BatchOptions | undefined): ProducerIdentity | null {
  if (opts === undefined) return null;
  const { producerId = -1, producerEpoch = -1, baseSequence = -1 } = opts;
  if (producerId === -1) {
    if (producerEpoch !== -1)
      badProducerField(
        'producerEpoch',
        producerEpoch,
        'an epoch needs a producerId (or leave both out for a plain append)',
      );
    if (baseSequence !== -1)
      badProducerField(
        'baseSequence',
        baseSequence,
        'a sequence needs a producerId (or leave both out for a plain append)',
      );
    return null;
  }
  if (!Number.isSafeInteger(producerId) || producerId < 0)
    badProducerField(
      'producerId',
      producerId,
      'it must be a whole number from 0 to 2^53 - 1, or -1 for a plain append',
    );
  if (!Number.isInteger(producerEpoch) || producerEpoch < 0 || producerEpoch > EPOCH_MAX) {
    badProducerField(
      'producerEpoch',
      producerEpoch,
      `an idempotent append needs a whole number from 0 to ${EPOCH_MAX}`,
    );
  }
  if (!Number.isInteger(baseSequence) || baseSequence < 0 || baseSequence >= SEQUENCE_MODULUS) {
    badProducerField(
      'baseSequence',
      baseSequence,
      `an idempotent append needs the first record's sequence, a whole number from 0 to ${SEQUENCE_MODULUS - 1} (sequences wrap to 0 after it)`,
    );
  }
  return { producerId, producerEpoch, baseSequence, allowGaps: opts.sequenceGaps === 'allow' };
}

function badProducerField(field: string, value: unknown, rule: string): never {
  throw new KappaError('KAPPA_INVALID_ARGUMENT', `${field} is ${String(value)}; ${rule}. Nothing was appended.`, {
    [field]: value,
  });
}

function isBytes(v: unknown): v is Buffer | string | null {
  return v === null || typeof v === 'string' || Buffer.isBuffer(v);
}
