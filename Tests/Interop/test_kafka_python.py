"""Acceptance point 3: kafka-python (pure-Python client) against a real samsa broker.

- Producer/consumer round trip (idempotent producer, acks=all, keys, headers, timestamps,
  uncompressed and gzip), consumer with manual `assign`, no group, no commits.
- Admin: create topics with configs, list/describe topics, describe configs (sources
  DYNAMIC_TOPIC_CONFIG vs DEFAULT_CONFIG), delete topics (and they are gone).
"""
from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from samsa_interop import wait_until, watermarks

PARTITIONS = 3
MESSAGES = 300


@pytest.fixture(scope="module")
def admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    yield a
    a.close()


def kp_consume(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 60.0) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < expected:
            assert time.monotonic() < deadline, f"kafka-python consumer read {len(got)} of {expected} in {timeout}s"
            for _, records in consumer.poll(timeout_ms=500).items():
                got.extend(records)
        return got
    finally:
        consumer.close(autocommit=False)


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_kafka_python_producer_consumer_roundtrip(broker, admin, compression):
    """AP3: kafka-python's KafkaProducer (acks=all, idempotent, compression None/gzip) sends keyed
    messages with headers and explicit timestamps; every send future succeeds; per partition the
    acknowledged offsets are 0..n-1 and a key stays in one partition; a KafkaConsumer with manual
    assign + seek_to_beginning reads each message back exactly once with key, value, headers,
    timestamp and offset intact; beginning/end offsets agree."""
    topic = f"kp-roundtrip-{compression or 'none'}"
    admin.create_topics({topic: {"num_partitions": PARTITIONS, "replication_factor": 1}}, wait_for_metadata=True)

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=True,
                             compression_type=compression, linger_ms=5)
    base_ts = int(time.time() * 1000) - 120_000
    sent = []
    try:
        futures = []
        for i in range(MESSAGES):
            key = f"key-{i % 7}".encode()
            value = f"kafka-python value {i} ".encode() * (1 + i % 5)
            headers = [("i", str(i).encode()), ("kind", b"interop")] if i % 4 else []
            ts = base_ts + 11 * i
            futures.append(producer.send(topic, key=key, value=value, headers=headers, timestamp_ms=ts))
            sent.append(dict(key=key, value=value, headers=headers, timestamp=ts))
        producer.flush(timeout=30)
        for s, f in zip(sent, futures):
            md = f.get(timeout=30)
            s["partition"], s["offset"] = md.partition, md.offset
    finally:
        producer.close(timeout=10)

    key_partition = {}
    for s in sent:
        assert key_partition.setdefault(s["key"], s["partition"]) == s["partition"]
    counts = {}
    for p in range(PARTITIONS):
        offs = [s["offset"] for s in sent if s["partition"] == p]
        assert offs == list(range(len(offs))), f"partition {p}: acked offsets {offs[:10]}... not 0..n-1"
        counts[p] = len(offs)

    got = kp_consume(broker.bootstrap, topic, PARTITIONS, MESSAGES)
    assert len(got) == MESSAGES
    by_pos = {(s["partition"], s["offset"]): s for s in sent}
    seen = set()
    for r in got:
        pos = (r.partition, r.offset)
        assert pos not in seen, f"duplicate {pos}"
        seen.add(pos)
        s = by_pos[pos]
        assert r.key == s["key"] and r.value == s["value"], pos
        assert list(r.headers) == s["headers"], (pos, r.headers)
        assert r.timestamp == s["timestamp"] and r.timestamp_type == 0, pos

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        assert consumer.beginning_offsets(tps) == {tp: 0 for tp in tps}
        assert consumer.end_offsets(tps) == {TopicPartition(topic, p): counts[p] for p in range(PARTITIONS)}
    finally:
        consumer.close(autocommit=False)


def _configs(admin, topic, config_filter):
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter=config_filter)
    return res["topic"][topic]


def test_kafka_python_admin_create_describe_configs_delete(broker, admin):
    """AP3: KafkaAdminClient creates a 4-partition topic with config overrides; creating it again
    fails with TopicAlreadyExistsError and an unknown config with InvalidConfigurationError;
    list_topics/describe_topics show it (4 partitions, leader 0, replicas/ISR [0]);
    describe_configs shows the overrides with source DYNAMIC_TOPIC_CONFIG and untouched configs
    with their Kafka default and source DEFAULT_CONFIG (the 'modified' filter returns exactly
    the overrides); delete_topics removes it from metadata and from disk, deleting it again fails
    with UnknownTopicOrPartitionError, and a re-created topic of that name starts empty."""
    topic = "kp-admin"
    overrides = {"retention.ms": "3600000", "max.message.bytes": "200000", "cleanup.policy": "delete"}
    res = admin.create_topics({topic: {"num_partitions": 4, "replication_factor": 1, "configs": overrides}})
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)]

    with pytest.raises(kerrors.TopicAlreadyExistsError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    with pytest.raises(kerrors.InvalidConfigurationError):
        admin.create_topics({"kp-bad-config": {"num_partitions": 1, "replication_factor": 1,
                                               "configs": {"no.such.config": "1"}}})

    assert topic in admin.list_topics()
    assert "kp-bad-config" not in admin.list_topics()
    (desc,) = admin.describe_topics([topic])
    assert desc["error_code"] == 0 and desc["name"] == topic and desc["is_internal"] is False
    parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
    assert [p["partition_index"] for p in parts] == [0, 1, 2, 3]
    for p in parts:
        assert p["error_code"] == 0 and p["leader_id"] == 0
        assert p["replica_nodes"] == [0] and p["isr_nodes"] == [0]

    all_configs = _configs(admin, topic, "all")
    for name, value in overrides.items():
        assert all_configs[name]["value"] == value, name
        assert all_configs[name]["config_source"] == "DYNAMIC_TOPIC_CONFIG", (name, all_configs[name])
    for name, default in {"segment.bytes": "1073741824", "retention.bytes": "-1",
                          "message.timestamp.type": "CreateTime", "min.insync.replicas": "1"}.items():
        assert all_configs[name]["value"] == default, (name, all_configs[name])
        assert all_configs[name]["config_source"] == "DEFAULT_CONFIG", (name, all_configs[name])
        assert all_configs[name]["read_only"] is False
    assert set(_configs(admin, topic, "modified")) == set(overrides)

    # Only the asked-for keys come back when keys are named.
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["retention.ms"])],
                                 config_filter="all")
    assert set(res["topic"][topic]) == {"retention.ms"}

    res = admin.delete_topics([topic])
    assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(topic, 0)]
    wait_until(lambda: topic not in admin.list_topics(), timeout=20, message=f"{topic} gone from metadata")
    wait_until(lambda: not any(broker.partition_dir(topic, p).exists() for p in range(4)), timeout=20,
               message=f"{topic}-N partition directories removed")
    with pytest.raises(kerrors.UnknownTopicOrPartitionError):
        admin.delete_topics([topic])

    # Same name again: a new, empty topic with default configs.
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
    assert watermarks(broker.bootstrap, topic, 0) == (0, 0)
    assert _configs(admin, topic, "modified") == {}
