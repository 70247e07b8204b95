"""Hand-built Kafka wire protocol for the raw-socket interop tests.

Nothing here comes from a Kafka client library: requests, record batches, legacy message
sets and CRCs are encoded byte by byte, so the tests can send exactly the malformed input
they mean to send and read the broker's exact answer.

Covers what the tests need: request header v1 (non-flexible APIs) and v2 (flexible APIs),
ApiVersions v0, Produce v2/v3/v7, Metadata v4, CreateTopics v4, ListOffsets v1, Fetch v4;
the consumer group APIs (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, DescribeGroups, DeleteGroups) in the versions the group tests
use; record batch v2 encoding/decoding (uncompressed), legacy message sets (magic 0/1), CRC32C.
"""
from __future__ import annotations

import socket
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------------------------------------
# CRC32C (Castagnoli), pure Python: reflected polynomial 0x82F63B78, slicing-by-1 table.
# --------------------------------------------------------------------------------------------


def _make_crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of data (the checksum Kafka record batches v2 carry)."""
    table = _CRC32C_TABLE
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "CRC32C self-check (RFC 3720 check value)"

# --------------------------------------------------------------------------------------------
# Error codes used by the tests (Kafka's numbering).
# --------------------------------------------------------------------------------------------

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
UNSUPPORTED_VERSION = 35
UNSUPPORTED_FOR_MESSAGE_FORMAT = 43
INVALID_RECORD = 87
# consumer groups
COORDINATOR_NOT_AVAILABLE = 15
NOT_COORDINATOR = 16
ILLEGAL_GENERATION = 22
INCONSISTENT_GROUP_PROTOCOL = 23
UNKNOWN_MEMBER_ID = 25
INVALID_SESSION_TIMEOUT = 26
REBALANCE_IN_PROGRESS = 27
NON_EMPTY_GROUP = 68
GROUP_ID_NOT_FOUND = 69
MEMBER_ID_REQUIRED = 79
FENCED_INSTANCE_ID = 82

# --------------------------------------------------------------------------------------------
# Primitive encoding / decoding
# --------------------------------------------------------------------------------------------


def i8(v: int) -> bytes:
    return struct.pack(">b", v)


def i16(v: int) -> bytes:
    return struct.pack(">h", v)


def i32(v: int) -> bytes:
    return struct.pack(">i", v)


def i64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    """Non-flexible (int16 length) string; None encodes as length -1 (nullable)."""
    if s is None:
        return i16(-1)
    b = s.encode()
    return i16(len(b)) + b


def bytes_i32(b: bytes | None) -> bytes:
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items: list[bytes] | None) -> bytes:
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(items)


def zigzag_varint(v: int) -> bytes:
    """Signed varint/varlong (zig-zag) as in record v2 fields."""
    u = (v << 1) ^ (v >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = u & 0x7F
        u >>= 7
        if u:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def uvarint(v: int) -> bytes:
    """Unsigned varint (flexible versions: compact lengths, tag numbers)."""
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def compact_string(s: str | None) -> bytes:
    """Flexible-version string: uvarint(length + 1), 0 for null."""
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


def compact_bytes(b: bytes | None) -> bytes:
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


def compact_array(items: list[bytes] | None) -> bytes:
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


NO_TAGS = b"\x00"  # an empty tagged-field section


class Reader:
    """Sequential reader over a response body."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v

    def i8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def i16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def u32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def i64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def boolean(self) -> bool:
        return self.i8() != 0

    def string(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        return bytes(self._take(n)).decode()

    def bytes_i32(self) -> bytes | None:
        n = self.i32()
        if n < 0:
            return None
        return bytes(self._take(n))

    def array(self, item) -> list | None:
        n = self.i32()
        if n < 0:
            return None
        return [item(self) for _ in range(n)]

    def varint(self) -> int:
        shift = 0
        u = 0
        while True:
            b = self._take(1)[0]
            u |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return (u >> 1) ^ -(u & 1)

    def uvarint(self) -> int:
        """Unsigned varint (flexible versions: compact lengths, tag numbers)."""
        shift = 0
        u = 0
        while True:
            b = self._take(1)[0]
            u |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return u

    def compact_string(self) -> str | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        return bytes(self._take(n)).decode()

    def compact_bytes(self) -> bytes | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        return bytes(self._take(n))

    def compact_array(self, item) -> list | None:
        n = self.uvarint() - 1
        if n < 0:
            return None
        return [item(self) for _ in range(n)]

    def tagged_fields(self) -> dict[int, bytes]:
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            out[tag] = bytes(self._take(self.uvarint()))
        return out

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def at_end(self) -> bool:
        return self.pos == len(self.data)


# --------------------------------------------------------------------------------------------
# Record batches (magic 2)
# --------------------------------------------------------------------------------------------

BATCH_HEADER_SIZE = 61  # baseOffset(8) .. recordsCount(4)
LOG_OVERHEAD = 12  # baseOffset + batchLength


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int = 0
    offset: int = 0


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None, value: bytes | None,
                  headers: list[tuple[str, bytes | None]]) -> bytes:
    body = bytearray()
    body += i8(0)  # attributes
    body += zigzag_varint(timestamp_delta)
    body += zigzag_varint(offset_delta)
    if key is None:
        body += zigzag_varint(-1)
    else:
        body += zigzag_varint(len(key)) + key
    if value is None:
        body += zigzag_varint(-1)
    else:
        body += zigzag_varint(len(value)) + value
    body += zigzag_varint(len(headers))
    for hk, hv in headers:
        hkb = hk.encode()
        body += zigzag_varint(len(hkb)) + hkb
        if hv is None:
            body += zigzag_varint(-1)
        else:
            body += zigzag_varint(len(hv)) + hv
    return zigzag_varint(len(body)) + bytes(body)


