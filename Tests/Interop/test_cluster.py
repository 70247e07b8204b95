"""Replication and failover (issue 12) on a real cluster: three `samsa broker` processes on a 3-node
ZooKeeper ensemble (cluster_support.Cluster), driven by confluent-kafka, kafka-python, kcat and the
samsa CLI.

CL1  RF 3, min.insync.replicas=2: an idempotent acks=all confluent-kafka producer writes 100,000
     keyed records while the leader of partition 0 is SIGKILLed mid-stream; every record is
     acknowledged and read back exactly once, in order per partition, at the offset its delivery
     report named; the killed broker restarts, rejoins every ISR and leads its preferred
     partitions again (auto leader rebalance).
CL2  after CL1 the three replicas of every partition hold byte-identical batches (leader epochs
     included) up to the high watermark, read from their segment files.
CL3  two of three replicas down: acks=all gets NOT_ENOUGH_REPLICAS, acks=1 still succeeds,
     committed data can still be read; the two come back into the ISR.
CL4  the controller SIGKILLed: another broker becomes controller (/controller_epoch + 1),
     RF 3 is refused with INVALID_REPLICATION_FACTOR while two brokers live, RF 2 topics are
     created, and RF 3 again once the old controller is back (which does not take over).
CL5  a rolling restart (SIGTERM, controlled shutdown, one broker at a time, each back in every
     ISR before the next) under continuous acks=all load: no failed delivery, no acknowledged
     record lost or duplicated, the longest gap between acknowledgements on a partition bounded.
CL6  a consumer group keeps its committed offsets when its coordinator is SIGKILLed; a
     confluent-kafka member and a kafka-python member then rebalance, resume at the committed
     offsets and consume everything.
CL8  `samsa topic reassign` moves a partition to other brokers (KIP-455) with byte-identical data;
     deleting the topic removes its folders on every broker.
CL7  kcat -L (asking each broker), kafka-python's admin describe_cluster/describe_topics,
     confluent-kafka's admin and `samsa cluster info` / `samsa topic describe` show the same
     brokers, controller, leaders, replicas and ISR.

The module shares one cluster (tests run in file order; CL2 reads CL1's topic). Before each test
every broker is started again if an earlier test left it down. Broker settings for quick failure
detection are cluster_support.DEFAULT_OVERRIDES (6 s ZooKeeper sessions, 5 s replica lag, 5 s
leader-imbalance checks).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_raw as raw
from cluster_support import Cluster, batch_leader_epoch, zk_get
from samsa_interop import consume_range, parse_table, run, samsa_cli, wait_until, watermarks

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("cluster"), brokers=3)
    try:
        c.start()
        yield c
    finally:
        c.close()


@pytest.fixture
def healthy(cluster):
    """The module's cluster with every broker running and registered (an earlier failed test may
    have left one down)."""
    for i in cluster.ids:
        if not cluster.broker(i).running:
            cluster.start(i)
    cluster.wait_for_brokers(set(cluster.ids), timeout=60)
    return cluster


# Shared between CL1 and CL2.
CL1_DONE: dict[str, object] = {}
HA_TOPIC = "ha-orders"
HA_PARTITIONS = 3
HA_RECORDS = 100_000


def read_partition_values(c: Cluster, topic: str, partition: int, timeout: float = 120.0) -> list[tuple[int, bytes]]:
    """[(offset, value)] of offsets [0, high watermark) of one partition."""
    _, high = watermarks(c.bootstrap, topic, partition)
    return [(m.offset(), m.value()) for m in consume_range(c.bootstrap, topic, partition, 0, high, timeout=timeout)]


def check_exactly_once_in_order(c: Cluster, topic: str, partitions: int, acked: dict[int, tuple[int, int]]):
    """Every acknowledged record (value = its sequence number n, acked[n] = (partition, offset)) is
    in the log exactly once, at the offset its delivery report named, and every partition holds
    its records in production order. Returns the number of records read."""
    seen: Counter[int] = Counter()
    total = 0
    for p in range(partitions):
        rows = read_partition_values(c, topic, p)
        total += len(rows)
        ns = [int(v) for _, v in rows]
        seen.update(ns)
        out_of_order = [(a, b) for a, b in zip(ns, ns[1:]) if b <= a]
        assert not out_of_order, f"{topic}-{p}: records out of production order, e.g. {out_of_order[:5]}"
        wrong_offset = [(n, o, acked[n]) for o, n in zip((o for o, _ in rows), ns) if n in acked and acked[n] != (p, o)]
        assert not wrong_offset, f"{topic}-{p}: records not at their acknowledged (partition, offset): {wrong_offset[:5]}"
    missing = sorted(n for n in acked if seen[n] == 0)
    duplicated = sorted(n for n, k in seen.items() if k > 1)
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:10]}"
    assert not duplicated, f"{len(duplicated)} records stored more than once, e.g. {duplicated[:10]}"
    return total


# ============================================================================================
# CL1: acks=all producer carries on across a leader SIGKILL; the broker comes back and leads again
# ============================================================================================


@pytest.mark.timeout(360)
def test_acks_all_producer_survives_leader_sigkill(healthy):
    c = healthy
    c.create_topic(HA_TOPIC, partitions=HA_PARTITIONS, replication_factor=3, config={"min.insync.replicas": "2"})
    parts = c.wait_fully_replicated(HA_TOPIC, preferred_leaders=True, timeout=60)
    victim = parts[0]["leader"]
    preferred = sorted(p for p, info in parts.items() if info["replicas"][0] == victim)

    acked: dict[int, tuple[int, int]] = {}
    failed: list[tuple[int, KafkaError]] = []

    def on_delivery(err, msg):
        n = int(msg.value())
        if err is not None:
            failed.append((n, err))
        else:
            acked[n] = (msg.partition(), msg.offset())

    producer = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": 180000})
    # At most WINDOW records unacknowledged, so the stream is still flowing when the leader dies.
    window, kill_after = 5000, HA_RECORDS * 3 // 10
    killed_at = None
    n = 0
    started = time.monotonic()
    try:
        while n < HA_RECORDS:
            if killed_at is None and len(acked) >= kill_after:
                c.kill(victim)
                killed_at = n
            if n - len(acked) - len(failed) >= window:
                producer.poll(0.01)
                continue
            try:
                producer.produce(HA_TOPIC, key=f"key-{n % 997}".encode(), value=str(n).encode(), on_delivery=on_delivery)
                n += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
        remaining = producer.flush(180)
    except (AssertionError, KeyboardInterrupt, pytest.fail.Exception):
        raise
    except:  # noqa: E722 - a fatal producer error: confluent-kafka raises a KafkaError, no BaseException
        e = sys.exc_info()[1]
        pytest.fail(f"the idempotent producer failed after {n} records sent, {len(acked)} acknowledged "
                    f"(leader {victim} killed after {killed_at} sent): {type(e).__name__}: {e}")
    elapsed = time.monotonic() - started
    assert killed_at is not None and killed_at < HA_RECORDS - window, f"leader killed after {killed_at} records were sent"
    assert remaining == 0, f"{remaining} records still undelivered 180 s after the last produce"
    assert not failed, f"{len(failed)} of {HA_RECORDS} deliveries failed, e.g. {failed[:5]}"
    assert len(acked) == HA_RECORDS

    # Partition 0 has a new leader; every record is there once, where its delivery report said.
    new_leader = c.wait_for_leader(HA_TOPIC, 0, not_in={victim})
    total = check_exactly_once_in_order(c, HA_TOPIC, HA_PARTITIONS, acked)
    assert total == HA_RECORDS, f"read {total} records, produced {HA_RECORDS} (all acknowledged)"
    CL1_DONE["produced"] = True

    # The killed broker restarts, catches up (truncating a divergent tail), rejoins every ISR and,
    # once in sync, the automatic preferred-leader election gives it its partitions back.
    c.start(victim)
    c.wait_fully_replicated(HA_TOPIC, timeout=90)
    c.wait_fully_replicated(HA_TOPIC, preferred_leaders=True, timeout=45)
    assert all(c.leader_of(HA_TOPIC, p) == victim for p in preferred)
    # Led by the broker that crashed, the partitions still hold every acknowledged record.
    total = check_exactly_once_in_order(c, HA_TOPIC, HA_PARTITIONS, acked)
    assert total == HA_RECORDS, f"read {total} records from the restored leaders, produced {HA_RECORDS}"
    print(f"CL1: {HA_RECORDS} records in {elapsed:.1f} s; broker {victim} killed after {killed_at} sent, "
          f"partition 0 failed over to {new_leader} and back")


# ============================================================================================
# CL2: replicas are byte-identical up to the high watermark
# ============================================================================================


@pytest.mark.timeout(120)
def test_replicas_are_byte_identical(healthy):
    c = healthy
    if not CL1_DONE:
        pytest.fail(f"CL1 did not write and read back its {HA_RECORDS} records: nothing to compare")
    parts = c.wait_fully_replicated(HA_TOPIC, timeout=60)
    total = 0
    for p, info in sorted(parts.items()):
        _, high = watermarks(c.bootstrap, HA_TOPIC, p)
        total += high
        replicas = {b: c.replica_batch_index(HA_TOPIC, p, b, high) for b in info["replicas"]}
        summary = {b: (f"{len(bs)} batches, offsets {bs[0][0] if bs else '-'}..{bs[-1][1] if bs else '-'}, "
                       f"segment bytes {sum(f.stat().st_size for f in c.broker(b).partition_dir(HA_TOPIC, p).glob('*.log'))}")
                   for b, bs in replicas.items()}
        print(f"CL2: {HA_TOPIC}-{p} high watermark {high}, leader {info['leader']}: {summary}")
        for b, batches in replicas.items():
            assert batches, f"{HA_TOPIC}-{p}: broker {b} holds no batch below the high watermark {high}"
            # Contiguous from offset 0 to the high watermark.
            assert batches[0][0] == 0, f"{HA_TOPIC}-{p} on broker {b} starts at offset {batches[0][0]}"
            gaps = [(x[1], y[0]) for x, y in zip(batches, batches[1:]) if y[0] != x[1] + 1]
            assert not gaps, f"{HA_TOPIC}-{p} on broker {b}: offset gaps between batches {gaps[:5]}"
            assert batches[-1][1] == high - 1, \
                f"{HA_TOPIC}-{p} on broker {b}: last batch ends at {batches[-1][1]}, high watermark {high}; replicas: {summary}"
        leader = info["leader"]
        reference = [raw for _, _, raw in replicas[leader]]
        for b, batches in replicas.items():
            got = [raw for _, _, raw in batches]
            if got != reference:
                at = lambda lst, i: lst[i] if i < len(lst) else None  # noqa: E731
                diff = next(i for i in range(max(len(got), len(reference))) if at(got, i) != at(reference, i))
                pytest.fail(f"{HA_TOPIC}-{p}: broker {b}'s replica differs from leader {leader}'s at batch {diff} "
                            f"(offset {at(batches, diff)[0] if at(batches, diff) else 'end'}; "
                            f"{len(got)} vs {len(reference)} batches below the high watermark {high})")
        if p == 0:
            # Partition 0 changed leader twice in CL1 (failover, then back to the preferred leader):
            # the comparison above covered batches written under several leader epochs.
            epochs = sorted({batch_leader_epoch(raw) for raw in reference})
            assert len(epochs) >= 2, f"{HA_TOPIC}-0: batches carry only leader epochs {epochs}"
    assert total == HA_RECORDS


# ============================================================================================
# CL3: two of three replicas down
# ============================================================================================


@pytest.mark.timeout(240)
def test_two_replicas_down_not_enough_replicas(healthy):
    c = healthy
    topic = "min-isr"
    c.create_topic(topic, partitions=1, replication_factor=3, config={"min.insync.replicas": "2"})
    leader = c.wait_for_leader(topic, 0)

    def produce(conf: dict, values: list[str]) -> tuple[list[str], list[KafkaError]]:
        ok, errors = [], []

        def cb(err, msg):
            (errors.append(err) if err is not None else ok.append(msg.value().decode()))

        p = Producer({"bootstrap.servers": c.bootstrap, **conf})
        for v in values:
            p.produce(topic, value=v.encode(), partition=0, on_delivery=cb)
        assert p.flush(60) == 0
        return ok, errors

    committed = [f"committed-{i}" for i in range(100)]
    ok, errors = produce({"acks": "all", "enable.idempotence": True}, committed)
    assert not errors and ok == committed, errors[:3]

    others = [b for b in c.ids if b != leader]
    for b in others:
        c.kill(b)
    # The dead followers leave the ISR (replica.lag.time.max.ms, or their sessions expiring).
    c.wait_for_isr(topic, 0, {leader}, timeout=60)
    assert c.leader_of(topic, 0) == leader

    # acks=all: refused, not written. retries=0 so that the broker's error reaches the delivery report.
    ok, errors = produce({"acks": "all", "enable.idempotence": False, "retries": 0, "message.timeout.ms": 15000},
                         ["refused"])
    assert ok == [] and [e.code() for e in errors] == [KafkaError.NOT_ENOUGH_REPLICAS], \
        (f"acks=all with ISR [{leader}] < min.insync.replicas 2 (the ISR the leader itself reports): got "
         f"{[e.name() for e in errors] or 'success'}, wanted NOT_ENOUGH_REPLICAS"
         + (" (_MSG_TIMED_OUT: the leader held the produce instead of refusing it)" if errors and
            errors[0].code() == KafkaError._MSG_TIMED_OUT else ""))

    # acks=1 is accepted.
    one = [f"acks1-{i}" for i in range(20)]
    ok, errors = produce({"acks": 1, "enable.idempotence": False}, one)
    assert not errors and ok == one, [e.name() for e in errors[:3]]

    # Committed data is still read (the high watermark follows the one-member ISR).
    values = [v.decode() for _, v in read_partition_values(c, topic, 0, timeout=60)]
    assert values == committed + one, values[:5] + ["..."] + values[-5:]

    # The two come back, catch up and rejoin the ISR.
    for b in others:
        c.start(b)
    c.wait_fully_replicated(topic, timeout=90)
    ok, errors = produce({"acks": "all", "enable.idempotence": True}, ["after"])
    assert not errors and ok == ["after"]


# ============================================================================================
# CL4: controller failover
# ============================================================================================


@pytest.mark.timeout(240)
def test_controller_failover(healthy):
    c = healthy
    old = c.controller_id()
    assert old in c.ids
    epoch, elected = zk_get(c, "/controller_epoch"), zk_get(c, "/controller")
    assert epoch is not None and elected is not None, "no /controller_epoch or /controller in ZooKeeper"
    epoch = int(epoch)
    assert json.loads(elected)["brokerid"] == old, elected

    c.kill(old)

    def new_controller():
        try:
            cid = c.controller_id()
        except Exception:  # noqa: BLE001 - retried
            return None
        return cid if cid in c.running_ids() else None

    new = wait_until(new_controller, timeout=60, interval=0.25, message=f"a controller other than broker {old}")
    assert new != old
    assert json.loads(zk_get(c, "/controller"))["brokerid"] == new
    assert int(zk_get(c, "/controller_epoch")) == epoch + 1
    # `samsa cluster info` lists the dead broker as offline (it is still a replica of earlier topics).
    info = samsa_cli(c.bootstrap, "cluster", "info").stdout.decode()
    head, _, rest = info.partition("\n\n")
    assert f"CONTROLLER {new}" in head.splitlines(), info
    table = rest.split("\n\n")[0].strip("\n")
    statuses = {r.get("ID", r.get("BROKER")): r.get("STATUS") for r in parse_table(table)}
    assert statuses.get(str(old)) in ("offline", None) and statuses.get(str(new)) in ("live", None), info

    # Two live brokers: RF 3 is refused, RF 2 is created on the live ones.
    def create_rf3():
        """CreateTopics' answer: "created", a KafkaError, or None to retry (librdkafka timing out on
        the controller it cannot reach yet)."""
        admin = c.fresh_admin()
        fut = admin.create_topics([NewTopic("after-failover-rf3", num_partitions=1, replication_factor=3)],
                                  operation_timeout=20, request_timeout=20)
        try:
            fut["after-failover-rf3"].result(timeout=40)
            return "created"
        except KafkaException as e:
            retry = (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError.NOT_CONTROLLER)
            return None if e.args[0].code() in retry else e.args[0]

    refused = wait_until(create_rf3, timeout=60, interval=0.5, message="an answer to CreateTopics")
    assert isinstance(refused, KafkaError) and refused.code() == KafkaError.INVALID_REPLICATION_FACTOR, \
        f"RF 3 with two live brokers: {refused}"
    parts = c.create_topic("after-failover", partitions=2, replication_factor=2)
    assert all(old not in p["replicas"] for p in parts.values()), parts

    # The old controller comes back as an ordinary broker; RF 3 works again.
    c.start(old)
    c.wait_for_brokers(set(c.ids))
    # Every broker learns who the controller is: ask until the answer settles, which must be `new`.
    wait_until(lambda: c.controller_id() == new, timeout=15, interval=0.25,
               message=f"broker {new} still the controller after broker {old} came back")
    c.create_topic("after-return", partitions=3, replication_factor=3)
    assert int(zk_get(c, "/controller_epoch")) == epoch + 1


# ============================================================================================
# CL5: rolling restart under load
# ============================================================================================


class LoadProducer(threading.Thread):
    """Produces n = 0, 1, 2, ... (value str(n), partition n % partitions) at about 1,000 records/s
    with an idempotent acks=all producer until stopped; records what was acknowledged where, the
    failures (failed deliveries, and produce calls refused at once), and the time of every
    acknowledgement per partition."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        super().__init__(daemon=True)
        self.topic, self.partitions = topic, partitions
        # reconnect.backoff.max.ms: this cluster gives leadership back to a restarted broker within
        # 5 s (leader.imbalance.check.interval.seconds=5; Kafka's default is 300 s), while
        # librdkafka's back-off for a broker it could not reach a moment ago can still run (up to
        # 10 s by default): without a shorter cap the gap measured would be the client's back-off.
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                                  "linger.ms": 5, "message.timeout.ms": 60000, "reconnect.backoff.max.ms": 500})
        self.acked: dict[int, tuple[int, int]] = {}
        self.failed: list[tuple[int, KafkaError]] = []
        self.ack_times: dict[int, list[float]] = {p: [] for p in range(partitions)}
        self.halt = threading.Event()
        self.remaining = None
        self.fatal: str | None = None  # an exception out of produce/poll/flush (e.g. a fatal idempotence error)

    def _cb(self, err, msg):
        n = int(msg.value())
        if err is not None:
            self.failed.append((n, err))
        else:
            self.acked[n] = (msg.partition(), msg.offset())
            self.ack_times[msg.partition()].append(time.monotonic())

    def run(self):
        n = 0
        try:
            while not self.halt.is_set():
                try:
                    self.producer.produce(self.topic, value=str(n).encode(), partition=n % self.partitions,
                                          on_delivery=self._cb)
                    n += 1
                except BufferError:
                    pass
                except KafkaException as e:  # refused at once (e.g. "Unknown topic" after a bad Metadata answer)
                    self.failed.append((n, e.args[0]))
                    n += 1
                self.producer.poll(0.001)
            self.remaining = self.producer.flush(90)
        except:  # noqa: E722 - confluent-kafka raises a KafkaError (no BaseException) on a fatal error
            e = sys.exc_info()[1]
            self.fatal = f"{type(e).__name__}: {e} (after {n} records produced)"

    def longest_gap(self, since: float) -> tuple[float, int]:
        """(seconds, partition): the longest time between two acknowledgements on one partition
        after `since`."""
        best = (0.0, -1)
        for p, ts in self.ack_times.items():
            ts = [t for t in ts if t >= since]
            for a, b in zip(ts, ts[1:]):
                if b - a > best[0]:
                    best = (b - a, p)
        return best


