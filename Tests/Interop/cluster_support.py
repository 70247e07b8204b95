"""A Samsa cluster for the interop tests: a 3-node ZooKeeper ensemble (scripts/zookeeper.sh) and N
`samsa broker` processes (samsa_interop.Broker, ids 1..N) on loopback, with helpers that ask the
cluster what it looks like (leaders, ISR, controller) through the real clients, and one that reads
a replica's record batches straight from its segment files so replicas can be compared byte for
byte.

    cluster = Cluster(tmp_path, brokers=3).start()
    cluster.create_topic("orders", partitions=3, replication_factor=3, config={"min.insync.replicas": "2"})
    old = cluster.wait_for_leader("orders", 0)
    cluster.kill(old)                          # SIGKILL
    new = cluster.wait_for_leader("orders", 0, not_in={old})
    cluster.start(old)                         # one broker again; waits out the dead session's registration
    cluster.wait_for_isr("orders", 0, {1, 2, 3})
    cluster.close()

The brokers share the ensemble under the chroot /samsa. Default broker settings are short timeouts
so that failure detection takes seconds (DEFAULT_OVERRIDES); a test module can pass more.
"""
from __future__ import annotations

import struct
import subprocess
import time
from pathlib import Path

import kafka_raw as raw
from samsa_interop import REPO, Broker, wait_until

ZK_SCRIPT = str(REPO / "scripts" / "zookeeper.sh")
CHROOT = "/samsa"

DEFAULT_OVERRIDES: dict[str, object] = {
    "zookeeper.session.timeout.ms": 6000,       # a SIGKILLed broker is noticed after 6 s (Kafka: 18 s)
    "replica.lag.time.max.ms": 5000,            # a dead follower leaves the ISR after 5 s (Kafka: 30 s)
    "offsets.topic.replication.factor": 3,
    "group.initial.rebalance.delay.ms": 0,      # groups form at once
    "leader.imbalance.check.interval.seconds": 5,  # preferred leaders come back within seconds (Kafka: 300 s)
}

# Record batch header (magic 2): baseOffset int64, batchLength int32, partitionLeaderEpoch int32,
# magic int8, crc uint32, attributes int16, lastOffsetDelta int32, ... 61 bytes in all.
BATCH_HEADER = 61
LAST_OFFSET_DELTA_AT = 23


