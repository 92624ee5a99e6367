"""Produce + consume throughput of 100k messages: our mutual-TLS path vs plaintext to the broker.

Both runs use the same embedded tansu broker binary and configuration; the TLS run goes through
stunnel with client certificates (the path users get), the plaintext run talks to tansu
directly (tansu advertises one listener, so each run starts its broker with the matching one).
Usage: python benchmarks/kafka.py [messages]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PAYLOAD = b"x" * 100


def run(config: dict[str, str], topic: str) -> tuple[float, float]:
    from confluent_kafka import Consumer, Producer

    producer = Producer({**config, "linger.ms": "5", "batch.num.messages": "10000"})
    start = time.perf_counter()
    for i in range(MESSAGES):
        while True:
            try:
                producer.produce(topic, PAYLOAD)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    produced = time.perf_counter() - start
    consumer = Consumer({**config, "group.id": f"bench-{topic}", "auto.offset.reset": "earliest",
                         "session.timeout.ms": "6000"})  # fmt: skip
    consumer.subscribe([topic])
    count = 0
    start = time.perf_counter()
    first = None
    while count < MESSAGES:
        batch = consumer.consume(10_000, timeout=1.0)
        if batch and first is None:
            first = time.perf_counter()  # don't count the group join (a broker-side delay)
        count += sum(1 for m in batch if m.error() is None)
    consumed = time.perf_counter() - (first or start)
    consumer.close()
    return produced, consumed


def main() -> None:
    from hops_jupyter.core import broker, kafka

    rows = {}
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOPS_HOME"] = home
        for name, secure in (("mutual TLS (stunnel)", True), ("plaintext", False)):
            info = broker.start(tls_enabled=secure)
            try:
                if secure:
                    config = kafka.get_kafka_default_config()
                    for key in ("group.id", "session.timeout.ms", "auto.offset.reset"):
                        config.pop(key)
                else:
                    config = {"bootstrap.servers": f"127.0.0.1:{info.plaintext_port}"}
                from confluent_kafka.admin import AdminClient, NewTopic

                admin = AdminClient(config)
                admin.create_topics([NewTopic("bench", 1, 1)])["bench"].result(15)
                rows[name] = run(config, "bench")
            finally:
                broker.stop()
    mib = MESSAGES * len(PAYLOAD) / 2**20
    print(
        f"\nKafka: {MESSAGES:,} messages of {len(PAYLOAD)} B, produce then consume, one partition\n"
    )
    print(f"{'path':<24}{'produce msg/s':>15}{'consume msg/s':>15}{'total s':>10}{'MiB/s':>8}")
    for name, (produced, consumed) in rows.items():
        total = produced + consumed
        print(
            f"{name:<24}{MESSAGES / produced:>15,.0f}{MESSAGES / consumed:>15,.0f}{total:>10.2f}{2 * mib / total:>8.1f}"
        )
    secure, plain = rows["mutual TLS (stunnel)"], rows["plaintext"]
    print(f"\nmTLS / plaintext throughput ratio: {sum(plain) / sum(secure):.2f}")


if __name__ == "__main__":
    main()
