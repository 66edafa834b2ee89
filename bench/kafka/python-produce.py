"""
The Kafka bench's check of python3-confluent-kafka as a producer (bench/kafka.ts): a Python loop
calling produce() once per record, with the bench's settings (idempotent, acks=all, linger.ms=5),
into librdkafka's mock broker in this same process, so the figure is Python's and librdkafka's
ceiling, not a broker's. Prints one JSON line: {"records": N, "ms": elapsed}.

    /usr/bin/python3 bench/kafka/python-produce.py <records> <value-bytes>
"""
import json
import sys
import time

from confluent_kafka import Producer

records, value_bytes = int(sys.argv[1]), int(sys.argv[2])
errors = []


def delivered(err, _msg):
    if err is not None:
        errors.append(str(err))


producer = Producer(
    {
        "test.mock.num.brokers": 1,
        "bootstrap.servers": "unused:1",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "log_level": 3,
    }
)
value = b"v" * value_bytes
start = time.perf_counter()
for _ in range(records):
    while True:
        try:
            producer.produce("bench", value, partition=0, on_delivery=delivered)
            break
        except BufferError:
            producer.poll(0.001)
    producer.poll(0)
left = producer.flush(60)
ms = (time.perf_counter() - start) * 1000
if left or errors:
    sys.exit(f"{left} records undelivered, {len(errors)} failed ({errors[:1]})")
print(json.dumps({"records": records, "ms": ms}))
