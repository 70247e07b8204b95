"""Acceptance point 2: confluent-kafka (librdkafka) producer and consumer.

Producer: acks=all, enable.idempotence=True, keyed messages with headers and explicit
CreateTime timestamps, one run per compression codec (gzip, snappy, lz4, zstd), every
delivery report must succeed. Consumer: manual `assign`, seek by offset and by timestamp
(`offsets_for_times`), every message read back with key, value, headers and timestamp intact.
"""
from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Producer, TopicPartition

import kafka_raw
from samsa_interop import consume_range, consumer_config, create_topic

PARTITIONS = 4
MESSAGES = 600
KEYS = [f"user-{k}".encode() for k in range(10)]
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def make_messages(codec: str, base_ts: int) -> list[dict]:
    rng = random.Random(f"samsa-{codec}")
    msgs = []
    for i in range(MESSAGES):
        key = KEYS[rng.randrange(len(KEYS))]
        if i % 97 == 5:
            value = None  # tombstone
        elif i % 89 == 3:
            value = b""
        elif i % 3 == 0:
            value = rng.randbytes(rng.randrange(1, 1500))  # incompressible
        else:
            value = (f"{codec}-{i}-" * rng.randrange(1, 60)).encode()  # compressible
        if i % 11 == 0:
            headers = []
        else:
            headers = [("idx", str(i).encode()), ("codec", codec.encode()), ("dup", b"first"),
                       ("dup", b"second"), ("null-header", None), ("bin", bytes(range(256))[i % 200:])]
        msgs.append(dict(i=i, key=key, value=value, headers=headers, timestamp=base_ts + 7 * i))
    return msgs


def produce_all(bootstrap: str, topic: str, codec: str, msgs: list[dict]) -> list[dict]:
    """Produces msgs with two successive idempotent producers (half each); returns one delivery
    report per message: {i, error, partition, offset}."""
    reports: dict[int, dict] = {}

    def on_delivery(i):
        def cb(err, msg):
            reports[i] = dict(i=i, error=err, partition=msg.partition(), offset=msg.offset(),
                              timestamp=msg.timestamp())
        return cb

    half = len(msgs) // 2
    for chunk in (msgs[:half], msgs[half:]):
        p = Producer({
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": codec,
            "linger.ms": 20,
            "batch.num.messages": 64,
        })
        for m in chunk:
            p.produce(topic, key=m["key"], value=m["value"], headers=m["headers"] or None,
                      timestamp=m["timestamp"], on_delivery=on_delivery(m["i"]))
            p.poll(0)
        remaining = p.flush(30)
        assert remaining == 0, f"{remaining} messages still undelivered after flush"
    return [reports[m["i"]] for m in msgs]


