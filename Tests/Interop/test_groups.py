"""Consumer groups (classic protocol) with real clients and raw requests.

AP1  confluent-kafka group of three member processes on a 6-partition topic: 2 partitions each;
     a clean close (LeaveGroup) hands its partitions to the other two (3 each); a SIGKILLed
     member's partitions move to the survivor after the session timeout; with a producer
     writing throughout, every produced message is consumed at least once.
AP2  two groups on one topic each receive every message (and inside a group each message goes
     to one member).
AP3  committed offsets survive a clean broker restart (SIGTERM) and a crash (SIGKILL): a new
     member of the group resumes exactly at them.
AP4  kafka-python group consumers (their own range/roundrobin assignors): consume, commit,
     resume; a mixed confluent + kafka-python group as DescribeGroups and the committed
     offsets (both admin clients) show it, with lag = log end - committed matching the lag the
     clients compute from their positions.
AP5  static membership (KIP-345): a static member restarted within the session timeout gets
     its partitions back without a rebalance of the other member.
AP6  error codes and edge cases seen on raw sockets: FindCoordinator, MEMBER_ID_REQUIRED,
     UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, INVALID_SESSION_TIMEOUT, simple (generation -1)
     commits, OffsetFetch of uncommitted partitions, DeleteGroups.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

import kafka_raw as raw
from samsa_interop import create_topic, group_lag, wait_until

HERE = Path(__file__).resolve().parent

# Groups form at once (no initial rebalance delay) and sessions can be short, so the module
# runs in seconds rather than minutes.
BROKER_OVERRIDES = {
    "group.initial.rebalance.delay.ms": 0,
    "group.min.session.timeout.ms": 1000,
}


def raw_conn(broker) -> raw.KafkaConnection:
    return raw.KafkaConnection("127.0.0.1", broker.port)


def describe(broker, group: str) -> dict:
    """DescribeGroups v4 over a raw connection: the broker's own view of the group."""
    with raw_conn(broker) as c:
        (g,) = raw.describe_groups(c, [group])
    assert g["error_code"] == 0, g
    return g


def produce_values(bootstrap: str, topic: str, values_by_partition: dict[int, list[str]]) -> dict[tuple[int, int], str]:
    """Produces the values (acks=all) and returns {(partition, offset): value}."""
    delivered: dict[tuple[int, int], str] = {}
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
        else:
            delivered[(msg.partition(), msg.offset())] = msg.value().decode()

    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for part, values in values_by_partition.items():
        for v in values:
            p.produce(topic, value=v.encode(), partition=part, on_delivery=cb)
            p.poll(0)
    assert p.flush(30) == 0, "undelivered messages after flush"
    assert not errors, errors[:3]
    return delivered


def group_consumer(bootstrap: str, group: str, **extra) -> Consumer:
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


def tp_set(tps) -> set[int]:
    return {tp.partition for tp in tps}


# ============================================================================================
# AP1: three member processes, clean leave, crash, at-least-once under continuous produce
# ============================================================================================


