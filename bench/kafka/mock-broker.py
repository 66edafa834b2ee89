"""
The Kafka bench's client ceiling (bench/kafka.ts): librdkafka's own mock broker, hosted in this
process by a python3-confluent-kafka client configured with `test.mock.num.brokers`. librdkafka
prints the broker's address on stderr ("... replaced with 127.0.0.1:<port>"); kcat then produces to
it from its own process, exactly as it produces to Kappa. The mock broker keeps records in memory
and never writes them to disk, so what kcat reaches against it is the client's own limit.
Runs until SIGTERM.

    /usr/bin/python3 bench/kafka/mock-broker.py
"""
import signal
import sys
import time

from confluent_kafka import Producer

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
host = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused:1"})
host.poll(0.2)
while True:
    time.sleep(1)