def build_batch(records: list[Record], base_offset: int = 0, base_timestamp: int | None = None,
                producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                attributes: int = 0, partition_leader_epoch: int = -1, magic: int = 2) -> bytes:
    """An uncompressed record batch v2 with a correct CRC32C."""
    if base_timestamp is None:
        base_timestamp = records[0].timestamp if records else int(time.time() * 1000)
    max_ts = max((r.timestamp for r in records), default=base_timestamp)
    recs = b"".join(
        encode_record(i, r.timestamp - base_timestamp, r.key, r.value, r.headers) for i, r in enumerate(records))
    after_crc = (i16(attributes) + i32(len(records) - 1) + i64(base_timestamp) + i64(max_ts)
                 + i64(producer_id) + i16(producer_epoch) + i32(base_sequence) + i32(len(records)) + recs)
    crc = crc32c(after_crc)
    after_length = i32(partition_leader_epoch) + i8(magic) + struct.pack(">I", crc) + after_crc
    return i64(base_offset) + i32(len(after_length)) + after_length


def simple_batch(values: list[bytes], key: bytes | None = None, timestamp: int | None = None) -> bytes:
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    return build_batch([Record(key=key, value=v, timestamp=ts) for v in values])


@dataclass
class Batch:
    position: int
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int
    crc_ok: bool
    raw: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return LOG_OVERHEAD + self.batch_length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    def records(self) -> list[Record]:
        """Decodes the records of an uncompressed batch."""
        if self.compression != 0:
            raise ValueError(f"batch at {self.position} is compressed (codec {self.compression})")
        r = Reader(self.raw[BATCH_HEADER_SIZE:])
        out = []
        for _ in range(self.records_count):
            length = r.varint()
            start = r.pos
            r.i8()  # attributes
            ts_delta = r.varint()
            off_delta = r.varint()
            klen = r.varint()
            key = None if klen < 0 else bytes(r._take(klen))
            vlen = r.varint()
            value = None if vlen < 0 else bytes(r._take(vlen))
            headers = []
            for _ in range(r.varint()):
                hklen = r.varint()
                hk = bytes(r._take(hklen)).decode()
                hvlen = r.varint()
                hv = None if hvlen < 0 else bytes(r._take(hvlen))
                headers.append((hk, hv))
            if r.pos - start != length:
                raise ValueError(f"record length mismatch in batch at {self.position}")
            out.append(Record(key=key, value=value, headers=headers, timestamp=self.base_timestamp + ts_delta,
                              offset=self.base_offset + off_delta))
        if not r.at_end():
            raise ValueError(f"{r.remaining()} trailing bytes after the records of batch at {self.position}")
        return out


class BadBatch(Exception):
    """A position in a byte stream where no complete, valid v2 batch starts."""

    def __init__(self, position: int, reason: str):
        super().__init__(f"at byte {position}: {reason}")
        self.position = position
        self.reason = reason


