// Kappa's Kafka listener with @platformatic/kafka 1.x (npm; runs in `npm test`): see suite.ts for
// the scenarios.
import { platformaticKafka } from '../support/kafka-clients.ts';
import { compatibilitySuite } from './suite.ts';

compatibilitySuite(platformaticKafka);