class Cluster:
    """A ZooKeeper ensemble and `brokers` brokers (ids 1..brokers) under `base`:
    base/zk (the ensemble), base/broker<ID>/data, base/broker<ID>/broker.log."""

    def __init__(self, base: Path, brokers: int = 3, overrides: dict[str, object] | None = None,
                 zk_nodes: int = 3):
        self.base = Path(base)
        self.zk_dir = self.base / "zk"
        self.zk_nodes = zk_nodes
        self.zk_connect: str | None = None
        self.overrides = {**DEFAULT_OVERRIDES, **(overrides or {})}
        self.brokers: dict[int, Broker] = {}
        self.ids = list(range(1, brokers + 1))
        self._admin = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self, broker_id: int | None = None, timeout: float = 60.0):
        """start(): the ensemble and every broker, waiting until every broker is registered;
        returns the cluster. start(ID): one stopped broker again (see start_broker)."""
        if broker_id is not None:
            return self.start_broker(broker_id, timeout=timeout)
        started = subprocess.run([ZK_SCRIPT, "start", str(self.zk_dir), "--nodes", str(self.zk_nodes)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=180)
        assert started.returncode == 0, f"zookeeper.sh start failed: {started.stderr}"
        self.zk_connect = started.stdout.strip().splitlines()[-1]
        for i in self.ids:
            d = self.base / f"broker{i}"
            self.brokers[i] = Broker(d / "data", d / "broker.log", overrides={
                **self.overrides, "broker.id": i, "zookeeper.connect": self.zk_connect + CHROOT})
        for i in self.ids:
            self.start_broker(i, wait_registered=False)
        self.wait_for_brokers(set(self.ids))
        return self

    def close(self):
        """Stops every broker (SIGTERM, SIGKILL when that hangs) and the ensemble."""
        self._admin = None
        for b in self.brokers.values():
            try:
                b.close()
            except Exception:  # noqa: BLE001 - teardown carries on
                if b.running:
                    b.kill()
        if (self.zk_dir / "ensemble.env").exists():
            subprocess.run([ZK_SCRIPT, "stop", str(self.zk_dir)], timeout=120)

    def broker(self, broker_id: int) -> Broker:
        return self.brokers[broker_id]

    @property
    def bootstrap(self) -> str:
        """Every broker's address, down or not (clients skip the ones that do not answer)."""
        return ",".join(self.brokers[i].bootstrap for i in self.ids)

    def running_ids(self) -> set[int]:
        return {i for i, b in self.brokers.items() if b.running}

    def bootstrap_running(self) -> str:
        return ",".join(self.brokers[i].bootstrap for i in sorted(self.running_ids()))

    def kill(self, broker_id: int) -> int:
        """SIGKILL (a crash): the broker's ZooKeeper session ends after zookeeper.session.timeout.ms."""
        return self.brokers[broker_id].kill()

    def stop(self, broker_id: int, timeout: float = 60.0) -> int:
        """SIGTERM (controlled shutdown); returns the exit code."""
        return self.brokers[broker_id].stop(timeout=timeout)

    def start_broker(self, broker_id: int, timeout: float = 60.0, wait_registered: bool = True) -> Broker:
        """Starts a stopped broker. After a SIGKILL its old registration lives until its ZooKeeper
        session expires and the broker refuses to start meanwhile ("already registered by a live
        broker"): that is retried until `timeout`."""
        b = self.brokers[broker_id]
        deadline = time.monotonic() + timeout
        while True:
            try:
                b.start()
                break
            except AssertionError as e:
                if "already registered" not in str(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)
        if wait_registered:
            self.wait_for_brokers({broker_id}, timeout=timeout, exact=False)
        return b

    def restart_broker(self, broker_id: int) -> Broker:
        if self.brokers[broker_id].running:
            self.stop(broker_id)
        return self.start_broker(broker_id)

    # ---- clients ---------------------------------------------------------------------------------

    def admin(self):
        """A confluent-kafka AdminClient on every broker (one per cluster, made on first use). Its
        Metadata requests never auto-create a topic (librdkafka's producer-side default would), so
        asking about a topic that does not exist yet does not create it."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap, "allow.auto.create.topics": False})
        return self._admin

    def fresh_admin(self):
        """A new confluent-kafka AdminClient on the running brokers, for requests librdkafka sends to
        the controller (DescribeCluster, CreateTopics): a long-lived client keeps sending them to
        the controller its last Metadata named and waits for a dead one until its next metadata
        refresh. Keep a reference until the result is in (a collected client abandons its futures)."""
        from confluent_kafka.admin import AdminClient
        return AdminClient({"bootstrap.servers": self.bootstrap_running() or self.bootstrap,
                            "allow.auto.create.topics": False})

    def describe_cluster(self, timeout: float = 10.0):
        """DescribeCluster through confluent-kafka: (controller id or -1, {broker ids}, cluster id)."""
        admin = self.fresh_admin()
        res = admin.describe_cluster(request_timeout=timeout).result(timeout=timeout + 5)
        controller = res.controller.id if res.controller is not None else -1
        return controller, {n.id for n in res.nodes}, res.cluster_id

    def controller_id(self) -> int:
        return self.describe_cluster()[0]

    def metadata_from(self, broker_id: int) -> tuple[set[int], int]:
        """What one broker answers to a Metadata request (v4, no topics, raw): (broker ids, controller id)."""
        with raw.KafkaConnection("127.0.0.1", self.brokers[broker_id].port, timeout=5) as conn:
            md = raw.metadata_v4(conn, [])
        return {b["node_id"] for b in md["brokers"]}, md["controller_id"]

    def wait_for_brokers(self, ids: set[int], timeout: float = 60.0, exact: bool = True):
        """Until every running broker's Metadata lists `ids` (exactly, or at least with exact=False)
        and names the same live controller, and DescribeCluster agrees."""
        seen: dict[int, object] = {}

        def ok():
            seen.clear()
            running = self.running_ids()
            for b in sorted(running):
                try:
                    seen[b] = self.metadata_from(b)
                except Exception as e:  # noqa: BLE001 - retried until the deadline
                    seen[b] = f"Metadata failed: {e}"
                    return False
            answers = list(seen.values())
            if not all((nodes == set(ids) if exact else set(ids) <= nodes) and controller in running
                       for nodes, controller in answers) or len({c for _, c in answers}) != 1:
                return False
            try:
                controller, nodes, _ = self.describe_cluster(timeout=5)
            except Exception as e:  # noqa: BLE001
                seen["DescribeCluster"] = f"failed: {e}"
                return False
            seen["DescribeCluster"] = (nodes, controller)
            return controller == answers[0][1] and (nodes == set(ids) if exact else set(ids) <= nodes)
        try:
            wait_until(ok, timeout=timeout, interval=0.25,
                       message=f"brokers {sorted(ids)} registered{' (exactly)' if exact else ''} with a live controller")
        except AssertionError as e:
            raise AssertionError(f"{e}; running: {sorted(self.running_ids())}; "
                                 f"last answers (brokers, controller) by broker: {seen}") from None

    def partitions(self, topic: str, timeout: float = 10.0) -> dict[int, dict]:
        """{partition: {"leader": id or -1, "replicas": [ids], "isr": [ids], "error": KafkaError or None}}
        from a Metadata request (confluent-kafka), or {} when the topic is not (yet) known."""
        md = self.admin().list_topics(topic=topic, timeout=timeout)
        t = md.topics.get(topic)
        if t is None or (t.error is not None and not t.partitions):
            return {}
        return {p.id: {"leader": p.leader, "replicas": list(p.replicas), "isr": list(p.isrs), "error": p.error}
                for p in t.partitions.values()}

    def _partition(self, topic: str, partition: int) -> dict | None:
        try:
            return self.partitions(topic).get(partition)
        except Exception:  # noqa: BLE001 - a metadata request to a dying broker
            return None

    def leader_of(self, topic: str, partition: int) -> int:
        p = self._partition(topic, partition)
        return p["leader"] if p else -1

    def isr_of(self, topic: str, partition: int) -> list[int]:
        p = self._partition(topic, partition)
        return p["isr"] if p else []

    def replicas_of(self, topic: str, partition: int) -> list[int]:
        p = self._partition(topic, partition)
        return p["replicas"] if p else []

    def wait_for_leader(self, topic: str, partition: int, timeout: float = 30.0, not_in: set[int] = frozenset(),
                        expected: int | None = None) -> int:
        """Until the partition has a live leader (not in `not_in`; `expected` if given); returns it."""
        def ok():
            leader = self.leader_of(topic, partition)
            if leader < 0 or leader in not_in or leader not in self.running_ids():
                return None
            if expected is not None and leader != expected:
                return None
            return leader
        what = f"{topic}-{partition} led by " + (str(expected) if expected is not None else f"a live broker not in {set(not_in)}")
        return wait_until(ok, timeout=timeout, interval=0.2, message=what)

    def wait_for_isr(self, topic: str, partition: int, isr: set[int], timeout: float = 60.0) -> list[int]:
        """Until the partition's ISR is exactly `isr`."""
        return wait_until(lambda: (lambda got: got if set(got) == set(isr) else None)(self.isr_of(topic, partition)),
                          timeout=timeout, interval=0.2, message=f"{topic}-{partition} ISR = {sorted(isr)}")

    def wait_fully_replicated(self, topic: str, timeout: float = 60.0, preferred_leaders: bool = False):
        """Until every partition of the topic has a leader and all its replicas in the ISR (and,
        with preferred_leaders, is led by its first replica)."""
        def ok():
            try:
                parts = self.partitions(topic)
            except Exception:  # noqa: BLE001
                return None
            if not parts:
                return None
            for p in parts.values():
                if p["leader"] < 0 or set(p["isr"]) != set(p["replicas"]):
                    return None
                if preferred_leaders and p["leader"] != p["replicas"][0]:
                    return None
            return parts
        return wait_until(ok, timeout=timeout, interval=0.25,
                          message=f"{topic}: every replica in the ISR" + (" and preferred leaders" if preferred_leaders else ""))

    def wait_back_in_every_isr(self, broker_id: int, timeout: float = 60.0, topics: list[str] | None = None):
        """Until broker_id is in the ISR of every partition it is a replica of (of every topic, or of
        `topics`)."""
        lagging: list[str] = ["no metadata yet"]

        def ok():
            try:
                md = self.admin().list_topics(timeout=10)
            except Exception as e:  # noqa: BLE001
                lagging[:] = [f"Metadata failed: {e}"]
                return False
            lagging[:] = [f"{t.topic}-{p.id} (leader {p.leader}, replicas {list(p.replicas)}, ISR {list(p.isrs)})"
                          for t in md.topics.values() if topics is None or t.topic in topics
                          for p in t.partitions.values() if broker_id in p.replicas and broker_id not in p.isrs]
            return not lagging and bool(md.topics)
        try:
            wait_until(ok, timeout=timeout, interval=0.25, message=f"broker {broker_id} back in every ISR")
        except AssertionError as e:
            raise AssertionError(f"{e}; {len(lagging)} partitions without it: {lagging[:10]}") from None

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 3,
                     config: dict[str, str] | None = None, timeout: float = 60.0) -> dict[int, dict]:
        """CreateTopics through confluent-kafka; waits until every partition has a leader and every
        replica in the ISR. Returns the partitions as `partitions()` does."""
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import NewTopic
        deadline = time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            admin = self.fresh_admin()
            fut = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=replication_factor,
                                                config=config or {})], operation_timeout=20, request_timeout=20)
            try:
                fut[name].result(timeout=40)
                break
            except KafkaException as e:
                code = e.args[0].code()
                if code == KafkaError.TOPIC_ALREADY_EXISTS and attempt > 1:
                    break  # an earlier attempt created it after all
                # Retried: librdkafka timing out on a controller it cannot reach yet, or a controller
                # move.
                if code not in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER) \
                        or time.monotonic() >= deadline:
                    raise
        parts = self.wait_fully_replicated(name, timeout=timeout)
        assert len(parts) == partitions and all(len(p["replicas"]) == replication_factor for p in parts.values()), parts
        return parts

    # ---- replicas on disk ------------------------------------------------------------------------

    def replica_batches(self, topic: str, partition: int, broker_id: int, up_to_offset: int) -> list[bytes]:
        """The record batches of broker_id's replica of topic-partition, raw bytes as on disk (the
        12-byte offset/length prefix included), of every batch whose first offset is below
        up_to_offset, read from the partition's segment files in offset order. A torn or
        half-written tail is ignored (it lies above the high watermark)."""
        return [raw for base, _, raw in self.replica_batch_index(topic, partition, broker_id, up_to_offset)]

    def replica_batch_index(self, topic: str, partition: int, broker_id: int,
                            up_to_offset: int) -> list[tuple[int, int, bytes]]:
        """As replica_batches, as (base offset, last offset, raw bytes)."""
        d = self.brokers[broker_id].partition_dir(topic, partition)
        out: list[tuple[int, int, bytes]] = []
        for seg in sorted(d.glob("*.log"), key=lambda p: int(p.stem)):
            data = seg.read_bytes()
            pos = 0
            while pos + BATCH_HEADER <= len(data):
                base, length = struct.unpack_from(">qi", data, pos)
                if length < BATCH_HEADER - 12 or pos + 12 + length > len(data):
                    break  # end of the written part
                if base >= up_to_offset:
                    return out
                (delta,) = struct.unpack_from(">i", data, pos + LAST_OFFSET_DELTA_AT)
                out.append((base, base + delta, data[pos:pos + 12 + length]))
                pos += 12 + length
        return out


def batch_leader_epoch(raw: bytes) -> int:
    """The partitionLeaderEpoch field of a raw batch (bytes 12..16)."""
    return struct.unpack_from(">i", raw, 12)[0]


def zk_get(cluster: Cluster, path: str) -> str | None:
    """The data of a znode under the chroot, as Debian's zkCli.sh prints it (its last line), None
    when there is no such znode; a ConnectionLoss of the JVM client on a loaded machine is retried."""
    out = None
    for _ in range(5):
        out = subprocess.run([ZK_SCRIPT, "cli", str(cluster.zk_dir), "get", CHROOT + path], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        if b"ConnectionLoss" not in out.stdout + out.stderr:
            break
        time.sleep(1)
    if b"Node does not exist" in out.stdout + out.stderr or b"NoNode" in out.stdout + out.stderr:
        return None
    assert out.returncode == 0, f"zkCli.sh get {CHROOT + path}: {out.stderr.decode()[-500:]}"
    # zkCli.sh prints its connection events (WATCHER::, WatchedEvent ...) in no fixed order with the data.
    noise = ("WATCHER::", "WatchedEvent ", "Connecting to ", "SLF4J")
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.strip() and not ln.startswith(noise)]
    return lines[-1] if lines else ""