def parse_batch_at(data: bytes, pos: int) -> Batch:
    """Parses and CRC-checks the v2 batch starting at pos; raises BadBatch if it is not whole and valid."""
    remaining = len(data) - pos
    if remaining < LOG_OVERHEAD:
        raise BadBatch(pos, f"only {remaining} bytes left, less than a batch's offset+length prefix")
    base_offset, batch_length = struct.unpack_from(">qi", data, pos)
    if batch_length < BATCH_HEADER_SIZE - LOG_OVERHEAD:
        raise BadBatch(pos, f"batchLength {batch_length} smaller than a batch header")
    if batch_length > remaining - LOG_OVERHEAD:
        raise BadBatch(pos, f"batchLength {batch_length} runs past the end ({remaining - LOG_OVERHEAD} bytes left)")
    raw = bytes(data[pos:pos + LOG_OVERHEAD + batch_length])
    (ple, magic, crc, attributes, lod, base_ts, max_ts, pid, pepoch, bseq, count) = struct.unpack_from(
        ">ibIhiqqqhii", raw, LOG_OVERHEAD)
    if magic != 2:
        raise BadBatch(pos, f"magic {magic}")
    crc_ok = crc32c(memoryview(raw)[21:]) == crc
    return Batch(pos, base_offset, batch_length, ple, magic, crc, attributes, lod, base_ts, max_ts, pid, pepoch,
                 bseq, count, crc_ok, raw)


def parse_batches(data: bytes, strict: bool = True) -> tuple[list[Batch], int]:
    """Walks batches from position 0. Returns (batches, valid_length).

    strict: raise BadBatch at the first position that is not a complete, CRC-valid batch.
    Otherwise stop there and report the valid prefix length (what recovery should keep).
    """
    pos = 0
    batches: list[Batch] = []
    while pos < len(data):
        try:
            b = parse_batch_at(data, pos)
            if not b.crc_ok:
                raise BadBatch(pos, f"CRC mismatch in batch with base offset {b.base_offset}")
        except BadBatch:
            if strict:
                raise
            break
        batches.append(b)
        pos += b.size
    return batches, pos


def segment_files(partition_dir: Path) -> list[Path]:
    """The .log segment files of a partition directory, in base-offset order."""
    return sorted(partition_dir.glob("*.log"), key=lambda p: int(p.stem))


def scan_partition_dir(partition_dir: Path) -> list[Batch]:
    """Reads every .log segment of a partition from position 0 and checks, like a strict
    recovery would, that each holds only complete CRC-valid v2 batches, that each file's
    name is its first batch's base offset, and that offsets run on without gap or overlap
    across batches and segments. Returns all batches in order."""
    all_batches: list[Batch] = []
    next_offset = None
    for seg in segment_files(partition_dir):
        data = seg.read_bytes()
        batches, _ = parse_batches(data, strict=True)  # raises on a torn/garbage/CRC-bad batch
        base = int(seg.stem)
        if batches:
            assert batches[0].base_offset == base, (
                f"{seg.name}: first batch has base offset {batches[0].base_offset}, file name says {base}")
        for b in batches:
            if next_offset is not None:
                assert b.base_offset == next_offset, (
                    f"{seg.name}@{b.position}: batch base offset {b.base_offset}, expected {next_offset} (gap/overlap)")
            next_offset = b.last_offset + 1
        all_batches.extend(batches)
    return all_batches


# --------------------------------------------------------------------------------------------
# Legacy message sets (magic 0 and 1)
# --------------------------------------------------------------------------------------------


def legacy_message(magic: int, key: bytes | None, value: bytes | None, offset: int = 0,
                   timestamp: int | None = None) -> bytes:
    """One offset+size+message entry of a magic 0 or 1 message set (CRC32 over magic..end)."""
    body = i8(magic) + i8(0)
    if magic == 1:
        body += i64(int(time.time() * 1000) if timestamp is None else timestamp)
    body += bytes_i32(key) + bytes_i32(value)
    msg = struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF) + body
    return i64(offset) + i32(len(msg)) + msg


# --------------------------------------------------------------------------------------------
# Requests and connections
# --------------------------------------------------------------------------------------------

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19


class ConnectionClosed(Exception):
    pass


def request_header_v1(api_key: int, api_version: int, correlation_id: int, client_id: str = "interop-raw") -> bytes:
    return i16(api_key) + i16(api_version) + i32(correlation_id) + string(client_id)


def request_header_v2(api_key: int, api_version: int, correlation_id: int, client_id: str = "interop-raw") -> bytes:
    """Header of flexible request versions: v1 plus an (empty) tagged-field section."""
    return request_header_v1(api_key, api_version, correlation_id, client_id) + NO_TAGS


