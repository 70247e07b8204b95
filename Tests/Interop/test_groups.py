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
     commits, OffsetFetch of uncommitted partitions, OffsetDelete, DeleteGroups; plus the two
     broker answers behind AP5's leader case: the JoinGroup answer to a rejoining static leader,
     and librdkafka's all-topics Metadata v12 request (3 stray bytes after its end).

The member processes of AP1 run group_member.py. Brokers here start with
group.initial.rebalance.delay.ms=0 and group.min.session.timeout.ms=1000 so groups form at once
and short sessions are allowed.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, OffsetAndMetadata
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

import kafka_raw as raw
from samsa_interop import create_topic, group_consumer, group_lag, wait_until

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


def tp_set(tps) -> set[int]:
    return {tp.partition for tp in tps}


# ============================================================================================
# AP1: three member processes, clean leave, crash, at-least-once under continuous produce
# ============================================================================================


class MemberProcess:
    """One group_member.py process and its journal (see that file for the line format)."""

    def __init__(self, workdir: Path, bootstrap: str, group: str, topic: str, name: str, session_ms: int,
                 commit_delay_ms: int = 0):
        self.name = name
        self.journal = workdir / f"{name}.journal"
        self.stderr_path = workdir / f"{name}.stderr"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "group_member.py"), bootstrap, group, topic, str(self.journal), name,
                 str(session_ms), str(commit_delay_ms)], stdout=subprocess.DEVNULL, stderr=err)

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

    def last_assign_index(self) -> int:
        return max(i for i, ln in enumerate(self.lines()) if ln[0] == "ASSIGN")

    def committed_by_me(self, p: int) -> int | None:
        """The highest offset this member committed (and journaled) for partition p."""
        offs = [int(o) for ln in self.lines() if ln[0] == "COMMIT"
                for pp, o in (x.split(":") for x in ln[1].split(",")) if int(pp) == p]
        return max(offs, default=None)

    def read_up_to(self, p: int) -> int | None:
        """1 + the highest offset of partition p this member recorded."""
        offs = [o for pp, o, _ in self.consumed() if pp == p]
        return max(offs) + 1 if offs else None

    def first_read_after(self, p: int, index: int) -> int | None:
        """The offset of the first message of partition p recorded after journal line `index`."""
        for ln in self.lines()[index + 1:]:
            if ln[0] == "MSG" and int(ln[1]) == p:
                return int(ln[2])
        return None

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
    by some member (at least once, values match offsets); each handed-over partition resumed
    exactly at the group's committed offset; the batch the killed member had recorded but not
    yet committed (it is killed in that window) was delivered again to the survivor; the group's
    committed offsets end at the log end offsets."""
    topic, group, partitions, session_ms = "ap1-orders", "ap1-group", 6, 4000
    create_topic(broker.bootstrap, topic, partitions=partitions)
    producer = ContinuousProducer(broker.bootstrap, topic, partitions)
    producer.start()
    members = [MemberProcess(tmp_path, broker.bootstrap, group, topic, name, session_ms, commit_delay_ms=300)
               for name in ("m1", "m2", "m3")]
    m1, m2, m3 = members
    # (new owner, partition, its journal line of the takeover ASSIGN, the group's committed offset
    #  once the old owner was gone, how)
    handoffs: list[tuple[MemberProcess, int, int, int, str]] = []

    def committed_now(parts) -> dict[int, int]:
        with raw_conn(broker) as c:
            err, offs = raw.offset_fetch(c, group, [(topic, p) for p in parts])
        assert err == 0
        return {p: offs[(topic, p)]["offset"] for p in parts}

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
        m3_id, m3_parts = m3.assignment()
        t0 = time.monotonic()
        m3.proc.terminate()
        assert m3.proc.wait(30) == 0, m3.stderr()
        assert m3.events("CLOSED"), "m3 did not finish consumer.close()"
        # m3 committed every batch it recorded before it left (read before the new owners,
        # which first have to rejoin, can commit anything)
        at_leave = committed_now(m3_parts)
        assert at_leave == {p: m3.committed_by_me(p) for p in m3_parts}, (at_leave, m3.lines()[-5:])
        # close() sent LeaveGroup: the broker drops the member at once (a member that merely
        # disappeared would stay until its session timeout).
        # Polled for at most half the session timeout, so only a LeaveGroup can explain it.
        wait_until(lambda: m3_id not in {m["member_id"] for m in describe(broker, group)["members"]},
                   timeout=session_ms / 2000, message=f"closed member {m3_id} gone from DescribeGroups")
        own = wait_until(lambda: balanced([m1, m2], partitions, 3), timeout=30,
                         message=f"2 members x 3 partitions after m3 left: {diag()}")
        leave_rebalance_s = time.monotonic() - t0
        for p in m3_parts:
            new = m1 if p in own["m1"] else m2
            handoffs.append((new, p, new.last_assign_index(), at_leave[p], "leave"))
        c1, c2 = m1.commits(), m2.commits()
        wait_until(lambda: m1.commits() > c1 and m2.commits() > c2, timeout=20, message="m1, m2 committing again")

        # --- crash: SIGKILL, partitions move after the session timeout ----------------------
        m2_id, m2_parts = m2.assignment()
        # Kill m2 while it holds a recorded but not yet committed batch (its 300 ms "processing").
        wait_until(lambda: (lambda ls: ls and ls[-1][0] == "MSG")(m2.lines()), timeout=20, interval=0.005,
                   message="m2 between recording and committing a batch")
        t1 = time.monotonic()
        m2.proc.kill()
        m2.proc.wait(10)
        at_crash = committed_now(m2_parts)  # final: m2 is dead, m1 owns nothing of it yet
        pending = {(p, o) for p, o, _ in m2.consumed() if p in m2_parts and o >= at_crash[p]}
        assert pending, "m2 was killed with nothing uncommitted; the redelivery path was not exercised"
        still = {m["member_id"] for m in describe(broker, group)["members"]}
        assert m2_id in still, f"killed member {m2_id} vanished before its session timed out ({still})"
        wait_until(lambda: m1.assignment()[1] == frozenset(range(partitions)), timeout=session_ms / 1000 + 20,
                   message=f"m1 owning all partitions after m2's crash: {diag()}")
        crash_takeover_s = time.monotonic() - t1
        for p in m2_parts:
            handoffs.append((m1, p, m1.last_assign_index(), at_crash[p], "crash"))
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

        # Each handed-over partition resumed exactly at the group's committed offset, and what the
        # killed member had recorded but not committed was delivered again to the survivor.
        assert len(handoffs) == 5, handoffs
        for new, p, idx, committed_at, how in handoffs:
            first = new.first_read_after(p, idx)
            assert first == committed_at, (f"{how}: {new.name} took over partition {p} at offset {first}, "
                                           f"the committed offset was {committed_at}")
        redelivered = {(p, o) for p, o, _ in m1.consumed()}
        assert pending <= redelivered, f"not redelivered after the crash: {sorted(pending - redelivered)[:10]}"

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
    print(f"AP1: produced {len(produced)}, recorded {total} ({total - len(produced)} redeliveries, "
          f"{len(pending)} pending at the crash); "
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


def kp_consumer(bootstrap: str, group: str, client_id: str, topic: str, **extra) -> KafkaConsumer:
    """A kafka-python group member subscribed to `topic`.

    The topic's metadata is fetched right after subscribing, before the first poll() joins.
    Otherwise kafka-python 3.0.12, as group leader, computes its first assignment before its
    coordinator has a metadata snapshot of the subscription and rejoins once the snapshot
    arrives: an extra rebalance at an arbitrary moment (and if a poll() times out while that
    rejoin is in flight, the client never completes it, sends no heartbeats, and the broker
    rightly expels it after the session timeout). Client behaviour, not what these tests are
    about."""
    conf = dict(bootstrap_servers=bootstrap, group_id=group, client_id=client_id, enable_auto_commit=False,
                auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                fetch_max_wait_ms=100)
    conf.update(extra)
    k = KafkaConsumer(**conf)
    k.subscribe([topic])
    assert k.partitions_for_topic(topic), f"kafka-python sees no partitions of {topic}"
    return k


class KafkaPythonPoller(threading.Thread):
    """Owns one kafka-python KafkaConsumer and polls it from its own thread with a long timeout.

    kafka-python 3.0.12 does not finish a join that a poll() timeout interrupted: the next poll
    finds the join task done and starts a new one, discarding the result. A consumer polled with
    short timeouts, in turn with the other members, can thus keep rejoining (one generation
    after another) until a poll happens to outlast a whole rebalance. With one thread per
    consumer and a timeout longer than any rebalance here, that client race does not arise.
    Every other use of the consumer goes through call(), on the same thread (KafkaConsumer is
    not thread-safe)."""

    def __init__(self, consumer: KafkaConsumer, max_records: int | None = None, stop_when=None):
        """stop_when(records since the last assignment change, owned partitions) -> bool:
        checked after every poll; once true the poller pauses itself."""
        super().__init__(daemon=True)
        self.consumer = consumer
        self.max_records = max_records
        self.stop_when = stop_when
        self.records: list = []
        self.owned: set[int] = set()  # partitions owned after the last poll
        self.assign_mark = 0  # index in records where the current assignment's records start
        self.polling = threading.Event()
        self.polling.set()
        self.halt = threading.Event()
        self._calls: list = []
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.start()

    def run(self):
        try:
            while not self.halt.is_set():
                with self._lock:
                    calls, self._calls = self._calls, []
                for fn, box, done in calls:
                    try:
                        box.append((True, fn(self.consumer)))
                    except BaseException as e:  # handed back to the caller
                        box.append((False, e))
                    done.set()
                if self.polling.is_set():
                    got = self.consumer.poll(timeout_ms=1000, max_records=self.max_records)
                    owned = {tp.partition for tp in self.consumer.assignment()}
                    if owned != self.owned:
                        self.owned, self.assign_mark = owned, len(self.records)
                    for recs in got.values():
                        self.records.extend(recs)
                    if self.stop_when and self.stop_when(self.records[self.assign_mark:], owned):
                        self.polling.clear()
                else:
                    time.sleep(0.01)
        except BaseException as e:
            self.error = e

    def call(self, fn, timeout: float = 30):
        """Runs fn(consumer) on the poller thread and returns its result."""
        box: list = []
        done = threading.Event()
        with self._lock:
            self._calls.append((fn, box, done))
        assert done.wait(timeout), f"call on the kafka-python thread did not finish in {timeout}s (error: {self.error})"
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self.call(lambda c: c.assignment())}

    def pause(self):
        """Stops polling (the consumer stays in the group: heartbeats run on their own thread)."""
        self.polling.clear()
        self.call(lambda c: None)  # returns once any poll in progress has finished

    def close(self):
        self.pause()
        self.halt.set()
        self.join(30)
        self.consumer.close(autocommit=False)
        assert self.error is None, f"kafka-python poller failed: {self.error!r}"


def test_kafka_python_group_consume_commit_resume(broker):
    """AP4: two kafka-python KafkaConsumers join one group with different assignor lists
    ([roundrobin] and the default [range, roundrobin]): the broker selects the one protocol
    both support (roundrobin), they split the 3 partitions, and together read every message
    exactly once (each only from its own partitions). They commit and close; a third
    kafka-python member of the group then reads exactly the messages produced afterwards
    (resumes at the commits) and its commit is visible through committed()."""
    topic, group, partitions = "ap4-kp", "ap4-kp-group", 3
    create_topic(broker.bootstrap, topic, partitions=partitions)
    k1 = KafkaPythonPoller(kp_consumer(broker.bootstrap, group, "kp1", topic,
                                       partition_assignment_strategy=[RoundRobinPartitionAssignor]))
    k2 = KafkaPythonPoller(kp_consumer(broker.bootstrap, group, "kp2", topic))
    pollers = {"kp1": k1, "kp2": k2}
    try:
        def split():
            a1, a2 = k1.assignment(), k2.assignment()
            return a1 and a2 and not (a1 & a2) and a1 | a2 == set(range(partitions))

        wait_until(split, timeout=30, message="two kafka-python members splitting the partitions")
        g = describe(broker, group)
        assert (g["state"], g["protocol_type"], g["protocol"]) == ("Stable", "consumer", "roundrobin"), g
        assert not k1.records and not k2.records
        produced = produce_values(broker.bootstrap, topic, {p: [f"ap4-{p}-{i}" for i in range(60)]
                                                             for p in range(partitions)})
        wait_until(lambda: len(k1.records) + len(k2.records) >= len(produced), timeout=30,
                   message="kafka-python members reading everything")
        for k in pollers.values():
            k.pause()
        seen = [(r.partition, r.offset, r.value.decode()) for k in pollers.values() for r in k.records]
        assert sorted(seen) == sorted((p, o, v) for (p, o), v in produced.items()), "not exactly what was produced"
        for name, k in pollers.items():
            own = k.assignment()
            assert {r.partition for r in k.records} <= own, f"{name} read partitions it does not own"
            k.call(lambda c: c.commit())
            committed = k.call(lambda c: {tp.partition: c.committed(tp) for tp in c.assignment()})
            assert committed == {p: 60 for p in own}, (name, committed)
    finally:
        for k in pollers.values():
            k.close()

    produced2 = produce_values(broker.bootstrap, topic, {p: [f"ap4-{p}-late-{i}" for i in range(20)]
                                                          for p in range(partitions)})
    k3 = KafkaPythonPoller(kp_consumer(broker.bootstrap, group, "kp3", topic))
    try:
        wait_until(lambda: len(k3.records) >= len(produced2), timeout=30,
                   message="the resumed kafka-python member reading the new messages")
        time.sleep(0.5)  # would show anything read beyond the new messages (a replay from 0)
        k3.pause()
        assert sorted((r.partition, r.offset, r.value.decode()) for r in k3.records) == sorted(
            (p, o, v) for (p, o), v in produced2.items()), "did not resume exactly at the committed offsets"
        k3.call(lambda c: c.commit())
        assert k3.call(lambda c: {tp.partition: c.committed(tp) for tp in c.assignment()}) == {
            p: 80 for p in range(partitions)}
    finally:
        k3.close()


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
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    cadmin = AdminClient({"bootstrap.servers": broker.bootstrap})
    kc = None
    try:
        # Both consume a few messages at a time until each has read at least one message of every
        # partition it owns (so every partition gets a committed position) and then stop.
        # read_c: partition -> next offset after the last message cc returned since its last
        # assignment (an eager rebalance restarts an uncommitted partition from the beginning).
        read_c: dict[int, int] = {}
        cc.subscribe([topic], on_assign=lambda c, ps: read_c.clear())

        def consume_c():
            for m in cc.consume(num_messages=3, timeout=0.05):
                assert m.error() is None, m.error()
                read_c[m.partition()] = m.offset() + 1

        def c_owns_all():
            consume_c()
            return tp_set(cc.assignment()) == set(range(partitions))

        # confluent joins first and so leads the group; kafka-python joins as a follower.
        wait_until(c_owns_all, timeout=30, interval=0, message="confluent consumer owning the topic")
        kc = KafkaPythonPoller(kp_consumer(broker.bootstrap, group, "ap4-kpython", topic), max_records=3,
                               stop_when=lambda recs, owned: owned and owned <= {r.partition for r in recs})

        def progressed():
            consume_c()
            ac, ak = tp_set(cc.assignment()), kc.owned
            return (ac and ak and not (ac & ak) and ac | ak == set(range(partitions))
                    and ac <= set(read_c) and not kc.polling.is_set())

        wait_until(progressed, timeout=30, interval=0, message="mixed group formed and both members reading")
        kc.pause()
        assign_c = tp_set(cc.assignment())
        assign_k = kc.assignment()
        read_k = {r.partition: r.offset + 1 for r in kc.records[kc.assign_mark:]}

        # Commit the positions (next offset to read) both clients report.
        pos_c = {tp.partition: tp.offset for tp in cc.position(cc.assignment())}
        cc.commit(offsets=[TopicPartition(topic, p, o) for p, o in pos_c.items()], asynchronous=False)
        pos_k = kc.call(lambda c: {tp.partition: c.position(tp) for tp in c.assignment()})
        kc.call(lambda c: c.commit({KTopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in pos_k.items()}))
        positions = {**pos_c, **pos_k}
        last_read = {**{p: read_c[p] for p in assign_c}, **{p: read_k[p] for p in assign_k}}
        assert positions == last_read, "positions are not after the last message each consumer got"

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
        for tp, end in kc.call(lambda c: c.end_offsets(list(c.assignment()))).items():
            client_lag[tp.partition] = end - pos_k[tp.partition]
        assert {p: lag[(topic, p)]["lag"] for p in range(partitions)} == client_lag
        assert {p: lag[(topic, p)]["log_end"] for p in range(partitions)} == {p: 100 + 10 * p for p in range(partitions)}
        assert any(v > 0 for v in client_lag.values()), f"expected some lag, got {client_lag}"
    finally:
        cc.close()
        if kc is not None:
            kc.close()
        kadmin.close()


# ============================================================================================
# AP5: static membership (KIP-345)
# ============================================================================================


def stable_generation(broker, group: str, member_id: str, instance_id: str | None) -> int:
    """The group's current generation, found by heartbeating as `member_id` with generations
    1, 2, ...: in a Stable group only the current one is accepted (others: ILLEGAL_GENERATION)."""
    with raw_conn(broker) as c:
        for g in range(1, 100):
            err = raw.heartbeat(c, group, g, member_id, group_instance_id=instance_id)
            if err == raw.NONE:
                return g
            assert err == raw.ILLEGAL_GENERATION, f"heartbeat {member_id} gen {g}: error {err}"
    raise AssertionError(f"no generation accepted for {member_id}")


@pytest.mark.parametrize("restarted", ["follower", "leader"])
def test_static_member_restart_without_rebalance(broker, restarted):
    """AP5: two static members (group.instance.id static-a, static-b) share a 4-partition topic,
    2 partitions each; static-a joined first and leads the group. One of them (`restarted`: the
    follower static-b, or the leader static-a) is closed — a static member sends no LeaveGroup,
    so the broker keeps it — and a new consumer with the same group.instance.id starts within
    the session timeout: it gets exactly the same partitions back under a new member id (the old
    member id is fenced: FENCED_INSTANCE_ID), while the other member sees no rebalance at all: no
    revoke/assign callback, same assignment, same generation, also after the old member's
    session timeout has passed."""
    topic, group, partitions, session_ms = f"ap5-static-{restarted}", f"ap5-group-{restarted}", 4, 6000
    create_topic(broker.bootstrap, topic, partitions=partitions)
    events: dict[str, list] = {}

    def member(instance: str) -> Consumer:
        evs = events.setdefault(instance, [])
        c = group_consumer(broker.bootstrap, group, **{"group.instance.id": instance, "client.id": f"ap5-{instance}",
                                                        "session.timeout.ms": session_ms})
        c.subscribe([topic], on_assign=lambda _, ps: evs.append(("assign", tp_set(ps))),
                    on_revoke=lambda _, ps: evs.append(("revoke", tp_set(ps))))
        return c

    consumers = {"static-a": member("static-a")}
    got: dict[str, list] = {}
    try:
        poll_all(consumers, got, lambda: tp_set(consumers["static-a"].assignment()) == set(range(partitions)),
                 timeout=30, message="static-a owning the topic")
        consumers["static-b"] = member("static-b")

        def split():
            a, b = (tp_set(consumers[n].assignment()) for n in ("static-a", "static-b"))
            return a and b and not (a & b) and a | b == set(range(partitions))

        poll_all(consumers, got, split, timeout=30, message="static-a and static-b splitting the topic")
        name, other = ("static-b", "static-a") if restarted == "follower" else ("static-a", "static-b")

        old = consumers[name]
        old_parts, old_id = tp_set(old.assignment()), old.memberid()
        other_parts, other_id = tp_set(consumers[other].assignment()), consumers[other].memberid()
        other_events = len(events[other])
        gen = stable_generation(broker, group, other_id, other)

        t0 = time.monotonic()
        del consumers[name]
        old.close()
        # No LeaveGroup from a static member: the broker still lists it.
        g = describe(broker, group)
        assert {(m["group_instance_id"], m["member_id"]) for m in g["members"]} == {
            (name, old_id), (other, other_id)}, g

        consumers[name] = member(name)
        poll_all(consumers, got, lambda: tp_set(consumers[name].assignment()), timeout=session_ms / 1000 - 1,
                 message=f"restarted {name} assigned")
        assert tp_set(consumers[name].assignment()) == old_parts, f"{name} did not get its partitions back"
        new_id = consumers[name].memberid()
        assert new_id != old_id

        # Keep the other member polling past the old session's expiry: nothing may happen to it.
        end = t0 + session_ms / 1000 + 1.5
        poll_all(consumers, got, lambda: time.monotonic() > end, timeout=session_ms / 1000 + 10, message="quiet")
        assert events[other][other_events:] == [], f"{other} saw a rebalance: {events[other][other_events:]}"
        assert tp_set(consumers[other].assignment()) == other_parts
        assert tp_set(consumers[name].assignment()) == old_parts
        assert stable_generation(broker, group, other_id, other) == gen, "the generation changed"
        g = describe(broker, group)
        assert g["state"] == "Stable", g
        assert {(m["group_instance_id"], m["member_id"]) for m in g["members"]} == {
            (name, new_id), (other, other_id)}, g
        with raw_conn(broker) as c:
            assert raw.heartbeat(c, group, gen, old_id, group_instance_id=name) == raw.FENCED_INSTANCE_ID
    finally:
        for c in consumers.values():
            c.close()


# ============================================================================================
# AP6: error codes and edge cases on raw sockets (and what clients see of them)
# ============================================================================================


def raw_join(conn: raw.KafkaConnection, group: str, topics: list[str], version: int = 5, **kw) -> dict:
    """JoinGroup the way a v4+ client does: empty member id, then again with the member id the
    broker handed out with MEMBER_ID_REQUIRED."""
    j = raw.join_group(conn, group, version=version, topics=topics, **kw)
    if version >= 4 and j["error_code"] == raw.MEMBER_ID_REQUIRED:
        j = raw.join_group(conn, group, member_id=j["member_id"], version=version, topics=topics, **kw)
    assert j["error_code"] == raw.NONE, j
    return j


def sync_version(join_version: int) -> int:
    return 5 if join_version >= 9 else 3


def test_find_coordinator_returns_the_broker(broker):
    """AP6: FindCoordinator v0..v6 for a group (v4+ batched keys) answers with no error and the
    broker itself: node 0, host 127.0.0.1, its port."""
    with raw_conn(broker) as c:
        for v in range(0, 4):
            (res,) = raw.find_coordinator(c, "ap6-some-group", version=v)
            assert (res["error_code"], res["node_id"], res["host"], res["port"]) == (0, 0, "127.0.0.1", broker.port), (v, res)
        for v in range(4, 7):
            res = raw.find_coordinator(c, ["ap6-g1", "ap6-g2"], version=v)
            assert [(r["key"], r["error_code"], r["node_id"], r["host"], r["port"]) for r in res] == [
                ("ap6-g1", 0, 0, "127.0.0.1", broker.port), ("ap6-g2", 0, 0, "127.0.0.1", broker.port)], (v, res)


def test_join_group_member_id_required(broker):
    """AP6: JoinGroup v4 (non-flexible) and v9 (flexible) without a member id get
    MEMBER_ID_REQUIRED (79) carrying a member id and generation -1; joining again with that id
    succeeds: generation 1, this member is the leader, the member list holds its subscription;
    its SyncGroup assignment comes back to it. JoinGroup v3 (before KIP-394) is accepted at
    once with a broker-assigned member id."""
    topic = "ap6-join"
    create_topic(broker.bootstrap, topic, partitions=2)
    sub = raw.consumer_subscription([topic])
    with raw_conn(broker) as c:
        raw.find_coordinator(c, "ap6-join-v4")
        for v in (4, 9):
            group = f"ap6-join-v{v}"
            j = raw.join_group(c, group, version=v, topics=[topic])
            assert j["error_code"] == raw.MEMBER_ID_REQUIRED, j
            assert j["member_id"] and j["generation_id"] == -1 and j["members"] == [], j
            mid = j["member_id"]
            j = raw.join_group(c, group, member_id=mid, version=v, topics=[topic])
            assert (j["error_code"], j["generation_id"], j["leader"], j["member_id"]) == (0, 1, mid, mid), j
            assert j["protocol_name"] == "range"
            assert [(m["member_id"], m["metadata"]) for m in j["members"]] == [(mid, sub)], j
            assignment = raw.consumer_assignment({topic: [0, 1]})
            s = raw.sync_group(c, group, 1, mid, [(mid, assignment)], version=sync_version(v))
            assert s["error_code"] == 0 and s["assignment"] == assignment, s
            assert raw.leave_group(c, group, [(mid, None)])["error_code"] == 0
        j = raw.join_group(c, "ap6-join-v3", version=3, topics=[topic])
        assert j["error_code"] == 0 and j["member_id"] and j["leader"] == j["member_id"], j
        assert raw.leave_group(c, "ap6-join-v3", [(j["member_id"], None)], version=1)["error_code"] == 0


def test_heartbeat_and_commit_errors(broker):
    """AP6: for a stable one-member group: Heartbeat with the current generation -> 0; with a
    wrong generation -> ILLEGAL_GENERATION (22); with an unknown member id ->
    UNKNOWN_MEMBER_ID (25). OffsetCommit as that member with a wrong generation -> 22, as an
    unknown member -> 25, as a 'simple' committer (generation -1, no member id) while the group
    has members -> 25; as the member with its generation -> 0."""
    topic, group = "ap6-hb", "ap6-hb-group"
    create_topic(broker.bootstrap, topic, partitions=1)
    with raw_conn(broker) as c:
        raw.find_coordinator(c, group)
        j = raw_join(c, group, [topic])
        mid, gen = j["member_id"], j["generation_id"]
        assert raw.sync_group(c, group, gen, mid, [(mid, raw.consumer_assignment({topic: [0]}))])["error_code"] == 0
        for v in (0, 3, 4):
            assert raw.heartbeat(c, group, gen, mid, version=v) == raw.NONE, v
            assert raw.heartbeat(c, group, gen + 1, mid, version=v) == raw.ILLEGAL_GENERATION, v
            assert raw.heartbeat(c, group, gen - 1, mid, version=v) == raw.ILLEGAL_GENERATION, v
            assert raw.heartbeat(c, group, gen, "no-such-member", version=v) == raw.UNKNOWN_MEMBER_ID, v
        tp = (topic, 0)
        assert raw.offset_commit(c, group, {tp: (1, None)}, generation_id=gen + 1, member_id=mid) == {
            tp: raw.ILLEGAL_GENERATION}
        assert raw.offset_commit(c, group, {tp: (1, None)}, generation_id=gen, member_id="no-such-member") == {
            tp: raw.UNKNOWN_MEMBER_ID}
        assert raw.offset_commit(c, group, {tp: (1, None)}) == {tp: raw.UNKNOWN_MEMBER_ID}
        assert raw.offset_fetch(c, group, [tp])[1][tp]["offset"] == -1, "a rejected commit was stored"
        assert raw.offset_commit(c, group, {tp: (1, "ok")}, generation_id=gen, member_id=mid) == {tp: raw.NONE}
        assert raw.offset_fetch(c, group, [tp])[1][tp]["offset"] == 1
        assert raw.leave_group(c, group, [(mid, None)])["error_code"] == 0


def test_join_group_invalid_session_timeout(broker):
    """AP6: JoinGroup with a session timeout below group.min.session.timeout.ms (1000 here) or
    above group.max.session.timeout.ms (default 1800000) -> INVALID_SESSION_TIMEOUT (26), and
    the member is not added (the group stays without members)."""
    group = "ap6-session"
    with raw_conn(broker) as c:
        raw.find_coordinator(c, group)
        for v in (3, 5, 9):
            for session in (999, 1_800_001):
                j = raw.join_group(c, group, version=v, topics=["ap6-any"], session_timeout_ms=session)
                assert j["error_code"] == raw.INVALID_SESSION_TIMEOUT, (v, session, j)
        (g,) = raw.describe_groups(c, [group])
        assert g["error_code"] == 0 and g["members"] == [], g


def test_simple_commit_and_fetch(broker):
    """AP6: offsets of a group nobody joined. OffsetCommit v2/v7/v9 with generation -1 and an
    empty member id succeeds and OffsetFetch v1/v5/v7 returns offset and metadata (null metadata
    reads back as ""); a partition without a commit (also a partition index the topic does not
    have, and a group that does not exist) reads as offset -1 without error; OffsetFetch with
    null topics (v2+) lists exactly the committed partitions; a commit for a topic that does not
    exist -> UNKNOWN_TOPIC_OR_PARTITION (3). Real clients doing assign() + commit, confluent-kafka
    and kafka-python, read their commits back with committed(), and raw OffsetFetch sees them.
    OffsetDelete (kafka-python delete_group_offsets) removes one partition's offset."""
    topic, group = "ap6-simple", "ap6-simple-group"
    create_topic(broker.bootstrap, topic, partitions=3)
    t0, t1, t2 = (topic, 0), (topic, 1), (topic, 2)
    with raw_conn(broker) as c:
        raw.find_coordinator(c, group)
        assert raw.offset_commit(c, group, {t0: (5, "meta-0"), t1: (7, None)}, version=2) == {t0: 0, t1: 0}
        for v in (1, 5, 7):
            err, offs = raw.offset_fetch(c, group, [t0, t1, t2, (topic, 99)], version=v)
            assert err == 0
            got = {tp: (r["offset"], r["metadata"], r["error_code"]) for tp, r in offs.items()}
            assert got == {t0: (5, "meta-0", 0), t1: (7, "", 0), t2: (-1, "", 0), (topic, 99): (-1, "", 0)}, (v, got)
        assert raw.offset_commit(c, group, {t0: (6, "v7")}, version=7) == {t0: 0}
        assert raw.offset_commit(c, group, {t1: (8, "v9")}, version=9) == {t1: 0}
        err, offs = raw.offset_fetch(c, group, None, version=6)
        assert err == 0 and {tp: (r["offset"], r["metadata"]) for tp, r in offs.items()} == {
            t0: (6, "v7"), t1: (8, "v9")}, offs
        err, offs = raw.offset_fetch(c, "ap6-no-such-group", [t0], version=5)
        assert err == 0 and offs[t0]["offset"] == -1 and offs[t0]["error_code"] == 0, offs
        assert raw.offset_commit(c, group, {("ap6-no-such-topic", 0): (1, None)}) == {
            ("ap6-no-such-topic", 0): raw.UNKNOWN_TOPIC_OR_PARTITION}

    # confluent-kafka: assign + commit (librdkafka sends generation -1, no member id)
    cc = group_consumer(broker.bootstrap, "ap6-simple-confluent")
    try:
        cc.assign([TopicPartition(topic, 0, 0)])
        cc.commit(offsets=[TopicPartition(topic, 0, 11, metadata="cc"), TopicPartition(topic, 2, 12)],
                  asynchronous=False)
        got = cc.committed([TopicPartition(topic, p) for p in range(3)], timeout=10)
        assert [(tp.partition, tp.offset) for tp in got] == [(0, 11), (1, -1001), (2, 12)], got
    finally:
        cc.close()
    # kafka-python: assign + commit
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="ap6-simple-kpython", enable_auto_commit=False)
    try:
        kc.assign([KTopicPartition(topic, 1)])
        kc.commit({KTopicPartition(topic, 1): OffsetAndMetadata(21, "kp", -1)})
        assert kc.committed(KTopicPartition(topic, 1)) == 21
    finally:
        kc.close(autocommit=False)
    with raw_conn(broker) as c:
        _, offs = raw.offset_fetch(c, "ap6-simple-confluent", None)
        # confluent-kafka 2.16 sends the metadata string with its C terminator ("cc\0"), and
        # the broker, like Kafka, keeps the bytes it was given.
        assert {tp: (r["offset"], r["metadata"].rstrip("\0")) for tp, r in offs.items()} == {
            t0: (11, "cc"), t2: (12, "")}, offs
        _, offs = raw.offset_fetch(c, "ap6-simple-kpython", None)
        assert {tp: (r["offset"], r["metadata"]) for tp, r in offs.items()} == {t1: (21, "kp")}, offs

    # OffsetDelete on the (empty) group removes just that partition's offset.
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        res = admin.delete_group_offsets("ap6-simple-confluent", [KTopicPartition(topic, 0)])
        assert [(tp.partition, e.__name__) for tp, e in res.items()] == [(0, "NoError")], res
    finally:
        admin.close()
    with raw_conn(broker) as c:
        _, offs = raw.offset_fetch(c, "ap6-simple-confluent", None)
        assert {tp: r["offset"] for tp, r in offs.items()} == {t2: 12}, offs