@pytest.mark.timeout(420)
def test_rolling_restart_under_load(healthy):
    c = healthy
    topic, partitions = "rolling", 3
    c.create_topic(topic, partitions=partitions, replication_factor=3, config={"min.insync.replicas": "2"})
    c.wait_fully_replicated(topic, preferred_leaders=True, timeout=60)
    load = LoadProducer(c.bootstrap, topic, partitions)
    load.start()
    try:
        wait_until(lambda: all(len(t) > 100 for t in load.ack_times.values()), timeout=30, message="load flowing")
        rolling_since = time.monotonic()
        for b in c.ids:
            code = c.stop(b, timeout=60)
            assert code == 0, f"broker {b} exited with {code} after SIGTERM"
            c.start(b)
            c.wait_back_in_every_isr(b, timeout=90)
            assert load.fatal is None, f"the producer failed during the restart of broker {b}: {load.fatal}"
        rolling_secs = time.monotonic() - rolling_since
        time.sleep(2)
    finally:
        load.halt.set()
        load.join(120)
    assert load.fatal is None, f"the producer failed during the rolling restart: {load.fatal}"
    assert load.remaining == 0, f"{load.remaining} records undelivered 90 s after the load stopped"
    assert not load.failed, (f"{len(load.failed)} records refused or not delivered during the rolling restart "
                             f"(of {len(load.acked) + len(load.failed)}), e.g. {load.failed[:3]} ... {load.failed[-1:]}")
    check_exactly_once_in_order(c, topic, partitions, load.acked)
    gap, part = load.longest_gap(rolling_since)
    # The bound is that no produce fails for more than a second (controlled shutdown moves
    # leadership before the broker goes); this asserts a looser 5 s on this shared 2-core machine
    # and reports the figure.
    assert gap < 5.0, (f"longest gap between acknowledgements on one partition during the rolling restart: "
                       f"{gap:.2f} s (partition {part}); goal ≤ 1 s")
    print(f"CL5: rolling restart in {rolling_secs:.1f} s, {len(load.acked)} records acknowledged, "
          f"longest gap between acknowledgements on one partition {gap:.3f} s (partition {part})")


