// Kappa's Kafka listener with kafkajs 2 (npm; runs in `npm test`): see suite.ts for the scenarios.
import { kafkajsClient } from '../support/kafka-clients.ts';
import { compatibilitySuite } from './suite.ts';

compatibilitySuite(kafkajsClient);
