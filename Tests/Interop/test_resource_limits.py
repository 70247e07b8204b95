"""Resource limits and back-pressure (issue 17) and hostile lengths (issue 10, item 4).

Every case drives a real `samsa broker` process with raw sockets (kafka_raw) or real clients and
reads the broker's descriptors and memory from /proc, so a regression shows as a number that
grows, not as a hang.
"""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time

import pytest

import kafka_raw as kr
from samsa_interop import wait_until


def proc_status(pid: int, field: str) -> int:
    """A /proc/<pid>/status value in KiB (VmRSS, VmPeak, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def healthy(broker) -> None:
    assert broker.running, f"broker exited:\n{broker.stderr_since_start()[-3000:]}"
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        assert kr.API_PRODUCE in kr.api_versions(conn)


# ---- hostile lengths ------------------------------------------------------------------------


def test_huge_array_counts_do_not_reserve_memory(broker_factory):
    """Issue 10 item 4: an array count is checked against the bytes left in the frame, but an
    element can take far more memory than its byte on the wire. Frames of 32 MiB claiming ~32
    million topics (Metadata v12, compact array: 40-byte elements, so 1.3 GB if reserved up front)
    and ~32 million partitions (Produce v7) must not make the broker reserve gigabytes: its peak
    virtual size (VmPeak, which counts every reservation, touched or not) grows by less than
    256 MiB (the frames themselves are buffered: 32 MiB each)."""
    broker = broker_factory()
    pid = broker.proc.pid
    healthy(broker)
    before = proc_status(pid, "VmPeak")
    size = 32 * 1024 * 1024
    # 0xFF filler makes the first element fail at once (a huge string length; a null topic name),
    # so whatever memory grows is what the count made the decoder reserve, plus the frame itself.
    filler = b"\xff" * (size - 16)
    for _ in range(3):
        with kr.KafkaConnection("127.0.0.1", broker.port, timeout=60) as conn:
            # Metadata v12: topics = compact array with count N (uvarint N+1), then filler bytes.
            conn.send_request(kr.API_METADATA, 12, kr.uvarint(size - 64 + 1) + filler, flexible=True)
            assert conn.wait_closed_by_peer(timeout=60) in ("eof", "reset")
        with kr.KafkaConnection("127.0.0.1", broker.port, timeout=60) as conn:
            # Produce v7: transactional_id null, acks, timeout, topics count N, filler.
            conn.send_request(0, 7, kr.i16(-1) + kr.i16(1) + kr.i32(1000) + kr.i32(size - 64) + filler)
            assert conn.wait_closed_by_peer(timeout=60) in ("eof", "reset")
    healthy(broker)
    grown_mib = (proc_status(pid, "VmPeak") - before) / 1024
    assert grown_mib < 256, f"VmPeak grew by {grown_mib:.0f} MiB for 6 hostile requests of 32 MiB"


# ---- slow readers -----------------------------------------------------------------------------


def fetch_v4_frame(topic: str, correlation: int, max_bytes: int = 1 << 20) -> bytes:
    body = (kr.i32(-1) + kr.i32(0) + kr.i32(1) + kr.i32(max_bytes) + kr.i8(0)
            + kr.array([kr.string(topic) + kr.array([kr.i32(0) + kr.i64(0) + kr.i32(max_bytes)])]))
    payload = kr.request_header_v1(kr.API_FETCH, 4, correlation) + body
    return kr.i32(len(payload)) + payload


def api_versions_frame(correlation: int) -> bytes:
    payload = kr.request_header_v1(kr.API_API_VERSIONS, 0, correlation)
    return kr.i32(len(payload)) + payload


def flood_without_reading(port: int, frame, seconds: float) -> int:
    """Sends request frames back to back on a connection with a tiny receive buffer that is never
    read, for `seconds`; returns how many frames were fully sent (the broker stops reading once
    the connection backs up, so sends stall)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    sent = 0
    pending = b""
    deadline = time.monotonic() + seconds
    socks = [s]
    while time.monotonic() < deadline:
        if not pending:
            pending = frame(sent + 1)
        try:
            n = s.send(pending)
            pending = pending[n:]
            if not pending:
                sent += 1
        except BlockingIOError:
            time.sleep(0.005)
    flood_without_reading.keep = socks  # keep it open (unread) until the caller closes it
    return sent