class KafkaConnection:
    """A blocking TCP connection speaking size-prefixed Kafka frames (non-flexible headers)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_correlation = 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_frame(self, payload: bytes):
        self.send_raw(i32(len(payload)) + payload)

    def send_request(self, api_key: int, api_version: int, body: bytes, flexible: bool = False) -> int:
        cid = self.next_correlation
        self.next_correlation += 1
        header = request_header_v2 if flexible else request_header_v1
        self.send_frame(header(api_key, api_version, cid) + body)
        return cid

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError as e:
                raise ConnectionClosed(f"connection reset: {e}") from e
            if not chunk:
                raise ConnectionClosed(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(size)

    def recv_response(self, correlation_id: int) -> Reader:
        """Reads one response (header v0: correlation id only) and returns a Reader over its body."""
        frame = self.recv_frame()
        r = Reader(frame)
        got = r.i32()
        assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
        return r

    def roundtrip(self, api_key: int, api_version: int, body: bytes) -> Reader:
        return self.recv_response(self.send_request(api_key, api_version, body))

    def roundtrip_flexible(self, api_key: int, api_version: int, body: bytes) -> Reader:
        """Request header v2, response header v1 (correlation id + tagged fields)."""
        r = self.recv_response(self.send_request(api_key, api_version, body, flexible=True))
        r.tagged_fields()
        return r

    def wait_closed_by_peer(self, timeout: float = 10.0) -> str:
        """Waits until the peer closes the connection without sending anything; returns how
        ('eof' or 'reset'). Fails if any response bytes arrive or the connection stays open."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return "reset"
        except socket.timeout:
            raise AssertionError(f"broker kept the connection open for {timeout}s") from None
        if data:
            raise AssertionError(f"broker answered instead of closing: {data[:64]!r}")
        return "eof"


# ---- ApiVersions v0 -------------------------------------------------------------------------


def api_versions(conn: KafkaConnection) -> dict[int, tuple[int, int]]:
    r = conn.roundtrip(API_API_VERSIONS, 0, b"")
    err = r.i16()
    assert err == 0, f"ApiVersions error {err}"
    keys = r.array(lambda x: (x.i16(), x.i16(), x.i16()))
    return {k: (lo, hi) for k, lo, hi in keys}


# ---- Produce --------------------------------------------------------------------------------


@dataclass
class ProducePartitionResult:
    topic: str
    partition: int
    error_code: int
    base_offset: int
    log_append_time: int | None = None
    log_start_offset: int | None = None


def produce_body(version: int, topic_data: list[tuple[str, list[tuple[int, bytes | None]]]], acks: int = -1,
                 timeout_ms: int = 10000, transactional_id: str | None = None) -> bytes:
    body = b""
    if version >= 3:
        body += string(transactional_id)
    body += i16(acks) + i32(timeout_ms)
    body += array([string(t) + array([i32(p) + bytes_i32(recs) for p, recs in parts]) for t, parts in topic_data])
    return body


def parse_produce_response(r: Reader, version: int) -> list[ProducePartitionResult]:
    out = []

    def partition(x: Reader, topic: str):
        res = ProducePartitionResult(topic, x.i32(), x.i16(), x.i64())
        if version >= 2:
            res.log_append_time = x.i64()
        if version >= 5:
            res.log_start_offset = x.i64()
        if version >= 8:
            x.array(lambda y: (y.i32(), y.string()))  # record errors
            x.string()  # error message
        out.append(res)

    def topic(x: Reader):
        name = x.string()
        x.array(lambda y: partition(y, name))

    r.array(topic)
    if version >= 1:
        r.i32()  # throttle time
    assert r.at_end(), f"{r.remaining()} unexpected trailing bytes in Produce v{version} response"
    return out


def produce(conn: KafkaConnection, topic: str, partition: int, records: bytes | None, version: int = 7,
            acks: int = -1) -> ProducePartitionResult:
    body = produce_body(version, [(topic, [(partition, records)])], acks=acks)
    results = parse_produce_response(conn.roundtrip(API_PRODUCE, version, body), version)
    assert len(results) == 1, results
    return results[0]


# ---- Metadata v4 ----------------------------------------------------------------------------


def metadata_v4(conn: KafkaConnection, topics: list[str] | None, allow_auto_create: bool = False) -> dict:
    body = array(None if topics is None else [string(t) for t in topics]) + i8(1 if allow_auto_create else 0)
    r = conn.roundtrip(API_METADATA, 4, body)
    throttle = r.i32()
    brokers = r.array(lambda x: dict(node_id=x.i32(), host=x.string(), port=x.i32(), rack=x.string()))
    cluster_id = r.string()
    controller_id = r.i32()

    def part(x):
        return dict(error_code=x.i16(), partition=x.i32(), leader=x.i32(), replicas=x.array(lambda y: y.i32()),
                    isr=x.array(lambda y: y.i32()))

    topics_out = r.array(lambda x: dict(error_code=x.i16(), name=x.string(), is_internal=x.boolean(),
                                        partitions=x.array(part)))
    assert r.at_end(), f"{r.remaining()} unexpected trailing bytes in Metadata v4 response"
    return dict(throttle=throttle, brokers=brokers, cluster_id=cluster_id, controller_id=controller_id,
                topics=topics_out)


