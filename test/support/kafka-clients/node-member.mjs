// A consumer-group member of kafkajs or @platformatic/kafka in its own process, so a test can kill
// it for real. Usage: node node-member.mjs kafkajs|platformatic '<json spec {bootstrap, topic, group}>'
// Prints JSON lines (see member.ts): {"event":"assignment","partitions":[...]} after each join (the
// whole new assignment), {"event":"record","record":{...}} after the record's offset was committed,
// {"event":"commit-failed"|"error","error":"..."}, {"event":"closed"}. The line "close" on stdin
// makes it leave the group cleanly and exit.
import { createInterface } from 'node:readline';

const [, , which, specJson] = process.argv;
const spec = JSON.parse(specJson);
const SESSION_TIMEOUT_MS = 6000;
const HEARTBEAT_INTERVAL_MS = 500;
/** A fetch's long poll; see rebalanceSettleMs in node-clients.ts. */
const PLATFORMATIC_FETCH_WAIT_MS = 1000;

/** An error with the distinct messages of the errors it aggregates (what each request got from the server). */
function describeError(error) {
  if (!(error instanceof Error)) return String(error);
  const reasons = [...new Set((error.errors ?? []).map(describeError))];
  const own = error.apiId ? `${error.message} (${error.apiId})` : error.message;
  return reasons.length === 0 ? own : `${own}: ${reasons.join('; ')}`;
}

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function onClose(close) {
  createInterface({ input: process.stdin }).on('line', async (line) => {
    if (line.trim() !== 'close') return;
    await close();
    emit({ event: 'closed' });
    process.exit(0);
  });
}

async function kafkajsMember() {
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ clientId: 'kappa-compat', brokers: [spec.bootstrap], logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({
    groupId: spec.group,
    sessionTimeout: SESSION_TIMEOUT_MS,
    heartbeatInterval: HEARTBEAT_INTERVAL_MS,
    rebalanceTimeout: 10_000,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) =>
    emit({ event: 'assignment', partitions: [...(e.payload.memberAssignment[spec.topic] ?? [])].sort() }),
  );
  consumer.on(consumer.events.CRASH, (e) => emit({ event: 'error', error: describeError(e.payload.error) }));
  await consumer.connect();
  await consumer.subscribe({ topics: [spec.topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const offset = Number(message.offset);
      try {
        await consumer.commitOffsets([{ topic: spec.topic, partition, offset: String(offset + 1) }]);
      } catch (error) {
        emit({ event: 'commit-failed', error: describeError(error) });
        throw error;
      }
      emit({
        event: 'record',
        record: {
          partition,
          offset,
          key: message.key === null ? null : message.key.toString('utf8'),
          value: message.value === null ? null : message.value.toString('utf8'),
          headers: Object.entries(message.headers ?? {}).map(([k, v]) => [k, v === undefined ? null : String(v)]),
          timestamp: Number(message.timestamp),
        },
      });
    },
  });
  onClose(() => consumer.disconnect());
}

async function platformaticMember() {
  const { Consumer, stringDeserializers } = await import('@platformatic/kafka');
  const consumer = new Consumer({
    clientId: 'kappa-compat',
    groupId: spec.group,
    bootstrapBrokers: [spec.bootstrap],
    deserializers: stringDeserializers,
    sessionTimeout: SESSION_TIMEOUT_MS,
    heartbeatInterval: HEARTBEAT_INTERVAL_MS,
    rebalanceTimeout: 10_000,
    maxWaitTime: PLATFORMATIC_FETCH_WAIT_MS,
  });
  consumer.on('consumer:group:join', (p) => {
    const mine = (p.assignments ?? []).filter((a) => a.topic === spec.topic).flatMap((a) => a.partitions);
    emit({ event: 'assignment', partitions: [...mine].sort() });
  });
  consumer.on('error', (e) => emit({ event: 'error', error: describeError(e) }));
  const stream = await consumer.consume({
    topics: [spec.topic],
    mode: 'committed',
    fallbackMode: 'earliest',
    autocommit: false,
  });
  // A stream that failed delivers nothing more: end, so the test sees it at once.
  stream.on('error', (e) => {
    emit({ event: 'error', error: describeError(e) });
    process.exit(1);
  });
  onClose(async () => {
    await stream.close();
    await consumer.close();
  });
  for await (const m of stream) {
    try {
      await m.commit();
    } catch (error) {
      emit({ event: 'commit-failed', error: describeError(error) });
      continue;
    }
    emit({
      event: 'record',
      record: {
        partition: m.partition,
        offset: Number(m.offset),
        key: m.key ?? null,
        value: m.value ?? null,
        headers: [...m.headers.entries()].map(([k, v]) => [String(k), v === undefined ? null : String(v)]),
        timestamp: Number(m.timestamp),
      },
    });
  }
}

await (which === 'kafkajs' ? kafkajsMember() : platformaticMember());
