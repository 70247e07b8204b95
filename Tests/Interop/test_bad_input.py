"""Acceptance point 7: bad input gets Kafka's answer and the broker stays up.

Every request here is built by hand (kafka_raw: Python socket + struct). After each case the
broker must still be running, accept a new connection (ApiVersions), and still serve the data
acknowledged at the start of the module unchanged.
"""
from __future__ import annotations

import random
import struct
import time

import pytest

import kafka_raw as kr

MAX_REQUEST = 1024 * 1024
BROKER_OVERRIDES = {
    "socket.request.max.bytes": str(MAX_REQUEST),
    "message.max.bytes": "200000",
}
TOPIC = "bad-input"
SMALL = "bad-input-small-max"  # max.message.bytes=1024


@pytest.fixture(scope="module")
def baseline(broker):
    """Creates the topics and acknowledges 5 records at offsets 0..4 of bad-input-0."""
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = kr.create_topics_v4(conn, [(TOPIC, 1, {}), (SMALL, 1, {"max.message.bytes": "1024"})])
        assert [(n, e) for n, e, _ in res] == [(TOPIC, 0), (SMALL, 0)], res
        ts = int(time.time() * 1000)
        records = [kr.Record(key=f"k{i}".encode(), value=f"baseline-{i}".encode(), headers=[("h", b"v")],
                             timestamp=ts + i) for i in range(5)]
        r = kr.produce(conn, TOPIC, 0, kr.build_batch(records))
        assert (r.error_code, r.base_offset) == (0, 0), r
    return records


def assert_healthy(broker, baseline):
    """The broker process is alive, a fresh connection works, acknowledged data is intact."""
    assert broker.running, f"broker exited with {broker.proc.returncode}:\n{broker.stderr_since_start()[-3000:]}"
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        versions = kr.api_versions(conn)
        assert kr.API_PRODUCE in versions and kr.API_FETCH in versions
        err, _, end = kr.list_offsets_v1(conn, TOPIC, 0, kr.LATEST)
        assert (err, end) == (0, len(baseline)), "bad input changed the log end offset"
        got = kr.fetch_all_records(conn, TOPIC, 0, 0, len(baseline))
        assert [(r.offset, r.key, r.value, r.headers, r.timestamp) for r in got] == [
            (i, r.key, r.value, r.headers, r.timestamp) for i, r in enumerate(baseline)]


def one_record_batch(value: bytes) -> bytes:
    return kr.build_batch([kr.Record(key=None, value=value, timestamp=int(time.time() * 1000))])


def test_crc_mismatch_is_corrupt_message(broker, baseline):
    """AP7: a v2 batch whose CRC does not match its content (payload byte flipped; or CRC field
    altered) gets CORRUPT_MESSAGE (2) on its partition, nothing is appended, broker stays up."""
    good = bytearray(one_record_batch(b"will be corrupted" * 10))
    flipped = bytearray(good)
    flipped[-5] ^= 0x01
    bad_crc_field = bytearray(good)
    bad_crc_field[17] ^= 0xFF  # crc is bytes 17..20
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        for batch in (flipped, bad_crc_field):
            r = kr.produce(conn, TOPIC, 0, bytes(batch))
            assert r.error_code == kr.CORRUPT_MESSAGE, f"got error {r.error_code}, want CORRUPT_MESSAGE (2)"
    assert_healthy(broker, baseline)


def test_batch_larger_than_max_message_bytes(broker, baseline):
    """AP7: a batch larger than the topic's max.message.bytes (1024) gets MESSAGE_TOO_LARGE (10)
    while a smaller one is accepted; a 300 KB batch on a topic using the broker default
    (message.max.bytes=200000) gets MESSAGE_TOO_LARGE too (request itself below
    socket.request.max.bytes, so it is answered, not dropped)."""
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        small_ok = one_record_batch(b"a" * 500)
        assert len(small_ok) < 1024
        r = kr.produce(conn, SMALL, 0, small_ok)
        assert (r.error_code, r.base_offset) == (0, 0), r

        too_big = one_record_batch(b"b" * 3000)
        r = kr.produce(conn, SMALL, 0, too_big)
        assert r.error_code == kr.MESSAGE_TOO_LARGE, f"got error {r.error_code}, want MESSAGE_TOO_LARGE (10)"

        huge = one_record_batch(random.Random(1).randbytes(300_000))
        r = kr.produce(conn, TOPIC, 0, huge)
        assert r.error_code == kr.MESSAGE_TOO_LARGE, f"got error {r.error_code}, want MESSAGE_TOO_LARGE (10)"
        err, _, end = kr.list_offsets_v1(conn, SMALL, 0, kr.LATEST)
        assert (err, end) == (0, 1)
    assert_healthy(broker, baseline)