# ============================================================================================
# CL6: a consumer group survives the loss of its coordinator
# ============================================================================================


def committed_offsets(c: Cluster, group: str, topic: str) -> dict[int, int] | None:
    """The group's committed offsets (OffsetFetch through confluent-kafka's admin), None when the
    coordinator cannot answer right now. A new AdminClient each time: one that lived through its
    coordinator's restart was seen to wait for answers on a connection that is gone (librdkafka 2.16)."""
    admin = AdminClient({"bootstrap.servers": c.bootstrap, "allow.auto.create.topics": False})
    try:
        res = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                request_timeout=10)[group].result(timeout=15)
    except Exception:  # noqa: BLE001 - coordinator moving
        return None
    out = {}
    for tp in res.topic_partitions:
        if tp.error is not None:
            return None
        if tp.topic == topic and tp.offset >= 0:
            out[tp.partition] = tp.offset
    return out


def coordinator_of(c: Cluster, group: str) -> int | None:
    """The group's coordinator as FindCoordinator on a live broker answers, None when none can say."""
    for b in sorted(c.running_ids()):
        try:
            with raw.KafkaConnection("127.0.0.1", c.broker(b).port) as conn:
                (answer,) = raw.find_coordinator(conn, group)
        except Exception:  # noqa: BLE001 - a broker going down
            continue
        if answer["error_code"] == 0:
            return answer["node_id"]
    return None


