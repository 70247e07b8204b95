"""Issue 10, items 6 and 7 with real clients and raw sockets.

- A keyless record on a compacted topic is refused with INVALID_RECORD; Produce v8+ names the
  refused records (`record_errors` with their batch index, KIP-467) and an error message.
- Batches whose offset deltas are out of order, or whose record count disagrees with the
  header, are refused and nothing is written.
- `compression.type` on a topic re-compresses what producers send (the codec bits in the log
  change, consumers read the same records); `producer` keeps the producer's codec.
- Unknown or unsupported topic settings are INVALID_CONFIG; unknown broker properties are
  logged and ignored; successful admin responses carry null error messages.
"""
from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import NewTopic

import kafka_raw as kr
from samsa_interop import confluent_admin, consume_range, create_topic, wait_until

API_ALTER_CONFIGS = 33
API_INCREMENTAL_ALTER_CONFIGS = 44
TOPIC_RESOURCE = 2
INVALID_RECORD = 87
INVALID_CONFIG = 40
CODEC_NONE, CODEC_GZIP, CODEC_SNAPPY, CODEC_LZ4, CODEC_ZSTD = 0, 1, 2, 3, 4


def produce_v8(conn: kr.KafkaConnection, topic: str, records: bytes) -> dict:
    """Produce v8 (the first version with record_errors), parsed in full."""
    body = kr.produce_body(8, [(topic, [(0, records)])], acks=-1)
    r = conn.roundtrip(kr.API_PRODUCE, 8, body)
    out = {}

    def partition(x: kr.Reader):
        out.update(index=x.i32(), error_code=x.i16(), base_offset=x.i64(), log_append_time=x.i64(),
                   log_start_offset=x.i64(), record_errors=x.array(lambda y: (y.i32(), y.string())),
                   error_message=x.string())

    r.array(lambda x: (x.string(), x.array(partition)))
    r.i32()  # throttle
    assert r.at_end()
    return out


def batch_with_deltas(deltas: list[int], keys: list[bytes | None]) -> bytes:
    """An uncompressed batch (correct CRC) whose records carry exactly `deltas` as offset deltas."""
    ts = int(time.time() * 1000)
    recs = b"".join(kr.encode_record(d, 0, k, b"v", []) for d, k in zip(deltas, keys))
    after_crc = (kr.i16(0) + kr.i32(len(deltas) - 1) + kr.i64(ts) + kr.i64(ts) + kr.i64(-1) + kr.i16(-1)
                 + kr.i32(-1) + kr.i32(len(deltas)) + recs)
    after_length = kr.i32(-1) + kr.i8(2) + kr.crc32c(after_crc).to_bytes(4, "big") + after_crc
    return kr.i64(0) + kr.i32(len(after_length)) + after_length


