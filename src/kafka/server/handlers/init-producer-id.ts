/**
 * InitProducerId 0-4 for idempotent producers: a producer id and epoch under which the log
 * deduplicates retried batches (see ../producer-ids.ts for why every call gets a fresh id at epoch
 * 0, an epoch bump included). A transactional id is refused with
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED: Kappa has no transactions.
 */
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler } from '../context.ts';

interface InitProducerIdRequest {
  transactionalId: string | null;
}

export const initProducerIdHandler: Handler = {
  key: API_KEYS.InitProducerId,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, body) {
    const req = body as InitProducerIdRequest;
    if (req.transactionalId !== null && req.transactionalId !== undefined) {
      return {
        throttleTimeMs: 0,
        errorCode: ERRORS.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        producerId: -1,
        producerEpoch: -1,
      };
    }
    if (!ctx.allowedAny('produce:'))
      return { throttleTimeMs: 0, errorCode: ERRORS.CLUSTER_AUTHORIZATION_FAILED, producerId: -1, producerEpoch: -1 };
    return { throttleTimeMs: 0, errorCode: 0, ...ctx.deps.producerIds.next() };
  },
  errorBody(_body, errorCode) {
    return { throttleTimeMs: 0, errorCode, producerId: -1, producerEpoch: -1 };
  },
};
