"""Hand-built Kafka wire protocol for the raw-socket interop tests.

Nothing here comes from a Kafka client library: requests, record batches, legacy message
sets and CRCs are encoded byte by byte, so the tests can send exactly the malformed input
they mean to send and read the broker's exact answer.

Covers what the tests need: request header v1 (non-flexible APIs only), ApiVersions v0,
Produce v2/v3/v7, Metadata v4, CreateTopics v4, ListOffsets v1, Fetch v4; record batch v2
encoding/decoding (uncompressed), legacy message sets (magic 0/1), CRC32C.
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

    def send_request(self, api_key: int, api_version: int, body: bytes) -> int:
        cid = self.next_correlation
        self.next_correlation += 1
        self.send_frame(request_header_v1(api_key, api_version, cid) + body)
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
