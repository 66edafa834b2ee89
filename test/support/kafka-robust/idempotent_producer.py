"""An idempotent librdkafka producer (python3-confluent-kafka) for the SIGKILL crash test
(test/crash/kafka-idempotent-kill.test.ts). Run with Debian's /usr/bin/python3:

  idempotent_producer.py '{"bootstrap": "127.0.0.1:9092", "topic": "orders", "count": 20000,
                           "keys": 16, "perSecond": 2000}'

It sends records 0..count-1 (key "key-<id % keys>", value {"id": <id>}) at about perSecond,
with enable.idempotence=true, acks=all, linger.ms=5 and a message timeout long enough to ride out
a broker that is killed and restarted. Each line on stdout is one JSON object, flushed at once:
  {"sent": n}                                records 0..n-1 were handed to librdkafka (every 100)
  {"ack": id, "partition": p, "offset": o}   the broker acknowledged record `id` (delivery report)
  {"failed": id, "error": "..."}             the record was not delivered
  {"fatal": "..."}                           librdkafka raised a fatal (idempotence) error
  {"done": true, "unacknowledged": n}        flush() returned; n records were never reported
"""
import json
import sys
import time

from confluent_kafka import Producer

SENT_EVERY = 100


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(spec):
    def on_error(err):
        if err.fatal():
            emit({"fatal": str(err)})
        else:
            sys.stderr.write(f"librdkafka: {err}\n")

    producer = Producer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            # Long enough for kappa start to be killed and started again, several times.
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.ms": 100,
            "reconnect.backoff.max.ms": 500,
            "error_cb": on_error,
        }
    )

    def report(err, msg):
        rid = json.loads(msg.value())["id"]
        if err is not None:
            emit({"failed": rid, "error": str(err)})
        else:
            emit({"ack": rid, "partition": msg.partition(), "offset": msg.offset()})

    count, keys = spec["count"], spec["keys"]
    pause = 1.0 / spec.get("perSecond", 2000)
    started = time.monotonic()
    for rid in range(count):
        value = json.dumps({"id": rid}).encode("utf-8")
        while True:
            try:
                producer.produce(spec["topic"], key=f"key-{rid % keys}", value=value, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if (rid + 1) % SENT_EVERY == 0:
            emit({"sent": rid + 1})
        # Pace the sends, so the kills land mid-stream rather than after everything was queued.
        behind = started + (rid + 1) * pause - time.monotonic()
        if behind > 0:
            time.sleep(behind)
    left = producer.flush(spec.get("flushSeconds", 150))
    emit({"done": True, "unacknowledged": left})


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