def test_unknown_topic_or_partition(broker, baseline):
    """AP7: Produce to a topic that does not exist, and to partition 7 of a 1-partition topic,
    gets UNKNOWN_TOPIC_OR_PARTITION (3) (Produce never auto-creates); so do Fetch and ListOffsets
    for such a partition; the topic is not created as a side effect."""
    batch = one_record_batch(b"nowhere")
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        r = kr.produce(conn, "bad-input-no-such-topic", 0, batch)
        assert r.error_code == kr.UNKNOWN_TOPIC_OR_PARTITION, f"got {r.error_code}, want 3"
        r = kr.produce(conn, TOPIC, 7, batch)
        assert r.error_code == kr.UNKNOWN_TOPIC_OR_PARTITION, f"got {r.error_code}, want 3"
        assert kr.fetch_v4(conn, TOPIC, 7, 0).error_code == kr.UNKNOWN_TOPIC_OR_PARTITION
        assert kr.list_offsets_v1(conn, TOPIC, 7, kr.LATEST)[0] == kr.UNKNOWN_TOPIC_OR_PARTITION
        md = kr.metadata_v4(conn, ["bad-input-no-such-topic"], allow_auto_create=False)
        assert [(t["name"], t["error_code"]) for t in md["topics"]] == [
            ("bad-input-no-such-topic", kr.UNKNOWN_TOPIC_OR_PARTITION)]
    assert_healthy(broker, baseline)


INVALID_NAMES = ["bad name!", "", ".", "..", "x" * 250, "slash/name", "tab\tname"]


def test_invalid_topic_name(broker, baseline):
    """AP7: CreateTopics with an invalid name (space and '!', empty, '.', '..', 250 chars, '/',
    tab) gets INVALID_TOPIC_EXCEPTION (17) per topic, and a valid topic in the same request is
    still created; Metadata with allow_auto_topic_creation for 'bad name!' answers 17 too and
    creates nothing."""
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = kr.create_topics_v4(conn, [(n, 1, {}) for n in INVALID_NAMES] + [("bad-input-valid-name", 1, {})])
        codes = {name: err for name, err, _ in res}
        assert codes == {**{n: kr.INVALID_TOPIC_EXCEPTION for n in INVALID_NAMES}, "bad-input-valid-name": 0}, codes
        md = kr.metadata_v4(conn, ["bad name!"], allow_auto_create=True)
        assert [(t["name"], t["error_code"]) for t in md["topics"]] == [("bad name!", kr.INVALID_TOPIC_EXCEPTION)]
        all_topics = {t["name"] for t in kr.metadata_v4(conn, None)["topics"]}
        assert "bad-input-valid-name" in all_topics
        assert not all_topics & set(INVALID_NAMES), all_topics
    assert_healthy(broker, baseline)


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_magic_message_set(broker, baseline, magic):
    """AP7: Produce v7 carrying a magic 0 or magic 1 message set (valid CRC32) gets
    UNSUPPORTED_FOR_MESSAGE_FORMAT (43) -- the answer the acceptance criterion specifies -- and
    nothing is appended."""
    message_set = b"".join(kr.legacy_message(magic, b"k", f"legacy-{i}".encode(), offset=i) for i in range(3))
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        r = kr.produce(conn, TOPIC, 0, message_set)
        assert r.error_code == kr.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"got {r.error_code}, want 43"
    assert_healthy(broker, baseline)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_v0_to_v2_unsupported_version(broker, baseline, version):
    """AP7: Produce v0/v1/v2 (advertised for old clients but removed, as in Kafka 4) is answered in
    that version's layout with UNSUPPORTED_VERSION (35) on the partition, and nothing is appended."""
    records = b"".join(kr.legacy_message(1 if version == 2 else 0, None, b"old", offset=0) for _ in range(1))
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        body = kr.produce_body(version, [(TOPIC, [(0, records)])])
        res = kr.parse_produce_response(conn.roundtrip(kr.API_PRODUCE, version, body), version)
        assert [(x.topic, x.partition, x.error_code) for x in res] == [(TOPIC, 0, kr.UNSUPPORTED_VERSION)], res
    assert_healthy(broker, baseline)


