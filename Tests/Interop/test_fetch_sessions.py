"""Issue 10, item 8: incremental fetch sessions (KIP-227) and fair partition rotation.

- kafka-python 3.0.12 uses fetch sessions (Fetch v7-12, `enable_incremental_fetch_sessions`
  defaults to True): with a tiny `fetch_max_bytes` on a 2-partition topic it reads both partitions
  interleaved, its session handler ends up in an incremental session the broker created, and with
  sessions turned off (full sessionless fetches) it reads both partitions too.
- confluent-kafka / librdkafka 2.16 does not use fetch sessions: rdkafka_fetcher.c always sends
  SessionId 0 and SessionEpoch -1 (full, sessionless fetches) and rotates the start of its
  partition list itself; `test_what_the_clients_send` checks both clients on the wire. It must
  read both partitions with a tiny `fetch.max.bytes` all the same.
- Raw Fetch v11 on a socket: session id assignment by a full fetch (epoch 0), an incremental fetch
  that names only the changed partition and gets only the partition with news (read first thanks
  to the session's rotation), a repeated epoch answered INVALID_FETCH_SESSION_EPOCH (71), an
  unknown session FETCH_SESSION_ID_NOT_FOUND (70), forgotten partitions, and a sessionless fetch
  that lists the partitions in the same order every time still reaching the second partition.
"""
from __future__ import annotations

import time

import pytest

import kafka_raw as kr
from samsa_interop import consumer_config, create_topic, wait_until

RECORDS_PER_PARTITION = 150
VALUE = b"v" * 200


def fill(bootstrap: str, topic: str):
    """A 2-partition topic with RECORDS_PER_PARTITION one-record batches in each partition."""
    create_topic(bootstrap, topic, partitions=2)
    host, port = bootstrap.split(":")
    with kr.KafkaConnection(host, int(port)) as conn:
        for i in range(RECORDS_PER_PARTITION):
            for p in (0, 1):
                res = kr.produce(conn, topic, p, kr.simple_batch([VALUE + str(i).encode()]))
                assert res.error_code == 0, res


def kp_read_order(bootstrap: str, topic: str, sessions: bool):
    """Reads both partitions from the start with kafka-python and a 1-byte fetch_max_bytes;
    returns the partition of every record in arrival order, per-partition offsets and the consumer
    (still open)."""
    from kafka import KafkaConsumer, TopicPartition
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_bytes=1, max_partition_fetch_bytes=1, fetch_max_wait_ms=100,
                             enable_incremental_fetch_sessions=sessions)
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    order: list[int] = []
    offsets: dict[int, list[int]] = {0: [], 1: []}
    deadline = time.monotonic() + 60
    while len(order) < 2 * RECORDS_PER_PARTITION:
        assert time.monotonic() < deadline, f"read {len(order)} of {2 * RECORDS_PER_PARTITION} records in 60 s"
        for tp, records in consumer.poll(timeout_ms=200).items():
            for r in records:
                order.append(tp.partition)
                offsets[tp.partition].append(r.offset)
    return order, offsets, consumer


@pytest.mark.parametrize("sessions", [True, False], ids=["sessions", "sessionless"])
def test_kafka_python_small_fetch_max_bytes_reads_both_partitions(broker, sessions):
    topic = f"fs-kp-{'sessions' if sessions else 'sessionless'}"
    fill(broker.bootstrap, topic)
    order, offsets, consumer = kp_read_order(broker.bootstrap, topic, sessions)
    try:
        first_half = order[:RECORDS_PER_PARTITION]
        assert first_half.count(0) > RECORDS_PER_PARTITION // 4 and first_half.count(1) > RECORDS_PER_PARTITION // 4, \
            f"partitions not interleaved: first {RECORDS_PER_PARTITION} records came from {first_half.count(0)} x p0, {first_half.count(1)} x p1"
        for p in (0, 1):
            assert offsets[p] == list(range(RECORDS_PER_PARTITION)), f"partition {p}: offsets {offsets[p][:10]}..."
        if sessions:
            # The broker created a session (full response with a session id) and kafka-python went on
            # with incremental fetches in it; a broker that declines sessions leaves session id 0.
            handler = consumer._fetcher._session_handlers[0]
            assert handler.next_metadata.session_id != 0, "kafka-python is not in a fetch session"
            assert handler.next_metadata.epoch > 2, f"session epoch {handler.next_metadata.epoch}: no incremental fetches"
    finally:
        consumer.close(autocommit=False)


