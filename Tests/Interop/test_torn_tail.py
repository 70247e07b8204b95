"""Acceptance point 5: torn-tail recovery (and its counterpart, clean shutdown).

Messages are written, the broker is SIGKILLed, and the active segment gets a torn tail
appended by hand (random garbage, the first half of a batch, a whole batch with a bad CRC,
zero fill). On restart the broker must truncate exactly at the last valid batch (logging it),
serve every earlier message, and continue the log at the right offset.
"""
from __future__ import annotations

import random
import time

import pytest
from confluent_kafka import Producer

import kafka_raw
from samsa_interop import consume_range, create_topic, recovery_lines, truncated_bytes, watermarks

TOPIC = "torn"
FIRST = 40
MORE = 10


def produce_values(bootstrap: str, values: list[bytes], per_batch: int = 5) -> list[int]:
    """Produces values to partition 0 (acks=all), flushing every per_batch messages so the log
    holds several batches. Returns the acknowledged offsets."""
    offsets: dict[int, int] = {}
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 50})
    for i, v in enumerate(values):
        def cb(err, msg, i=i):
            assert err is None, err
            offsets[i] = msg.offset()
        p.produce(TOPIC, value=v, key=b"k", partition=0, on_delivery=cb)
        if (i + 1) % per_batch == 0:
            assert p.flush(30) == 0
    assert p.flush(30) == 0
    return [offsets[i] for i in range(len(values))]


def half_batch(next_offset: int) -> bytes:
    b = kafka_raw.build_batch([kafka_raw.Record(None, f"torn-{i}".encode() * 20, timestamp=int(time.time() * 1000))
                               for i in range(5)], base_offset=next_offset)
    return b[: len(b) // 2]


def bad_crc_batch(next_offset: int) -> bytes:
    b = bytearray(kafka_raw.build_batch([kafka_raw.Record(None, b"x" * 200, timestamp=int(time.time() * 1000))],
                                        base_offset=next_offset))
    b[-10] ^= 0xFF  # flip a byte of the record payload: length intact, CRC wrong
    assert not kafka_raw.parse_batch_at(bytes(b), 0).crc_ok
    return bytes(b)


TAILS = {
    "garbage": lambda next_offset: random.Random(7).randbytes(123),
    "half_batch": half_batch,
    "bad_crc_batch": bad_crc_batch,
    "zero_fill": lambda next_offset: b"\0" * 4096,
}


def values(n: int, start: int = 0) -> list[bytes]:
    return [f"message-{i:04d}-".encode() + bytes([i % 251]) * (i % 50) for i in range(start, start + n)]


@pytest.mark.parametrize("tail", sorted(TAILS))
def test_torn_tail_is_truncated_on_restart(broker_factory, tail):
    """AP5: after SIGKILL the active segment is whole (strict scan passes); a torn tail
    (`tail`) appended to it is cut off on restart: stderr logs "recovered torn-0" with
    "bytes truncated=<exactly the appended length>", the file is back to its valid length, all
    earlier messages are readable unchanged, the high watermark is unchanged, and new produces
    get offsets 40, 41, ... with the whole log readable and strictly valid afterwards."""
    b = broker_factory()
    create_topic(b.bootstrap, TOPIC, partitions=1)
    first = values(FIRST)
    assert produce_values(b.bootstrap, first) == list(range(FIRST))
    b.kill()

    pdir = b.partition_dir(TOPIC, 0)
    segment = kafka_raw.segment_files(pdir)[-1]
    valid = segment.read_bytes()
    batches, valid_len = kafka_raw.parse_batches(valid, strict=True)
    assert valid_len == len(valid) and batches[-1].last_offset == FIRST - 1
    junk = TAILS[tail](FIRST)
    with open(segment, "ab") as f:
        f.write(junk)

    b.start()
    lines = recovery_lines(b.stderr_since_start(), f"{TOPIC}-0")
    assert lines, f"no 'recovered {TOPIC}-0' line on stderr:\n{b.stderr_since_start()}"
    assert truncated_bytes(lines[-1]) == len(junk), lines[-1]
    assert segment.stat().st_size == len(valid), "segment not truncated back to its last valid batch"
    assert segment.read_bytes() == valid

    assert watermarks(b.bootstrap, TOPIC, 0) == (0, FIRST)
    assert [m.value() for m in consume_range(b.bootstrap, TOPIC, 0, 0, FIRST)] == first

    more = values(MORE, start=FIRST)
    assert produce_values(b.bootstrap, more) == list(range(FIRST, FIRST + MORE))
    got = consume_range(b.bootstrap, TOPIC, 0, 0, FIRST + MORE)
    assert [m.offset() for m in got] == list(range(FIRST + MORE))
    assert [m.value() for m in got] == first + more
    all_batches = kafka_raw.scan_partition_dir(pdir)
    assert all_batches[-1].last_offset == FIRST + MORE - 1


def test_clean_shutdown_skips_recovery_and_a_later_crash_still_recovers(broker_factory):
    """AP5 counterpart: SIGTERM exits 0 and leaves .samsa_cleanshutdown; the next start does not
    scan (no "recovered" line) and removes the marker while running (else a later crash would
    skip recovery); data is intact. A SIGKILL + torn tail after that is still recovered."""
    b = broker_factory()
    create_topic(b.bootstrap, TOPIC, partitions=1)
    first = values(FIRST)
    produce_values(b.bootstrap, first)
    assert b.stop() == 0, "SIGTERM must exit 0"
    marker = b.data_dir / ".samsa_cleanshutdown"
    assert marker.exists()

    b.start()
    assert not recovery_lines(b.stderr_since_start(), f"{TOPIC}-0"), "clean start should not run recovery"
    assert not marker.exists(), "clean-shutdown marker must be removed once the broker runs again"
    assert [m.value() for m in consume_range(b.bootstrap, TOPIC, 0, 0, FIRST)] == first

    b.kill()
    segment = kafka_raw.segment_files(b.partition_dir(TOPIC, 0))[-1]
    size = segment.stat().st_size
    junk = half_batch(FIRST)
    with open(segment, "ab") as f:
        f.write(junk)
    b.start()
    lines = recovery_lines(b.stderr_since_start(), f"{TOPIC}-0")
    assert lines and truncated_bytes(lines[-1]) == len(junk), b.stderr_since_start()
    assert segment.stat().st_size == size
    assert [m.value() for m in consume_range(b.bootstrap, TOPIC, 0, 0, FIRST)] == first