class MemberProcess:
    """One group_member.py process and its journal (see that file for the line format)."""

    def __init__(self, workdir: Path, bootstrap: str, group: str, topic: str, name: str, session_ms: int):
        self.name = name
        self.journal = workdir / f"{name}.journal"
        self.stderr_path = workdir / f"{name}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "group_member.py"), bootstrap, group, topic, str(self.journal), name,
                 str(session_ms)], stdout=subprocess.DEVNULL, stderr=err)

    def lines(self) -> list[list[str]]:
        """Complete journal lines (a line torn by SIGKILL has no newline and is ignored)."""
        if not self.journal.exists():
            return []
        text = self.journal.read_text()
        return [ln.split(" ", 3) for ln in text.split("\n")[:-1]]

    def assignment(self) -> tuple[str | None, frozenset[int]]:
        """(member id, partitions) after the last ASSIGN/REVOKE (eager protocol: a revoke
        drops everything)."""
        member, parts = None, frozenset()
        for ln in self.lines():
            if ln[0] in ("ASSIGN", "REVOKE"):
                member = ln[1]
                parts = frozenset(int(p) for p in ln[2].split(",") if p) if ln[0] == "ASSIGN" else frozenset()
        return member, parts

    def consumed(self) -> list[tuple[int, int, str]]:
        return [(int(ln[1]), int(ln[2]), ln[3]) for ln in self.lines() if ln[0] == "MSG"]

    def commits(self) -> int:
        return sum(1 for ln in self.lines() if ln[0] == "COMMIT")

    def events(self, kind: str) -> list[list[str]]:
        return [ln for ln in self.lines() if ln[0] == kind]

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class ContinuousProducer(threading.Thread):
    """Writes ap1-<n> round-robin over the partitions until stopped; records every
    acknowledged (partition, offset) -> value."""

    def __init__(self, bootstrap: str, topic: str, partitions: int):
        super().__init__(daemon=True)
        self.topic = topic
        self.partitions = partitions
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        self.delivered: dict[tuple[int, int], str] = {}
        self.errors: list = []
        self.halt = threading.Event()

    def _cb(self, err, msg):
        if err is not None:
            self.errors.append(err)
        else:
            self.delivered[(msg.partition(), msg.offset())] = msg.value().decode()

    def run(self):
        n = 0
        while not self.halt.is_set():
            for _ in range(self.partitions):
                self.producer.produce(self.topic, value=f"ap1-{n}".encode(), partition=n % self.partitions,
                                      on_delivery=self._cb)
                n += 1
            self.producer.poll(0)
            time.sleep(0.02)
        self.remaining = self.producer.flush(30)


def owners(members: list[MemberProcess]) -> dict[str, frozenset[int]]:
    return {m.name: m.assignment()[1] for m in members}


def balanced(members: list[MemberProcess], partitions: int, each: int):
    """Truthy when the members' current assignments are disjoint, `each` partitions apiece,
    and cover every partition."""
    own = owners(members)
    parts = [p for ps in own.values() for p in ps]
    if sorted(parts) == list(range(partitions)) and all(len(ps) == each for ps in own.values()):
        return own
    return None


