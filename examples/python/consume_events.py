#!/usr/bin/env python3
"""Read Alpes' events from Kafka, as a downstream analytics consumer would.

Every event is Avro, in one of the two framings Alpes writes:

- Confluent Schema Registry framing (magic 0, a 4-byte schema id, the body),
  when the platform runs with SCHEMA_REGISTRY_URL: decoded with
  confluent-kafka's AvroDeserializer, which fetches the writer schema by id.
- Avro single-object encoding (C3 01, the writer schema's 8-byte CRC-64-AVRO
  fingerprint, the body), the embedded default: decoded with fastavro, the
  writer schema found by fingerprint among the schema files (schemas/avro and
  schemas/avro/history in the repository).

Prints one JSON line per event: topic, partition, offset, key, framing, the
record's name, and the decoded value.

    pip install 'confluent-kafka[avro,schemaregistry]' fastavro
    python consume_events.py --bootstrap 127.0.0.1:19092 \
        --registry http://127.0.0.1:8081/apis/ccompat/v7 --schemas schemas/avro

Stops after --idle seconds without a new message (or --max messages).
"""

import argparse
import glob
import io
import json
import os
import sys
import uuid

import fastavro
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

TOPICS = [
    "alpes.images.registered",
    "alpes.images.anonymized",
    "alpes.images.rejected",
    "alpes.users",
    "alpes.audit",
    "alpes.usage",
    "alpes.payments",
    "alpes.payments.rejected",
]


def load_schemas(directory):
    """Every .avsc under directory (and its history/): fingerprint hex -> (name, parsed schema)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.avsc")) + glob.glob(os.path.join(directory, "history", "*.avsc"))):
        with open(path, encoding="utf-8") as f:
            parsed = fastavro.parse_schema(json.load(f))
        # fastavro's CRC-64-AVRO of the Parsing Canonical Form, as the single-object header carries it.
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        found[fastavro.schema.fingerprint(canonical, "CRC-64-AVRO")] = (parsed["name"], parsed)
    return found


class Decoder:
    """Decodes either framing."""

    def __init__(self, registry_url, schema_dir):
        self.by_fingerprint = load_schemas(schema_dir) if schema_dir else {}
        # A bound on every registry request: without one the client waits forever on a
        # registry that stops answering mid-response (seen once in CI).
        self.registry = SchemaRegistryClient({"url": registry_url, "timeout": 30}) if registry_url else None
        self.deserializer = AvroDeserializer(self.registry) if self.registry else None

    def decode(self, topic, payload):
        """(framing, record name, value)."""
        if payload[:2] == b"\xc3\x01":
            fingerprint = payload[2:10].hex()
            if fingerprint not in self.by_fingerprint:
                raise ValueError(f"no schema file has the fingerprint {fingerprint}")
            name, schema = self.by_fingerprint[fingerprint]
            value = fastavro.schemaless_reader(io.BytesIO(payload[10:]), schema)
            return "single-object", name, value
        if payload[:1] == b"\x00" and self.deserializer is not None:
            schema_id = int.from_bytes(payload[1:5], "big")
            schema = json.loads(self.registry.get_schema(schema_id).schema_str)
            name = f"{schema.get('namespace', '')}.{schema['name']}".lstrip(".")
            value = self.deserializer(payload, SerializationContext(topic, MessageField.VALUE))
            return "schema-registry", name, value
        raise ValueError("neither a single-object nor a schema-registry frame (or no --registry given)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--registry", help="the Schema Registry's URL (Confluent API)")
    parser.add_argument("--schemas", help="the directory of .avsc files, for single-object events")
    parser.add_argument("--topics", default=",".join(TOPICS), help="comma-separated topics")
    parser.add_argument("--group", default=f"alpes-example-{uuid.uuid4()}", help="consumer group (default: a new one)")
    parser.add_argument("--idle", type=float, default=10.0, help="stop after this many seconds without a message")
    parser.add_argument("--max", type=int, default=0, help="stop after this many messages (0: no limit)")
    args = parser.parse_args()

    decoder = Decoder(args.registry, args.schemas)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # Only committed transactions (the default, said out loud).
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe(args.topics.split(","))
    seen = errors = 0
    try:
        while args.max == 0 or seen < args.max:
            msg = consumer.poll(args.idle)
            if msg is None:
                break
            if msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    print(f"consumer error: {msg.error()}", file=sys.stderr)
                continue
            seen += 1
            try:
                framing, name, value = decoder.decode(msg.topic(), msg.value())
            except Exception as e:  # one bad record never stops the reader
                errors += 1
                print(f"undecodable {msg.topic()}[{msg.partition()}]@{msg.offset()}: {e}", file=sys.stderr)
                continue
            line = {
                "topic": msg.topic(),
                "partition": msg.partition(),
                "offset": msg.offset(),
                "key": (msg.key() or b"").decode("utf-8", "replace"),
                "framing": framing,
                "record": name,
                "value": value,
            }
            print(json.dumps(line, default=str), flush=True)
    finally:
        consumer.close()
    print(f"read {seen} events, {errors} undecodable", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
