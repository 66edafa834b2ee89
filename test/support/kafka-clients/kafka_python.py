"""Drives python3-kafka (kafka-python 2.0.2, which speaks old fixed API versions) for Kappa's Kafka
compatibility suites. Same commands, specs and JSON lines as confluent.py (but no `mock`):

  produce    spec {bootstrap, topic, records: [{key, value, headers, timestamp}], config}
  consume    spec {bootstrap, topic, partitions, count, timeoutMs, config}
  member     spec {bootstrap, topic, group, config}; "close" on stdin leaves the group
  committed  spec {bootstrap, topic, group, partitions}

`config` holds KafkaProducer / KafkaConsumer keyword arguments (compression_type="gzip", ...).
kafka-python's default partitioner is murmur2, as Java's.
"""
import json
import sys
import threading
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text(b):
    return None if b is None else b.decode("utf-8")


def record_of(r):
    return {
        "partition": r.partition,
        "offset": r.offset,
        "key": text(r.key),
        "value": text(r.value),
        "headers": [[k, text(v)] for k, v in (r.headers or [])],
        "timestamp": r.timestamp,
    }


def produce(spec):
    producer = KafkaProducer(bootstrap_servers=spec["bootstrap"], **spec.get("config", {}))
    futures = []
    for r in spec["records"]:
        key = None if r.get("key") is None else r["key"].encode("utf-8")
        headers = [(k, v.encode("utf-8")) for k, v in r.get("headers", [])]
        futures.append(
            producer.send(
                spec["topic"],
                value=r["value"].encode("utf-8"),
                key=key,
                headers=headers,
                timestamp_ms=r.get("timestamp"),
                partition=r.get("partition"),
            )
        )
    producer.flush(timeout=spec.get("timeoutMs", 30000) / 1000)
    acks = []
    for f in futures:
        try:
            md = f.get(timeout=1)
            acks.append({"partition": md.partition, "offset": md.offset, "error": None})
        except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
            acks.append({"error": repr(e)})
    producer.close(timeout=5)
    emit({"acks": acks})


def consume(spec):
    consumer = KafkaConsumer(
        bootstrap_servers=spec["bootstrap"], enable_auto_commit=False, group_id=None, **spec.get("config", {})
    )
    tps = [TopicPartition(spec["topic"], p) for p in spec["partitions"]]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    deadline = time.monotonic() + spec.get("timeoutMs", 20000) / 1000
    n = 0
    while n < spec["count"] and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            for r in records:
                emit({"record": record_of(r)})
                n += 1
    consumer.close()
    emit({"done": True, "count": n})


class Reporter(ConsumerRebalanceListener):
    def on_partitions_assigned(self, assigned):
        emit({"event": "assigned", "partitions": sorted(tp.partition for tp in assigned)})

    def on_partitions_revoked(self, revoked):
        emit({"event": "revoked", "partitions": sorted(tp.partition for tp in revoked)})


def member(spec):
    config = {
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 500,
    }
    config.update(spec.get("config", {}))
    consumer = KafkaConsumer(bootstrap_servers=spec["bootstrap"], group_id=spec["group"], **config)
    consumer.subscribe([spec["topic"]], listener=Reporter())
    closing = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        closing.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    while not closing.is_set():
        for tp, records in consumer.poll(timeout_ms=100).items():
            for r in records:
                try:
                    consumer.commit({tp: OffsetAndMetadata(r.offset + 1, None)})
                except Exception as e:  # noqa: BLE001
                    emit({"event": "commit-failed", "error": repr(e), "record": record_of(r)})
                    continue
                emit({"event": "record", "record": record_of(r)})
    consumer.close(autocommit=False)
    emit({"event": "closed"})


def committed(spec):
    consumer = KafkaConsumer(bootstrap_servers=spec["bootstrap"], group_id=spec["group"], enable_auto_commit=False)
    out = {}
    for p in spec["partitions"]:
        c = consumer.committed(TopicPartition(spec["topic"], p))
        out[str(p)] = -1001 if c is None else c
    consumer.close(autocommit=False)
    emit({"committed": out})


COMMANDS = {"produce": produce, "consume": consume, "member": member, "committed": committed}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
