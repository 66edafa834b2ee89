/** Every API the listener serves, one handler each (the group APIs only with a coordinator). */
import type { Handler } from '../context.ts';
import { createTopicsHandler, deleteTopicsHandler } from './admin-topics.ts';
import { apiVersionsHandler } from './api-versions.ts';
import { describeConfigsHandler } from './describe-configs.ts';
import { fetchHandler } from './fetch.ts';
import { findCoordinatorHandler } from './find-coordinator.ts';
import { groupHandlers } from './groups.ts';
import { initProducerIdHandler } from './init-producer-id.ts';
import { listOffsetsHandler } from './list-offsets.ts';
import { metadataHandler } from './metadata.ts';
import { produceHandler } from './produce.ts';
import { saslAuthenticateHandler, saslHandshakeHandler } from './sasl.ts';

export function allHandlers(withGroups: boolean): Handler[] {
  return [
    produceHandler,
    fetchHandler,
    listOffsetsHandler,
    metadataHandler,
    apiVersionsHandler,
    saslHandshakeHandler,
    saslAuthenticateHandler,
    initProducerIdHandler,
    createTopicsHandler,
    deleteTopicsHandler,
    describeConfigsHandler,
    ...(withGroups ? [findCoordinatorHandler, ...groupHandlers()] : []),
  ];
}