def kcat_metadata_ok(broker) -> bool:
    r = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-m", "5"], capture_output=True, timeout=30)
    return r.returncode == 0 and b"broker" in r.stdout


def kcat_produce_ok(broker, topic: str, line: bytes) -> bool:
    r = subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-X", "message.timeout.ms=10000"],
                       input=line + b"\n", capture_output=True, timeout=30)
    if r.returncode != 0:
        print("kcat produce failed:", r.stderr.decode()[-2000:])
    return r.returncode == 0


@pytest.mark.parametrize("kind", ["fetch", "api_versions"])
def test_a_client_that_never_reads_cannot_exhaust_descriptors_or_memory(broker_factory, kind):
    """Issue 17 item 1: one connection with a small receive buffer sends requests back to back and
    never reads. The broker stops reading that connection once its responses back up (as Kafka
    mutes the channel), so its descriptors and memory stay bounded, and other clients (kcat
    metadata and produce) keep working meanwhile. Fetch responses hold no descriptor of their own."""
    broker = broker_factory()
    pid = broker.proc.pid
    topic = "slow-reader"
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        assert [(n, e) for n, e, _ in kr.create_topics_v4(conn, [(topic, 1, {})])] == [(topic, 0)]
        r = kr.produce(conn, topic, 0, kr.simple_batch([b"x" * 1000] * 200))
        assert r.error_code == 0
    fds_before, rss_before = open_fds(pid), proc_status(pid, "VmRSS")
    frame = (lambda c: fetch_v4_frame(topic, c)) if kind == "fetch" else api_versions_frame

    import threading
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("sent", flood_without_reading(broker.port, frame, 9.0)))
    t.start()
    time.sleep(1.0)
    checks = 0
    peak_fds, peak_rss = 0, 0
    while t.is_alive():
        assert kcat_metadata_ok(broker), "kcat -L failed while a slow reader was connected"
        assert kcat_produce_ok(broker, topic, b"still served"), "produce failed while a slow reader was connected"
        checks += 1
        peak_fds = max(peak_fds, open_fds(pid))
        peak_rss = max(peak_rss, proc_status(pid, "VmRSS"))
    t.join()
    assert checks >= 2
    peak_fds = max(peak_fds, open_fds(pid))
    peak_rss = max(peak_rss, proc_status(pid, "VmRSS"))
    grown_rss_mib = (peak_rss - rss_before) / 1024
    print(f"{kind}: {result['sent']} requests sent; fds {fds_before} -> peak {peak_fds}; RSS +{grown_rss_mib:.0f} MiB")
    assert peak_fds - fds_before < 64, f"descriptors grew from {fds_before} to {peak_fds}"
    assert grown_rss_mib < 150, f"RSS grew by {grown_rss_mib:.0f} MiB"
    for s in flood_without_reading.keep:
        s.close()
    healthy(broker)


def test_request_bytes_are_bounded_broker_wide(broker_factory):
    """Issue 17 item 1: queued.max.request.bytes bounds the bytes held by requests across all
    connections. 24 connections each start a 16 MiB request and keep sending (384 MiB offered):
    with a 16 MiB pool, one request at a time is read while the others wait at their size
    prefix holding nothing, so the broker's RSS stays far below what was offered; afterwards a
    normal client is served at once."""
    broker = broker_factory(**{"queued.max.request.bytes": str(16 * 1024 * 1024),
                               "socket.request.max.bytes": str(64 * 1024 * 1024)})
    pid = broker.proc.pid
    rss_before = proc_status(pid, "VmRSS")
    size = 16 * 1024 * 1024
    socks = []
    chunk = b"\x00" * 262144
    for _ in range(24):
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.setblocking(False)
        socks.append([s, kr.i32(size) + kr.i16(0) + kr.i16(7) + kr.i32(1), size - 100])
    peak = 0
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        progressed = False
        for entry in socks:
            s, head, left = entry
            try:
                if head:
                    n = s.send(head)
                    entry[1] = head[n:]
                elif left > 0:
                    n = s.send(chunk[:min(len(chunk), left)])
                    entry[2] = left - n
                else:
                    continue
                progressed = True
            except (BlockingIOError, ConnectionResetError, BrokenPipeError):
                pass
        peak = max(peak, proc_status(pid, "VmRSS"))
        if not progressed:
            time.sleep(0.05)
    grown_mib = (peak - rss_before) / 1024
    unsent_mib = sum(e[2] for e in socks) / 1024 / 1024
    print(f"RSS grew at most {grown_mib:.0f} MiB; {unsent_mib:.0f} MiB of 384 MiB not sent")
    assert grown_mib < 128, f"the broker held {grown_mib:.0f} MiB of requests with a 16 MiB pool"
    for e in socks:
        e[0].close()
    healthy(broker)


