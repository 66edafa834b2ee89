/**
 * ApiVersions 0-3: the APIs and version ranges this listener serves, every version in each range
 * fully (clients pick the highest version both sides know). An ApiVersions version outside 0-3 is
 * answered by the dispatcher, in v0 with UNSUPPORTED_VERSION and this same list.
 */
import { API_KEYS } from '../../protocol/index.ts';
import type { Handler } from '../context.ts';

export const apiVersionsHandler: Handler = {
  key: API_KEYS.ApiVersions,
  minVersion: 0,
  maxVersion: 3,
  async handle(ctx) {
    return { errorCode: 0, apiKeys: ctx.deps.advertised, throttleTimeMs: 0 };
  },
  errorBody(_body, errorCode) {
    return { errorCode, apiKeys: [] };
  },
};