def test_kafka_python_session_follows_new_records(broker):
    """With an idle incremental session, records produced later still arrive (the session's
    partitions with a new high watermark are sent)."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    topic = "fs-kp-live"
    create_topic(broker.bootstrap, topic, partitions=2)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=100, auto_offset_reset="earliest")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0)
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        got: list[tuple[int, bytes]] = []
        assert consumer.poll(timeout_ms=500) == {}  # caught up on an empty topic: the session is idle
        for round_ in range(3):
            for p in (0, 1):
                producer.send(topic, value=f"r{round_}p{p}".encode(), partition=p)
            producer.flush()
            deadline = time.monotonic() + 20
            while len(got) < 2 * (round_ + 1):
                assert time.monotonic() < deadline, f"round {round_}: got {got}"
                for tp, records in consumer.poll(timeout_ms=200).items():
                    got.extend((tp.partition, r.value) for r in records)
        assert sorted(got) == sorted((p, f"r{r}p{p}".encode()) for r in range(3) for p in (0, 1))
        assert consumer._fetcher._session_handlers[0].next_metadata.epoch > 1
    finally:
        producer.close()
        consumer.close(autocommit=False)


def test_confluent_kafka_small_fetch_max_bytes_reads_both_partitions(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = "fs-confluent"
    fill(broker.bootstrap, topic)
    c = Consumer(consumer_config(broker.bootstrap, **{"fetch.max.bytes": 1000,
                                                      "message.max.bytes": 1000}))
    order: list[int] = []
    offsets: dict[int, list[int]] = {0: [], 1: []}
    try:
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        deadline = time.monotonic() + 60
        while len(order) < 2 * RECORDS_PER_PARTITION:
            assert time.monotonic() < deadline, f"read {len(order)} of {2 * RECORDS_PER_PARTITION} records in 60 s"
            for m in c.consume(num_messages=100, timeout=0.2):
                assert not m.error(), m.error()
                order.append(m.partition())
                offsets[m.partition()].append(m.offset())
    finally:
        c.close()
    for p in (0, 1):
        assert offsets[p] == list(range(RECORDS_PER_PARTITION)), f"partition {p}: offsets {offsets[p][:10]}..."
    first_half = order[:RECORDS_PER_PARTITION]
    assert first_half.count(0) > 0 and first_half.count(1) > 0, f"one partition starved: {first_half}"


# ---- raw Fetch v11 ----------------------------------------------------------------------------

FETCH_SESSION_ID_NOT_FOUND = 70
INVALID_FETCH_SESSION_EPOCH = 71


def fetch_v11(conn, topic: str, session_id: int, epoch: int, partitions: list[tuple[int, int]],
              forgotten: list[int] | None = None, max_bytes: int = 1, max_wait_ms: int = 0):
    """Fetch v11 (the last non-flexible version with sessions). Returns (error_code, session_id,
    [(partition, error, high watermark, records bytes)])."""
    part = lambda p, off: kr.i32(p) + kr.i32(-1) + kr.i64(off) + kr.i64(-1) + kr.i32(1 << 20)
    topics = [kr.string(topic) + kr.array([part(p, off) for p, off in partitions])] if partitions else []
    forgot = [kr.string(topic) + kr.array([kr.i32(p) for p in forgotten])] if forgotten else []
    body = (kr.i32(-1) + kr.i32(max_wait_ms) + kr.i32(1) + kr.i32(max_bytes) + kr.i8(0) + kr.i32(session_id) + kr.i32(epoch)
            + kr.array(topics) + kr.array(forgot) + kr.string(""))
    r = conn.roundtrip(kr.API_FETCH, 11, body)
    r.i32()  # throttle
    error, sid = r.i16(), r.i32()

    def partition(x):
        pidx, err, hw, _lso, _log_start = x.i32(), x.i16(), x.i64(), x.i64(), x.i64()
        x.array(lambda y: (y.i64(), y.i64()))
        x.i32()  # preferred read replica
        records = x.bytes_i32()
        return pidx, err, hw, len(records or b"")

    out = [p for _, parts in r.array(lambda x: (x.string(), x.array(partition))) for p in parts]
    assert r.at_end(), f"{r.remaining()} trailing bytes in Fetch v11 response"
    return error, sid, out


def test_raw_session_lifecycle(broker):
    topic = "fs-raw"
    create_topic(broker.bootstrap, topic, partitions=2)
    host, port = broker.bootstrap.split(":")
    with kr.KafkaConnection(host, int(port)) as conn:
        for i in range(3):
            for p in (0, 1):
                assert kr.produce(conn, topic, p, kr.simple_batch([b"x%d" % i])).error_code == 0
        # Full fetch, epoch 0: a session id; max_bytes 1 gives partition 0's first batch only.
        error, sid, parts = fetch_v11(conn, topic, 0, 0, [(0, 0), (1, 0)])
        assert error == 0 and sid != 0, (error, sid)
        assert [(p, e) for p, e, _, _ in parts] == [(0, 0), (1, 0)], parts
        assert parts[0][3] > 0 and parts[1][3] == 0, parts
        # Incremental, epoch 1, naming only partition 0 (moved to offset 1): partition 1 is read
        # first (rotation) and is the only one in the response.
        error, sid1, parts = fetch_v11(conn, topic, sid, 1, [(0, 1)])
        assert (error, sid1) == (0, sid)
        assert [p for p, _, _, _ in parts] == [1] and parts[0][3] > 0, parts
        # Epoch 2: partition 1 moved on, partition 0's turn.
        error, _, parts = fetch_v11(conn, topic, sid, 2, [(1, 1)])
        assert error == 0 and [p for p, _, _, _ in parts] == [0] and parts[0][3] > 0, parts
        # The same epoch again: INVALID_FETCH_SESSION_EPOCH and no partitions.
        error, _, parts = fetch_v11(conn, topic, sid, 2, [])
        assert error == INVALID_FETCH_SESSION_EPOCH and parts == [], (error, parts)
        # A session that does not exist.
        error, sid_none, parts = fetch_v11(conn, topic, sid + 1 if sid < 2**31 - 1 else 1, 1, [])
        assert (error, sid_none, parts) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # Epoch 3 still works, caught up: nothing changed, nothing sent.
        error, _, parts = fetch_v11(conn, topic, sid, 3, [(0, 3), (1, 3)], max_bytes=1 << 20)
        error, _, parts = fetch_v11(conn, topic, sid, 4, [])
        assert (error, parts) == (0, []), parts
        # A new record on partition 1: only partition 1, with its new high watermark.
        assert kr.produce(conn, topic, 1, kr.simple_batch([b"late"])).error_code == 0
        error, _, parts = fetch_v11(conn, topic, sid, 5, [], max_bytes=1 << 20)
        assert error == 0 and [(p, hw) for p, _, hw, _ in parts] == [(1, 4)] and parts[0][3] > 0, parts
        # Forgetting both partitions closes the session (the answer is sessionless, id 0).
        error, sid_after, parts = fetch_v11(conn, topic, sid, 6, [], forgotten=[0, 1])
        assert (error, sid_after) == (0, 0)
        error, _, _ = fetch_v11(conn, topic, sid, 7, [])
        assert error == FETCH_SESSION_ID_NOT_FOUND


def test_raw_incremental_long_poll_wakes_on_new_data(broker):
    topic = "fs-raw-poll"
    create_topic(broker.bootstrap, topic, partitions=2)
    host, port = broker.bootstrap.split(":")
    with kr.KafkaConnection(host, int(port), timeout=30) as conn, kr.KafkaConnection(host, int(port)) as producer:
        error, sid, _ = fetch_v11(conn, topic, 0, 0, [(0, 0), (1, 0)])
        assert error == 0 and sid != 0
        import threading
        threading.Timer(0.5, lambda: kr.produce(producer, topic, 1, kr.simple_batch([b"wake"]))).start()
        started = time.monotonic()
        error, _, parts = fetch_v11(conn, topic, sid, 1, [], max_bytes=1 << 20, max_wait_ms=10_000)
        elapsed = time.monotonic() - started
        assert error == 0 and [p for p, _, _, _ in parts] == [1] and parts[0][3] > 0, parts
        assert 0.3 < elapsed < 5, f"long poll took {elapsed:.2f}s"


def test_raw_sessionless_fixed_order_reaches_every_partition(broker):
    """A client that never rotates its request (always partition 0 then 1, max_bytes 1) and uses no
    session: Kafka would give partition 0's data every time while it has any; Samsa reads the
    partition served least recently first, so both advance. The response keeps the request's order."""
    topic = "fs-raw-sessionless"
    create_topic(broker.bootstrap, topic, partitions=2)
    host, port = broker.bootstrap.split(":")
    with kr.KafkaConnection(host, int(port)) as conn:
        for i in range(5):
            for p in (0, 1):
                assert kr.produce(conn, topic, p, kr.simple_batch([b"y%d" % i])).error_code == 0
        offsets = {0: 0, 1: 0}
        served = []
        for _ in range(6):
            error, sid, parts = fetch_v11(conn, topic, 0, -1, [(0, offsets[0]), (1, offsets[1])])
            assert (error, sid) == (0, 0)
            assert [p for p, _, _, _ in parts] == [0, 1]
            for p, _, _, n in parts:
                if n:
                    served.append(p)
                    offsets[p] += 1
        assert served == [0, 1, 0, 1, 0, 1], served