def test_delete_groups(broker):
    """AP6: DeleteGroups on a group with a member (a subscribed confluent consumer) ->
    NON_EMPTY_GROUP (68), as raw v1 and through kafka-python's delete_groups; the group and its
    offsets stay. Once the member has left (close() -> LeaveGroup) the group is Empty, and
    DeleteGroups (raw v2, flexible) -> 0: its committed offsets are gone (OffsetFetch -1, no
    offsets listed), ListGroups no longer lists it. Deleting it again, or a group that never
    existed -> GROUP_ID_NOT_FOUND (69)."""
    topic, group = "ap6-delete", "ap6-delete-group"
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_values(broker.bootstrap, topic, {0: ["a", "b", "c"], 1: ["d"]})
    c = group_consumer(broker.bootstrap, group)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=20000)
    try:
        c.subscribe([topic])
        wait_assigned(c, 2)
        c.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 1)], asynchronous=False)
        with raw_conn(broker) as rc:
            assert raw.delete_groups(rc, [group]) == {group: raw.NON_EMPTY_GROUP}
        assert admin.delete_groups([group]) == {group: "NonEmptyGroupError"}
        assert describe(broker, group)["state"] == "Stable"
        with raw_conn(broker) as rc:
            assert raw.offset_fetch(rc, group, [(topic, 0)])[1][(topic, 0)]["offset"] == 3
        c.close()
        c = None
        wait_until(lambda: (lambda g: (g["state"], g["members"]) == ("Empty", []))(describe(broker, group)),
                   timeout=3, message="the group Empty after its only member left")
        assert any(x["group_id"] == group for x in admin.list_groups())
        with raw_conn(broker) as rc:
            assert raw.delete_groups(rc, [group, "ap6-never-existed"], version=2) == {
                group: raw.NONE, "ap6-never-existed": raw.GROUP_ID_NOT_FOUND}
            err, offs = raw.offset_fetch(rc, group, [(topic, 0), (topic, 1)])
            assert err == 0 and [r["offset"] for r in offs.values()] == [-1, -1], offs
            assert raw.offset_fetch(rc, group, None)[1] == {}
            assert raw.delete_groups(rc, [group]) == {group: raw.GROUP_ID_NOT_FOUND}
        assert not any(x["group_id"] == group for x in admin.list_groups())
    finally:
        if c is not None:
            c.close()
        admin.close()