# ---- connection limits ----------------------------------------------------------------------


def test_idle_connections_are_closed(broker_factory):
    """Issue 17 item 2: connections.max.idle.ms closes a connection with no traffic; one that
    keeps sending requests stays open."""
    broker = broker_factory(**{"connections.max.idle.ms": "1500"})
    idle = kr.KafkaConnection("127.0.0.1", broker.port)
    busy = kr.KafkaConnection("127.0.0.1", broker.port)
    kr.api_versions(idle)
    started = time.monotonic()
    while time.monotonic() - started < 3.0:
        kr.api_versions(busy)
        time.sleep(0.3)
    how = idle.wait_closed_by_peer(timeout=5)
    assert how in ("eof", "reset")
    kr.api_versions(busy)  # still open
    busy.close()
    idle.close()


def assert_limited_to(broker, n: int) -> None:
    """n connections are served; the next one is closed at once."""
    conns = [kr.KafkaConnection("127.0.0.1", broker.port) for _ in range(n)]
    for c in conns:
        kr.api_versions(c)
    extra = kr.KafkaConnection("127.0.0.1", broker.port)
    with pytest.raises((kr.ConnectionClosed, ConnectionResetError, BrokenPipeError, OSError)):
        kr.api_versions(extra)
    extra.close()
    # Closing one makes room again.
    conns.pop().close()
    wait_until(lambda: _serves(broker), timeout=5, message="a free connection slot")
    for c in conns:
        c.close()


def _serves(broker) -> bool:
    try:
        with kr.KafkaConnection("127.0.0.1", broker.port) as c:
            kr.api_versions(c)
        return True
    except (kr.ConnectionClosed, OSError):
        return False


def test_max_connections_per_ip_and_overall(broker_factory):
    """Issue 17 item 2: max.connections.per.ip and max.connections close connections beyond the
    limit at once (and say so in the log); closing one makes room again."""
    per_ip = broker_factory(**{"max.connections.per.ip": "5"})
    assert_limited_to(per_ip, 5)
    assert "max.connections.per.ip (5) reached" in per_ip.stderr_since_start()
    overall = broker_factory(**{"max.connections": "3"})
    assert_limited_to(overall, 3)
    assert "max.connections (3) reached" in overall.stderr_since_start()


# ---- file descriptors -------------------------------------------------------------------------