class KafkaPythonMember(threading.Thread):
    """A kafka-python group member: polls, records (partition, offset), commits synchronously."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        super().__init__(daemon=True)
        from kafka import KafkaConsumer
        self.consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), group_id=group,
                                      client_id="kp-member", enable_auto_commit=False, auto_offset_reset="earliest",
                                      session_timeout_ms=6000, heartbeat_interval_ms=500, fetch_max_wait_ms=100,
                                      metadata_max_age_ms=2000)
        self.consumed: list[tuple[int, int]] = []
        self.assignments: list[set[int]] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.is_set():
                records = self.consumer.poll(timeout_ms=200)
                assigned = {tp.partition for tp in self.consumer.assignment()}
                if not self.assignments or self.assignments[-1] != assigned:
                    self.assignments.append(assigned)
                got = [(tp.partition, r.offset) for tp, rs in records.items() for r in rs]
                if got:
                    self.consumed.extend(got)
                    try:
                        self.consumer.commit()
                    except Exception as e:  # noqa: BLE001 - a rebalance in progress; the next poll retries
                        self.errors.append(f"commit: {e!r}")
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
        finally:
            self.consumer.close()


class ConfluentMember:
    """group_member.py (confluent-kafka) as its own process, with its journal."""

    def __init__(self, workdir: Path, bootstrap: str, group: str, topic: str):
        self.journal = workdir / "confluent-member.journal"
        self.stderr_path = workdir / "confluent-member.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, str(HERE / "group_member.py"), bootstrap, group, topic,
                                          str(self.journal), "confluent-member", "6000"],
                                         stdout=subprocess.DEVNULL, stderr=err)

    def lines(self) -> list[list[str]]:
        if not self.journal.exists():
            return []
        return [ln.split(" ", 3) for ln in self.journal.read_text().split("\n")[:-1]]

    def assignment(self) -> set[int]:
        parts: set[int] = set()
        for ln in self.lines():
            if ln[0] == "ASSIGN":
                parts = {int(p) for p in ln[2].split(",") if p}
            elif ln[0] == "REVOKE":
                parts = set()
        return parts

    def consumed(self) -> list[tuple[int, int]]:
        return [(int(ln[1]), int(ln[2])) for ln in self.lines() if ln[0] == "MSG"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.mark.timeout(300)
def test_group_keeps_offsets_when_coordinator_dies(healthy, tmp_path):
    c = healthy
    topic, group, partitions, per_partition = "grp-orders", "cluster-group", 6, 200

    def produce_round(tag: str):
        p = Producer({"bootstrap.servers": c.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
        errors = []
        for i in range(per_partition * partitions):
            p.produce(topic, value=f"{tag}-{i}".encode(), partition=i % partitions,
                      on_delivery=lambda err, msg: err and errors.append(err))
            p.poll(0)
        assert p.flush(60) == 0 and not errors, errors[:3]

    c.create_topic(topic, partitions=partitions, replication_factor=3)
    produce_round("first")

    # A first member reads part of every partition and commits where it stopped.
    target = {p: 50 + 20 * p for p in range(partitions)}
    first = Consumer({"bootstrap.servers": c.bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                      "fetch.wait.max.ms": 100})
    try:
        first.subscribe([topic])
        reached: set[int] = set()
        deadline = time.monotonic() + 60
        while reached != set(target):
            assert time.monotonic() < deadline, f"first member reached only partitions {sorted(reached)}"
            for m in first.consume(num_messages=500, timeout=0.5):
                assert m.error() is None, m.error()
                if m.offset() + 1 >= target[m.partition()]:
                    reached.add(m.partition())
        first.commit(offsets=[TopicPartition(topic, p, o) for p, o in target.items()], asynchronous=False)
    finally:
        first.close()
    assert committed_offsets(c, group, topic) == target

    coordinator = wait_until(lambda: coordinator_of(c, group), timeout=30, message="the group's coordinator")
    c.kill(coordinator)

    # Another broker leads the group's __consumer_offsets partition, loads the group and answers
    # with the same offsets.
    new_coordinator = wait_until(lambda: (lambda x: x if x not in (None, coordinator) else None)(coordinator_of(c, group)),
                                 timeout=60, interval=0.5, message=f"a coordinator other than broker {coordinator}")
    got = wait_until(lambda: committed_offsets(c, group, topic), timeout=60, interval=0.5,
                     message="committed offsets from the new coordinator")
    assert got == target, f"offsets after the coordinator {coordinator} died (new: {new_coordinator}): {got}"

    # A confluent-kafka member and a kafka-python member share the partitions, resume at the
    # committed offsets and consume what is produced next.
    confluent = ConfluentMember(tmp_path, c.bootstrap, group, topic)
    kp = KafkaPythonMember(c.bootstrap, group, topic)
    kp.start()
    try:
        def split():
            a, b = confluent.assignment(), (kp.assignments[-1] if kp.assignments else set())
            return a and b and not (a & b) and (a | b) == set(range(partitions)) and (a, b)
        wait_until(split, timeout=60, interval=0.25, message="both members assigned, partitions split between them")
        produce_round("second")
        end = {p: 2 * per_partition for p in range(partitions)}
        wait_until(lambda: committed_offsets(c, group, topic) == end, timeout=90, interval=0.5,
                   message=f"the group committed every partition to its end {end}")
    finally:
        kp.halt.set()
        kp.join(30)
        confluent.stop()
    consumed = confluent.consumed() + kp.consumed
    for p in range(partitions):
        offsets = {o for pp, o in consumed if pp == p}
        assert offsets, f"partition {p}: nothing consumed"
        assert min(offsets) == target[p], f"partition {p}: resumed at {min(offsets)}, committed {target[p]}"
        missing = set(range(target[p], end[p])) - offsets
        assert not missing, f"partition {p}: offsets never consumed: {sorted(missing)[:10]}"
    assert confluent.consumed() and kp.consumed, "both members consumed"
    assert not [e for e in kp.errors if not e.startswith("commit:")], kp.errors
    assert confluent.proc.returncode == 0, confluent.stderr_path.read_text(errors="replace")[-2000:]

    c.start(coordinator)
    c.wait_back_in_every_isr(coordinator, timeout=90, topics=[topic, "__consumer_offsets"])


# ============================================================================================
# CL7: every tool sees the same cluster
# ============================================================================================


def cluster_view_confluent(c: Cluster, topic: str) -> dict:
    controller, _, _ = c.describe_cluster()
    md = c.admin().list_topics(topic=topic, timeout=10)
    return {"brokers": sorted((b.id, b.host, b.port) for b in md.brokers.values()),
            "controller": controller,
            "partitions": {p.id: (p.leader, list(p.replicas), sorted(p.isrs)) for p in md.topics[topic].partitions.values()}}


def cluster_view_kcat(c: Cluster, topic: str, broker_id: int) -> dict:
    """kcat -L -J asking one broker (the only one in its bootstrap list)."""
    out = run(["kcat", "-L", "-J", "-b", c.broker(broker_id).bootstrap, "-t", topic, "-m", "10"], timeout=60)
    assert out.returncode == 0, out.stderr.decode()
    md = json.loads(out.stdout)
    assert md["originating_broker"]["id"] == broker_id, md["originating_broker"]
    (t,) = [t for t in md["topics"] if t["topic"] == topic]
    return {"brokers": sorted((b["id"], *(lambda h, p: (h, int(p)))(*b["name"].rsplit(":", 1))) for b in md["brokers"]),
            "controller": md["controllerid"],
            "partitions": {p["partition"]: (p["leader"], [r["id"] for r in p["replicas"]], sorted(r["id"] for r in p["isrs"]))
                           for p in t["partitions"]}}


def cluster_view_kafka_python(c: Cluster, topic: str) -> dict:
    from kafka.admin import KafkaAdminClient
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
    try:
        cl = admin.describe_cluster()
        (t,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return {"brokers": sorted((b["broker_id"], b["host"], b["port"]) for b in cl["brokers"]),
            "controller": cl["controller_id"],
            "partitions": {p["partition_index"]: (p["leader_id"], list(p["replica_nodes"]), sorted(p["isr_nodes"]))
                           for p in t["partitions"]}}


def cluster_view_samsa(c: Cluster, topic: str) -> dict:
    """`samsa cluster info` (CONTROLLER line, broker table with BROKER or ID, HOST, PORT, RACK and
    maybe more columns and tables) and `samsa topic describe` (LEADER, REPLICAS, ISR)."""
    info = samsa_cli(c.bootstrap, "cluster", "info")
    assert info.returncode == 0, info.stderr.decode()
    text = info.stdout.decode()
    controller = [int(ln.split()[1]) for ln in text.splitlines() if ln.startswith("CONTROLLER ")]
    assert len(controller) == 1, f"no single CONTROLLER line in {text!r}"
    tables = [b for b in text.split("\n\n") if b.strip() and {"HOST", "PORT"} <= set(b.strip().splitlines()[0].split())]
    assert len(tables) == 1, f"no single broker table (HOST, PORT columns) in {text!r}"
    rows = parse_table(tables[0].strip("\n"))
    id_col = "BROKER" if "BROKER" in rows[0] else "ID"
    # Registered brokers ("live"); brokers only named as replicas are listed as "offline".
    brokers = sorted((int(r[id_col]), r["HOST"], int(r["PORT"])) for r in rows if r.get("STATUS", "live") == "live")
    described = samsa_cli(c.bootstrap, "topic", "describe", topic)
    assert described.returncode == 0, described.stderr.decode()
    blocks = described.stdout.decode().split("\n\n")
    (ptable,) = [b for b in blocks if b.strip().startswith("PARTITION")]
    ids = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    partitions = {int(r["PARTITION"]): (int(r["LEADER"]), ids(r["REPLICAS"]), sorted(ids(r["ISR"])))
                  for r in parse_table(ptable.strip("\n"))}
    return {"brokers": brokers, "controller": controller[0], "partitions": partitions}


def samsa_attention(c: Cluster) -> dict[str, set[tuple[str, int]]] | None:
    """The partitions `samsa cluster info` lists under UNDER-REPLICATED PARTITIONS and OFFLINE
    PARTITIONS ("none" or a TOPIC/PARTITION table after each title); None when it has no such
    sections."""
    text = samsa_cli(c.bootstrap, "cluster", "info").stdout.decode()
    out = {}
    for title in ("UNDER-REPLICATED PARTITIONS", "OFFLINE PARTITIONS"):
        if title not in text:
            return None
        body = text.split(title + "\n", 1)[1].split("\n\n", 1)[0].strip("\n")
        out[title] = set() if body.strip() == "none" else {(r["TOPIC"], int(r["PARTITION"])) for r in parse_table(body)}
    return out


def metadata_attention(c: Cluster) -> dict[str, set[tuple[str, int]]]:
    """Under-replicated (ISR smaller than the replicas) and offline (no leader) partitions of every
    topic, from confluent-kafka's metadata."""
    md = c.admin().list_topics(timeout=10)
    parts = [(t.topic, p) for t in md.topics.values() for p in t.partitions.values()]
    return {"UNDER-REPLICATED PARTITIONS": {(t, p.id) for t, p in parts if len(p.isrs) < len(p.replicas)},
            "OFFLINE PARTITIONS": {(t, p.id) for t, p in parts if p.leader < 0}}