@pytest.mark.parametrize("version", [5, 9])
def test_static_leader_rejoin_join_response(broker, version):
    """AP6/AP5 (raw): two static members A (leader) and B, Stable at generation 2. A restarts:
    JoinGroup v`version` with an empty member id and group.instance.id A. As in Kafka, the group
    stays Stable at generation 2 (no rebalance: B's heartbeat stays valid) and A gets a new member
    id; the old one is fenced (FENCED_INSTANCE_ID). The answer must not make a pre-KIP-814 client
    compute an assignment it has no members for: for v5 the leader field is the *old* leader id
    (not A's new id) and the member list is empty; for v9 the leader is A's new id with
    SkipAssignment=true and the full member list. A's SyncGroup then returns its old assignment."""
    topic, group = f"ap6-static-{version}", f"ap6-static-group-{version}"
    create_topic(broker.bootstrap, topic, partitions=4)
    sv = sync_version(version)
    kw = dict(version=version, topics=[topic], session_timeout_ms=10000)
    ca, cb, cnew = raw_conn(broker), raw_conn(broker), raw_conn(broker)
    try:
        raw.find_coordinator(ca, group)
        j1 = raw_join(ca, group, group_instance_id="A", **kw)
        a_id = j1["member_id"]
        assert raw.sync_group(ca, group, j1["generation_id"], a_id,
                              [(a_id, raw.consumer_assignment({topic: [0, 1, 2, 3]}))], version=sv,
                              group_instance_id="A")["error_code"] == 0
        # B joins; its JoinGroup is held until A rejoins.
        b_join: dict = {}
        t = threading.Thread(target=lambda: b_join.update(raw_join(cb, group, group_instance_id="B", **kw)))
        t.start()
        wait_until(lambda: raw.heartbeat(ca, group, j1["generation_id"], a_id, group_instance_id="A")
                   == raw.REBALANCE_IN_PROGRESS, timeout=10, message="rebalance after B joined")
        j2 = raw.join_group(ca, group, member_id=a_id, group_instance_id="A", **kw)
        t.join(10)
        gen, b_id = j2["generation_id"], b_join["member_id"]
        assert j2["error_code"] == 0 and j2["leader"] == a_id and len(j2["members"]) == 2, j2
        b_sync: dict = {}
        t = threading.Thread(target=lambda: b_sync.update(
            raw.sync_group(cb, group, gen, b_id, [], version=sv, group_instance_id="B")))
        t.start()
        sa = raw.sync_group(ca, group, gen, a_id, [(a_id, raw.consumer_assignment({topic: [0, 1]})),
                                                   (b_id, raw.consumer_assignment({topic: [2, 3]}))],
                            version=sv, group_instance_id="A")
        t.join(10)
        assert sa["error_code"] == 0 and b_sync["error_code"] == 0
        assert raw.decode_consumer_assignment(b_sync["assignment"]) == {topic: [2, 3]}

        # A restarts (new connection, no member id, same instance id).
        jr = raw.join_group(cnew, group, group_instance_id="A", **kw)
        new_id = jr["member_id"]
        assert jr["error_code"] == 0 and jr["generation_id"] == gen and new_id not in ("", a_id), jr
        if version >= 9:
            assert jr["leader"] == new_id and jr["skip_assignment"] is True, jr
            assert sorted((m["member_id"], m["group_instance_id"]) for m in jr["members"]) == sorted(
                [(new_id, "A"), (b_id, "B")]), jr["members"]
        else:
            assert (jr["leader"], jr["members"]) == (a_id, []), (
                f"JoinGroup v{version} answer to the rejoining static leader: leader={jr['leader']!r} "
                f"(Kafka: the old leader id {a_id!r}, so the client does not act as leader), "
                f"members={len(jr['members'])}")
        s = raw.sync_group(cnew, group, gen, new_id, [], version=sv, group_instance_id="A")
        assert s["error_code"] == 0 and raw.decode_consumer_assignment(s["assignment"]) == {topic: [0, 1]}, s
        assert raw.heartbeat(cb, group, gen, b_id, group_instance_id="B") == raw.NONE
        assert raw.heartbeat(ca, group, gen, a_id, group_instance_id="A") == raw.FENCED_INSTANCE_ID
        g = describe(broker, group)
        assert g["state"] == "Stable" and sorted((m["group_instance_id"], m["member_id"]) for m in g["members"]) == [
            ("A", new_id), ("B", b_id)], g
    finally:
        for c in (ca, cb, cnew):
            c.close()


