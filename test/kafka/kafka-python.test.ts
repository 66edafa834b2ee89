// Kappa's Kafka listener with python3-kafka (kafka-python 2.0.2, which speaks old fixed API
// versions): see suite.ts for the scenarios.
import { PYTHON3_KAFKA, kafkaPython } from '../support/kafka-clients.ts';
import { compatibilitySuite } from './suite.ts';

compatibilitySuite(kafkaPython, { needs: [PYTHON3_KAFKA] });
