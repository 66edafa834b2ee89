/**
 * FindCoordinator 0-4: this listener coordinates every group (there is one broker). Transaction
 * coordinators (key type 1) are refused: Kappa has no transactions.
 */
import { API_KEYS, ERRORS } from '../../protocol/index.ts';
import type { Handler, RequestContext } from '../context.ts';

interface FindCoordinatorRequest {
  key?: string;
  keyType?: number;
  coordinatorKeys?: string[];
}

const GROUP = 0;

export const findCoordinatorHandler: Handler = {
  key: API_KEYS.FindCoordinator,
  minVersion: 0,
  maxVersion: 4,
  async handle(ctx, body) {
    const req = body as FindCoordinatorRequest;
    const v = ctx.header.apiVersion;
    if (v >= 4)
      return {
        throttleTimeMs: 0,
        coordinators: (req.coordinatorKeys ?? []).map((key) => ({ key, ...find(ctx, req.keyType ?? GROUP) })),
      };
    return { throttleTimeMs: 0, ...find(ctx, req.keyType ?? GROUP) };
  },
  errorBody(body, errorCode) {
    const req = body as FindCoordinatorRequest;
    const failed = { errorCode, errorMessage: null, nodeId: -1, host: '', port: -1 };
    return { ...failed, coordinators: (req.coordinatorKeys ?? []).map((key) => ({ key, ...failed })) };
  },
};

function find(ctx: RequestContext, keyType: number): object {
  if (keyType !== GROUP)
    return {
      errorCode: ERRORS.COORDINATOR_NOT_AVAILABLE,
      errorMessage: 'Kappa does not support Kafka transactions, so there is no transaction coordinator.',
      nodeId: -1,
      host: '',
      port: -1,
    };
  if (!ctx.allowedAny('consume:'))
    return {
      errorCode: ERRORS.GROUP_AUTHORIZATION_FAILED,
      errorMessage: 'Consumer groups need a token with a consume:<topic> scope.',
      nodeId: -1,
      host: '',
      port: -1,
    };
  return {
    errorCode: 0,
    errorMessage: null,
    nodeId: 0,
    host: ctx.deps.advertisedHost ?? ctx.session.localAddress,
    port: ctx.deps.advertisedPort,
  };
}