def hard_nofile(pid: int) -> int:
    out = subprocess.run(["prlimit", f"--pid={pid}", "--nofile", "--output=HARD", "--noheadings"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return 1 << 20 if out == "unlimited" else int(out)


def set_soft_nofile(pid: int, soft: int) -> None:
    """Changes only the soft limit (raising the hard one needs privileges a sandbox may lack)."""
    hard = hard_nofile(pid)
    subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={min(soft, hard)}:{hard}"], check=True)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_out_of_descriptors_backs_off_and_logs(broker_factory):
    """Issue 17 item 3: when accept fails for lack of descriptors the broker neither spins a core
    nor stays silent: it logs it (at most once per interval) and backs off; once descriptors
    are free again it accepts as before."""
    broker = broker_factory()
    pid = broker.proc.pid
    baseline = open_fds(pid)
    # Lower the broker's limit to just above what it uses, then open more connections than that.
    set_soft_nofile(pid, baseline + 20)
    socks = []
    for _ in range(60):
        try:
            socks.append(socket.create_connection(("127.0.0.1", broker.port), timeout=2))
        except OSError:
            break
    cpu_before = cpu_seconds(pid)
    time.sleep(3)
    used = cpu_seconds(pid) - cpu_before
    assert used < 1.0, f"the broker spent {used:.2f} s of CPU in 3 s while out of descriptors"
    log = broker.stderr_since_start()
    assert "cannot accept connections" in log, log[-2000:]
    assert log.count("cannot accept connections") <= 2, "logged more than once per interval"
    for s in socks:
        s.close()
    set_soft_nofile(pid, hard_nofile(pid))
    time.sleep(0.5)
    healthy(broker)


def test_descriptor_limit_at_startup_is_reported_in_one_line(broker_factory, tmp_path):
    """Issue 17 item 3: a broker whose partitions on disk need more descriptors than its limit
    refuses to start with one clear line saying how many it needs and how to raise it."""
    broker = broker_factory()
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = kr.create_topics_v4(conn, [("many", 300, {})])
        assert [(n, e) for n, e, _ in res] == [("many", 0)]
    broker.stop()
    cmd = ["prlimit", "--nofile=512:512", "--"] + broker.command()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    err = (r.stderr + r.stdout)
    assert "need about" in err and "ulimit -n" in err, err[-2000:]
    assert ".index" not in err


def test_create_topics_failing_part_way_leaves_nothing_behind(broker_factory):
    """Issue 17 item 3: a CreateTopics that fails part-way (out of descriptors) reports an error,
    releases what it opened, does not block later creations, and the topic does not come back
    after a restart."""
    broker = broker_factory()
    pid = broker.proc.pid
    baseline = open_fds(pid)
    set_soft_nofile(pid, baseline + 200)
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = kr.create_topics_v4(conn, [("too-many", 1000, {})])
        (name, code, _), = res
        assert code != 0, "creating 1000 partitions with 200 descriptors left should fail"
    assert wait_until(lambda: open_fds(pid) < baseline + 20, timeout=10, message="descriptors released")
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        res = kr.create_topics_v4(conn, [("small-after", 3, {})])
        assert [(n, e) for n, e, _ in res] == [("small-after", 0)]
        meta = kr.metadata_v4(conn, None)
        assert "too-many" not in str(meta)
    set_soft_nofile(pid, hard_nofile(pid))
    broker.stop()
    broker.start()
    with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
        meta = kr.metadata_v4(conn, None)
        assert "too-many" not in str(meta)
        assert "small-after" in str(meta)
    assert not list(broker.data_dir.glob("too-many-*"))


# ---- full disk ----------------------------------------------------------------------------------


KAFKA_STORAGE_ERROR = 56


@pytest.fixture
def small_fs(tmp_path):
    """A 4 MiB tmpfs of the test's own (the tests run as root), unmounted afterwards."""
    mnt = tmp_path / "small-fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the full-disk test: {r.stderr}"
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_logged_and_the_broker_restarts_on_it(broker_factory, tmp_path, small_fs):
    """Issue 17 item 4: producing onto a full log dir fails with KAFKA_STORAGE_ERROR and loses
    nothing acknowledged; the full disk is logged once with its path; a clean shutdown leaves no
    temporary files; the broker starts again on the still-full disk, serves the acknowledged
    records and refuses only writes."""
    from samsa_interop import Broker
    broker = Broker(small_fs / "data", tmp_path / "full.stderr.log",
                    overrides={"log.segment.bytes": str(512 * 1024)}).start()
    try:
        acked = 0
        value = b"v" * 4000
        with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
            assert [(n, e) for n, e, _ in kr.create_topics_v4(conn, [("fill", 1, {})])] == [("fill", 0)]
            for _ in range(2000):
                r = kr.produce(conn, "fill", 0, kr.simple_batch([value] * 4))
                if r.error_code != 0:
                    assert r.error_code == KAFKA_STORAGE_ERROR, f"got error {r.error_code}"
                    break
                assert r.base_offset == acked
                acked += 4
            else:
                raise AssertionError("a 4 MiB file system never filled up")
        assert acked > 0
        log = broker.stderr_since_start()
        assert "is full" in log and str(small_fs) in log, log[-2000:]
        assert log.count("is full") == 1, "the full disk is reported once, not per request"
        assert broker.stop() == 0
        strays = [p for p in (small_fs / "data").rglob("*") if p.name.endswith(".tmp")]
        assert not strays, f"temporary files left behind: {strays}"

        broker.start()
        with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
            got = kr.fetch_all_records(conn, "fill", 0, 0, acked)
            assert len(got) == acked and all(r.value == value for r in got)
            r = kr.produce(conn, "fill", 0, kr.simple_batch([value] * 4))
            assert r.error_code == KAFKA_STORAGE_ERROR
        # Visible to operators: DescribeLogDirs (kafka-python's admin) shows the log dir, the
        # partition's size and the volume's usable bytes (v4).
        from kafka.admin import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            resp = admin.describe_log_dirs()
            text = repr(resp)
            assert "fill" in text and str(small_fs) in text, text
        finally:
            admin.close()
        with kr.KafkaConnection("127.0.0.1", broker.port) as conn:
            r = conn.roundtrip_flexible(35, 4, kr.uvarint(0) + kr.NO_TAGS)  # all topics
            r.i32()  # throttle
            assert r.i16() == 0
            (err, path, topics, total, usable), = r.compact_array(
                lambda x: (x.i16(), x.compact_string(),
                           x.compact_array(lambda t: (t.compact_string(), t.compact_array(
                               lambda p: (p.i32(), p.i64(), p.i64(), p.boolean(), p.tagged_fields())), t.tagged_fields())),
                           x.i64(), x.i64(), x.tagged_fields())[:5])
            assert err == 0 and path.startswith(str(small_fs))
            assert total == 4 * 1024 * 1024 and usable < 64 * 1024, (total, usable)
            sizes = {name: parts for name, parts, _ in topics}
            assert sizes["fill"][0][1] > 3 * 1024 * 1024
    finally:
        broker.close()  # stopped even when an assertion fails, before the tmpfs is unmounted


# ---- delete under load ------------------------------------------------------------------------


def test_delete_topic_while_producers_write_with_auto_create(broker_factory):
    """Issue 17 item 5: deleting a topic while producers keep writing to it (auto-create on, so
    the topic comes straight back) always reports success — the old partition folders are
    renamed `...-delete` and removed in the background, so a new topic of the same name never
    meets the old files — and the broker stays healthy."""
    import threading
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    broker = broker_factory(**{"auto.create.topics.enable": "true", "num.partitions": "3"})
    topic = "churn"
    stop = threading.Event()
    errors: list[str] = []

    def produce():
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "message.timeout.ms": 5000,
                      "topic.metadata.refresh.interval.ms": 200})
        while not stop.is_set():
            try:
                p.produce(topic, b"x" * 100)
            except BufferError:
                pass
            p.poll(0.001)
        p.flush(5)

    threads = [threading.Thread(target=produce) for _ in range(2)]
    for t in threads:
        t.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    deleted = 0
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and deleted < 8:
        md = admin.list_topics(timeout=5)
        if topic not in md.topics or md.topics[topic].error is not None:
            time.sleep(0.1)
            continue
        fut = admin.delete_topics([topic], operation_timeout=5)[topic]
        try:
            fut.result(timeout=10)
            deleted += 1
        except Exception as e:  # noqa: BLE001 - every failure is collected and reported
            msg = str(e)
            if "UNKNOWN_TOPIC" not in msg:
                errors.append(msg)
        time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(timeout=20)
    assert not errors, f"topic deletion failed under load: {errors}"
    assert deleted >= 3, f"only {deleted} deletions happened"
    assert "Directory not empty" not in broker.stderr_since_start()
    healthy(broker)
    # Renamed folders are removed in the background.
    wait_until(lambda: not list(broker.data_dir.glob("*-delete")), timeout=15, message="-delete folders removed")
