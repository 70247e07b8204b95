"""Shared helpers for the interop tests: running a real `samsa broker` process, polling,
and small wrappers around the real clients (confluent-kafka, kafka-python, kcat).

The fixtures that use these live in conftest.py.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMSA_BIN = os.environ.get("SAMSA_BIN") or str(REPO / ".build" / "debug" / "samsa")

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float = 20.0, interval: float = 0.05, message: str = "condition"):
    """Polls condition() until it returns a truthy value, which is returned; fails after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message} (last value: {last!r})")
        time.sleep(interval)


class Broker:
    """One `samsa broker` process on 127.0.0.1:port with its own data directory.

    stdout is read until the "listening on" line; stderr (the broker's log) is appended to
    a file that survives restarts, so a test can look at what any start logged.
    """

    instances: list["Broker"] = []

    def __init__(self, data_dir: Path, log_path: Path, port: int | None = None,
                 overrides: dict[str, object] | None = None):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.overrides = dict(overrides or {})
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._stderr_offset = 0
        self._stdout_lines: list[str] = []
        Broker.instances.append(self)

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [SAMSA_BIN, "broker", "--listeners", f"PLAINTEXT://127.0.0.1:{self.port}",
               "--log-dirs", str(self.data_dir)]
        for k, v in self.overrides.items():
            cmd += ["-o", f"{k}={v}"]
        return cmd

    def start(self) -> "Broker":
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        if not Path(SAMSA_BIN).exists():
            raise AssertionError(f"samsa binary not found at {SAMSA_BIN} (set SAMSA_BIN or build first)")
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self._start_once(deadline):
                self.starts += 1
                return self
            # The port may still be held briefly after a kill: retry that, fail on anything else.
            err = self.stderr_since_start()
            if "in use" not in err.lower() or time.monotonic() >= deadline:
                raise AssertionError(
                    f"broker exited with {self.proc.returncode} before listening on port {self.port}; "
                    f"stderr:\n{err}")
            time.sleep(0.2)

    def _start_once(self, deadline: float) -> bool:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._stderr_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as err:
            err.write(f"==== start #{self.starts + 1}: {' '.join(self.command())}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=err, text=True,
                                         start_new_session=True)
        ready = threading.Event()
        lines = self._stdout_lines = []
        expected = f"listening on 127.0.0.1:{self.port}"

        def reader(proc=self.proc):
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if expected in line:
                    ready.set()

        threading.Thread(target=reader, daemon=True).start()
        while not ready.wait(0.05):
            if self.proc.poll() is not None:
                return False
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(f"broker printed no '{expected}' line within {STARTUP_TIMEOUT}s; "
                                     f"stdout={lines!r}\nstderr:\n{self.stderr_since_start()}")
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (clean shutdown); returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"broker ignored SIGTERM for {timeout}s")
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL (crash); returns the exit code (-9)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
        return self.proc.returncode

    def restart(self) -> "Broker":
        if self.running:
            self.stop()
        return self.start()

    def close(self):
        """Teardown: clean stop, SIGKILL if that hangs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop(timeout=15)
            except AssertionError:
                pass
        if self in Broker.instances:
            Broker.instances.remove(self)

    # ---- logs --------------------------------------------------------------------------------

    def stderr_all(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stderr_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._stderr_offset)
            return f.read().decode(errors="replace")

    def partition_dir(self, topic: str, partition: int) -> Path:
        return self.data_dir / f"{topic}-{partition}"


# ---- recovery log line ------------------------------------------------------------------------

_RECOVERED = re.compile(r"recovered (?P<tp>\S+)")
_TRUNCATED = re.compile(r"bytes truncated=(?P<n>\d+)")


def recovery_lines(stderr: str, topic_partition: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if (m := _RECOVERED.search(line)) and m.group("tp") == topic_partition]


def truncated_bytes(line: str) -> int | None:
    m = _TRUNCATED.search(line)
    return int(m.group("n")) if m else None


# ---- confluent-kafka helpers ------------------------------------------------------------------


def confluent_admin(bootstrap: str):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None):
    """Creates a topic with confluent-kafka's AdminClient and waits until metadata shows every
    partition with a leader."""
    from confluent_kafka.admin import NewTopic
    admin = confluent_admin(bootstrap)
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            config=config or {})], operation_timeout=10)
    futures[name].result(timeout=20)

    def ready():
        md = admin.list_topics(topic=name, timeout=5)
        t = md.topics.get(name)
        return (t is not None and t.error is None and len(t.partitions) == partitions
                and all(p.leader == 0 for p in t.partitions.values()))

    wait_until(ready, timeout=20, message=f"topic {name} in metadata")


def consumer_config(bootstrap: str, **extra) -> dict:
    """Manual-assignment consumer: the group id is required by librdkafka but no group API is
    used (no subscribe, no commits)."""
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": "interop-manual-assign",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
        "check.crcs": True,  # librdkafka verifies every fetched batch's CRC32C
    }
    conf.update(extra)
    return conf


def consume_range(bootstrap: str, topic: str, partition: int, start: int, end: int, timeout: float = 60.0,
                  **extra) -> list:
    """Reads offsets [start, end) of one partition with a confluent-kafka consumer (assign +
    start offset). Any consumer error fails the test. Returns the Message objects in order."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(consumer_config(bootstrap, **extra))
    out = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        next_offset = start
        while next_offset < end:
            if time.monotonic() > deadline:
                raise AssertionError(f"{topic}-{partition}: read up to offset {next_offset}, wanted {end} "
                                     f"within {timeout}s")
            batch = c.consume(num_messages=10000, timeout=0.5)
            for m in batch:
                if m.error():
                    raise AssertionError(f"consumer error on {topic}-{partition}: {m.error()}")
                out.append(m)
                next_offset = m.offset() + 1
    finally:
        c.close()
    return [m for m in out if m.offset() < end]