def test_three_members_leave_and_crash_at_least_once(broker, tmp_path):
    """AP1: confluent-kafka, three member processes subscribe to a 6-partition topic while a
    producer writes continuously: each member owns exactly 2 partitions; one closes cleanly
    (consumer.close() -> LeaveGroup: the broker drops it at once, before any session timeout)
    and the other two own 3 each; one of those is SIGKILLed: the broker keeps it until its
    session times out, then the survivor owns all 6. Every acknowledged message was recorded
    by some member (at least once, values match offsets), and the group's committed offsets end
    at the log end offsets."""
    topic, group, partitions, session_ms = "ap1-orders", "ap1-group", 6, 4000
    create_topic(broker.bootstrap, topic, partitions=partitions)
    producer = ContinuousProducer(broker.bootstrap, topic, partitions)
    producer.start()
    members = [MemberProcess(tmp_path, broker.bootstrap, group, topic, name, session_ms) for name in ("m1", "m2", "m3")]
    m1, m2, m3 = members
    try:
        def diag():
            return {m.name: (m.proc.poll(), m.assignment(), m.stderr()[-500:]) for m in members}

        # --- 3 members x 2 partitions ---------------------------------------------------------
        own = wait_until(lambda: balanced(members, partitions, 2), timeout=40, message="3 members x 2 partitions")
        wait_until(lambda: all(m.commits() > 0 for m in members), timeout=20, message="every member committing")
        g = describe(broker, group)
        assert g["state"] == "Stable" and len(g["members"]) == 3, g
        broker_view = {m["client_id"]: frozenset(p for ps in raw.decode_consumer_assignment(m["assignment"]).values()
                                                  for p in ps) for m in g["members"]}
        assert broker_view == own, f"DescribeGroups assignments {broker_view} != members' own {own}"

        # --- clean close: LeaveGroup, the other two take over (3 each) ------------------------
        m3_id = m3.assignment()[0]
        t0 = time.monotonic()
        m3.proc.terminate()
        assert m3.proc.wait(30) == 0, m3.stderr()
        assert m3.events("CLOSED"), "m3 did not finish consumer.close()"
        # close() sent LeaveGroup: the broker drops the member at once (a member that merely
        # disappeared would stay until its session timeout).
        # Polled for at most half the session timeout, so only a LeaveGroup can explain it.
        wait_until(lambda: m3_id not in {m["member_id"] for m in describe(broker, group)["members"]},
                   timeout=session_ms / 2000, message=f"closed member {m3_id} gone from DescribeGroups")
        own = wait_until(lambda: balanced([m1, m2], partitions, 3), timeout=30,
                         message=f"2 members x 3 partitions after m3 left: {diag()}")
        leave_rebalance_s = time.monotonic() - t0
        c1, c2 = m1.commits(), m2.commits()
        wait_until(lambda: m1.commits() > c1 and m2.commits() > c2, timeout=20, message="m1, m2 committing again")

        # --- crash: SIGKILL, partitions move after the session timeout ----------------------
        m2_id = m2.assignment()[0]
        t1 = time.monotonic()
        m2.proc.kill()
        m2.proc.wait(10)
        still = {m["member_id"] for m in describe(broker, group)["members"]}
        assert m2_id in still, f"killed member {m2_id} vanished before its session timed out ({still})"
        wait_until(lambda: m1.assignment()[1] == frozenset(range(partitions)), timeout=session_ms / 1000 + 20,
                   message=f"m1 owning all partitions after m2's crash: {diag()}")
        crash_takeover_s = time.monotonic() - t1
        assert crash_takeover_s >= session_ms / 1000 - 1.5, (
            f"partitions moved {crash_takeover_s:.1f}s after the crash, before the {session_ms} ms session timeout")
        g = describe(broker, group)
        assert [m["member_id"] for m in g["members"]] == [m1.assignment()[0]], g
        c1 = m1.commits()
        wait_until(lambda: m1.commits() > c1, timeout=20, message="m1 committing after the takeover")
    finally:
        producer.halt.set()
        producer.join(60)

    try:
        assert not producer.errors, f"{len(producer.errors)} delivery errors, first {producer.errors[0]}"
        assert producer.remaining == 0
        produced = producer.delivered
        assert len(produced) > 1000, len(produced)

        # Everything acknowledged is eventually recorded (the survivor reads the tail).
        def missing():
            seen = {(p, o) for m in members for p, o, _ in m.consumed()}
            return [k for k in produced if k not in seen]

        wait_until(lambda: not missing(), timeout=60, message="every produced message consumed")
        for m in members:
            for p, o, v in m.consumed():
                assert produced.get((p, o)) == v, f"{m.name} read {v!r} at {p}/{o}, produced {produced.get((p, o))!r}"
            assert not m.events("ERROR"), (m.name, m.events("ERROR"))

        # The group's committed offsets reach the log end offsets.
        ends = {p: max(o for (pp, o) in produced if pp == p) + 1 for p in range(partitions)}
        with raw_conn(broker) as c:
            def committed():
                err, offs = raw.offset_fetch(c, group, [(topic, p) for p in range(partitions)])
                assert err == 0
                return {p: offs[(topic, p)]["offset"] for p in range(partitions)}
            wait_until(lambda: committed() == ends, timeout=20, message=f"committed == log end {ends}")
    finally:
        m1.proc.terminate()
        m1_rc = m1.proc.wait(30)
        for m in members:
            m.stop()
    assert m1_rc == 0, m1.stderr()
    total = sum(len(m.consumed()) for m in members)
    print(f"AP1: produced {len(produced)}, recorded {total} ({total - len(produced)} redeliveries); "
          f"leave rebalance {leave_rebalance_s:.1f}s, crash takeover {crash_takeover_s:.1f}s")


# ============================================================================================
# AP2: two groups, one topic
# ============================================================================================