# ---- what the clients send --------------------------------------------------------------------


class FetchSpy:
    """A TCP relay in front of the broker that records (version, session id, epoch) of every Fetch
    request going through it. The broker advertises the relay's port, so clients fetch through it."""

    def __init__(self):
        import socket
        import threading
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.target: int | None = None
        self.fetches: list[tuple[int, int, int]] = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def _requests(self, client, upstream):
        buf = b""
        try:
            while data := client.recv(65536):
                upstream.sendall(data)
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4], "big", signed=True):
                    size = int.from_bytes(buf[:4], "big", signed=True)
                    self._record(buf[4:4 + size])
                    buf = buf[4 + size:]
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    def _record(self, frame: bytes):
        r = kr.Reader(frame)
        api_key, version = r.i16(), r.i16()
        if api_key != kr.API_FETCH or version < 7:
            return
        r.i32()  # correlation id
        r.string()  # client id
        if version >= 12:
            r.tagged_fields()
        if version <= 14:
            r.i32()  # replica id
        r.i32(), r.i32(), r.i32(), r.i8()  # max wait, min bytes, max bytes, isolation level
        with self.lock:
            self.fetches.append((version, r.i32(), r.i32()))

    def close(self):
        self.closed = True
        self.listener.close()


@pytest.fixture
def spied_broker(broker_factory):
    spy = FetchSpy()
    b = broker_factory(**{"advertised.listeners": f"PLAINTEXT://127.0.0.1:{spy.port}"})
    spy.target = b.port
    yield b, spy
    spy.close()