# ---- CreateTopics v4 ------------------------------------------------------------------------


def create_topics_v4(conn: KafkaConnection, topics: list[tuple[str, int, dict[str, str]]],
                     validate_only: bool = False) -> list[tuple[str, int, str | None]]:
    items = []
    for name, partitions, configs in topics:
        items.append(string(name) + i32(partitions) + i16(1) + array([])
                     + array([string(k) + string(v) for k, v in configs.items()]))
    body = array(items) + i32(10000) + i8(1 if validate_only else 0)
    r = conn.roundtrip(API_CREATE_TOPICS, 4, body)
    r.i32()  # throttle
    res = r.array(lambda x: (x.string(), x.i16(), x.string()))
    assert r.at_end(), f"{r.remaining()} unexpected trailing bytes in CreateTopics v4 response"
    return res


# ---- ListOffsets v1 -------------------------------------------------------------------------

EARLIEST = -2
LATEST = -1


def list_offsets_v1(conn: KafkaConnection, topic: str, partition: int, timestamp: int) -> tuple[int, int, int]:
    """(error_code, timestamp, offset)"""
    body = i32(-1) + array([string(topic) + array([i32(partition) + i64(timestamp)])])
    r = conn.roundtrip(API_LIST_OFFSETS, 1, body)
    res = r.array(lambda x: (x.string(), x.array(lambda y: (y.i32(), y.i16(), y.i64(), y.i64()))))
    assert r.at_end()
    (_, parts), = res
    (_, err, ts, off), = parts
    return err, ts, off


# ---- Fetch v4 -------------------------------------------------------------------------------


@dataclass
class FetchPartitionResult:
    partition: int
    error_code: int
    high_watermark: int
    last_stable_offset: int
    records: bytes | None


def fetch_v4(conn: KafkaConnection, topic: str, partition: int, offset: int, max_bytes: int = 4 * 1024 * 1024,
             max_wait_ms: int = 0) -> FetchPartitionResult:
    body = (i32(-1) + i32(max_wait_ms) + i32(1) + i32(max_bytes) + i8(0)
            + array([string(topic) + array([i32(partition) + i64(offset) + i32(max_bytes)])]))
    r = conn.roundtrip(API_FETCH, 4, body)
    r.i32()  # throttle

    def part(x):
        pidx, err, hw, lso = x.i32(), x.i16(), x.i64(), x.i64()
        x.array(lambda y: (y.i64(), y.i64()))  # aborted transactions
        return FetchPartitionResult(pidx, err, hw, lso, x.bytes_i32())

    res = r.array(lambda x: (x.string(), x.array(part)))
    assert r.at_end(), f"{r.remaining()} unexpected trailing bytes in Fetch v4 response"
    (_, parts), = res
    (p,), = [parts]
    return p


def fetch_all_records(conn: KafkaConnection, topic: str, partition: int, start: int, end: int) -> list[Record]:
    """Fetches [start, end) with Fetch v4 and decodes uncompressed batches (CRC-checked)."""
    out: list[Record] = []
    offset = start
    while offset < end:
        res = fetch_v4(conn, topic, partition, offset)
        assert res.error_code == 0, f"fetch {topic}-{partition}@{offset}: error {res.error_code}"
        batches, valid = parse_batches(res.records or b"", strict=False)
        assert batches, f"fetch {topic}-{partition}@{offset} returned no complete batch"
        for b in batches:
            assert b.crc_ok
            for rec in b.records():
                if rec.offset >= offset:
                    out.append(rec)
        offset = batches[-1].last_offset + 1
    return [r for r in out if r.offset < end]


# --------------------------------------------------------------------------------------------
# Consumer group APIs (classic protocol)
#
# Each helper takes the API version and switches between the non-flexible encoding and the
# flexible one (compact strings/arrays/bytes, tagged fields, request header v2) at the
# version the message definitions (kafka-reference/messages/*.json) name as flexibleVersions.
# --------------------------------------------------------------------------------------------

API_OFFSET_COMMIT = 8
API_OFFSET_FETCH = 9
API_FIND_COORDINATOR = 10
API_JOIN_GROUP = 11
API_HEARTBEAT = 12
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14
API_DESCRIBE_GROUPS = 15
API_LIST_GROUPS = 16
API_DELETE_GROUPS = 42

FLEXIBLE_SINCE = {API_OFFSET_COMMIT: 8, API_OFFSET_FETCH: 6, API_FIND_COORDINATOR: 3, API_JOIN_GROUP: 6,
                  API_HEARTBEAT: 4, API_LEAVE_GROUP: 4, API_SYNC_GROUP: 4, API_DESCRIBE_GROUPS: 5,
                  API_LIST_GROUPS: 3, API_DELETE_GROUPS: 2}


