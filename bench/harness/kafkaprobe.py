"""A tiny raw Kafka client for timing broker start-up: TCP connect, ApiVersions v0, Metadata
(all topics; v1..8, non-flexible, the highest the broker offers up to 8).

No client library is involved, so what is timed is the broker and one round trip each.
"""
from __future__ import annotations

import socket
import struct
import time


class ProbeError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProbeError("response shorter than expected")
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value if len(value) > 1 else value[0]

    def int8(self):
        return self.take(">b")

    def int16(self):
        return self.take(">h")

    def int32(self):
        return self.take(">i")

    def string(self):
        n = self.int16()
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array(self, item):
        n = self.int32()
        return [] if n < 0 else [item() for _ in range(n)]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProbeError("connection closed by broker")
        buf += chunk
    return bytes(buf)


def _request(sock: socket.socket, api_key: int, version: int, corr: int, body: bytes) -> _Reader:
    client_id = b"samsa-bench-probe"
    header = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    r = _Reader(_recv_exact(sock, size))
    if r.int32() != corr:
        raise ProbeError("correlation id mismatch")
    return r


def api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    r = _request(sock, 18, 0, 1, b"")
    err = r.int16()
    if err:
        raise ProbeError(f"ApiVersions error {err}")
    return {k: (lo, hi) for k, lo, hi in r.array(lambda: r.take(">hhh"))}


def metadata(sock: socket.socket, version: int) -> dict[str, list[tuple[int, int, int]]]:
    """All topics: {topic: [(partition, error, leader)]}; raises on a topic-level error."""
    body = struct.pack(">i", -1)
    if version >= 4:
        body += b"\x00"  # allow_auto_topic_creation = false
    if version >= 8:
        body += b"\x00\x00"  # include cluster / topic authorized operations = false
    r = _request(sock, 3, version, 2, body)
    if version >= 3:
        r.int32()  # throttle
    r.array(lambda: (r.int32(), r.string(), r.int32(), r.string()))  # brokers
    if version >= 2:
        r.string()  # cluster id
    r.int32()  # controller
    topics = {}

    def partition():
        err, index, leader = r.int16(), r.int32(), r.int32()
        if version >= 7:
            r.int32()  # leader epoch
        r.array(r.int32)  # replicas
        r.array(r.int32)  # isr
        if version >= 5:
            r.array(r.int32)  # offline
        return index, err, leader

    for _ in range(r.int32()):
        err, name, _internal = r.int16(), r.string(), r.int8()
        parts = r.array(partition)
        if version >= 8:
            r.int32()  # topic authorized operations
        topics[name] = (err, parts)
    return {name: parts for name, (err, parts) in topics.items() if err == 0}


def _topics_body(version: int, topics: list[str] | None) -> bytes:
    if topics is None:
        body = struct.pack(">i", -1)
    else:
        body = struct.pack(">i", len(topics))
        for t in topics:
            raw = t.encode()
            body += struct.pack(">h", len(raw)) + raw
    if version >= 4:
        body += b"\x00"  # allow_auto_topic_creation = false
    if version >= 8:
        body += b"\x00\x00"  # include cluster / topic authorized operations = false
    return body


def cluster_metadata(host: str, port: int, topics: list[str] | None = None, timeout: float = 5.0) -> dict:
    """One connection to one broker: ApiVersions, then Metadata (v8 at most) for `topics` (None:
    all). Returns {"brokers": {id: (host, port)}, "controller": id, "topics": {name: {"error": code,
    "partitions": {index: {"error", "leader", "leader_epoch", "replicas", "isr", "offline"}}}}}.
    Raises OSError / ProbeError when the broker does not answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        lo, hi = api_versions(sock).get(3, (0, -1))
        version = min(hi, 8)
        if version < max(lo, 1):
            raise ProbeError(f"broker offers Metadata v{lo}-{hi}, probe speaks v1-8")
        r = _request(sock, 3, version, 3, _topics_body(version, topics))
    if version >= 3:
        r.int32()  # throttle
    brokers = {}
    for node, bhost, bport, _rack in r.array(lambda: (r.int32(), r.string(), r.int32(), r.string())):
        brokers[node] = (bhost, bport)
    if version >= 2:
        r.string()  # cluster id
    controller = r.int32()
    out_topics = {}

    def partition():
        err, index, leader = r.int16(), r.int32(), r.int32()
        epoch = r.int32() if version >= 7 else -1
        replicas = r.array(r.int32)
        isr = r.array(r.int32)
        offline = r.array(r.int32) if version >= 5 else []
        return index, {"error": err, "leader": leader, "leader_epoch": epoch, "replicas": replicas, "isr": isr,
                       "offline": offline}

    for _ in range(r.int32()):
        err, name, _internal = r.int16(), r.string(), r.int8()
        parts = dict(r.array(partition))
        if version >= 8:
            r.int32()  # topic authorized operations
        out_topics[name] = {"error": err, "partitions": parts}
    return {"brokers": brokers, "controller": controller, "topics": out_topics}


def probe(host: str, port: int, deadline: float, want_partitions: int = 0,
          topic_prefix: str = "", t0: float | None = None, poll_interval: float = 0.002) -> dict:
    """Polls until the broker accepts a TCP connection, answers ApiVersions and (when
    want_partitions > 0) reports at least that many partitions with a leader and no error in
    topics starting with topic_prefix. Returns seconds since t0 for each milestone."""
    t0 = time.monotonic() if t0 is None else t0
    out = {}
    sock = None
    while True:
        if time.monotonic() > deadline:
            raise ProbeError(f"broker not ready on {host}:{port} before the deadline (reached: {sorted(out)})")
        try:
            if sock is None:
                sock = socket.create_connection((host, port), timeout=5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                out.setdefault("connect_s", time.monotonic() - t0)
            versions = api_versions(sock)
            out.setdefault("api_versions_s", time.monotonic() - t0)
            lo, hi = versions.get(3, (0, -1))
            version = min(hi, 8)
            if version < max(lo, 1):
                raise ProbeError(f"broker offers Metadata v{lo}-{hi}, probe speaks v1-8")
            while True:
                topics = metadata(sock, version)
                ready = sum(1 for name, parts in topics.items() if name.startswith(topic_prefix)
                            for _, err, leader in parts if err == 0 and leader >= 0)
                if ready >= want_partitions:
                    out["metadata_s"] = time.monotonic() - t0
                    out["partitions_ready"] = ready
                    out["metadata_version"] = version
                    sock.close()
                    return out
                if time.monotonic() > deadline:
                    raise ProbeError(f"only {ready}/{want_partitions} partitions ready before the deadline")
                time.sleep(poll_interval)
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout, ProbeError,
                OSError) as e:
            if isinstance(e, ProbeError) and "probe speaks" in str(e):
                raise
            if sock is not None:
                sock.close()
                sock = None
            time.sleep(poll_interval)