def send_all(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]], **conf) -> list:
    """Produces with confluent-kafka and returns each message's delivery error (None: delivered)."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "retries": 0, **conf})
    pending = object()
    results: list = [pending] * len(messages)

    def report(i):
        def cb(err, msg):
            results[i] = err
        return cb

    for i, (k, v) in enumerate(messages):
        p.produce(topic, key=k, value=v, partition=0, on_delivery=report(i))
    assert p.flush(30) == 0, "messages still in flight after 30 s"
    assert not any(r is pending for r in results)
    return results


# ---- item 7: record validation -------------------------------------------------------------


def test_keyless_record_on_compacted_topic_is_refused(broker):
    create_topic(broker.bootstrap, "compacted-v", config={"cleanup.policy": "compact"})
    # confluent-kafka: the keyless message fails with INVALID_RECORD, keyed ones go through.
    results = send_all(broker.bootstrap, "compacted-v", [(b"k1", b"a")])
    assert results == [None]
    (err,) = send_all(broker.bootstrap, "compacted-v", [(None, b"no key")])
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err

    # Raw Produce v8: which records of the batch failed, and why.
    now = int(time.time() * 1000)
    batch = kr.build_batch([kr.Record(key=k, value=b"v", timestamp=now) for k in [b"a", None, b"c", None]])
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = produce_v8(conn, "compacted-v", batch)
        assert res["error_code"] == INVALID_RECORD
        assert [i for i, _ in res["record_errors"]] == [1, 3]
        assert all("without key" in (m or "") for _, m in res["record_errors"])
        assert res["error_message"] and "record errors" in res["error_message"]
        assert res["base_offset"] == -1
        # Nothing of the refused batch was written: the next keyed batch lands at offset 1.
        ok = produce_v8(conn, "compacted-v", kr.simple_batch([b"x"], key=b"k"))
        assert ok["error_code"] == 0 and ok["base_offset"] == 1
        assert ok["record_errors"] == [] and ok["error_message"] is None


def test_offset_deltas_and_record_count_are_checked(broker):
    create_topic(broker.bootstrap, "deltas")
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = produce_v8(conn, "deltas", batch_with_deltas([0, 2, 1], [b"a", b"b", b"c"]))
        assert res["error_code"] == INVALID_RECORD
        assert [i for i, _ in res["record_errors"]] == [1, 2]
        # A header claiming one record more than the batch holds.
        good = bytearray(batch_with_deltas([0, 1], [b"a", b"b"]))
        good[57:61] = kr.i32(3)  # recordCount
        good[23:27] = kr.i32(2)  # lastOffsetDelta, consistent with the count
        good[17:21] = kr.crc32c(bytes(good[21:])).to_bytes(4, "big")
        res = produce_v8(conn, "deltas", bytes(good))
        assert res["error_code"] == INVALID_RECORD, res
        ok = produce_v8(conn, "deltas", batch_with_deltas([0, 1], [b"a", b"b"]))
        assert ok["error_code"] == 0 and ok["base_offset"] == 0


# ---- item 6: compression.type ----------------------------------------------------------------


def stored_codecs(broker, topic: str) -> list[int]:
    return [b.compression for b in kr.scan_partition_dir(broker.partition_dir(topic, 0))]


@pytest.mark.parametrize("topic_codec,producer_codec,expected", [
    ("zstd", "none", CODEC_ZSTD),
    ("uncompressed", "gzip", CODEC_NONE),
    ("lz4", "snappy", CODEC_LZ4),
    ("producer", "gzip", CODEC_GZIP),
])
def test_compression_type_recompresses(broker, topic_codec, producer_codec, expected):
    topic = f"codec-{topic_codec}-{producer_codec}"
    create_topic(broker.bootstrap, topic, config={"compression.type": topic_codec})
    messages = [(f"key-{i}".encode(), (f"value {i} " * 20).encode()) for i in range(200)]
    assert send_all(broker.bootstrap, topic, messages, **{"compression.type": producer_codec}) == [None] * 200
    codecs = stored_codecs(broker, topic)
    assert codecs and all(c == expected for c in codecs), codecs
    got = consume_range(broker.bootstrap, topic, 0, 0, 200)
    assert [(m.key(), m.value()) for m in got] == messages
    assert [m.offset() for m in got] == list(range(200))


# ---- item 6: settings that are accepted work; nullable fields ------------------------------


def test_unknown_and_unsupported_topic_settings_are_invalid_config(broker):
    admin = confluent_admin(broker.bootstrap)
    for config in [{"no.such.setting": "1"}, {"remote.storage.enable": "true"}, {"preallocate": "true"},
                   {"compression.zstd.level": "99"}]:
        fs = admin.create_topics([NewTopic("bad-config", 1, 1, config=config)], operation_timeout=10)
        with pytest.raises(KafkaException) as e:
            fs["bad-config"].result(timeout=20)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, (config, e.value)

    create_topic(broker.bootstrap, "cfg-ok", config={"compression.type": "zstd"})
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        # AlterConfigs v1 (replaces the set): unknown key refused, known key accepted with a null message.
        def alter(configs: dict[str, str]):
            body = kr.array([kr.i8(TOPIC_RESOURCE) + kr.string("cfg-ok")
                             + kr.array([kr.string(k) + kr.string(v) for k, v in configs.items()])]) + kr.i8(0)
            r = conn.roundtrip(API_ALTER_CONFIGS, 1, body)
            r.i32()
            (res,) = r.array(lambda x: (x.i16(), x.string(), x.i8(), x.string()))
            return res

        assert alter({"retention.msec": "5"})[0] == INVALID_CONFIG
        err, msg, _, _ = alter({"compression.type": "zstd", "retention.ms": "600000"})
        assert err == 0 and msg is None

        # IncrementalAlterConfigs v0: same.
        def incremental(name: str, op: int, value: str | None):
            body = kr.array([kr.i8(TOPIC_RESOURCE) + kr.string("cfg-ok")
                             + kr.array([kr.string(name) + kr.i8(op) + kr.string(value)])]) + kr.i8(0)
            r = conn.roundtrip(API_INCREMENTAL_ALTER_CONFIGS, 0, body)
            r.i32()
            (res,) = r.array(lambda x: (x.i16(), x.string(), x.i8(), x.string()))
            return res

        assert incremental("bogus.setting", 0, "1")[0] == INVALID_CONFIG
        assert incremental("remote.storage.enable", 0, "true")[0] == INVALID_CONFIG
        err, msg, _, _ = incremental("retention.ms", 0, "700000")
        assert err == 0 and msg is None

        # CreateTopics v4: null error message on success.
        (name, err, msg), = kr.create_topics_v4(conn, [("nullmsg", 1, {})])
        assert (name, err, msg) == ("nullmsg", 0, None)


def test_delete_topics_error_message_is_null(broker):
    """kafka-python's admin client decodes DeleteTopics (v5+: a nullable error message) into a
    dict; a successful deletion has error_message None, as Kafka sends, never ""."""
    from kafka.admin import KafkaAdminClient, NewTopic as KPNewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10000)
    try:
        created = admin.create_topics([KPNewTopic("to-delete", 1, 1)])
        wait_until(lambda: "to-delete" in admin.list_topics(), timeout=20, message="topic created")
        result = admin.delete_topics(["to-delete"])
        (topic,) = [t for t in result["topics"] if t["name"] == "to-delete"]
        assert topic["error_code"] == 0
        assert "error_message" in topic, f"kafka-python used a DeleteTopics version without the field: {topic}"
        assert topic["error_message"] is None, topic
        if isinstance(created, dict) and "topics" in created:
            for t in created["topics"]:
                assert t.get("error_message") is None, t
    finally:
        admin.close()


def test_unknown_broker_property_is_logged_and_ignored(broker_factory):
    b = broker_factory(**{"no.such.broker.setting": "1", "num.io.threads": "8"})
    def warnings():
        return [line for line in b.stderr_since_start().splitlines()
                if "warning" in line and "no.such.broker.setting" in line]

    wait_until(lambda: warnings(), timeout=10, message="a warning naming the unused broker setting")
    warning = warnings()
    assert "num.io.threads" in warning[0] and "not used" in warning[0]
    create_topic(b.bootstrap, "still-works")
