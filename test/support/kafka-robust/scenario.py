"""One Kafka scenario, run by the differential test (test/kafka/differential.test.ts) against
Kappa and against librdkafka's mock cluster, with python3-confluent-kafka (Debian's /usr/bin/python3):

  scenario.py '{"bootstrap": "...", "topic": "diff", "zstdTopic": "diffz", "partitions": 4, "group": "g", "n": 120}'

  1. produces n keyed records (key "key-<i % 7>", value "value-<i>", headers [("i", "<i>"), ("h", "x")],
     CreateTime base + i) with partitioner=murmur2_random and acks=all, one at a time in order;
     and the same n records to zstdTopic with the idempotent producer (enable.idempotence) and zstd;
  2. reads each partition's low and high watermarks, and the offsets for the time base + n/2;
  3. reads every partition of both topics from its beginning without a group;
  4. a group of two consumers (range assignor): the first joins, the second joins (a rebalance);
     each commits every record synchronously before counting it, until the group has all n;
     both leave; then the group's committed offsets are looked up;
  5. reads one partition from an offset past its end with auto.offset.reset=error.
Prints one JSON object on stdout: what each step saw.
"""
import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

BASE_TS = 1_700_000_000_000


def record_of(msg):
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": msg.key().decode() if msg.key() is not None else None,
        "value": msg.value().decode() if msg.value() is not None else None,
        "headers": [[k, v.decode() if v is not None else None] for k, v in (msg.headers() or [])],
        "timestamp": list(msg.timestamp()),
    }


def produce(spec, topic, **extra):
    config = {"bootstrap.servers": spec["bootstrap"], "partitioner": "murmur2_random", "acks": "all"}
    config.update(extra)
    producer = Producer(config)
    acks = [None] * spec["n"]

    def report(i):
        def on_delivery(err, msg):
            acks[i] = {"error": str(err)} if err else {"partition": msg.partition(), "offset": msg.offset()}

        return on_delivery

    for i in range(spec["n"]):
        producer.produce(
            topic,
            key=f"key-{i % 7}",
            value=f"value-{i}",
            headers=[("i", str(i).encode()), ("h", b"x")],
            timestamp=BASE_TS + i,
            on_delivery=report(i),
        )
        producer.poll(0)
    producer.flush(30)
    return acks


def consumer(spec, group, **extra):
    config = {
        "bootstrap.servers": spec["bootstrap"],
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
    }
    config.update(extra)
    return Consumer(config)


def describe(spec):
    c = consumer(spec, "describer")
    tps = [TopicPartition(spec["topic"], p) for p in range(spec["partitions"])]
    marks = [list(c.get_watermark_offsets(tp, timeout=10)) for tp in tps]
    times = c.offsets_for_times([TopicPartition(spec["topic"], p, BASE_TS + spec["n"] // 2) for p in range(spec["partitions"])], timeout=10)
    c.close()
    return marks, [tp.offset for tp in times]


def read_all(spec, topic):
    c = consumer(spec, "reader")
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(spec["partitions"])])
    out, deadline = [], time.monotonic() + 20
    while len(out) < spec["n"] and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            out.append(record_of(msg))
    c.close()
    return sorted(out, key=lambda r: (r["partition"], r["offset"]))


def group(spec):
    settings = {"partition.assignment.strategy": "range", "session.timeout.ms": 6000, "heartbeat.interval.ms": 300}
    members = [consumer(spec, spec["group"], **settings) for _ in range(2)]
    assigned = [[], []]
    events = []

    def on_assign(k):
        def cb(c, partitions):
            assigned[k] = sorted(p.partition for p in partitions)
            events.append(["assigned", k, assigned[k]])

        return cb

    def on_revoke(k):
        def cb(c, partitions):
            events.append(["revoked", k, sorted(p.partition for p in partitions)])

        return cb

    seen = {}
    errors = []

    def poll(k):
        msg = members[k].poll(0.1)
        if msg is None:
            return
        if msg.error():
            errors.append(str(msg.error()))
            return
        try:
            members[k].commit(message=msg, asynchronous=False)
        except Exception as e:  # a commit refused during a rebalance: the record comes again
            errors.append(str(e))
            return
        seen[(msg.partition(), msg.offset())] = k

    members[0].subscribe([spec["topic"]], on_assign=on_assign(0), on_revoke=on_revoke(0))
    deadline = time.monotonic() + 30
    while not assigned[0] and time.monotonic() < deadline:
        poll(0)
    members[1].subscribe([spec["topic"]], on_assign=on_assign(1), on_revoke=on_revoke(1))
    deadline = time.monotonic() + 60
    while (len(seen) < spec["n"] or not (assigned[0] and assigned[1])) and time.monotonic() < deadline:
        poll(0)
        poll(1)
    final = [list(assigned[0]), list(assigned[1])]
    for m in members:
        m.close()
    c = consumer(spec, spec["group"])
    committed = c.committed([TopicPartition(spec["topic"], p) for p in range(spec["partitions"])], timeout=10)
    c.close()
    return {
        "assignment": final,
        "consumed": len(seen),
        "committed": [tp.offset for tp in committed],
        "errors": errors[:5],
    }


def out_of_range(spec):
    c = consumer(spec, "out-of-range", **{"auto.offset.reset": "error"})
    c.assign([TopicPartition(spec["topic"], 0, 1_000_000)])
    deadline, error = time.monotonic() + 15, None
    while error is None and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is not None and msg.error():
            error = msg.error().name()
    c.close()
    return error


def main(spec):
    acks = produce(spec, spec["topic"])
    marks, times = describe(spec)
    squeezed = {"enable.idempotence": True, "compression.type": "zstd", "linger.ms": 5}
    result = {
        "acks": acks,
        "watermarks": marks,
        "offsetsForTime": times,
        "records": read_all(spec, spec["topic"]),
        "idempotentZstdAcks": produce(spec, spec["zstdTopic"], **squeezed),
        "idempotentZstdRecords": read_all(spec, spec["zstdTopic"]),
        "group": group(spec),
        "outOfRange": out_of_range(spec),
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
