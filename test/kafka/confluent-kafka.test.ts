// Kappa's Kafka listener with python3-confluent-kafka (librdkafka 2.0.2), its producer idempotent
// (enable.idempotence=true, acks=all); its group's restart is a SIGKILL of `kappa start`: see suite.ts
// for the scenarios.
import { PYTHON3_CONFLUENT_KAFKA, confluentKafka } from '../support/kafka-clients.ts';
import { compatibilitySuite } from './suite.ts';

compatibilitySuite(confluentKafka, {
  needs: [PYTHON3_CONFLUENT_KAFKA],
  produce: { idempotent: true },
  restartSignal: 'SIGKILL',
  assignors: ['roundrobin', 'cooperative-sticky'],
});