@pytest.mark.timeout(180)
def test_tools_show_the_same_cluster(healthy):
    c = healthy
    topic = "tools-view"
    c.create_topic(topic, partitions=3, replication_factor=3)
    c.wait_fully_replicated(topic, preferred_leaders=True, timeout=60)
    expected_brokers = sorted((i, "127.0.0.1", c.broker(i).port) for i in c.ids)

    def views() -> dict[str, dict]:
        v = {"confluent": cluster_view_confluent(c, topic), "kafka-python": cluster_view_kafka_python(c, topic),
             "samsa": cluster_view_samsa(c, topic)}
        for b in c.ids:
            v[f"kcat@{b}"] = cluster_view_kcat(c, topic, b)
        return v

    last: dict = {}

    def agree():
        last.clear()
        last.update(views())
        ref = last["confluent"]
        return ref["brokers"] == expected_brokers and all(v == ref for v in last.values())

    try:
        wait_until(agree, timeout=30, interval=1.0, message="every tool showing the same cluster")
    except AssertionError:
        pytest.fail("the tools disagree (expected brokers " f"{expected_brokers}):\n" +
                    "\n".join(f"{k}: {v}" for k, v in last.items()))
    ref = last["confluent"]
    assert ref["controller"] in c.ids
    # `cluster info`'s under-replicated and offline sections list what the metadata shows.
    attention: dict = {}

    def same_attention():
        attention["samsa"] = samsa_attention(c)
        attention["metadata"] = metadata_attention(c)
        return attention["samsa"] == attention["metadata"]
    try:
        wait_until(same_attention, timeout=30, interval=1.0, message="cluster info's sections matching the metadata")
    except AssertionError:
        pytest.fail(f"cluster info's under-replicated/offline partitions differ from the metadata's: {attention}")
    for p, (leader, replicas, isr) in ref["partitions"].items():
        assert sorted(replicas) == list(c.ids) and isr == sorted(replicas) and leader == replicas[0], (p, leader, replicas, isr)


