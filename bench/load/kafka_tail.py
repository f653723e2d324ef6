#!/usr/bin/env python3
"""Follow Alpes' event topics and log one line per message (bench/load/run.sh).

    kafka_tail.py BOOTSTRAP OUT.tsv [--ready FILE]

Reads `alpes.images.registered`, `alpes.images.anonymized` and
`alpes.images.rejected` from the beginning, with no consumer group commits, and
appends `topic  partition  offset  key  timestamp_ms  timestamp_type  recv_unix_s`
per message (the key is the image id; the timestamp is the producer's
CreateTime). The payload is not decoded. Stops on SIGTERM/SIGINT.
"""

import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

TOPICS = ["alpes.images.registered", "alpes.images.anonymized", "alpes.images.rejected"]


def main() -> int:
    bootstrap, out_path = sys.argv[1], sys.argv[2]
    ready = sys.argv[sys.argv.index("--ready") + 1] if "--ready" in sys.argv else None
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"alpes-bench-tail-{int(time.time())}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
    })
    # Explicit assignment of every partition from offset 0: no group rebalance to wait for.
    parts = []
    deadline = time.time() + 30
    for topic in TOPICS:
        while True:
            md = consumer.list_topics(topic, timeout=5)
            t = md.topics.get(topic)
            if t is not None and t.error is None and t.partitions:
                parts += [TopicPartition(topic, p, 0) for p in sorted(t.partitions)]
                break
            if time.time() > deadline:
                print(f"kafka_tail: topic {topic} not found", file=sys.stderr)
                return 1
            time.sleep(0.5)
    consumer.assign(parts)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    n = 0
    with open(out_path, "a", buffering=1 << 16) as out:
        if ready:
            with open(ready, "w") as f:
                f.write(f"{len(parts)} partitions\n")
        last_flush = time.time()
        while not stop:
            msgs = consumer.consume(num_messages=1000, timeout=0.2)
            now = time.time()
            for m in msgs:
                if m.error():
                    print(f"kafka_tail: {m.error()}", file=sys.stderr)
                    continue
                ts_type, ts = m.timestamp()
                key = m.key().decode("utf-8", "replace") if m.key() else "-"
                out.write(f"{m.topic()}\t{m.partition()}\t{m.offset()}\t{key}\t{ts}\t{ts_type}\t{now:.6f}\n")
                n += 1
            if now - last_flush > 0.25:
                out.flush()
                last_flush = now
        out.flush()
    try:
        consumer.close()
    except KafkaException:
        pass
    print(f"kafka_tail: {n} messages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