class _Enc:
    """Field encoders for one (api, version): compact forms when the version is flexible."""

    def __init__(self, api_key: int, version: int):
        self.flex = version >= FLEXIBLE_SINCE[api_key]

    def str(self, s: str | None) -> bytes:
        return compact_string(s) if self.flex else string(s)

    def bytes(self, b: bytes | None) -> bytes:
        return compact_bytes(b) if self.flex else bytes_i32(b)

    def array(self, items: list[bytes] | None) -> bytes:
        return compact_array(items) if self.flex else array(items)

    def tags(self) -> bytes:
        return NO_TAGS if self.flex else b""


class _Dec:
    def __init__(self, r: Reader, flex: bool):
        self.r = r
        self.flex = flex

    def str(self) -> str | None:
        return self.r.compact_string() if self.flex else self.r.string()

    def bytes(self) -> bytes | None:
        return self.r.compact_bytes() if self.flex else self.r.bytes_i32()

    def array(self, item) -> list | None:
        f = (lambda _: item(self))
        return self.r.compact_array(f) if self.flex else self.r.array(f)

    def tags(self):
        if self.flex:
            self.r.tagged_fields()

    def end(self, what: str):
        assert self.r.at_end(), f"{self.r.remaining()} unexpected trailing bytes in {what} response"


def _call(conn: KafkaConnection, api_key: int, version: int, body: bytes) -> _Dec:
    e = _Enc(api_key, version)
    r = conn.roundtrip_flexible(api_key, version, body) if e.flex else conn.roundtrip(api_key, version, body)
    return _Dec(r, e.flex)


# ---- consumer protocol payloads (ConsumerProtocolSubscription / Assignment, version 0) -------


def consumer_subscription(topics: list[str], user_data: bytes | None = None) -> bytes:
    return i16(0) + array([string(t) for t in topics]) + bytes_i32(user_data)


def consumer_assignment(assignment: dict[str, list[int]], user_data: bytes | None = None) -> bytes:
    return (i16(0) + array([string(t) + array([i32(p) for p in ps]) for t, ps in assignment.items()])
            + bytes_i32(user_data))


def decode_consumer_assignment(data: bytes) -> dict[str, list[int]]:
    """Topic -> partitions of a ConsumerProtocolAssignment (any version: later versions only add
    fields after these)."""
    if not data:
        return {}
    r = Reader(data)
    r.i16()  # version
    return dict(r.array(lambda x: (x.string(), x.array(lambda y: y.i32()))))


# ---- FindCoordinator (key 10) ---------------------------------------------------------------


def find_coordinator(conn: KafkaConnection, key: str | list[str], version: int = 2, key_type: int = 0) -> list[dict]:
    """One dict per key: error_code, error_message, node_id, host, port (and key for v4+)."""
    e = _Enc(API_FIND_COORDINATOR, version)
    keys = [key] if isinstance(key, str) else list(key)
    if version >= 4:
        body = i8(key_type) + e.array([e.str(k) for k in keys]) + e.tags()
    else:
        assert len(keys) == 1, "FindCoordinator v0-3 take one key"
        body = e.str(keys[0]) + (i8(key_type) if version >= 1 else b"") + e.tags()
    d = _call(conn, API_FIND_COORDINATOR, version, body)
    r = d.r
    if version >= 1:
        r.i32()  # throttle
    if version >= 4:
        def coord(x: _Dec):
            c = dict(key=x.str(), node_id=x.r.i32(), host=x.str(), port=x.r.i32(), error_code=x.r.i16(),
                     error_message=x.str())
            x.tags()
            return c
        out = d.array(coord)
    else:
        err = r.i16()
        msg = d.str() if version >= 1 else None
        out = [dict(key=keys[0], error_code=err, error_message=msg, node_id=r.i32(), host=d.str(), port=r.i32())]
    d.tags()
    d.end(f"FindCoordinator v{version}")
    return out


# ---- JoinGroup (key 11) ---------------------------------------------------------------------


