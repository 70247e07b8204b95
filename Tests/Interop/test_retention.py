"""Acceptance point 6: retention by size and by time.

Topics with small segments (segment.bytes=2048) and retention.bytes / retention.ms; the
broker runs retention every 300 ms. Whole old segments must be deleted, the log start offset
must move to the base offset of the oldest kept segment (ListOffsets earliest via confluent's
low watermark and kafka-python's beginning_offsets), and reading a deleted offset must fail
with OFFSET_OUT_OF_RANGE (raw Fetch, and a confluent consumer with auto.offset.reset=error).
"""
from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KPTopicPartition

import kafka_raw
from samsa_interop import consume_range, consumer_config, create_topic, wait_until, watermarks

BROKER_OVERRIDES = {"log.retention.check.interval.ms": "300"}
SEGMENT_BYTES = 2048


def produce_one_per_batch(bootstrap: str, topic: str, values: list[bytes], timestamps: list[int] | None = None) -> list[int]:
    """One message per request (flush after each), so every message is its own batch and
    segments roll predictably. Returns the acknowledged offsets."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    offsets = []
    for i, v in enumerate(values):
        def cb(err, msg):
            assert err is None, err
            offsets.append(msg.offset())
        kw = {"timestamp": timestamps[i]} if timestamps else {}
        p.produce(topic, value=v, partition=0, on_delivery=cb, **kw)
        assert p.flush(30) == 0
    return offsets


def snapshot(broker, topic: str):
    """(low, high, [(segment base offset, size)]) with the segment list unchanged across the
    ListOffsets call, so the three describe one moment even while retention is running."""
    def segments():
        # A segment listed a moment ago may be deleted by retention before its size is read.
        out = []
        for f in kafka_raw.segment_files(broker.partition_dir(topic, 0)):
            try:
                out.append((int(f.stem), f.stat().st_size))
            except FileNotFoundError:
                pass
        return out
    for _ in range(50):
        before = segments()
        low, high = watermarks(broker.bootstrap, topic, 0)
        if segments() == before:
            return low, high, before
    raise AssertionError("segment files kept changing")


def assert_out_of_range_below(broker, topic: str, low: int, values: list[bytes], high: int):
    """Offsets below low are gone (OFFSET_OUT_OF_RANGE), low..high-1 are all readable."""
    with kafka_raw.KafkaConnection("127.0.0.1", broker.port) as conn:
        for off in (0, low - 1):
            res = kafka_raw.fetch_v4(conn, topic, 0, off)
            assert res.error_code == kafka_raw.OFFSET_OUT_OF_RANGE, (
                f"Fetch {topic}-0 at deleted offset {off} (log start {low}): error {res.error_code}, "
                f"expected OFFSET_OUT_OF_RANGE (1)")
            assert not res.records
        res = kafka_raw.fetch_v4(conn, topic, 0, low)
        assert res.error_code == 0 and res.high_watermark == high
        first = kafka_raw.parse_batches(res.records, strict=False)[0][0]
        assert first.base_offset == low
        err, _, off = kafka_raw.list_offsets_v1(conn, topic, 0, kafka_raw.EARLIEST)
        assert (err, off) == (0, low)

    # confluent-kafka consumer positioned on a deleted offset, no reset allowed.
    c = Consumer(consumer_config(broker.bootstrap, **{"auto.offset.reset": "error"}))
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 20
        error = None
        while error is None and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            assert m.error() is not None, f"consumer got a message at offset {m.offset()} below log start {low}"
            error = m.error()
        assert error is not None, "consumer reported nothing for a deleted offset"
        assert error.code() in (KafkaError._AUTO_OFFSET_RESET, KafkaError.OFFSET_OUT_OF_RANGE), error
        assert "out of range" in error.str().lower() or error.code() == KafkaError.OFFSET_OUT_OF_RANGE, error
    finally:
        c.close()

    # kafka-python agrees on the log start offset; every retained message reads back.
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tp = KPTopicPartition(topic, 0)
        assert kc.beginning_offsets([tp]) == {tp: low}
        assert kc.end_offsets([tp]) == {tp: high}
    finally:
        kc.close(autocommit=False)
    got = consume_range(broker.bootstrap, topic, 0, low, high)
    assert [m.offset() for m in got] == list(range(low, high))
    assert [m.value() for m in got] == values[low:high]


def test_size_retention_deletes_old_segments(broker):
    """AP6 (size): segment.bytes=2048, retention.bytes=6144, 200 single-message batches of ~150
    bytes (~15 segments): retention deletes whole oldest segments until the rest fits (Kafka's
    rule: delete while size - segment >= retention.bytes), never the active one; the log start
    offset equals the oldest kept segment's base offset; offsets below it answer
    OFFSET_OUT_OF_RANGE; everything from it to the end is readable."""
    topic = "retention-size"
    retention = 3 * SEGMENT_BYTES
    create_topic(broker.bootstrap, topic, config={"segment.bytes": str(SEGMENT_BYTES), "retention.bytes": str(retention)})
    values = [f"size-{i:04d}-".encode() + b"s" * 80 for i in range(200)]
    assert produce_one_per_batch(broker.bootstrap, topic, values) == list(range(200))

    def settled():
        low, high, segs = snapshot(broker, topic)
        sizes = [size for _, size in segs]
        # Kafka keeps deleting the oldest segment while total - oldest >= retention.bytes.
        done = segs and sum(sizes) - sizes[0] < retention and low > 0
        return (low, high, [base for base, _ in segs], sizes) if done else None

    low, high, bases, sizes = wait_until(settled, timeout=30, message="size retention to delete old segments")
    assert high == 200
    assert low == bases[0], f"log start offset {low} is not the oldest kept segment's base offset {bases[0]}"
    assert sum(sizes) >= retention, f"retention deleted more than needed: {sizes} (retention.bytes {retention})"
    assert len(bases) < 200 * len(values[0]) // SEGMENT_BYTES, "old segments were not deleted"
    assert_out_of_range_below(broker, topic, low, values, high)


def test_time_retention_deletes_old_segments(broker):
    """AP6 (time): retention.ms=60000, segment.bytes=2048; 100 messages with CreateTime one hour
    ago then 30 with the current time: every segment holding only old messages is deleted, the
    segment holding the first fresh message and all later ones are kept; the log start offset is
    that segment's base offset; deleted offsets answer OFFSET_OUT_OF_RANGE."""
    topic = "retention-time"
    create_topic(broker.bootstrap, topic, config={"segment.bytes": str(SEGMENT_BYTES), "retention.ms": "60000"})
    now = int(time.time() * 1000)
    old, fresh = 100, 30
    values = [f"time-{i:04d}-".encode() + b"t" * 80 for i in range(old + fresh)]
    timestamps = [now - 3_600_000 + i for i in range(old)] + [now + i for i in range(fresh)]
    assert produce_one_per_batch(broker.bootstrap, topic, values, timestamps) == list(range(old + fresh))

    def settled():
        low, high, segs = snapshot(broker, topic)
        bases = [base for base, _ in segs]
        # Done when the first kept segment is the one that holds offset `old` (first fresh message).
        holder = max(b for b in bases if b <= old) if any(b <= old for b in bases) else None
        return (low, high, bases) if bases and holder == bases[0] and low > 0 else None

    low, high, bases = wait_until(settled, timeout=30, message="time retention to delete the old segments")
    assert high == old + fresh
    assert low == bases[0] <= old, (low, bases)
    assert len(bases) == 1 or bases[1] > old
    assert_out_of_range_below(broker, topic, low, values, high)