def test_what_the_clients_send(spied_broker):
    """kafka-python opens a session (epoch 0) and goes on incrementally (same session id, epochs
    1, 2, ...); librdkafka 2.16 only sends sessionless fetches (session id 0, epoch -1)."""
    from confluent_kafka import Consumer, TopicPartition as CTopicPartition
    b, spy = spied_broker
    bootstrap = f"127.0.0.1:{spy.port}"
    topic = "fs-spy"
    fill(b.bootstrap, topic)

    order, offsets, consumer = kp_read_order(bootstrap, topic, sessions=True)
    consumer.close(autocommit=False)
    with spy.lock:
        kp = list(spy.fetches)
        spy.fetches.clear()
    assert kp, "no Fetch request went through the relay"
    assert kp[0][1:] == (0, 0), f"kafka-python's first fetch: {kp[0]}"
    incremental = [f for f in kp if f[2] > 0]
    assert len(incremental) > 10 and len({f[1] for f in incremental}) == 1 and incremental[0][1] != 0, kp[:20]
    assert [f[2] for f in incremental[:5]] == [1, 2, 3, 4, 5], kp[:20]

    c = Consumer(consumer_config(bootstrap))
    try:
        c.assign([CTopicPartition(topic, 0, 0), CTopicPartition(topic, 1, 0)])
        got = 0
        deadline = time.monotonic() + 30
        while got < 2 * RECORDS_PER_PARTITION:
            assert time.monotonic() < deadline, f"confluent-kafka read {got} records"
            got += sum(1 for m in c.consume(num_messages=500, timeout=0.2) if not m.error())
    finally:
        c.close()
    with spy.lock:
        rd = list(spy.fetches)
    assert rd, "no Fetch request from librdkafka went through the relay"
    assert {(sid, epoch) for _, sid, epoch in rd} == {(0, -1)}, f"librdkafka sent sessions: {sorted(set(rd))[:10]}"


