// Kappa's Kafka listener with Debian's kcat (librdkafka 2.0.2): see suite.ts for the scenarios.
import { KCAT, kcat } from '../support/kafka-clients.ts';
import { compatibilitySuite } from './suite.ts';

compatibilitySuite(kcat, { needs: [KCAT] });