def poll_all(consumers: dict[str, Consumer], sink: dict[str, list], until, timeout: float, message: str):
    """Polls every consumer in turn (which also serves their rebalance callbacks), appending
    messages to sink[name], until until() is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        for name, c in consumers.items():
            for m in c.consume(num_messages=500, timeout=0.05):
                assert m.error() is None, f"{name}: {m.error()}"
                sink.setdefault(name, []).append(m)
        if until():
            return
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {message}"


def test_two_groups_each_receive_every_message(broker):
    """AP2: two groups subscribe to the same 4-partition topic, group A with two members and
    group B with one. Each group receives every produced message (pub/sub across groups), and
    inside group A the two members split the partitions and each message is delivered to exactly
    one of them (queue inside a group)."""
    topic, partitions = "ap2-events", 4
    create_topic(broker.bootstrap, topic, partitions=partitions)
    consumers = {
        "a1": group_consumer(broker.bootstrap, "ap2-group-a", **{"client.id": "a1"}),
        "a2": group_consumer(broker.bootstrap, "ap2-group-a", **{"client.id": "a2"}),
        "b1": group_consumer(broker.bootstrap, "ap2-group-b", **{"client.id": "b1"}),
    }
    got: dict[str, list] = {}
    try:
        for c in consumers.values():
            c.subscribe([topic])

        def ready():
            a1, a2, b1 = (tp_set(consumers[n].assignment()) for n in ("a1", "a2", "b1"))
            return a1 and a2 and not (a1 & a2) and a1 | a2 == set(range(partitions)) and b1 == set(range(partitions))

        poll_all(consumers, got, ready, timeout=30, message="group A split 2 ways, group B owning all")
        assert not any(got.values()), "messages before anything was produced"
        produced = produce_values(broker.bootstrap, topic, {p: [f"ap2-{p}-{i}" for i in range(100)]
                                                             for p in range(partitions)})

        def count(names):
            return sum(len(got.get(n, [])) for n in names)

        poll_all(consumers, got, lambda: count(["a1", "a2"]) >= len(produced) and count(["b1"]) >= len(produced),
                 timeout=30, message="both groups reading everything")
        # a little longer: a duplicate delivery inside a group would show up here
        end = time.monotonic() + 1.0
        poll_all(consumers, got, lambda: time.monotonic() > end, timeout=5, message="settle")

        for names in (["a1", "a2"], ["b1"]):
            seen = [(m.partition(), m.offset(), m.value().decode()) for n in names for m in got.get(n, [])]
            assert len(seen) == len(set(seen)), f"group of {names}: a message was delivered twice"
            assert {(p, o): v for p, o, v in seen} == produced, f"group of {names} did not get exactly what was produced"
        for n in ("a1", "a2"):
            own = tp_set(consumers[n].assignment())
            assert {m.partition() for m in got[n]} <= own, f"{n} got messages from partitions it does not own"
            assert got[n], f"{n} got nothing"
    finally:
        for c in consumers.values():
            c.close()


# ============================================================================================
# AP3: committed offsets survive a clean restart and a crash
# ============================================================================================


def wait_assigned(consumer: Consumer, partitions: int, timeout: float = 30) -> list:
    """Polls until the consumer owns all partitions; returns the messages polled meanwhile
    (the poll that completes the assignment may already return some)."""
    deadline = time.monotonic() + timeout
    got = []
    while tp_set(consumer.assignment()) != set(range(partitions)):
        for m in consumer.consume(num_messages=500, timeout=0.1):
            assert m.error() is None, m.error()
            got.append(m)
        assert time.monotonic() < deadline, f"no full assignment within {timeout}s: {consumer.assignment()}"
    return got


def resume_and_check(bootstrap: str, group: str, topic: str, expected: dict[int, int], metadata: dict[int, str],
                     produced: dict[tuple[int, int], str]):
    """A new member of `group` (auto.offset.reset=latest, so lost commits would show as
    starting at the log end) sees `expected` via committed() and receives, as its first
    message of every partition, the one at the committed offset."""
    c = group_consumer(bootstrap, group, **{"auto.offset.reset": "latest"})
    try:
        c.subscribe([topic])
        early = wait_assigned(c, len(expected))
        committed = c.committed([TopicPartition(topic, p) for p in expected], timeout=10)
        assert {tp.partition: tp.offset for tp in committed} == expected
        assert {tp.partition: tp.metadata for tp in committed} == metadata
        first: dict[int, tuple[int, str]] = {}
        for m in early:
            first.setdefault(m.partition(), (m.offset(), m.value().decode()))
        deadline = time.monotonic() + 30
        while len(first) < len(expected):
            assert time.monotonic() < deadline, f"first messages so far {first}, expected offsets {expected}"
            for m in c.consume(num_messages=500, timeout=0.2):
                assert m.error() is None, m.error()
                first.setdefault(m.partition(), (m.offset(), m.value().decode()))
        assert {p: o for p, (o, _) in first.items()} == expected, "did not resume at the committed offsets"
        for p, (o, v) in first.items():
            assert produced[(p, o)] == v
    finally:
        c.close()


def test_committed_offsets_survive_clean_restart_and_crash(broker_factory):
    """AP3: a member commits offsets (with metadata) and closes; the broker is stopped cleanly
    (SIGTERM) and restarted on the same directory: a new member of the group gets the same
    committed offsets and metadata from committed() and its first message per partition is the
    one at the committed offset (also a committed 0, and one at the log end). Then the group
    commits different offsets and the broker is SIGKILLed: after the restart the new offsets
    (not the older ones) are the committed ones and consumption resumes there."""
    b = broker_factory(**BROKER_OVERRIDES)
    topic, group, partitions = "ap3-ledger", "ap3-group", 4
    create_topic(b.bootstrap, topic, partitions=partitions)
    produced = produce_values(b.bootstrap, topic, {p: [f"ap3-{p}-{i}" for i in range(50)] for p in range(partitions)})

    def commit_and_close(offsets: dict[int, int], metadata: dict[int, str]):
        c = group_consumer(b.bootstrap, group)
        try:
            c.subscribe([topic])
            wait_assigned(c, partitions)
            c.commit(offsets=[TopicPartition(topic, p, o, metadata=metadata[p]) for p, o in offsets.items()],
                     asynchronous=False)
            got = c.committed([TopicPartition(topic, p) for p in offsets], timeout=10)
            assert {tp.partition: tp.offset for tp in got} == offsets
        finally:
            c.close()

    def more(tag: str):
        produced.update(produce_values(b.bootstrap, topic, {p: [f"ap3-{p}-{tag}"] for p in range(partitions)}))

    # Phase 1: clean restart. p3 is committed at its log end (50).
    first = {0: 10, 1: 37, 2: 0, 3: 50}
    meta1 = {p: f"clean-{p}" for p in range(partitions)}
    commit_and_close(first, meta1)
    assert b.stop() == 0
    b.start()
    with raw_conn(b) as c:  # straight from the replayed __consumer_offsets, before any member joins
        err, offs = wait_until(lambda: (lambda r: r if r[0] == 0 else None)(
            raw.offset_fetch(c, group, [(topic, p) for p in range(partitions)])), timeout=20,
            message="OffsetFetch without COORDINATOR_LOAD_IN_PROGRESS")
        assert {p: offs[(topic, p)]["offset"] for p in range(partitions)} == first
    more("after-clean-restart")
    resume_and_check(b.bootstrap, group, topic, first, meta1, produced)

    # Phase 2: crash. Different offsets, so replaying the older commits would show.
    second = {0: 20, 1: 51, 2: 5, 3: 51}
    meta2 = {p: f"crash-{p}" for p in range(partitions)}
    commit_and_close(second, meta2)
    assert b.kill() == -9
    b.start()
    more("after-crash")
    resume_and_check(b.bootstrap, group, topic, second, meta2, produced)


# ============================================================================================
# AP4: kafka-python group consumers; a mixed group seen through DescribeGroups and lag
# ============================================================================================


def kp_consumer(bootstrap: str, group: str, client_id: str, **extra) -> KafkaConsumer:
    conf = dict(bootstrap_servers=bootstrap, group_id=group, client_id=client_id, enable_auto_commit=False,
                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                fetch_max_wait_ms=100)
    conf.update(extra)
    return KafkaConsumer(**conf)


def kp_poll(consumer: KafkaConsumer, max_records: int | None = None) -> list:
    out = []
    for recs in consumer.poll(timeout_ms=50, max_records=max_records).values():
        out.extend(recs)
    return out


def test_kafka_python_group_consume_commit_resume(broker):
    """AP4: two kafka-python KafkaConsumers join one group with different assignor lists
    ([roundrobin] and the default [range, roundrobin]): the broker selects the one protocol
    both support (roundrobin), they split the 3 partitions, and together read every message
    exactly once (each only from its own partitions). They commit and close; a third
    kafka-python member of the group then reads exactly the messages produced afterwards
    (resumes at the commits) and its commit is visible through committed()."""
    topic, group, partitions = "ap4-kp", "ap4-kp-group", 3
    create_topic(broker.bootstrap, topic, partitions=partitions)
    k1 = kp_consumer(broker.bootstrap, group, "kp1", partition_assignment_strategy=[RoundRobinPartitionAssignor])
    k2 = kp_consumer(broker.bootstrap, group, "kp2")
    got: dict[str, list] = {"kp1": [], "kp2": []}
    try:
        k1.subscribe([topic])
        k2.subscribe([topic])

        def split():
            for name, k in (("kp1", k1), ("kp2", k2)):
                got[name].extend(kp_poll(k))
            a1, a2 = ({tp.partition for tp in k.assignment()} for k in (k1, k2))
            return a1 and a2 and not (a1 & a2) and a1 | a2 == set(range(partitions))

        wait_until(split, timeout=30, interval=0, message="two kafka-python members splitting the partitions")
        g = describe(broker, group)
        assert (g["state"], g["protocol_type"], g["protocol"]) == ("Stable", "consumer", "roundrobin"), g
        produced = produce_values(broker.bootstrap, topic, {p: [f"ap4-{p}-{i}" for i in range(60)]
                                                             for p in range(partitions)})

        def all_read():
            for name, k in (("kp1", k1), ("kp2", k2)):
                got[name].extend(kp_poll(k))
            return sum(map(len, got.values())) >= len(produced)

        wait_until(all_read, timeout=30, interval=0, message="kafka-python members reading everything")
        seen = [(r.partition, r.offset, r.value.decode()) for recs in got.values() for r in recs]
        assert sorted(seen) == sorted((p, o, v) for (p, o), v in produced.items()), "not exactly what was produced"
        for name, k in (("kp1", k1), ("kp2", k2)):
            assert {r.partition for r in got[name]} <= {tp.partition for tp in k.assignment()}, name
            k.commit()
            for tp in k.assignment():
                assert k.committed(tp) == 60, (name, tp, k.committed(tp))
    finally:
        k1.close(autocommit=False)
        k2.close(autocommit=False)

    produced2 = produce_values(broker.bootstrap, topic, {p: [f"ap4-{p}-late-{i}" for i in range(20)]
                                                          for p in range(partitions)})
    k3 = kp_consumer(broker.bootstrap, group, "kp3")
    try:
        k3.subscribe([topic])
        recs: list = []
        wait_until(lambda: recs.extend(kp_poll(k3)) or len(recs) >= len(produced2), timeout=30, interval=0,
                   message="the resumed kafka-python member reading the new messages")
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            recs.extend(kp_poll(k3))
        assert sorted((r.partition, r.offset, r.value.decode()) for r in recs) == sorted(
            (p, o, v) for (p, o), v in produced2.items()), "did not resume exactly at the committed offsets"
        k3.commit()
        assert {tp.partition: k3.committed(tp) for tp in k3.assignment()} == {p: 80 for p in range(partitions)}
    finally:
        k3.close(autocommit=False)


def test_mixed_group_describe_and_lag(broker):
    """AP4 (mixed): a confluent-kafka and a kafka-python consumer in one group (both default to
    [range, roundrobin]; the group runs "range"). DescribeGroups, through kafka-python's
    KafkaAdminClient.describe_groups and confluent's AdminClient.describe_consumer_groups, lists
    exactly these two members with their client ids, host /127.0.0.1 and the partitions each
    consumer reports through assignment(). After both consume part of the topic and commit their
    positions, committed offsets (kafka-python list_group_offsets and confluent
    list_consumer_group_offsets) equal the positions, and lag = log end - committed equals the
    lag the clients compute from their positions and end offsets."""
    topic, group, partitions = "ap4-mixed", "ap4-mixed-group", 4
    create_topic(broker.bootstrap, topic, partitions=partitions)
    produce_values(broker.bootstrap, topic, {p: [f"mx-{p}-{i}" for i in range(100 + 10 * p)] for p in range(partitions)})
    cc = group_consumer(broker.bootstrap, group, **{"client.id": "ap4-confluent"})
    kc = kp_consumer(broker.bootstrap, group, "ap4-kpython")
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    cadmin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        cc.subscribe([topic])
        kc.subscribe([topic])
        # Consume a few messages at a time until both own their share and have read at least one
        # message of every partition they own (so every partition gets a committed position).
        read_c: dict[int, int] = {}
        read_k: dict[int, int] = {}

        def progressed():
            for m in cc.consume(num_messages=3, timeout=0.05):
                assert m.error() is None, m.error()
                read_c[m.partition()] = m.offset() + 1
            for r in kp_poll(kc, max_records=3):
                read_k[r.partition] = r.offset + 1
            ac, ak = tp_set(cc.assignment()), {tp.partition for tp in kc.assignment()}
            return (ac and ak and not (ac & ak) and ac | ak == set(range(partitions))
                    and ac <= set(read_c) and ak <= set(read_k))

        wait_until(progressed, timeout=30, interval=0, message="mixed group formed and both members reading")
        assign_c = tp_set(cc.assignment())
        assign_k = {tp.partition for tp in kc.assignment()}

        # Commit the positions (next offset to read) both clients report.
        pos_c = {tp.partition: tp.offset for tp in cc.position(cc.assignment())}
        cc.commit(offsets=[TopicPartition(topic, p, o) for p, o in pos_c.items()], asynchronous=False)
        pos_k = {tp.partition: kc.position(tp) for tp in kc.assignment()}
        kc.commit({tp: __import__("kafka").OffsetAndMetadata(pos_k[tp.partition], "", -1) for tp in kc.assignment()})
        positions = {**pos_c, **pos_k}
        assert positions == {**read_c, **read_k}, "positions are not after the last message each consumer got"

        # --- DescribeGroups: kafka-python admin ----------------------------------------------
        d = kadmin.describe_groups([group])[group]
        assert d["error"] is None and d["group_state"] == "Stable", d
        assert (d["protocol_type"], d["protocol_data"]) == ("consumer", "range"), d
        members = {m["client_id"]: m for m in d["members"]}
        assert set(members) == {"ap4-confluent", "ap4-kpython"}, d["members"]
        for cid, own in (("ap4-confluent", assign_c), ("ap4-kpython", assign_k)):
            m = members[cid]
            assert m["client_host"] == "/127.0.0.1", m
            parts = {p for a in m["member_assignment"]["assigned_partitions"] if a["topic"] == topic
                     for p in a["partitions"]}
            assert parts == own, (cid, parts, own)
            assert m["member_metadata"]["topics"] == [topic], m
        assert members["ap4-confluent"]["member_id"] == cc.memberid()

        # --- DescribeGroups: confluent admin -------------------------------------------------
        cd = cadmin.describe_consumer_groups([group])[group].result(timeout=20)
        assert str(cd.state).endswith("STABLE") and cd.partition_assignor == "range", (cd.state, cd.partition_assignor)
        assert not cd.is_simple_consumer_group
        assert cd.coordinator.id == 0 and cd.coordinator.port == broker.port, cd.coordinator
        cmembers = {m.client_id: m for m in cd.members}
        assert set(cmembers) == {"ap4-confluent", "ap4-kpython"}
        for cid, own in (("ap4-confluent", assign_c), ("ap4-kpython", assign_k)):
            m = cmembers[cid]
            assert m.host == "/127.0.0.1" and m.member_id == members[cid]["member_id"], vars(m)
            assert {tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic} == own

        # --- committed offsets and lag ---------------------------------------------------------
        lag = group_lag(broker.bootstrap, group)  # confluent admin: OffsetFetch + ListOffsets
        assert set(lag) == {(topic, p) for p in range(partitions)}, lag
        kp_committed = kadmin.list_group_offsets(group)[group]
        assert {tp.partition: om.offset for tp, om in kp_committed.items() if tp.topic == topic} == positions
        assert {p: lag[(topic, p)]["committed"] for p in range(partitions)} == positions
        # the clients' own, position-based lag
        client_lag = {}
        for tp in cc.assignment():
            _, high = cc.get_watermark_offsets(tp, timeout=10, cached=False)
            client_lag[tp.partition] = high - pos_c[tp.partition]
        for tp, end in kc.end_offsets(list(kc.assignment())).items():
            client_lag[tp.partition] = end - pos_k[tp.partition]
        assert {p: lag[(topic, p)]["lag"] for p in range(partitions)} == client_lag
        assert {p: lag[(topic, p)]["log_end"] for p in range(partitions)} == {p: 100 + 10 * p for p in range(partitions)}
        assert any(v > 0 for v in client_lag.values()), f"expected some lag, got {client_lag}"
    finally:
        cc.close()
        kc.close(autocommit=False)
        kadmin.close()