def join_group(conn: KafkaConnection, group: str, member_id: str = "", version: int = 5,
               session_timeout_ms: int = 10000, rebalance_timeout_ms: int = 10000,
               group_instance_id: str | None = None, protocol_type: str = "consumer",
               protocols: list[tuple[str, bytes]] | None = None, topics: list[str] | None = None,
               reason: str | None = None) -> dict:
    """Sends JoinGroup and waits for the answer (which the broker may hold until the rebalance
    completes). protocols default to [("range", subscription to `topics`)]."""
    e = _Enc(API_JOIN_GROUP, version)
    if protocols is None:
        protocols = [("range", consumer_subscription(topics or []))]
    body = e.str(group) + i32(session_timeout_ms)
    if version >= 1:
        body += i32(rebalance_timeout_ms)
    body += e.str(member_id)
    if version >= 5:
        body += e.str(group_instance_id)
    body += e.str(protocol_type)
    body += e.array([e.str(name) + e.bytes(meta) + e.tags() for name, meta in protocols])
    if version >= 8:
        body += e.str(reason)
    body += e.tags()
    d = _call(conn, API_JOIN_GROUP, version, body)
    r = d.r
    out: dict = {}
    if version >= 2:
        out["throttle_time_ms"] = r.i32()
    out["error_code"] = r.i16()
    out["generation_id"] = r.i32()
    out["protocol_type"] = d.str() if version >= 7 else None
    out["protocol_name"] = d.str()
    out["leader"] = d.str()
    out["skip_assignment"] = r.boolean() if version >= 9 else False
    out["member_id"] = d.str()

    def member(x: _Dec):
        m = dict(member_id=x.str(), group_instance_id=x.str() if version >= 5 else None, metadata=x.bytes())
        x.tags()
        return m

    out["members"] = d.array(member)
    d.tags()
    d.end(f"JoinGroup v{version}")
    return out


# ---- SyncGroup (key 14) ---------------------------------------------------------------------


def sync_group(conn: KafkaConnection, group: str, generation_id: int, member_id: str,
               assignments: list[tuple[str, bytes]] | None = None, version: int = 3,
               group_instance_id: str | None = None, protocol_type: str | None = "consumer",
               protocol_name: str | None = "range") -> dict:
    e = _Enc(API_SYNC_GROUP, version)
    body = e.str(group) + i32(generation_id) + e.str(member_id)
    if version >= 3:
        body += e.str(group_instance_id)
    if version >= 5:
        body += e.str(protocol_type) + e.str(protocol_name)
    body += e.array([e.str(m) + e.bytes(a) + e.tags() for m, a in (assignments or [])])
    body += e.tags()
    d = _call(conn, API_SYNC_GROUP, version, body)
    r = d.r
    out: dict = {}
    if version >= 1:
        out["throttle_time_ms"] = r.i32()
    out["error_code"] = r.i16()
    if version >= 5:
        out["protocol_type"] = d.str()
        out["protocol_name"] = d.str()
    out["assignment"] = d.bytes()
    d.tags()
    d.end(f"SyncGroup v{version}")
    return out


# ---- Heartbeat (key 12) ---------------------------------------------------------------------


def heartbeat(conn: KafkaConnection, group: str, generation_id: int, member_id: str, version: int = 3,
              group_instance_id: str | None = None) -> int:
    """Returns the error code."""
    e = _Enc(API_HEARTBEAT, version)
    body = e.str(group) + i32(generation_id) + e.str(member_id)
    if version >= 3:
        body += e.str(group_instance_id)
    body += e.tags()
    d = _call(conn, API_HEARTBEAT, version, body)
    if version >= 1:
        d.r.i32()  # throttle
    err = d.r.i16()
    d.tags()
    d.end(f"Heartbeat v{version}")
    return err


# ---- LeaveGroup (key 13) --------------------------------------------------------------------


def leave_group(conn: KafkaConnection, group: str, members: list[tuple[str, str | None]], version: int = 3) -> dict:
    """members: (member_id, group_instance_id). v0-2 take exactly one member id.
    Returns {error_code, members: [(member_id, group_instance_id, error_code)]}."""
    e = _Enc(API_LEAVE_GROUP, version)
    body = e.str(group)
    if version >= 3:
        body += e.array([e.str(m) + e.str(iid) + (e.str(None) if version >= 5 else b"") + e.tags()
                         for m, iid in members])
    else:
        (m, _), = members
        body += e.str(m)
    body += e.tags()
    d = _call(conn, API_LEAVE_GROUP, version, body)
    if version >= 1:
        d.r.i32()
    out = dict(error_code=d.r.i16(), members=[])
    if version >= 3:
        def member(x: _Dec):
            m = (x.str(), x.str(), x.r.i16())
            x.tags()
            return m
        out["members"] = d.array(member)
    d.tags()
    d.end(f"LeaveGroup v{version}")
    return out


# ---- OffsetCommit (key 8) -------------------------------------------------------------------