@pytest.mark.timeout(240)
def test_reassignment_moves_a_partition_and_deletion_reaches_every_replica(healthy):
    """CL8  `samsa topic reassign` (AlterPartitionReassignments, Kafka's procedure) moves a partition
    from brokers [a, b] to [b, c]: broker c copies it (byte-identical) and joins, broker a's copy is
    deleted, and the data stays readable; DeleteTopics then removes the
    topic's folders on every broker (StopReplica with delete)."""
    c = healthy
    topic = "moving"
    c.create_topic(topic, partitions=1, replication_factor=2)
    wait_until(lambda: len(c.isr_of(topic, 0)) == 2, timeout=60, message="both replicas in sync")
    first, second = c.replicas_of(topic, 0)
    (third,) = set(c.ids) - {first, second}
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(2000):
        p.produce(topic, value=f"m{i}".encode())
    assert p.flush(60) == 0

    moved = samsa_cli(c.bootstrap, "topic", "reassign", topic, "--partition", "0", "--replicas", f"{second},{third}")
    assert moved.returncode == 0, moved.stderr
    target = sorted([second, third])
    wait_until(lambda: sorted(c.replicas_of(topic, 0)) == target and sorted(c.isr_of(topic, 0)) == target,
               timeout=90, interval=0.25, message=f"partition moved to brokers {target}")
    listed = samsa_cli(c.bootstrap, "topic", "reassign", "--list")
    assert listed.returncode == 0, listed.stderr
    assert topic not in listed.stdout.decode(), listed.stdout.decode()
    # The removed replica's copy goes; the new one is byte-identical to the leader's up to the high watermark.
    wait_until(lambda: not (c.broker(first).data_dir / f"{topic}-0").exists(), timeout=60,
               message=f"broker {first}'s replica deleted")
    # The new leader's high watermark catches up once its followers have fetched from it.
    high = wait_until(lambda: (lambda h: h if h == 2000 else None)(watermarks(c.bootstrap, topic, 0)[1]),
                      timeout=30, interval=0.25, message="the new leader's high watermark at 2000")
    leader = c.leader_of(topic, 0)
    assert c.replica_batches(topic, 0, third, high) == c.replica_batches(topic, 0, leader, high)
    values = [m.value() for m in consume_range(c.bootstrap, topic, 0, 0, high, timeout=60)]
    assert values == [f"m{i}".encode() for i in range(2000)]

    admin = c.fresh_admin()
    fut = admin.delete_topics([topic], operation_timeout=30, request_timeout=40)
    fut[topic].result(timeout=60)
    for b in c.ids:
        wait_until(lambda b=b: not any(d.name.startswith(f"{topic}-") and not d.name.endswith("-delete")
                                       for d in c.broker(b).data_dir.iterdir()),
                   timeout=60, message=f"topic folders gone on broker {b}")
    assert topic not in c.fresh_admin().list_topics(timeout=10).topics