def watermarks(bootstrap: str, topic: str, partition: int) -> tuple[int, int]:
    """(low, high) watermark via ListOffsets, as confluent-kafka reports them."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(consumer_config(bootstrap))
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    finally:
        c.close()


def run(cmd: list[str], timeout: float = 120, input_bytes: bytes | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, **kw)


# ---- consumer groups ----------------------------------------------------------------------------


def group_lag(bootstrap: str, group: str) -> dict[tuple[str, int], dict[str, int]]:
    """The broker's view of a group's lag, from confluent-kafka's AdminClient: committed offsets
    (OffsetFetch) and log end offsets (ListOffsets latest) of every partition the group has
    committed; {(topic, partition): {"committed", "log_end", "lag"}} with lag = log_end - committed.

    Any other source of lag (the clients' own positions, kafka-python's admin, a future
    `samsa group describe`) can be compared against this dict."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec
    admin = confluent_admin(bootstrap)
    res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(timeout=20)
    committed = {}
    for tp in res.topic_partitions:
        assert tp.error is None, f"{group} {tp.topic}-{tp.partition}: {tp.error}"
        if tp.offset >= 0:
            committed[(tp.topic, tp.partition)] = tp.offset
    if not committed:
        return {}
    ends = admin.list_offsets({TopicPartition(t, p): OffsetSpec.latest() for t, p in committed})
    out = {}
    for tp, fut in ends.items():
        end = fut.result(timeout=20).offset
        c = committed[(tp.topic, tp.partition)]
        out[(tp.topic, tp.partition)] = {"committed": c, "log_end": end, "lag": end - c}
    return out


# ---- the samsa CLI --------------------------------------------------------------------------------


def samsa_cli(bootstrap: str | None, *args: str, input_bytes: bytes | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `samsa ARGS... --bootstrap-server BOOTSTRAP` (the CLI client commands) and returns the
    completed process, stdout and stderr as bytes. bootstrap=None leaves the option out."""
    cmd = [SAMSA_BIN, *args]
    if bootstrap is not None:
        cmd += ["--bootstrap-server", bootstrap]
    return run(cmd, timeout=timeout, input_bytes=input_bytes)


def parse_table(text: str) -> list[dict[str, str]]:
    """The rows of a table as the samsa CLI prints them: a line of upper-case column names, then
    one line per row, every column but the last padded to a common width. Cells are cut at the
    header's column starts, so empty cells (an empty RACK) come back as ""."""
    lines = [ln for ln in text.split("\n") if ln.strip()]
    assert lines, f"no table in {text!r}"
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    rows = []
    for ln in lines[1:]:
        cells = [ln[a:b].strip() for a, b in zip(starts, starts[1:] + [len(ln) + 1])]
        rows.append(dict(zip(names, cells)))
    return rows


# ---- the Java client's default partitioner ------------------------------------------------------


def java_murmur2(data: bytes) -> int:
    """org.apache.kafka.common.utils.Utils.murmur2 as the signed 32-bit int Java returns, from
    kafka-python's pure-Python port (which returns it unsigned)."""
    from kafka.partitioner.default import murmur2
    h = murmur2(data) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def java_partition(key: bytes, partitions: int) -> int:
    """The partition the Java producer's default partitioner picks for a non-null key:
    toPositive(murmur2(key)) % numPartitions."""
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


def group_consumer(bootstrap: str, group: str, **extra):
    """A confluent-kafka group member with quick test settings (manual commits, from the earliest)."""
    from confluent_kafka import Consumer
    conf = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra)
    return Consumer(conf)