def test_kafka_python_seek_pause_resume_in_a_session(broker):
    """Seeks (a changed fetch offset sent incrementally) and pause/resume (the partition forgotten,
    then added back) inside kafka-python's fetch session."""
    from kafka import KafkaConsumer, TopicPartition
    topic = "fs-kp-seek"
    fill(broker.bootstrap, topic)
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, group_id=None,
                             fetch_max_wait_ms=100, max_poll_records=20)

    def poll_until(predicate, what):
        got: dict[int, list[int]] = {0: [], 1: []}
        deadline = time.monotonic() + 30
        while not predicate(got):
            assert time.monotonic() < deadline, f"{what}: got {({p: o[-3:] for p, o in got.items()})}"
            for tp, records in consumer.poll(timeout_ms=200).items():
                got[tp.partition].extend(r.offset for r in records)
        return got

    try:
        consumer.assign([tp0, tp1])
        consumer.seek_to_beginning(tp0, tp1)
        poll_until(lambda g: len(g[0]) >= 20 and len(g[1]) >= 20, "both partitions")
        # Seek partition 0 back: its records come again from offset 5.
        consumer.seek(tp0, 5)
        got = poll_until(lambda g: 5 in g[0], "re-read after seek")
        assert got[0][got[0].index(5):][:5] == [5, 6, 7, 8, 9]
        # Pause partition 1 and write more to it: only partition 0 is fetched until it is resumed.
        poll_until(lambda g: consumer.position(tp1) == RECORDS_PER_PARTITION, "partition 1 to the end")
        consumer.pause(tp1)
        host, port = broker.bootstrap.split(":")
        with kr.KafkaConnection(host, int(port)) as conn:
            for i in range(10):
                assert kr.produce(conn, topic, 1, kr.simple_batch([b"after pause %d" % i])).error_code == 0
        got = poll_until(lambda g: g[0] and g[0][-1] == RECORDS_PER_PARTITION - 1, "partition 0 to the end")
        assert got[1] == [], f"paused partition 1 returned {got[1]}"
        assert consumer.position(tp1) == RECORDS_PER_PARTITION
        consumer.resume(tp1)
        got = poll_until(lambda g: g[1] and g[1][-1] == RECORDS_PER_PARTITION + 9, "partition 1 after resume")
        assert got[1] == list(range(RECORDS_PER_PARTITION, RECORDS_PER_PARTITION + 10))
        assert consumer._fetcher._session_handlers[0].next_metadata.session_id != 0
    finally:
        consumer.close(autocommit=False)
