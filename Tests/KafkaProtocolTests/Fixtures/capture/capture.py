#!/usr/bin/env python3
"""Capture golden Kafka request frames sent by real Kafka clients.

Runs a tiny fake Kafka broker (pure Python: socket + struct + threads) on
127.0.0.1:<free port>, drives real clients (kcat/librdkafka, kafka-python and,
if installed, confluent-kafka) against it, and writes every first-seen request
frame (payload only, without the 4-byte size prefix) to

    Tests/KafkaProtocolTests/Fixtures/<client>-<apiname>-v<version>.bin

plus Tests/KafkaProtocolTests/Fixtures/manifest.json describing each file.
Produce frames are fully decoded (record batch v2, CRC32C checked) and asserted
against the values the client was asked to send.

Usage (from the repository root):

    python3 Tests/KafkaProtocolTests/Fixtures/capture/capture.py

Internal usage (the script re-invokes itself to run a Python client in a
subprocess that can be killed on timeout):

    capture.py --run-client kafka-python|confluent-kafka --port N
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES_DIR = os.path.dirname(HERE)

CLIENT_TIMEOUT_S = 15

TOPIC = "golden"
PARTITION = 0
MESSAGES = [  # (key, value)
    ("key1", "value1"),
    ("key2", "value2"),
    ("key3", "value3"),
]
HEADERS = [("h1", "v1")]  # attached to every record

CLUSTER_ID = "samsa-capture"
TOPIC_ID = bytes.fromhex("5a4d5341c0ffee000000000000000001")  # fixed 16-byte UUID

API_NAMES = {
    0: "produce",
    1: "fetch",
    2: "listoffsets",
    3: "metadata",
    18: "apiversions",
    22: "initproducerid",
}

# What we advertise in ApiVersions responses: api key -> (min, max)
SUPPORTED = {
    0: (3, 9),    # Produce
    # Fetch is never answered, only advertised: librdkafka enables MsgVersion 2
    # (record batch v2, needed for headers) only if the broker supports
    # Produce >= 3 AND Fetch >= 4; without it kcat silently falls back to the
    # legacy MessageSet v0 and drops the headers.
    1: (4, 12),   # Fetch
    3: (0, 12),   # Metadata
    18: (0, 3),   # ApiVersions
    22: (0, 4),   # InitProducerId (only used by idempotent producers)
}

# Flexible-version thresholds (first flexible version) for requests we parse
FLEXIBLE_FROM = {0: 9, 3: 9, 18: 3, 22: 2}

ERR_UNSUPPORTED_VERSION = 35


# ---------------------------------------------------------------------------
# Primitive encoding / decoding
# ---------------------------------------------------------------------------

def enc_uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def string(s, flexible):
    """(Nullable) string: int16 length, or compact uvarint(len+1)."""
    if s is None:
        return enc_uvarint(0) if flexible else i16(-1)
    b = s.encode("utf-8")
    if flexible:
        return enc_uvarint(len(b) + 1) + b
    return i16(len(b)) + b


def array(items, flexible):
    """items: list of already-encoded element bytes. None -> null array."""
    if items is None:
        return enc_uvarint(0) if flexible else i32(-1)
    head = enc_uvarint(len(items) + 1) if flexible else i32(len(items))
    return head + b"".join(items)


def tags(flexible):
    return b"\x00" if flexible else b""


class Reader:
    def __init__(self, data, pos=0):
        self.data = data
        self.pos = pos

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("short read: want %d at %d of %d" % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int8(self):
        return struct.unpack(">b", self.take(1))[0]

    def int16(self):
        return struct.unpack(">h", self.take(2))[0]

    def int32(self):
        return struct.unpack(">i", self.take(4))[0]

    def uint32(self):
        return struct.unpack(">I", self.take(4))[0]

    def int64(self):
        return struct.unpack(">q", self.take(8))[0]

    def uvarint(self):
        shift = 0
        result = 0
        while True:
            b = self.take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self):  # zigzag signed
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)

    def string(self, flexible):
        if flexible:
            n = self.uvarint() - 1
        else:
            n = self.int16()
        if n < 0:
            return None
        return self.take(n).decode("utf-8")

    def bytes_(self, flexible):
        if flexible:
            n = self.uvarint() - 1
        else:
            n = self.int32()
        if n < 0:
            return None
        return self.take(n)

    def array_len(self, flexible):
        if flexible:
            return self.uvarint() - 1  # -1 == null
        return self.int32()

    def uuid(self):
        return self.take(16)

    def tagged_fields(self):
        n = self.uvarint()
        out = {}
        for _ in range(n):
            tag = self.uvarint()
            size = self.uvarint()
            out[tag] = self.take(size)
        return out


# ---------------------------------------------------------------------------
# CRC32C (Castagnoli), pure Python
# ---------------------------------------------------------------------------

def _crc32c_table():
    poly = 0x82F63B78
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC32C_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # standard check value


# ---------------------------------------------------------------------------
# Request parsing
# ---------------------------------------------------------------------------

def request_header_version(api_key, api_version):
    flex = FLEXIBLE_FROM.get(api_key)
    if api_key == 18 and api_version >= 3:
        return 2
    if flex is not None and api_version >= flex:
        return 2
    return 1


def parse_request_header(payload):
    r = Reader(payload)
    api_key = r.int16()
    api_version = r.int16()
    corr = r.int32()
    client_id = r.string(False)  # client id is never compact, even in header v2
    hv = request_header_version(api_key, api_version)
    header_tags = None
    if hv >= 2:
        header_tags = r.tagged_fields()
    return {
        "api_key": api_key,
        "api_version": api_version,
        "correlation_id": corr,
        "client_id": client_id,
        "header_version": hv,
        "header_tagged_fields": len(header_tags) if header_tags is not None else None,
    }, r


def parse_metadata_request(r, v):
    flex = v >= 9
    n = r.array_len(flex)
    topics = None
    if n >= 0:
        topics = []
        for _ in range(n):
            topic_id = r.uuid().hex() if v >= 10 else None
            name = r.string(flex)
            if flex:
                r.tagged_fields()
            topics.append({"name": name, "topic_id": topic_id})
    out = {"topics": topics}
    if v >= 4:
        out["allow_auto_topic_creation"] = bool(r.int8())
    if 8 <= v <= 10:
        out["include_cluster_authorized_operations"] = bool(r.int8())
    if v >= 8:
        out["include_topic_authorized_operations"] = bool(r.int8())
    if flex:
        r.tagged_fields()
    assert r.remaining() == 0, "trailing bytes in Metadata request"
    return out


def parse_apiversions_request(r, v):
    out = {}
    if v >= 3:
        out["client_software_name"] = r.string(True)
        out["client_software_version"] = r.string(True)
        r.tagged_fields()
    assert r.remaining() == 0, "trailing bytes in ApiVersions request"
    return out


def parse_produce_request(r, v):
    flex = v >= 9
    out = {}
    if v >= 3:
        out["transactional_id"] = r.string(flex)
    out["acks"] = r.int16()
    out["timeout_ms"] = r.int32()
    topics = []
    for _ in range(r.array_len(flex)):
        name = r.string(flex)
        parts = []
        for _ in range(r.array_len(flex)):
            index = r.int32()
            records = r.bytes_(flex)
            if flex:
                r.tagged_fields()
            parts.append({"index": index, "records": records})
        if flex:
            r.tagged_fields()
        topics.append({"name": name, "partitions": parts})
    if flex:
        r.tagged_fields()
    assert r.remaining() == 0, "trailing bytes in Produce request"
    out["topics"] = topics
    return out


def parse_init_producer_id_request(r, v):
    flex = v >= 2
    out = {"transactional_id": r.string(flex), "transaction_timeout_ms": r.int32()}
    if v >= 3:
        out["producer_id"] = r.int64()
        out["producer_epoch"] = r.int16()
    if flex:
        r.tagged_fields()
    return out


# ---------------------------------------------------------------------------
# Record batch v2 decoding
# ---------------------------------------------------------------------------

def decode_record_batches(data):
    batches = []
    r = Reader(data)
    while r.remaining() > 0:
        base_offset = r.int64()
        batch_length = r.int32()
        end = r.pos + batch_length
        b = {"base_offset": base_offset, "batch_length": batch_length}
        b["partition_leader_epoch"] = r.int32()
        b["magic"] = r.int8()
        assert b["magic"] == 2, "expected magic 2, got %d" % b["magic"]
        b["crc"] = r.uint32()
        crc_start = r.pos
        computed = crc32c(data[crc_start:end])
        assert computed == b["crc"], "CRC32C mismatch: %08x != %08x" % (computed, b["crc"])
        b["attributes"] = r.int16()
        assert b["attributes"] & 0x07 == 0, "batch is compressed (attributes=%d)" % b["attributes"]
        b["last_offset_delta"] = r.int32()
        b["base_timestamp"] = r.int64()
        b["max_timestamp"] = r.int64()
        b["producer_id"] = r.int64()
        b["producer_epoch"] = r.int16()
        b["base_sequence"] = r.int32()
        count = r.int32()
        b["record_count"] = count
        records = []
        for _ in range(count):
            length = r.varint()
            rec_end = r.pos + length
            rec = {"attributes": r.int8(),
                   "timestamp_delta": r.varint(),
                   "offset_delta": r.varint()}
            kl = r.varint()
            rec["key"] = None if kl < 0 else r.take(kl).decode("utf-8")
            vl = r.varint()
            rec["value"] = None if vl < 0 else r.take(vl).decode("utf-8")
            hdrs = []
            for _ in range(r.varint()):
                hkl = r.varint()
                hk = r.take(hkl).decode("utf-8")
                hvl = r.varint()
                hv = None if hvl < 0 else r.take(hvl).decode("utf-8")
                hdrs.append([hk, hv])
            rec["headers"] = hdrs
            assert r.pos == rec_end, "record length mismatch"
            records.append(rec)
        assert r.pos == end, "batch length mismatch"
        b["records"] = records
        batches.append(b)
    return batches


# ---------------------------------------------------------------------------
# Response encoding
# ---------------------------------------------------------------------------

def resp_header(corr, flexible_header):
    return i32(corr) + (b"\x00" if flexible_header else b"")


def apiversions_response(corr, v, error=0):
    # ApiVersions response header is always v0 (correlation id only).
    flex = v >= 3
    entries = [i16(k) + i16(lo) + i16(hi) + tags(flex)
               for k, (lo, hi) in sorted(SUPPORTED.items())]
    body = i16(error) + array(entries, flex)
    if v >= 1:
        body += i32(0)  # throttle_time_ms
    body += tags(flex)
    return resp_header(corr, False) + body


def metadata_response(corr, v, port, req):
    flex = v >= 9
    out = resp_header(corr, flex)
    if v >= 3:
        out += i32(0)  # throttle
    broker = i32(0) + string("127.0.0.1", flex) + i32(port)
    if v >= 1:
        broker += string(None, flex)  # rack
    broker += tags(flex)
    out += array([broker], flex)
    if v >= 2:
        out += string(CLUSTER_ID, flex)
    if v >= 1:
        out += i32(0)  # controller id
    if req["topics"] is None or (v == 0 and not req["topics"]):
        names = [TOPIC]
    else:
        names = [t["name"] or TOPIC for t in req["topics"]]
    topics = []
    for name in names:
        t = i16(0) + string(name, flex)
        if v >= 10:
            t += TOPIC_ID
        if v >= 1:
            t += i8(0)  # is_internal
        p = i16(0) + i32(0) + i32(0)  # error, partition index, leader
        if v >= 7:
            p += i32(0)  # leader epoch
        p += array([i32(0)], flex)  # replicas
        p += array([i32(0)], flex)  # isr
        if v >= 5:
            p += array([], flex)  # offline replicas
        p += tags(flex)
        t += array([p], flex)
        if v >= 8:
            t += i32(-2147483648)  # topic authorized operations
        t += tags(flex)
        topics.append(t)
    out += array(topics, flex)
    if 8 <= v <= 10:
        out += i32(-2147483648)
    out += tags(flex)
    return out


def produce_response(corr, v, req):
    flex = v >= 9
    out = resp_header(corr, flex)
    topics = []
    for t in req["topics"]:
        parts = []
        for p in t["partitions"]:
            pr = i32(p["index"]) + i16(0) + i64(0)
            if v >= 2:
                pr += i64(-1)  # log append time
            if v >= 5:
                pr += i64(0)  # log start offset
            if v >= 8:
                pr += array([], flex)  # record errors
                pr += string(None, flex)  # error message
            pr += tags(flex)
            parts.append(pr)
        topics.append(string(t["name"], flex) + array(parts, flex) + tags(flex))
    out += array(topics, flex)
    if v >= 1:
        out += i32(0)  # throttle
    out += tags(flex)
    return out


def init_producer_id_response(corr, v):
    flex = v >= 2
    return resp_header(corr, flex) + i32(0) + i16(0) + i64(1000) + i16(0) + tags(flex)


# ---------------------------------------------------------------------------
# Fake broker
# ---------------------------------------------------------------------------

class FakeBroker:
    def __init__(self, label):
        self.label = label
        self.frames = []  # list of (conn_no, seq, payload)
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.conn_count = 0
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conn_count += 1
            threading.Thread(target=self._serve, args=(conn, self.conn_count), daemon=True).start()

    @staticmethod
    def _recv_exact(conn, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _serve(self, conn, conn_no):
        conn.settimeout(CLIENT_TIMEOUT_S + 5)
        try:
            while not self.stopped.is_set():
                size_b = self._recv_exact(conn, 4)
                if size_b is None:
                    return
                size = struct.unpack(">i", size_b)[0]
                payload = self._recv_exact(conn, size)
                if payload is None:
                    return
                with self.lock:
                    self.frames.append((conn_no, len(self.frames), payload))
                resp = self._handle(payload)
                if resp is None:
                    return  # unknown API (or acks=0): close / no response
                if resp == b"":
                    continue
                conn.sendall(struct.pack(">i", len(resp)) + resp)
        except Exception as e:  # noqa: BLE001 -- record and drop connection
            self.errors.append("%s conn %d: %r" % (self.label, conn_no, e))
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _handle(self, payload):
        hdr, r = parse_request_header(payload)
        k, v, corr = hdr["api_key"], hdr["api_version"], hdr["correlation_id"]
        if k == 18:
            if v > 3:
                return apiversions_response(corr, 0, ERR_UNSUPPORTED_VERSION)
            parse_apiversions_request(r, v)
            return apiversions_response(corr, v)
        if k == 3 and v <= 12:
            req = parse_metadata_request(r, v)
            return metadata_response(corr, v, self.port, req)
        if k == 0 and v <= 9:
            req = parse_produce_request(r, v)
            if req["acks"] == 0:
                return b""
            return produce_response(corr, v, req)
        if k == 22 and v <= 4:
            parse_init_producer_id_request(r, v)
            return init_producer_id_response(corr, v)
        return None


# ---------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------

def run_proc(cmd, stdin_data=None):
    try:
        p = subprocess.run(cmd, input=stdin_data, capture_output=True,
                           timeout=CLIENT_TIMEOUT_S)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return "timeout", (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")


def kcat_version():
    try:
        out = subprocess.run(["kcat", "-V"], capture_output=True, timeout=5).stdout.decode()
    except Exception:  # noqa: BLE001
        return None
    for line in out.splitlines():
        if line.startswith("Version"):
            return line.strip()
    return out.strip()


def kcat_common(port):
    return ["kcat", "-b", "127.0.0.1:%d" % port,
            "-X", "client.id=golden-kcat",
            "-X", "broker.address.family=v4"]


def run_kcat_list(port):
    return run_proc(kcat_common(port) + ["-L", "-m", "10"])


def run_kcat_produce(port):
    data = "".join("%s:%s\n" % kv for kv in MESSAGES).encode()
    cmd = kcat_common(port) + [
        "-P", "-t", TOPIC, "-p", str(PARTITION), "-K:",
        "-X", "linger.ms=1000",
        "-X", "compression.codec=none",
        "-X", "acks=all",
        "-X", "enable.idempotence=false",
    ]
    for hk, hv in HEADERS:
        cmd += ["-H", "%s=%s" % (hk, hv)]
    return run_proc(cmd, stdin_data=data)


def run_python_client(name, port):
    cmd = [sys.executable, os.path.abspath(__file__), "--run-client", name, "--port", str(port)]
    return run_proc(cmd)


def client_kafka_python(port):
    from kafka import KafkaProducer
    producer = KafkaProducer(
        bootstrap_servers="127.0.0.1:%d" % port,
        client_id="golden-kafka-python",
        bootstrap_timeout_ms=10000,   # (api_version_auto_timeout_ms in kafka-python < 3)
        request_timeout_ms=10000,
        max_block_ms=10000,
        acks="all",
        enable_idempotence=False,     # avoid InitProducerId; plain producerId -1
        compression_type=None,
        linger_ms=1000,
    )
    futures = []
    for k, v in MESSAGES:
        futures.append(producer.send(
            TOPIC, key=k.encode(), value=v.encode(), partition=PARTITION,
            headers=[(hk, hv.encode()) for hk, hv in HEADERS]))
    producer.flush(timeout=10)
    for f in futures:
        f.get(timeout=10)
    producer.close(timeout=5)


def client_confluent_kafka(port):
    from confluent_kafka import Producer
    p = Producer({
        "bootstrap.servers": "127.0.0.1:%d" % port,
        "client.id": "golden-confluent-kafka",
        "broker.address.family": "v4",
        "acks": "all",
        "enable.idempotence": False,
        "compression.type": "none",
        "linger.ms": 1000,
    })
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
    for k, v in MESSAGES:
        p.produce(TOPIC, key=k.encode(), value=v.encode(), partition=PARTITION,
                  headers=[(hk, hv.encode()) for hk, hv in HEADERS], on_delivery=cb)
    remaining = p.flush(10)
    if remaining or errors:
        raise SystemExit("confluent-kafka: %d undelivered, errors=%r" % (remaining, errors))


def python_client_versions():
    out = {}
    try:
        import kafka
        out["kafka-python"] = {"kafka-python": kafka.__version__}
    except ImportError:
        pass
    try:
        import confluent_kafka
        cv = confluent_kafka.version()
        lv = confluent_kafka.libversion()
        out["confluent-kafka"] = {"confluent-kafka": cv[0] if isinstance(cv, tuple) else cv,
                                  "librdkafka": lv[0] if isinstance(lv, tuple) else lv}
    except ImportError:
        pass
    return out


# ---------------------------------------------------------------------------
# Main capture
# ---------------------------------------------------------------------------

def expected_values():
    return {
        "topic": TOPIC,
        "partition": PARTITION,
        "records": [{"key": k, "value": v, "headers": [[hk, hv] for hk, hv in HEADERS]}
                    for k, v in MESSAGES],
    }


def verify_produce(decoded):
    exp = expected_values()
    topics = decoded["topics"]
    assert len(topics) == 1 and topics[0]["name"] == TOPIC, topics
    parts = topics[0]["partitions"]
    assert len(parts) == 1 and parts[0]["index"] == PARTITION, parts
    got = []
    for b in parts[0]["record_batches"]:
        for rec in b["records"]:
            got.append({"key": rec["key"], "value": rec["value"], "headers": rec["headers"]})
    assert got == exp["records"], "produce records mismatch:\n got %r\n exp %r" % (got, exp["records"])


def describe_frame(hdr, r):
    k, v = hdr["api_key"], hdr["api_version"]
    try:
        if k == 18 and v <= 4:  # v4 has the same request layout as v3
            return parse_apiversions_request(r, v)
        if k == 3:
            return parse_metadata_request(r, v)
        if k == 0:
            d = parse_produce_request(r, v)
            for t in d["topics"]:
                for p in t["partitions"]:
                    recs = p.pop("records")
                    p["records_size"] = None if recs is None else len(recs)
                    p["record_batches"] = decode_record_batches(recs) if recs else []
            return d
        if k == 22:
            return parse_init_producer_id_request(r, v)
    except Exception as e:  # noqa: BLE001
        return {"decode_error": repr(e)}
    return None


def metadata_shape(decoded):
    topics = (decoded or {}).get("topics", "?")
    if topics is None:
        return "alltopics"      # null array: all topics
    if topics == []:
        return "brokersonly"    # empty array: brokers only
    return "topics"             # explicit topic list


def capture_session(client, label, runner):
    broker = FakeBroker(label)
    t0 = time.monotonic()
    rc, out, err = runner(broker.port)
    time.sleep(0.3)  # let in-flight frames be recorded
    broker.stop()
    with broker.lock:
        frames = list(broker.frames)
    return {
        "client": client, "session": label, "port": broker.port, "rc": rc,
        "stdout": out, "stderr": err, "frames": frames, "errors": broker.errors,
        "seconds": round(time.monotonic() - t0, 2),
    }


def main_capture():
    versions = python_client_versions()
    client_versions = {"kcat": {"kcat": kcat_version()}}
    client_versions.update(versions)

    sessions = []
    if shutil.which("kcat"):
        sessions.append(capture_session("kcat", "kcat -L", run_kcat_list))
        sessions.append(capture_session("kcat", "kcat -P", run_kcat_produce))
    else:
        print("kcat not found; skipping", file=sys.stderr)
    if "kafka-python" in versions:
        sessions.append(capture_session("kafka-python", "kafka-python KafkaProducer",
                                        lambda port: run_python_client("kafka-python", port)))
    if "confluent-kafka" in versions:
        sessions.append(capture_session("confluent-kafka", "confluent_kafka.Producer",
                                        lambda port: run_python_client("confluent-kafka", port)))

    # Remove previously generated fixtures so stale files don't linger.
    for f in os.listdir(FIXTURES_DIR):
        if f.endswith(".bin"):
            os.remove(os.path.join(FIXTURES_DIR, f))

    manifest = {
        "description": "Golden Kafka request frames captured from real clients by "
                       "Tests/KafkaProtocolTests/Fixtures/capture/capture.py. Each .bin file "
                       "is one request frame payload WITHOUT the 4-byte size prefix "
                       "(starts with the request header: api key, api version, correlation id, client id ...).",
        "expected": expected_values(),
        "client_versions": client_versions,
        "sessions": [],
        "fixtures": [],
    }
    problems = []
    written = {}
    for s in sessions:
        sess = {"client": s["client"], "session": s["session"], "exit": s["rc"], "frames": []}
        if s["rc"] != 0:
            problems.append("%s: exit %s\nstderr:\n%s" % (s["session"], s["rc"], s["stderr"][-2000:]))
        for e in s["errors"]:
            problems.append("broker error: " + e)
        for conn_no, seq, payload in s["frames"]:
            hdr, r = parse_request_header(payload)
            k, v = hdr["api_key"], hdr["api_version"]
            api = API_NAMES.get(k, "api%d" % k)
            fname = "%s-%s-v%d.bin" % (s["client"], api, v)
            shape = None
            if k == 3:
                # Keep the first Metadata request as <client>-metadata-vN.bin, but
                # also keep one example of each other request shape (null topics
                # array / empty array / named topics) as ...-vN-<shape>.bin.
                shape = metadata_shape(describe_frame(*parse_request_header(payload)))
                if fname in written and written[fname]["metadata_shape"] != shape:
                    fname = "%s-%s-v%d-%s.bin" % (s["client"], api, v, shape)
            sess["frames"].append({"connection": conn_no, "api_key": k, "api_version": v,
                                   "correlation_id": hdr["correlation_id"], "size": len(payload),
                                   "file": fname if fname not in written else None})
            if fname in written:
                written[fname]["duplicates_ignored"] += 1
                continue
            decoded = describe_frame(hdr, r)
            entry = {
                "file": fname,
                "client": s["client"],
                "client_version": client_versions.get(s["client"]),
                "session": s["session"],
                "connection": conn_no,
                "api_key": k,
                "api_name": api,
                "api_version": v,
                "request_header_version": hdr["header_version"],
                "correlation_id": hdr["correlation_id"],
                "client_id": hdr["client_id"],
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "decoded": decoded,
                "duplicates_ignored": 0,
            }
            if shape is not None:
                entry["metadata_shape"] = shape
            if k == 0:
                entry["sent"] = expected_values()
                entry["note"] = ("timestamps (base_timestamp/max_timestamp) and the CRC depend "
                                 "on the wall clock at capture time")
                verify_produce(decoded)  # raises if the fixture doesn't hold what was sent
            with open(os.path.join(FIXTURES_DIR, fname), "wb") as f:
                f.write(payload)
            written[fname] = entry
            manifest["fixtures"].append(entry)
        manifest["sessions"].append(sess)
        # Did this client produce at all?
        if s["session"] != "kcat -L" and not any(fr["api_key"] == 0 for fr in sess["frames"]):
            problems.append("%s: no Produce request captured" % s["session"])

    with open(os.path.join(FIXTURES_DIR, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=False)
        f.write("\n")

    for e in manifest["fixtures"]:
        print("%-45s key=%-2d v=%-2d corr=%-3d client_id=%s" % (
            e["file"], e["api_key"], e["api_version"], e["correlation_id"], e["client_id"]))
    if problems:
        print("\nPROBLEMS:", file=sys.stderr)
        for p in problems:
            print(" - " + p, file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-client", choices=["kafka-python", "confluent-kafka"])
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    if args.run_client:
        if args.run_client == "kafka-python":
            client_kafka_python(args.port)
        else:
            client_confluent_kafka(args.port)
        return 0
    return main_capture()


if __name__ == "__main__":
    sys.exit(main())
