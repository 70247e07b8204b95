"""Log compaction (issue 10): a topic with cleanup.policy=compact, small segments and
min.cleanable.dirty.ratio=0.01 on a broker whose log cleaner wakes every 100 ms.

A confluent-kafka producer (gzip) writes 30 rounds over 10 keys and deletes one key with a
tombstone. Once the cleaner has run (its cleaner-offset-checkpoint names the partition),
kafka-python and confluent-kafka consumers read the topic from the beginning and must see:
fewer records than were written, every record at the offset it was written at (gaps are normal),
each key's last value (and the tombstone of the deleted key) as the last record of that key.
__consumer_offsets is created compacted.
"""
from __future__ import annotations

import time

from confluent_kafka import Producer
from confluent_kafka.admin import ConfigResource
from kafka import KafkaConsumer
from kafka import TopicPartition as KPTopicPartition

from samsa_interop import confluent_admin, consume_range, create_topic, wait_until, watermarks

BROKER_OVERRIDES = {"log.cleaner.backoff.ms": "100"}
TOPIC = "compacted"
KEYS = [f"key-{i}" for i in range(10)]
ROUNDS = 30
DELETED = "key-3"


def produce_all(bootstrap: str) -> dict[int, tuple[str, str | None]]:
    """Returns what was written at each offset: offset -> (key, value or None for a tombstone)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "compression.type": "gzip"})
    written: dict[int, tuple[str, str | None]] = {}

    def cb(err, msg):
        assert err is None, err
        written[msg.offset()] = (msg.key().decode(), None if msg.value() is None else msg.value().decode())

    for r in range(ROUNDS):
        for k in KEYS:
            p.produce(TOPIC, key=k.encode(), value=f"{k}-round-{r}-".encode() + b"x" * 40, partition=0, on_delivery=cb)
        assert p.flush(30) == 0
    p.produce(TOPIC, key=DELETED.encode(), value=None, partition=0, on_delivery=cb)
    # A last record for every other key, so that the tombstone is not in the active segment alone.
    for k in KEYS:
        if k != DELETED:
            p.produce(TOPIC, key=k.encode(), value=f"{k}-final".encode(), partition=0, on_delivery=cb)
    assert p.flush(30) == 0
    assert len(written) == ROUNDS * len(KEYS) + len(KEYS)
    return written


def cleaned_up_to(broker, topic: str) -> int:
    path = broker.partition_dir(topic, 0).parent / "cleaner-offset-checkpoint"
    if not path.exists():
        return -1
    for line in path.read_text().splitlines()[2:]:
        fields = line.split()
        if len(fields) == 3 and fields[0] == topic and fields[1] == "0":
            return int(fields[2])
    return -1


def expected_last(written: dict[int, tuple[str, str | None]]) -> dict[str, str | None]:
    last: dict[str, str | None] = {}
    for offset in sorted(written):
        key, value = written[offset]
        last[key] = value
    return last


def check(records: list[tuple[int, str, str | None]], written, client: str):
    total = len(written)
    assert len(records) < total, f"{client}: read {len(records)} of {total} records; nothing was compacted"
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets)), f"{client}: offsets not strictly increasing"
    for offset, key, value in records:
        assert written.get(offset) == (key, value), (
            f"{client}: offset {offset} holds {(key, value)}, but {written.get(offset)} was written there")
    seen: dict[str, str | None] = {}
    for _, key, value in records:
        seen[key] = value
    assert seen == expected_last(written), f"{client}: last value per key differs"
    assert seen[DELETED] is None


def test_clients_read_the_last_value_per_key(broker):
    create_topic(broker.bootstrap, TOPIC, config={
        "cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01",
    })
    written = produce_all(broker.bootstrap)
    low, high = watermarks(broker.bootstrap, TOPIC, 0)
    assert (low, high) == (0, len(written))
    # The cleaner works in the background; wait until it has cleaned most of the log.
    wait_until(lambda: cleaned_up_to(broker, TOPIC) >= len(written) // 2, timeout=60,
               message="the log cleaner to compact the topic")

    # confluent-kafka (librdkafka checks every batch's CRC: re-encoded batches must be valid).
    msgs = consume_range(broker.bootstrap, TOPIC, 0, 0, high)
    check([(m.offset(), m.key().decode(), None if m.value() is None else m.value().decode()) for m in msgs],
          written, "confluent-kafka")

    # kafka-python
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False,
                             auto_offset_reset="earliest", check_crcs=True)
    try:
        tp = KPTopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        records = []
        deadline = time.monotonic() + 60
        while (not records or records[-1][0] < high - 1) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                for m in batch:
                    records.append((m.offset, m.key.decode(), None if m.value is None else m.value.decode()))
        assert records and records[-1][0] == high - 1, "kafka-python did not read up to the high watermark"
        check(records, written, "kafka-python")
    finally:
        consumer.close()

    # Offsets still start at 0 and end where they did: compaction removes records, not offsets.
    assert watermarks(broker.bootstrap, TOPIC, 0) == (0, high)


def test_consumer_offsets_is_compacted(broker):
    # Creating a consumer group creates __consumer_offsets.
    c = KafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap, group_id="compaction-probe",
                      auto_offset_reset="earliest", consumer_timeout_ms=3000)
    try:
        for _ in c:
            break
        c.commit()
    finally:
        c.close()
    admin = confluent_admin(broker.bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "__consumer_offsets")
    configs = admin.describe_configs([resource])[resource].result(timeout=20)
    assert configs["cleanup.policy"].value == "compact"
