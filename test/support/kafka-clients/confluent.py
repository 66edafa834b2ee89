"""Drives python3-confluent-kafka (librdkafka) for Kappa's Kafka compatibility suites.

Run with Debian's /usr/bin/python3:  confluent.py <command> '<json spec>'
Every line this prints on stdout is one JSON object; diagnostics go to stderr.

  mock       start librdkafka's built-in mock cluster (spec: {"brokers": 1}); prints
             {"bootstrap": "host:port"} and keeps it alive until stdin closes or the process is killed
  produce    spec {bootstrap, topic, records: [{key, value, headers: [[k, v]], timestamp}], config}:
             prints {"acks": [{partition, offset, error}]} in the order of `records`
  consume    spec {bootstrap, topic, partitions: [..], count, timeoutMs, config}: reads every listed
             partition from its beginning without a group; prints one {"record": {...}} per record
             and then {"done": true, "count": n} once `count` records came (or the time ran out)
  member     spec {bootstrap, topic, group, config}: a consumer-group member that commits each record
             synchronously before it reports it; prints {"event": "assigned"|"revoked", "partitions"}
             and {"event": "record", "record": {...}}; the line "close" on stdin makes it leave the
             group cleanly and print {"event": "closed"}
  committed  spec {bootstrap, topic, group, partitions}: prints {"committed": {partition: offset}}
"""
import json
import sys
import threading
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text(b):
    return None if b is None else b.decode("utf-8")


def record_of(msg):
    headers = msg.headers() or []
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": [[k, text(v)] for k, v in headers],
        "timestamp": msg.timestamp()[1],
    }


def mock(spec):
    producer = Producer({"test.mock.num.brokers": spec.get("brokers", 1)})
    brokers = producer.list_topics(timeout=10).brokers
    emit({"bootstrap": ",".join(f"{b.host}:{b.port}" for b in brokers.values())})
    # The mock cluster lives as long as this producer: until stdin closes (or a kill).
    sys.stdin.read()


def produce(spec):
    config = {"bootstrap.servers": spec["bootstrap"], "partitioner": "murmur2_random"}
    config.update(spec.get("config", {}))
    producer = Producer(config)
    acks = [None] * len(spec["records"])

    def on_delivery(i):
        def report(err, msg):
            if err is not None:
                acks[i] = {"error": str(err)}
            else:
                acks[i] = {"partition": msg.partition(), "offset": msg.offset(), "error": None}

        return report

    for i, r in enumerate(spec["records"]):
        headers = [(k, v.encode("utf-8")) for k, v in r.get("headers", [])]
        kwargs = {"headers": headers, "on_delivery": on_delivery(i)}
        if r.get("timestamp") is not None:
            kwargs["timestamp"] = r["timestamp"]
        if r.get("partition") is not None:
            kwargs["partition"] = r["partition"]
        producer.produce(spec["topic"], value=r["value"], key=r.get("key"), **kwargs)
        producer.poll(0)
    left = producer.flush(spec.get("timeoutMs", 30000) / 1000)
    if left > 0:
        emit({"error": f"{left} records were not acknowledged in time"})
    emit({"acks": acks})


def consume(spec):
    config = {
        "bootstrap.servers": spec["bootstrap"],
        "group.id": "kappa-compat-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
    }
    config.update(spec.get("config", {}))
    consumer = Consumer(config)
    consumer.assign([TopicPartition(spec["topic"], p, OFFSET_BEGINNING) for p in spec["partitions"]])
    deadline = time.monotonic() + spec.get("timeoutMs", 20000) / 1000
    n = 0
    while n < spec["count"] and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            emit({"error": str(msg.error())})
            continue
        emit({"record": record_of(msg)})
        n += 1
    consumer.close()
    emit({"done": True, "count": n})


def member(spec):
    config = {
        "bootstrap.servers": spec["bootstrap"],
        "group.id": spec["group"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    config.update(spec.get("config", {}))
    consumer = Consumer(config)
    closing = threading.Event()

    def on_assign(c, partitions):
        emit({"event": "assigned", "partitions": sorted(p.partition for p in partitions)})

    def on_revoke(c, partitions):
        emit({"event": "revoked", "partitions": sorted(p.partition for p in partitions)})

    consumer.subscribe([spec["topic"]], on_assign=on_assign, on_revoke=on_revoke)

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        closing.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    while not closing.is_set():
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            emit({"event": "error", "error": str(msg.error())})
            continue
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException as e:
            emit({"event": "commit-failed", "error": str(e), "record": record_of(msg)})
            continue
        emit({"event": "record", "record": record_of(msg)})
    consumer.close()
    emit({"event": "closed"})


def committed(spec):
    consumer = Consumer({"bootstrap.servers": spec["bootstrap"], "group.id": spec["group"]})
    tps = consumer.committed([TopicPartition(spec["topic"], p) for p in spec["partitions"]], timeout=10)
    emit({"committed": {str(tp.partition): tp.offset for tp in tps}})
    consumer.close()


COMMANDS = {"mock": mock, "produce": produce, "consume": consume, "member": member, "committed": committed}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