def _frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


MALFORMED = {
    # 3 bytes: not even api_key + api_version + correlation id.
    "truncated_header": _frame(b"\x00\x00\x00"),
    # api_key 9999 does not exist.
    "unknown_api_key": _frame(kr.request_header_v1(9999, 0, 1) + b"\x00" * 16),
    # client_id claims 30000 bytes, the frame has 4.
    "client_id_overrun": _frame(struct.pack(">hhih", 0, 7, 1, 30000) + b"abcd"),
    # a valid Produce v7 header, then random bytes as the body.
    "garbage_body": _frame(kr.request_header_v1(kr.API_PRODUCE, 7, 1) + random.Random(3).randbytes(300)),
    # a Produce v7 body cut short in the middle of the topic array.
    "truncated_body": _frame(kr.request_header_v1(kr.API_PRODUCE, 7, 1)
                             + kr.produce_body(7, [(TOPIC, [(0, b"x" * 100)])])[:20]),
    # negative size prefix.
    "negative_size": struct.pack(">i", -5) + b"\x00" * 8,
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_frame_closes_connection(broker, baseline, case):
    """AP7: a malformed frame (`case`) makes the broker close that connection without answering;
    the broker stays up, other connections work and acknowledged data is intact."""
    with kr.KafkaConnection("127.0.0.1", broker.port) as bystander:
        kr.api_versions(bystander)
        with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
            conn.send_raw(MALFORMED[case])
            conn.wait_closed_by_peer(timeout=10)
        # An unrelated connection opened before is unaffected.
        kr.api_versions(bystander)
    assert_healthy(broker, baseline)


def test_oversized_frame_closes_connection(broker, baseline):
    """AP7: with socket.request.max.bytes=1048576, a 2 MiB size prefix makes the broker close the
    connection (without reading or buffering 2 MiB); a 600 KB request below the limit on a new
    connection is read and answered (MESSAGE_TOO_LARGE for its 600 KB batch, since
    message.max.bytes=200000); the broker stays up with data intact."""
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        conn.send_raw(struct.pack(">i", 2 * MAX_REQUEST) + kr.request_header_v1(kr.API_PRODUCE, 7, 1))
        conn.wait_closed_by_peer(timeout=10)
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        big = one_record_batch(random.Random(2).randbytes(600_000))
        r = kr.produce(conn, TOPIC, 0, big)
        assert r.error_code == kr.MESSAGE_TOO_LARGE, f"got {r.error_code}, want 10"
    assert_healthy(broker, baseline)


def test_failed_partition_reports_no_offsets(broker, baseline):
    """AP7 (response detail): a partition whose produce failed reports base_offset -1,
    log_append_time -1 and log_start_offset -1 (Kafka builds it from
    LogAppendInfo.UNKNOWN_LOG_APPEND_INFO / PartitionResponse(error)), never an offset that
    looks like a real append. Checked for CORRUPT_MESSAGE, MESSAGE_TOO_LARGE,
    UNKNOWN_TOPIC_OR_PARTITION and UNSUPPORTED_FOR_MESSAGE_FORMAT."""
    corrupt = bytearray(one_record_batch(b"c" * 50))
    corrupt[-3] ^= 0x01
    cases = [
        (TOPIC, 0, bytes(corrupt), kr.CORRUPT_MESSAGE),
        (SMALL, 0, one_record_batch(b"d" * 3000), kr.MESSAGE_TOO_LARGE),
        ("bad-input-no-such-topic", 0, one_record_batch(b"e"), kr.UNKNOWN_TOPIC_OR_PARTITION),
        (TOPIC, 0, kr.legacy_message(1, None, b"f"), kr.UNSUPPORTED_FOR_MESSAGE_FORMAT),
    ]
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        for topic, partition, records, code in cases:
            r = kr.produce(conn, topic, partition, records)
            assert r.error_code == code, r
            assert (r.base_offset, r.log_append_time, r.log_start_offset) == (-1, -1, -1), (
                f"error {code}: base_offset/log_append_time/log_start_offset = "
                f"{r.base_offset}/{r.log_append_time}/{r.log_start_offset}, Kafka answers -1/-1/-1")
    assert_healthy(broker, baseline)