def test_librdkafka_all_topics_metadata_v12_is_answered(broker):
    """AP6/AP5 (raw): librdkafka 2.x writes Metadata v12 "all topics" requests (what its group
    leader sends when it runs an assignor) with the null topic array as a 4-byte placeholder
    instead of a 1-byte varint (librdkafka issue #5049): 3 zero bytes follow the request's end.
    Kafka does not check for bytes after a request body and answers (all topics); the broker must
    too, rather than close the connection — that close makes librdkafka's assignor fail and
    rejoin (a needless rebalance of the whole group)."""
    create_topic(broker.bootstrap, "ap6-md-all", partitions=1)
    with raw_conn(broker) as c:
        # exactly the body librdkafka sends: topics = 00 00 00 00, allow_auto_topic_creation = 0,
        # include_topic_authorized_operations = 0, no tagged fields
        body = b"\x00\x00\x00\x00" + b"\x00" + b"\x00" + raw.NO_TAGS
        r = c.roundtrip_flexible(raw.API_METADATA, 12, body)
        r.i32()  # throttle
        brokers = r.compact_array(lambda x: (x.i32(), x.compact_string(), x.i32(), x.compact_string(),
                                             x.tagged_fields()))
        assert [(b[0], b[2]) for b in brokers] == [(0, broker.port)], brokers
        r.compact_string()  # cluster id
        r.i32()  # controller

        def topic(x: raw.Reader):
            err, name = x.i16(), x.compact_string()
            x._take(16)  # topic id
            x.boolean()
            x.compact_array(lambda y: (y.i16(), y.i32(), y.i32(), y.i32(), y.compact_array(lambda z: z.i32()),
                                       y.compact_array(lambda z: z.i32()), y.compact_array(lambda z: z.i32()),
                                       y.tagged_fields()))
            x.i32()
            x.tagged_fields()
            return err, name

        topics = dict((name, err) for err, name in r.compact_array(topic))
        assert topics.get("ap6-md-all") == 0, topics
        raw.api_versions(c)  # the connection is still usable