def assert_message(m, expected: dict, topic: str):
    assert m.error() is None, m.error()
    assert m.topic() == topic
    assert m.key() == expected["key"], f"offset {m.offset()}: key"
    assert m.value() == expected["value"], f"offset {m.offset()}: value"
    assert (m.headers() or []) == expected["headers"], f"offset {m.offset()}: headers {m.headers()!r}"
    assert m.timestamp() == (TIMESTAMP_CREATE_TIME, expected["timestamp"]), f"offset {m.offset()}: timestamp"


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_idempotent_keyed_headers_compressed_roundtrip(broker, codec):
    """AP2: idempotent acks=all producer, compression `codec`, keys/headers/explicit timestamps:
    all delivery reports succeed; a key always maps to one partition (across two producer
    instances); per partition the acknowledged offsets are exactly 0..n-1 in send order; an
    assign()ed consumer reads every message back with key, value (incl. null and empty), headers
    (order, duplicates, null values) and CreateTime timestamp intact; the broker stored the
    batches with the producer's codec, a producer id, and a valid CRC."""
    topic = f"confluent-{codec}"
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    msgs = make_messages(codec, base_ts=int(time.time() * 1000) - 600_000)
    reports = produce_all(broker.bootstrap, topic, codec, msgs)

    errors = [r for r in reports if r["error"] is not None]
    assert not errors, f"{len(errors)} failed deliveries, first: {errors[0]}"

    key_partition: dict[bytes, int] = {}
    for m, r in zip(msgs, reports):
        assert key_partition.setdefault(m["key"], r["partition"]) == r["partition"], (
            f"key {m['key']!r} went to partitions {key_partition[m['key']]} and {r['partition']}")

    by_partition: dict[int, list[dict]] = {p: [] for p in range(PARTITIONS)}
    for m, r in zip(msgs, reports):
        by_partition[r["partition"]].append(dict(m, offset=r["offset"]))
    for p, pm in by_partition.items():
        assert [x["offset"] for x in pm] == list(range(len(pm))), f"partition {p}: acked offsets not 0..n-1"

    for p, pm in by_partition.items():
        got = consume_range(broker.bootstrap, topic, p, 0, len(pm))
        assert [m.offset() for m in got] == list(range(len(pm)))
        for m, exp in zip(got, pm):
            assert m.partition() == p
            assert_message(m, exp, topic)

    # What is on disk: the producer's batches, kept with its codec and producer id.
    for p, pm in by_partition.items():
        if not pm:
            continue
        batches = kafka_raw.scan_partition_dir(broker.partition_dir(topic, p))
        assert sum(b.records_count for b in batches) == len(pm)
        for b in batches:
            assert b.compression == CODEC_IDS[codec], (
                f"{topic}-{p}: batch at byte {b.position} is stored with codec {b.compression}, the producer was "
                f"configured with {codec} ({CODEC_IDS[codec]}); librdkafka silently sends uncompressed batches when "
                f"its feature check fails on the broker's ApiVersions (lz4 needs FindCoordinator v0 advertised)")
            assert b.producer_id >= 0 and b.base_sequence >= 0, "idempotent batch lost its producer id/sequence"


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_seek_by_offset_and_by_timestamp(broker, codec):
    """AP2: after an idempotent produce (uncompressed, then zstd) with explicit distinct
    timestamps, a consumer that
    assigns TopicPartition(topic, p, offset) starts exactly at that offset, and
    `offsets_for_times` answers, per partition, the first offset whose timestamp is >= the asked
    timestamp (exact timestamp of a middle message, a timestamp between two messages, one before
    everything -> 0, one after everything -> -1); consuming from those offsets yields exactly the
    expected messages. Kafka answers with the exact record even inside a compressed batch
    (it decompresses the batch to find it)."""
    topic = f"confluent-seek-{codec}"
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    base_ts = int(time.time() * 1000) - 900_000
    msgs = make_messages(f"seek-{codec}", base_ts=base_ts)
    reports = produce_all(broker.bootstrap, topic, codec, msgs)
    assert all(r["error"] is None for r in reports), [r for r in reports if r["error"]][:3]

    by_partition: dict[int, list[dict]] = {p: [] for p in range(PARTITIONS)}
    for m, r in zip(msgs, reports):
        by_partition[r["partition"]].append(dict(m, offset=r["offset"]))

    # Seek by offset: start in the middle of the fullest partition.
    p = max(by_partition, key=lambda k: len(by_partition[k]))
    pm = by_partition[p]
    mid = len(pm) // 2
    got = consume_range(broker.bootstrap, topic, p, mid, len(pm))
    assert [m.offset() for m in got] == list(range(mid, len(pm)))
    for m, exp in zip(got, pm[mid:]):
        assert_message(m, exp, topic)

    # Seek by timestamp.
    middle = msgs[MESSAGES // 2]
    cases = {
        "exact timestamp of a middle message": middle["timestamp"],
        "between two messages": middle["timestamp"] + 3,
        "before everything": base_ts - 1000,
        "after everything": msgs[-1]["timestamp"] + 1,
    }
    c = Consumer(consumer_config(broker.bootstrap))
    try:
        for label, ts in cases.items():
            answer = c.offsets_for_times([TopicPartition(topic, q, ts) for q in range(PARTITIONS)], timeout=10)
            for tp in answer:
                assert tp.error is None, f"{label}: partition {tp.partition}: {tp.error}"
                qm = by_partition[tp.partition]
                expected = next((x["offset"] for x in qm if x["timestamp"] >= ts), -1)
                assert tp.offset == expected, (
                    f"offsets_for_times({label}, ts={ts}) partition {tp.partition}: got offset {tp.offset}, "
                    f"expected {expected} (first offset with timestamp >= ts)")
    finally:
        c.close()

    # Consume from the answered offsets: the first message is the first one at/after the timestamp.
    ts = middle["timestamp"]
    for q, qm in by_partition.items():
        start = next((x["offset"] for x in qm if x["timestamp"] >= ts), None)
        if start is None:
            continue
        got = consume_range(broker.bootstrap, topic, q, start, len(qm))
        assert got[0].timestamp()[1] >= ts
        for m, exp in zip(got, qm[start:]):
            assert_message(m, exp, topic)