def offset_commit(conn: KafkaConnection, group: str, offsets: dict[tuple[str, int], tuple[int, str | None]],
                  generation_id: int = -1, member_id: str = "", group_instance_id: str | None = None,
                  version: int = 7) -> dict[tuple[str, int], int]:
    """offsets: (topic, partition) -> (offset, metadata). Returns (topic, partition) -> error code.
    Supports v2..9 (v2-4 carry retention time -1)."""
    assert 2 <= version <= 9
    e = _Enc(API_OFFSET_COMMIT, version)
    by_topic: dict[str, list[tuple[int, int, str | None]]] = {}
    for (t, p), (off, meta) in offsets.items():
        by_topic.setdefault(t, []).append((p, off, meta))
    body = e.str(group) + i32(generation_id) + e.str(member_id)
    if version >= 7:
        body += e.str(group_instance_id)
    if version <= 4:
        body += i64(-1)  # retention time: broker default
    body += e.array([
        e.str(t) + e.array([i32(p) + i64(off) + (i32(-1) if version >= 6 else b"") + e.str(meta) + e.tags()
                            for p, off, meta in parts]) + e.tags()
        for t, parts in by_topic.items()])
    body += e.tags()
    d = _call(conn, API_OFFSET_COMMIT, version, body)
    if version >= 3:
        d.r.i32()
    out = {}

    def topic(x: _Dec):
        name = x.str()

        def part(y: _Dec):
            p = y.r.i32()
            out[(name, p)] = y.r.i16()
            y.tags()

        x.array(part)
        x.tags()

    d.array(topic)
    d.tags()
    d.end(f"OffsetCommit v{version}")
    return out


# ---- OffsetFetch (key 9) --------------------------------------------------------------------


def offset_fetch(conn: KafkaConnection, group: str, partitions: list[tuple[str, int]] | None,
                 version: int = 5) -> tuple[int, dict[tuple[str, int], dict]]:
    """partitions None = all committed offsets of the group (v2+). Versions 1..7 (one group).
    Returns (group error code, {(topic, partition): {offset, leader_epoch, metadata, error_code}})."""
    assert 1 <= version <= 7
    e = _Enc(API_OFFSET_FETCH, version)
    topics = None
    if partitions is not None:
        by_topic: dict[str, list[int]] = {}
        for t, p in partitions:
            by_topic.setdefault(t, []).append(p)
        topics = [e.str(t) + e.array([i32(p) for p in ps]) + e.tags() for t, ps in by_topic.items()]
    body = e.str(group) + e.array(topics)
    if version >= 7:
        body += i8(0)  # require stable
    body += e.tags()
    d = _call(conn, API_OFFSET_FETCH, version, body)
    if version >= 3:
        d.r.i32()
    out = {}

    def topic(x: _Dec):
        name = x.str()

        def part(y: _Dec):
            p = y.r.i32()
            res = dict(offset=y.r.i64(), leader_epoch=y.r.i32() if version >= 5 else -1)
            res["metadata"] = y.str()
            res["error_code"] = y.r.i16()
            y.tags()
            out[(name, p)] = res

        x.array(part)
        x.tags()

    d.array(topic)
    err = d.r.i16() if version >= 2 else 0
    d.tags()
    d.end(f"OffsetFetch v{version}")
    return err, out


# ---- DescribeGroups (key 15) ----------------------------------------------------------------


def describe_groups(conn: KafkaConnection, groups: list[str], version: int = 4) -> list[dict]:
    e = _Enc(API_DESCRIBE_GROUPS, version)
    body = e.array([e.str(g) for g in groups])
    if version >= 3:
        body += i8(0)
    body += e.tags()
    d = _call(conn, API_DESCRIBE_GROUPS, version, body)
    if version >= 1:
        d.r.i32()

    def member(x: _Dec):
        m = dict(member_id=x.str(), group_instance_id=x.str() if version >= 4 else None, client_id=x.str(),
                 client_host=x.str(), metadata=x.bytes(), assignment=x.bytes())
        x.tags()
        return m

    def group(x: _Dec):
        g = dict(error_code=x.r.i16(), group_id=x.str(), state=x.str(), protocol_type=x.str(),
                 protocol=x.str(), members=x.array(member))
        if version >= 3:
            g["authorized_operations"] = x.r.i32()
        x.tags()
        return g

    out = d.array(group)
    d.tags()
    d.end(f"DescribeGroups v{version}")
    return out


# ---- DeleteGroups (key 42) ------------------------------------------------------------------


def delete_groups(conn: KafkaConnection, groups: list[str], version: int = 1) -> dict[str, int]:
    e = _Enc(API_DELETE_GROUPS, version)
    d = _call(conn, API_DELETE_GROUPS, version, e.array([e.str(g) for g in groups]) + e.tags())
    d.r.i32()

    def result(x: _Dec):
        res = (x.str(), x.r.i16())
        x.tags()
        return res

    out = dict(d.array(result))
    d.tags()
    d.end(f"DeleteGroups v{version}")
    return out
